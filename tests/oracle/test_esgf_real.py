"""Real CMIP6 files as ESGF serves them, through `producer local --profile cmip6`, read back through
Python icechunk + xarray and compared with `xr.open_mfdataset` of each group's files.

The files: ESMValTool's sample data (PyPI `ESMValTool-sample-data==0.0.4`, pinned in
requirements.txt): 326 CMIP6 files of `ta` from ESGF, 76 datasets of 14 models, `Amon` and `day`
tables, subset by ESMValTool and written by netCDF-C 4.7.4 on HDF5 1.10.5, with ESGF's global
attributes (about 50 a file), time, latitude, longitude and pressure bounds, and one time unit
spelled several ways across models. Three of the groups are also written again by h5netcdf
(through xarray, values and attributes unchanged), so another writer's files go the same way.

For every group:
- the same data variables and coordinates, equal values, dtypes and dimensions (times and time
  bounds cftime-equal), every variable's attributes;
- the group's attributes: the first file's global attributes, and `floe_differing_attributes`
  naming exactly those that differ between the files;
- a walk over every file: each variable and attribute it holds is in the store (or, where xarray
  moves it, in the encoding), or named in the group's `floe_warnings`;
- cf-xarray finds every bound a coordinate's `bounds` attribute names.
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
# Written again by h5netcdf: a series of ten files, a daily series, a series of three.
REWRITTEN = ["MIROC6/historical/r1i1p1f1/Amon/gn", "MIROC6/historical/r1i1p1f1/day/gn",
             "CMCC-CM2-SR5/historical/r1i1p1f1/Amon/gn"]


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


def rewrite_with_h5netcdf(groups, out):
    for group in REWRITTEN:
        for path in groups[group]:
            target = out / path.relative_to(SAMPLE)
            target.parent.mkdir(parents=True, exist_ok=True)
            with xr.open_dataset(path, decode_times=False, mask_and_scale=False, decode_coords=False) as ds:
                ds = ds.load()
                with netCDF4.Dataset(path) as nc:
                    for name in ds.variables:  # no fill value where the file had none
                        if "_FillValue" not in nc[name].ncattrs():
                            ds[name].encoding["_FillValue"] = None
                ds.to_netcdf(target, engine="h5netcdf")
    return groups_of(out)


def problems_of(store, prefix, groups):
    """Every difference between each stored group and xarray's reading of its files, by kind."""
    repo = icechunk.Repository.open(icechunk.local_filesystem_storage(str(store)),
                                    authorize_virtual_chunk_access={prefix: icechunk.credentials.LocalFileSystemAccess})
    found = {"equal": [], "attributes": [], "walk": [], "bounds": []}
    for group, files in sorted(groups.items()):
        ds = xr.open_zarr(repo.readonly_session("main").store, group=group, zarr_format=3, consolidated=False,
                          decode_times=CFTIME).load()
        ref = xr.open_mfdataset(files, combine="by_coords", decode_times=CFTIME, data_vars="minimal",
                                coords="minimal", compat="override", join="exact").load()
        found["equal"] += compare(group, ds, ref)
        found["attributes"] += global_attributes(group, ds, ref, files)
        found["walk"] += walk(group, ds, files)
        declared = {}
        with netCDF4.Dataset(files[0]) as nc:
            for name, var in nc.variables.items():
                if "bounds" in var.ncattrs():
                    declared[name] = var.getncattr("bounds")
        for coordinate, bounds in declared.items():
            if bounds not in ds.cf.bounds.get(coordinate, []):
                found["bounds"].append(f"{group}: {coordinate}'s bounds {bounds} not found: {ds.cf.bounds}")
    return found


