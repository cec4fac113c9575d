"""The codecs and types of newer archives, proved by reading values back.

Files written by netCDF-C 4.10 (zstd, bzip2, blosc through nc_def_var_*) and by h5py +
hdf5plugin (blosc, lz4, bitshuffle, enum, bool) go through `producer local`; Python icechunk +
xarray (zarr-python with numcodecs, running the codec pipeline floe wrote) must read values
equal to h5py + hdf5plugin reading the files. Filters whose framing no Zarr codec reads must be
refused by name.
"""
import json
import subprocess

import hdf5plugin  # noqa: F401  (registers the filters in h5py's HDF5 before anything else loads)
import h5py
import icechunk
import numpy as np
import pytest
import xarray as xr

from conftest import FIXTURES, binary, run_inspect

CODECS = FIXTURES / "codecs"
pytestmark = pytest.mark.skipif(not (CODECS / "expected.json").exists(),
                                reason="codec fixtures need netCDF-C with zstd/bzip2/blosc and hdf5plugin")


def expected():
    return json.loads((CODECS / "expected.json").read_text()) if (CODECS / "expected.json").exists() else {}


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    store = tmp_path_factory.mktemp("codecs") / "store"
    proc = subprocess.run([binary("producer"), "local", "--source", str(CODECS), "--store", str(store), "--json"],
                          capture_output=True, text=True, timeout=600)
    assert proc.stdout.strip(), proc.stderr
    return {"store": store, "proc": proc, "summary": json.loads(proc.stdout)}


def open_group(store, group):
    repo = icechunk.Repository.open(
        icechunk.local_filesystem_storage(str(store)),
        authorize_virtual_chunk_access={f"file://{CODECS}/": icechunk.credentials.LocalFileSystemAccess})
    return xr.open_zarr(repo.readonly_session("main").store, group=group, zarr_format=3, consolidated=False,
                        mask_and_scale=False)


def source(group):
    model = group.split("/")[0].removeprefix("CODEC_")
    (path,) = (CODECS / "CODEC" / model / "exp05").glob("*.nc")
    return path


@pytest.mark.parametrize("group", sorted(g for g, e in expected().items() if e.get("reads")))
def test_values_read_back_equal_h5py(run, group):
    assert group in run["summary"]["written_groups"], run["summary"]["failed"]
    path = source(group)
    var = path.name.split("_AIS_")[0]
    with h5py.File(path) as f:
        truth = f[var][...]
        filters = [f[var].id.get_create_plist().get_filter(i)[0] for i in range(f[var].id.get_create_plist().get_nfilters())]
    ds = open_group(run["store"], group)
    got = ds[var].values
    assert got.shape == truth.shape and got.dtype == truth.dtype, (got.dtype, truth.dtype)
    np.testing.assert_array_equal(got, truth)
    spec = expected()[group]
    if "flags" in spec:
        meanings = ds[var].attrs["flag_meanings"].split()
        assert dict(zip(meanings, ds[var].attrs["flag_values"])) == spec["flags"]
    if "dtype" in spec:
        assert str(got.dtype) == spec["dtype"]
    assert filters or "flags" in spec or "dtype" in spec  # every other file exercises a filter


@pytest.mark.parametrize("group", sorted(g for g, e in expected().items() if e.get("refused")))
def test_filters_no_codec_reads_are_refused_by_name(run, group):
    assert run["proc"].returncode == 2
    failed = dict(map(tuple, run["summary"]["failed"]))
    reason = failed[group]
    assert expected()[group]["refused"] in reason and "no Zarr codec reads" in reason, reason
    assert source(group).name in reason


def test_fixed_length_strings_are_typed_as_byte_strings():
    records, proc = run_inspect(CODECS / "strings.h5")
    assert proc.returncode == 0, proc.stderr
    (names,) = [r for r in records if r["variable"] == "names"]
    assert names["dtype"] == "|S10"


def test_verify_decodes_every_codec_on_both_paths(run):
    """`producer verify --all` decodes every chunk of every readable codec group twice: zarrs with the
    codecs the store declares, and the NetCDF readers with the file's own filters (zstd, bzip2 and
    blosc registered beside hdf5-reader's deflate, shuffle and fletcher32); the values agree."""
    readable = sorted(g for g, e in expected().items() if e.get("reads"))
    filters = [a for g in readable for a in ("--filter", g)]
    proc = subprocess.run([binary("producer"), "verify", "--source", str(CODECS), "--store", str(run["store"]),
                           "--all", "--json", *filters], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    groups = {g["group"]: g for g in json.loads(proc.stdout)["groups"]}
    assert sorted(groups) == readable
    for group, g in groups.items():
        assert g["status"] == "ok" and g["chunks_read"] == g["references"] > 0, g
        numeric = expected()[group].get("dtype") not in ("bool",) and not str(expected()[group].get("dtype", "")).startswith("|S")
        # Booleans and byte strings are compared as bytes only; every numeric chunk is decoded twice.
        assert g["chunks_decoded"] == (g["chunks_read"] if numeric else 0), (group, g)
