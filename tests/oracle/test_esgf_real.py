"""Real CMIP6 files as ESGF serves them, through `producer local --profile cmip6`, read back through
Python icechunk + xarray and compared with `xr.open_mfdataset` of each group's files.

The files: ESMValTool's sample data (PyPI `ESMValTool-sample-data==0.0.4`, pinned in
requirements.txt): 326 CMIP6 files of `ta` downloaded from ESGF and subset by ESMValTool, 76 datasets
of 46 models, `Amon` and `day` tables, all written by netCDF-C 4.7.4 on HDF5 1.10.5. They carry ESGF's
global attributes (about 50 a file), bounds for time, latitude and longitude (IPSL's have none for
latitude and longitude, a few models have them for pressure too), a time unit spelled a dozen ways
across models, and series whose files each count from another epoch (BCC-CSM2-MR, CAMS-CSM1-0).
None of them declares `_FillValue` or `missing_value` (test_esgf.py's generated archive covers those).
Three of the groups are also written again by h5netcdf (through xarray, values and attributes
unchanged), so another writer's files go the same way.

For every group:
- the same data variables and coordinates, equal values, dtypes and dimensions (times and time
  bounds cftime-equal), every variable's attributes;
- the group's attributes: the first file's global attributes, and `floe_differing_attributes`
  naming exactly those that differ between the files;
- a walk over every file: each variable and attribute it holds is in the store (or, where xarray
  moves it, in the encoding), or named in the group's `floe_warnings`;
- cf-xarray finds every bound a coordinate's `bounds` attribute names, in any of the files.
"""
import json
import subprocess
from pathlib import Path

import cf_xarray  # noqa: F401 (the .cf accessor)
import h5py
import icechunk
import netCDF4
import numpy as np
import pytest
import xarray as xr

from conftest import binary

esmvaltool_sample_data = pytest.importorskip("esmvaltool_sample_data")

CFTIME = xr.coders.CFDatetimeCoder(use_cftime=True)
# Attributes xarray's CF decoding moves from .attrs to .encoding.
ENCODING = {"_FillValue", "missing_value", "scale_factor", "add_offset", "units", "calendar", "coordinates"}
SAMPLE = Path(esmvaltool_sample_data.__file__).parent / "data" / "timeseries" / "CMIP6"
# Written again by h5netcdf: a monthly series of seven files, a daily series of three, and a monthly
# series of three files each counting from another epoch.
REWRITTEN = ["MIROC6/historical/r1i1p1f1/Amon/gn", "MIROC6/historical/r1i1p1f1/day/gn",
             "BCC-CSM2-MR/historical/r1i1p1f1/Amon/gn"]
KINDS = ["equal", "attributes", "walk", "bounds"]


def groups_of(root):
    """The cmip6 profile's groups: {source}/{experiment}/{member}/{table}/{grid} from the DRS."""
    groups = {}
    for path in sorted(root.rglob("*.nc")):
        activity, institution, source, experiment, member, table, variable, grid, version, _ = \
            path.relative_to(root).parts
        groups.setdefault(f"{source}/{experiment}/{member}/{table}/{grid}", []).append(path)
    return groups


