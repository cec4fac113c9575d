"""CMIP6 files as ESGF serves them (tests/fixtures/make_esgf.py: about 50 global attributes a file,
bounds for time, lat and lon, a scalar `height` named by `coordinates`, files written by netCDF-C and
by h5netcdf, one time unit spelled three ways, one file counting from another epoch) through
`producer local --profile cmip6`, read back through Python icechunk + xarray and compared with
`xr.open_mfdataset` of each group's files:

- the same data variables and coordinates (`height` a coordinate in both), equal values and dtypes,
  times and time bounds cftime-equal;
- every variable's attributes, and the group's: the first file's global attributes, and
  `floe_differing_attributes` naming exactly those that differ between the files;
- a walk over every file: each variable and each attribute it holds is in the store (or, where
  xarray moves it, in the encoding), or named in the group's `floe_warnings`.
"""
import json
import subprocess
import sys
from pathlib import Path

import cf_xarray  # noqa: F401 (the .cf accessor)
import icechunk
import netCDF4
import numpy as np
import pytest
import xarray as xr

from conftest import binary

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests" / "fixtures"))
import make_esgf  # noqa: E402

CFTIME = xr.coders.CFDatetimeCoder(use_cftime=True)
# Attributes xarray's CF decoding moves from .attrs to .encoding.
ENCODING = {"_FillValue", "missing_value", "scale_factor", "add_offset", "units", "calendar", "coordinates"}


@pytest.fixture(scope="module")
def esgf(tmp_path_factory):
    root = tmp_path_factory.mktemp("esgf")
    groups = make_esgf.make(root / "archive")
    store = root / "store"
    proc = subprocess.run([binary("producer"), "local", "--profile", "cmip6", "--source", root / "archive",
                           "--store", store, "--json"], capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return {"groups": groups, "store": store, "summary": json.loads(proc.stdout), "prefix": f"file://{root}/archive/"}


def stored(esgf, group):
    repo = icechunk.Repository.open(
        icechunk.local_filesystem_storage(str(esgf["store"])),
        authorize_virtual_chunk_access={esgf["prefix"]: icechunk.credentials.LocalFileSystemAccess})
    return xr.open_zarr(repo.readonly_session("main").store, group=group, zarr_format=3, consolidated=False,
                        decode_times=CFTIME).load()


def expected(files):
    return xr.open_mfdataset(files, combine="by_coords", decode_times=CFTIME, data_vars="minimal",
                             coords="minimal", compat="override", join="exact").load()


def test_every_group_is_written_whole(esgf):
    assert sorted(esgf["summary"]["written_groups"]) == sorted(esgf["groups"]), esgf["summary"]
    assert not esgf["summary"]["failed"] and not esgf["summary"]["partial_groups"], esgf["summary"]


@pytest.mark.parametrize("model", ["MODEL-A", "MODEL-B"])
def test_a_group_reads_as_xarray_reads_its_files(esgf, model):
    group = next(g for g in esgf["groups"] if g.startswith(model))
    files = esgf["groups"][group]
    ds, ref = stored(esgf, group), expected(files)
    assert set(ds.data_vars) == set(ref.data_vars), (set(ds.data_vars), set(ref.data_vars))
    assert set(ds.coords) == set(ref.coords) and "height" in ds.coords, (set(ds.coords), set(ref.coords))
    for name in ref.variables:
        assert ds[name].dtype == ref[name].dtype, (name, ds[name].dtype, ref[name].dtype)
        assert ds[name].dims == ref[name].dims, (name, ds[name].dims, ref[name].dims)
        np.testing.assert_array_equal(ds[name].values, ref[name].values, err_msg=name)
        assert ds[name].attrs == ref[name].attrs, (name, ds[name].attrs, ref[name].attrs)
    own = {k: v for k, v in ds.attrs.items() if not k.startswith("floe_")}
    assert own.keys() == ref.attrs.keys(), set(own) ^ set(ref.attrs)
    for key, value in ref.attrs.items():
        assert np.array_equal(own[key], value), (key, own[key], value)
    with netCDF4.Dataset(files[0]) as first:
        values = {k: first.getncattr(k) for k in first.ncattrs()}
    differing = set()
    for path in files[1:]:
        with netCDF4.Dataset(path) as other:
            differing |= {k for k in set(values) | set(other.ncattrs())
                          if k not in values or k not in other.ncattrs()
                          or not np.array_equal(values[k], other.getncattr(k))}
    assert sorted(ds.attrs["floe_differing_attributes"]) == sorted(differing), ds.attrs["floe_differing_attributes"]
    assert {"tracking_id", "creation_date"} <= differing


def test_every_variable_and_attribute_of_every_file_is_kept_or_named(esgf):
    missing = []
    for group, files in esgf["groups"].items():
        ds = stored(esgf, group)
        warned = {(w["file"], w["variable"]) for w in json.loads(json.dumps(ds.attrs["floe_warnings"]))}
        for path in files:
            url = f"file://{path}"
            with netCDF4.Dataset(path) as nc:
                for key in nc.ncattrs():
                    if key not in ds.attrs:
                        missing.append(f"{path.name}: global attribute {key}")
                for name, var in nc.variables.items():
                    if (url, name) in warned:
                        continue
                    if name not in ds.variables:
                        missing.append(f"{path.name}: variable {name}")
                        continue
                    kept = {**ds[name].attrs, **ds[name].encoding}
                    for key in var.ncattrs():
                        if key not in kept and not (key in ENCODING and name in ds.variables):
                            missing.append(f"{path.name}: {name}:{key}")
    assert not missing, "\n".join(missing)


def test_cf_tools_find_every_bound(esgf):
    for group in esgf["groups"]:
        ds = stored(esgf, group)
        assert {"time", "lat", "lon"} <= set(ds.cf.bounds), ds.cf.bounds
