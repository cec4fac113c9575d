"""NetCDF-4 files with sub-groups through `producer local`: the store holds each file's tree under
the group, as the files do. Every node read back with `xr.open_datatree` (Python icechunk + xarray)
equals `xr.open_mfdataset(files, group=...)` of the same files, values and attributes; a sub-group's
attributes are the first file's, as the global attributes are; an empty sub-group is kept. Files
written by netCDF4 (netCDF-C) and by h5netcdf. An append of a new file reads only the new file and
gives the same tree; a sub-group whose name the store cannot hold (`_floe`, floe's own) is left out
by name, the rest written; `verify` checks every array, those in sub-groups too."""
import json
import subprocess
from pathlib import Path

import h5netcdf
import icechunk
import netCDF4
import numpy as np
import pytest
import xarray as xr

from conftest import binary

PROFILE = """id = "tree"
version = 1
description = "files with sub-groups, concatenated along time"
pattern = "{name}_{year}.nc"
group_path = "{name}"
concat = "time"
time = "cf-exact"
"""
STEPS = 3
NODES = ["sub", "sub/inner"]


def producer(*args):
    return subprocess.run([binary("producer"), *map(str, args)], capture_output=True, text=True, timeout=900)


def write_netcdf4(path, year, extra_group=None):
    """A file of three steps: `tas` at the root, `w` and a static `depth` in `sub`, `v` in
    `sub/inner` (on the root's time and x, and its own dimension `level`), an empty group."""
    with netCDF4.Dataset(path, "w") as ds:
        ds.title = "root of the tree"
        ds.year = year  # differs between files: the group keeps the first's
        ds.createDimension("time", None)
        ds.createDimension("x", 4)
        t = ds.createVariable("time", "f8", ("time",))
        t.units, t.calendar = "days since 2000-01-01", "standard"
        t[:] = np.arange(STEPS) + (year - 2000) * STEPS
        tas = ds.createVariable("tas", "f4", ("time", "x"), zlib=True, chunksizes=(1, 4))
        tas[:] = np.arange(STEPS * 4).reshape(STEPS, 4) + year
        sub = ds.createGroup("sub")
        sub.purpose = f"instrument of {year}"
        w = sub.createVariable("w", "i2", ("time", "x"), fill_value=-1)
        w.units, w.scale_factor = "m", 0.5
        w[:] = np.arange(STEPS * 4).reshape(STEPS, 4) % 7
        depth = sub.createVariable("depth", "f8", ("x",))
        depth.units = "m"
        depth[:] = [1.0, 2.0, 4.0, 8.0]
        inner = sub.createGroup("inner")
        inner.note = "nested"
        inner.createDimension("level", 2)
        v = inner.createVariable("v", "f4", ("time", "level", "x"), chunksizes=(1, 2, 4))
        v.long_name = "inner values"
        v[:] = np.arange(STEPS * 8, dtype="f4").reshape(STEPS, 2, 4) * year
        ds.createGroup("empty").why = "kept though empty"
        if extra_group:
            ds.createGroup(extra_group).createVariable("q", "f4", ("time",))[:] = np.ones(STEPS)


def write_h5netcdf(path, year):
    """The same shape of tree, written by h5netcdf (h5py), not netCDF-C."""
    with h5netcdf.File(path, "w") as ds:
        ds.attrs["title"] = "root of the tree"
        ds.dimensions = {"time": None, "x": 4}
        t = ds.create_variable("time", ("time",), "f8")
        t.attrs["units"], t.attrs["calendar"] = "days since 2000-01-01", "standard"
        ds.resize_dimension("time", STEPS)
        t[:] = np.arange(STEPS) + (year - 2000) * STEPS
        tas = ds.create_variable("tas", ("time", "x"), "f4", chunks=(1, 4))
        tas[:] = np.arange(STEPS * 4).reshape(STEPS, 4) + year
        sub = ds.create_group("sub")
        sub.attrs["purpose"] = "h5netcdf's"
        w = sub.create_variable("w", ("time", "x"), "f4", chunks=(1, 4), compression="gzip")
        w[:] = np.arange(STEPS * 4, dtype="f4").reshape(STEPS, 4) / year
        inner = sub.create_group("inner")
        inner.dimensions = {"level": 2}
        v = inner.create_variable("v", ("time", "level", "x"), "f4", chunks=(1, 2, 4))
        v[:] = np.arange(STEPS * 8, dtype="f4").reshape(STEPS, 2, 4) * year