def compare(group, ds, ref):
    out = []
    if set(ds.data_vars) != set(ref.data_vars) or set(ds.coords) != set(ref.coords):
        out.append(f"{group}: variables {sorted(ds.variables)} != {sorted(ref.variables)}")
    for name in ref.variables:
        if name not in ds.variables:
            continue
        if (ds[name].dtype, ds[name].dims) != (ref[name].dtype, ref[name].dims):
            out.append(f"{group}: {name}: {ds[name].dtype} {ds[name].dims} != {ref[name].dtype} {ref[name].dims}")
        elif not np.array_equal(ds[name].values, ref[name].values, equal_nan=ds[name].dtype.kind == "f"):
            out.append(f"{group}: {name}: values differ")
        if ds[name].attrs != ref[name].attrs:
            out.append(f"{group}: {name}: attributes {ds[name].attrs} != {ref[name].attrs}")
    return out


def global_attributes(group, ds, ref, files):
    out = []
    own = {k: v for k, v in ds.attrs.items() if not k.startswith("floe_")}
    if own.keys() != ref.attrs.keys():
        out.append(f"{group}: global attributes differ in {sorted(set(own) ^ set(ref.attrs))}")
    out += [f"{group}: {k}" for k, v in ref.attrs.items() if k in own and not np.array_equal(own[k], v)]
    with netCDF4.Dataset(files[0]) as first:
        values = {k: first.getncattr(k) for k in first.ncattrs()}
    differing = set()
    for path in files[1:]:
        with netCDF4.Dataset(path) as other:
            differing |= {k for k in set(values) | set(other.ncattrs())
                          if k not in values or k not in other.ncattrs()
                          or not np.array_equal(values[k], other.getncattr(k))}
    if sorted(ds.attrs["floe_differing_attributes"]) != sorted(differing):
        out.append(f"{group}: floe_differing_attributes {ds.attrs['floe_differing_attributes']} != {differing}")
    return out


def walk(group, ds, files):
    out = []
    warned = {(w["file"], w["variable"]) for w in ds.attrs["floe_warnings"]}
    for path in files:
        with netCDF4.Dataset(path) as nc:
            out += [f"{path.name}: global attribute {k}" for k in nc.ncattrs() if k not in ds.attrs]
            for name, var in nc.variables.items():
                if (f"file://{path}", name) in warned:
                    continue
                if name not in ds.variables:
                    out.append(f"{path.name}: variable {name}")
                    continue
                kept = {**ds[name].attrs, **ds[name].encoding}
                out += [f"{path.name}: {name}:{k}" for k in var.ncattrs() if k not in kept and k not in ENCODING]
    return out


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
    return {"groups": groups, "summary": summary,
            "problems": problems_of(tmp / "store", f"file://{tmp / 'CMIP6'}/", groups)}


def test_the_sample_is_the_real_archive():
    groups = groups_of(SAMPLE)
    assert sum(map(len, groups.values())) == 326 and len(groups) == 76, (len(groups), sum(map(len, groups.values())))
    with h5py.File(groups[REWRITTEN[0]][0]) as f:
        assert f.attrs["_NCProperties"].startswith(b"version=2,netcdf=4.7.4"), f.attrs["_NCProperties"]
        assert len(f.attrs) > 40 and "tracking_id" in f.attrs


def test_every_group_is_written_whole(esgf):
    summary = esgf["summary"]
    assert sorted(summary["written_groups"]) == sorted(esgf["groups"]), summary
    assert not summary["failed"] and not summary["partial_groups"], summary


@pytest.mark.parametrize("kind", ["equal", "attributes", "walk", "bounds"])
def test_every_group_reads_as_xarray_reads_its_files(esgf, kind):
    problems = esgf["problems"][kind]
    assert not problems, "\n".join(problems[:20])


def test_files_written_by_h5netcdf_are_indexed_the_same(rewritten):
    with h5py.File(rewritten["groups"][REWRITTEN[0]][0]) as f:
        assert b"h5netcdf" in f.attrs["_NCProperties"], f.attrs["_NCProperties"]
    summary = rewritten["summary"]
    assert sorted(summary["written_groups"]) == sorted(REWRITTEN), summary
    assert not summary["failed"] and not summary["partial_groups"], summary
    problems = [p for found in rewritten["problems"].values() for p in found]
    assert not problems, "\n".join(problems[:20])