def local(root, store):
    proc = subprocess.run([binary("producer"), "local", "--profile", "cmip6", "--source", root, "--store", store,
                           "--json"], capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return json.loads(proc.stdout)


def attributes(path):
    """Every attribute of a file, as netCDF4 reads it: {None: globals, variable: its attributes}."""
    with netCDF4.Dataset(path) as nc:
        found = {None: {k: nc.getncattr(k) for k in nc.ncattrs()}}
        found.update({name: {k: var.getncattr(k) for k in var.ncattrs()} for name, var in nc.variables.items()})
    return found


def same_attributes(one, other):
    return one.keys() == other.keys() and all(np.array_equal(one[k], other[k]) for k in one)


def differences(one, other):
    """The attributes in which two dictionaries differ, each as `key: one's value != other's`."""
    return ", ".join(f"{k}: {one.get(k, '(none)')!r} != {other.get(k, '(none)')!r}"
                     for k in sorted(one.keys() | other.keys())
                     if k not in one or k not in other or not np.array_equal(one[k], other[k]))


def rewrite_with_h5netcdf(groups, out):
    for group in REWRITTEN:
        for path in groups[group]:
            target = out / path.relative_to(SAMPLE)
            target.parent.mkdir(parents=True, exist_ok=True)
            had = attributes(path)
            with xr.open_dataset(path, decode_times=False, mask_and_scale=False, decode_coords=False) as ds:
                ds = ds.load()
            for name in ds.variables:
                for key in ("_FillValue", "missing_value"):  # moved to the encoding: written back
                    if key in ds[name].encoding and key not in ds[name].attrs:
                        ds[name].attrs[key] = ds[name].encoding.pop(key)
                if "_FillValue" not in had[name]:  # no fill value where the file had none
                    ds[name].encoding["_FillValue"] = None
            ds.to_netcdf(target, engine="h5netcdf")
    return groups_of(out)


def problems_of(store, prefix, groups):
    """Every difference between each stored group and xarray's reading of its files, by kind."""
    repo = icechunk.Repository.open(icechunk.local_filesystem_storage(str(store)),
                                    authorize_virtual_chunk_access={prefix: icechunk.credentials.LocalFileSystemAccess})
    session = repo.readonly_session("main")
    found = {kind: [] for kind in KINDS}
    for group, files in sorted(groups.items()):
        # chunks=None: one zarr read a variable, not a dask task a chunk (the daily groups hold one
        # chunk a time step, up to 23,741 of them).
        ds = xr.open_zarr(session.store, group=group, zarr_format=3, consolidated=False, chunks=None,
                          decode_times=CFTIME).load()
        ref = xr.open_mfdataset(files, combine="by_coords", decode_times=CFTIME, data_vars="minimal",
                                coords="minimal", compat="override", join="exact").load()
        found["equal"] += compare(group, ds, ref)
        found["attributes"] += global_attributes(group, ds, ref, files)
        found["walk"] += walk(group, ds, files)
        found["bounds"] += bounds(group, ds, files)
    return found


def compare(group, ds, ref):
    out = []
    if set(ds.data_vars) != set(ref.data_vars):
        out.append(f"{group}: data variables {sorted(ds.data_vars)} != {sorted(ref.data_vars)}")
    if set(ds.coords) != set(ref.coords):
        out.append(f"{group}: coordinates {sorted(ds.coords)} != {sorted(ref.coords)}")
    for name in ref.variables:
        if name not in ds.variables:
            continue
        if ds[name].dtype != ref[name].dtype:
            out.append(f"{group}: {name}: dtype {ds[name].dtype} != {ref[name].dtype}")
        if ds[name].dims != ref[name].dims:
            out.append(f"{group}: {name}: dimensions {ds[name].dims} != {ref[name].dims}")
        try:
            np.testing.assert_array_equal(ds[name].values, ref[name].values, err_msg=f"{group}: {name}")
        except AssertionError as error:
            out.append(" ".join(str(error).split())[:400])
        if not same_attributes(ds[name].attrs, ref[name].attrs):
            out.append(f"{group}: {name}: attributes (stored != xarray's) "
                       f"{differences(ds[name].attrs, ref[name].attrs)}")
    return out


def global_attributes(group, ds, ref, files):
    out = []
    own = {k: v for k, v in ds.attrs.items() if not k.startswith("floe_")}
    if own.keys() != ref.attrs.keys():
        out.append(f"{group}: global attributes differ in {sorted(set(own) ^ set(ref.attrs))}")
    out += [f"{group}: global attribute {k}: {own[k]!r} != {v!r}" for k, v in ref.attrs.items()
            if k in own and not np.array_equal(own[k], v)]
    first = attributes(files[0])[None]
    differing = set()
    for path in files[1:]:
        other = attributes(path)[None]
        differing |= {k for k in set(first) | set(other)
                      if k not in first or k not in other or not np.array_equal(first[k], other[k])}
    if sorted(ds.attrs["floe_differing_attributes"]) != sorted(differing):
        out.append(f"{group}: floe_differing_attributes {sorted(ds.attrs['floe_differing_attributes'])} "
                   f"!= {sorted(differing)}")
    return out


def walk(group, ds, files):
    out = []
    warned = {(w["file"], w["variable"]) for w in ds.attrs["floe_warnings"]}
    for path in files:
        for name, held in attributes(path).items():
            if name is None:
                out += [f"{group}: {path.name}: global attribute {k}" for k in held if k not in ds.attrs]
                continue
            if (f"file://{path}", name) in warned:
                continue
            if name not in ds.variables:
                out.append(f"{group}: {path.name}: variable {name}")
                continue
            kept = {**ds[name].attrs, **ds[name].encoding}
            out += [f"{group}: {path.name}: {name}:{k}" for k in held if k not in kept and k not in ENCODING]
    return out


def bounds(group, ds, files):
    """Every variable a `bounds` attribute names, in any file, cf-xarray finds for its coordinate."""
    declared = {(name, held["bounds"]) for path in files for name, held in attributes(path).items()
                if name is not None and "bounds" in held}
    return [f"{group}: {coordinate}'s bounds {bound} not found: {ds.cf.bounds}"
            for coordinate, bound in sorted(declared) if bound not in ds.cf.bounds.get(coordinate, [])]


@pytest.fixture(scope="module")
def esgf(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("esgf-real")
    groups = groups_of(SAMPLE)
    summary = local(SAMPLE, tmp / "store")
    return {"groups": groups, "summary": summary,
            "problems": problems_of(tmp / "store", f"file://{SAMPLE}/", groups)}


@pytest.fixture(scope="module")
def rewritten(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("esgf-h5netcdf")
    groups = rewrite_with_h5netcdf(groups_of(SAMPLE), tmp / "CMIP6")
    summary = local(tmp / "CMIP6", tmp / "store")
    return {"groups": groups, "summary": summary, "root": tmp / "CMIP6",
            "problems": problems_of(tmp / "store", f"file://{tmp / 'CMIP6'}/", groups)}


def test_the_sample_is_the_real_archive():
    groups = groups_of(SAMPLE)
    assert sum(map(len, groups.values())) == 326 and len(groups) == 76, (len(groups), sum(map(len, groups.values())))
    assert {group.split("/")[3] for group in groups} == {"Amon", "day"}
    with h5py.File(groups[REWRITTEN[0]][0]) as f:
        assert f.attrs["_NCProperties"].startswith(b"version=2,netcdf=4.7.4"), f.attrs["_NCProperties"]
        assert len(f.attrs) > 40 and "tracking_id" in f.attrs


def test_every_group_is_written_whole(esgf):
    summary = esgf["summary"]
    assert sorted(summary["written_groups"]) == sorted(esgf["groups"]), summary
    assert not summary["failed"] and not summary["partial_groups"], summary


@pytest.mark.parametrize("kind", KINDS)
def test_every_group_reads_as_xarray_reads_its_files(esgf, kind):
    problems = esgf["problems"][kind]
    assert not problems, f"{len(problems)} problems:\n" + "\n".join(problems[:20])


def test_the_rewrite_is_another_writer_with_the_same_attributes(rewritten):
    """h5netcdf wrote every rewritten file, and each keeps every attribute of its source file."""
    source = groups_of(SAMPLE)
    assert sorted(rewritten["groups"]) == sorted(REWRITTEN)
    lost = []
    for group in REWRITTEN:
        assert len(rewritten["groups"][group]) == len(source[group]), group
        for path, original in zip(rewritten["groups"][group], source[group]):
            assert path.relative_to(rewritten["root"]) == original.relative_to(SAMPLE)
            with h5py.File(path) as f:
                properties = dict(item.split("=", 1) for item in f.attrs["_NCProperties"].decode().split(","))
            assert "h5netcdf" in properties and "netcdf" not in properties, (path.name, properties)
            now, was = attributes(path), attributes(original)
            if now.keys() != was.keys():
                lost.append(f"{path.name}: variables {sorted(map(str, now))} != {sorted(map(str, was))}")
            lost += [f"{path.name}: {name or 'global'} attributes (rewritten != source) {differences(now[name], held)}"
                     for name, held in was.items() if name in now and not same_attributes(now[name], held)]
    assert not lost, "\n".join(lost[:20])


def test_files_written_by_h5netcdf_are_indexed_the_same(rewritten):
    summary = rewritten["summary"]
    assert sorted(summary["written_groups"]) == sorted(REWRITTEN), summary
    assert not summary["failed"] and not summary["partial_groups"], summary


@pytest.mark.parametrize("kind", KINDS)
def test_files_written_by_h5netcdf_read_as_xarray_reads_them(rewritten, kind):
    problems = rewritten["problems"][kind]
    assert not problems, f"{len(problems)} problems:\n" + "\n".join(problems[:20])