def run(root, files, *extra):
    profile = root / "tree.toml"
    profile.write_text(PROFILE)
    proc = producer("local", "--source", root / "archive", "--store", root / "store", "--profile", profile,
                    "--json", *extra)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return json.loads(proc.stdout)


def tree(root, group, **kwargs):
    repo = icechunk.Repository.open(
        icechunk.local_filesystem_storage(str(root / "store")),
        authorize_virtual_chunk_access={
            f"file://{root / 'archive'}/": icechunk.credentials.LocalFileSystemAccess})
    return xr.open_datatree(repo.readonly_session("main").store, engine="zarr", group=group, zarr_format=3,
                            consolidated=False, **kwargs)


def reference(files, node, **kwargs):
    return xr.open_mfdataset([str(f) for f in files], group=node, combine="nested", concat_dim="time",
                             data_vars="minimal", coords="minimal", compat="override", **kwargs)


def assert_node_equals_files(ours, files, node, **kwargs):
    ref = reference(files, node, **kwargs)
    mine = ours[node].to_dataset(inherit=False)
    assert sorted(mine.data_vars) == sorted(ref.data_vars), node
    for name in ref.data_vars:
        a, b = mine[name], ref[name]
        assert a.dims == b.dims, (node, name)
        assert a.dtype == b.dtype, (node, name, a.dtype, b.dtype)
        np.testing.assert_array_equal(a.values, b.values, err_msg=f"{node}/{name}")
        assert {k: v for k, v in a.attrs.items()} == {k: v for k, v in b.attrs.items()}, (node, name)
    # A sub-group's attributes: the first file's, as xarray keeps the first file's.
    assert dict(mine.attrs) == dict(ref.attrs), node


@pytest.fixture(scope="module")
def netcdf4_tree(tmp_path_factory):
    root = tmp_path_factory.mktemp("tree")
    (root / "archive").mkdir()
    files = [root / "archive" / f"obs_{year}.nc" for year in (2000, 2001)]
    for year, path in zip((2000, 2001), files):
        write_netcdf4(path, year)
    return root, files, run(root, files)


def test_every_node_equals_the_files(netcdf4_tree):
    root, files, summary = netcdf4_tree
    assert summary["written_groups"] == ["obs"] and summary["warnings"] == [], summary
    ours = tree(root, "obs")
    assert sorted(ours.groups) == ["/", "/_floe", "/empty", "/sub", "/sub/inner"]
    raw = tree(root, "obs", mask_and_scale=False)
    for node in NODES:
        assert_node_equals_files(ours, files, node)
        assert_node_equals_files(raw, files, node, mask_and_scale=False)
    assert ours["sub"].attrs["purpose"] == "instrument of 2000"
    assert dict(ours["empty"].attrs) == {"why": "kept though empty"}
    assert not ours["empty"].to_dataset(inherit=False).variables
    # The root is the group as before, time decoded, the first file's global attributes.
    root_ds = ours.to_dataset()
    np.testing.assert_array_equal(root_ds["tas"].values, reference(files, None)["tas"].values)
    assert root_ds.attrs["year"] == 2000 and "year" in root_ds.attrs["floe_differing_attributes"]
    # A sub-group attribute the files hold otherwise is named too, by its path.
    assert "sub/purpose" in root_ds.attrs["floe_differing_attributes"]
    assert "sub/inner/note" not in root_ds.attrs["floe_differing_attributes"]
    # The sub-groups read on the root's time axis, as xarray's tree inherits it.
    assert (ours["sub/inner"]["time"].values == root_ds["time"].values).all()


def test_verify_checks_the_arrays_in_subgroups(netcdf4_tree):
    root, _, _ = netcdf4_tree
    proc = producer("verify", "--store", root / "store", "--source", root / "archive", "--profile",
                    root / "tree.toml", "--all")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    # tas 2x3 chunks, time inline, sub/w 2 (contiguous: one a step), sub/depth 1, sub/inner/v 2x3.
    assert "1 ok" in proc.stdout, proc.stdout
    refs = int(proc.stdout.split(" chunk reference(s) compared")[0].rsplit(" ", 1)[1])
    assert refs >= 6 + 6 + 6 + 1, proc.stdout


def test_an_append_reads_only_the_new_file_and_keeps_the_tree(tmp_path):
    (tmp_path / "archive").mkdir()
    files = [tmp_path / "archive" / f"obs_{year}.nc" for year in (2000, 2001)]
    write_netcdf4(files[0], 2000)
    run(tmp_path, files[:1])
    assert "sub/purpose" not in tree(tmp_path, "obs").attrs["floe_differing_attributes"]
    write_netcdf4(files[1], 2001)
    summary = run(tmp_path, files)
    assert summary["appended"] == [["obs", 1]] and summary["rebuilt"] == [], summary
    ours = tree(tmp_path, "obs")
    for node in NODES:
        assert_node_equals_files(ours, files, node)
    assert ours["sub"].attrs["purpose"] == "instrument of 2000"
    # The new file's sub-group says otherwise: named, as a rebuild names it.
    assert "sub/purpose" in ours.attrs["floe_differing_attributes"]
    assert "sub/inner/note" not in ours.attrs["floe_differing_attributes"]


def test_h5netcdf_files(tmp_path):
    (tmp_path / "archive").mkdir()
    files = [tmp_path / "archive" / f"obs_{year}.nc" for year in (2000, 2001)]
    for year, path in zip((2000, 2001), files):
        write_h5netcdf(path, year)
    summary = run(tmp_path, files)
    assert summary["written_groups"] == ["obs"] and summary["warnings"] == [], summary
    ours = tree(tmp_path, "obs")
    for node in NODES:
        assert_node_equals_files(ours, files, node)


def test_a_subgroup_named_like_floes_own_is_left_out_by_name(tmp_path):
    (tmp_path / "archive").mkdir()
    files = [tmp_path / "archive" / f"obs_{year}.nc" for year in (2000, 2001)]
    for year, path in zip((2000, 2001), files):
        write_netcdf4(path, year, extra_group="_floe")
    summary = run(tmp_path, files)
    assert summary["written_groups"] == ["obs"], summary
    assert len(summary["warnings"]) == 1, summary["warnings"]
    assert "obs_2000.nc: _floe: a sub-group the store cannot hold" in summary["warnings"][0]
    assert "where floe keeps a group's records" in summary["warnings"][0]
    assert "obs" in summary["partial_groups"], summary
    ours = tree(tmp_path, "obs")
    named = json.loads(ours.attrs["floe_warnings"]) if isinstance(ours.attrs["floe_warnings"], str) \
        else ours.attrs["floe_warnings"]
    assert [(w["variable"], w["file"].rsplit("/", 1)[1]) for w in named] == [("_floe", "obs_2000.nc")]
    for node in NODES:
        assert_node_equals_files(ours, files, node)
    # floe's own record of the inputs is intact, not mixed with the file's group.
    assert list(ours["_floe"].to_dataset().data_vars) == ["inputs"]


def test_the_fleet_on_localstack_writes_the_tree(tmp_path):
    """enqueue → virtualizer and committer workers over LocalStack SQS and S3: the fragment carries
    the sub-groups to the committer, and the store on S3 holds the same tree."""
    from fleet import Fleet
    (tmp_path / "archive").mkdir()
    files = [tmp_path / "archive" / f"obs_{year}.nc" for year in (2000, 2001)]
    for year, path in zip((2000, 2001), files):
        write_netcdf4(path, year)
    profile = tmp_path / "tree.toml"
    profile.write_text(PROFILE)
    fleet = Fleet(tmp_path, tmp_path / "archive")
    sent = fleet.json("producer", "enqueue", "--all", "--profile", profile, "--json")
    assert len(sent["enqueued"]) == 1, sent
    fleet.drain(virtualizers=1, committers=1)
    assert fleet.dead_letters() == []
    for node in NODES:
        ours = fleet.open_group(f"obs/{node}")
        ref = reference(files, node, mask_and_scale=False)
        assert sorted(ours.data_vars) == sorted(ref.data_vars), node
        for name in ref.data_vars:
            np.testing.assert_array_equal(ours[name].values, ref[name].values, err_msg=f"{node}/{name}")
        assert dict(ours.attrs) == dict(ref.attrs), node
    proc = fleet.run("producer", "verify", "--profile", profile, "--json")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert [g["status"] for g in json.loads(proc.stdout)["groups"]] == ["ok"]
