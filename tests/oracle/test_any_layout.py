"""Archives whose layout floe does not know, and series along another record dimension.

- `--profile files`: one group per file, at its path without `.nc`. Files with no time at all (a
  grid with orography), a scalar time, several unrelated variables on their own dimensions, a
  short series with time bounds, variable-length strings (along the record dimension, scalar
  and 2-D), and one written by h5netcdf in a sub-directory: each group,
  read through Python icechunk + xarray, is identical to `xr.open_dataset` of its file (values,
  dtypes, coordinates, variable attributes, and the global attributes apart from floe's own).
- A NEMO-style series concatenated along `time_counter` (its times also in `time_centered`, an
  auxiliary coordinate along it) with a profile that names that dimension: equal to
  `xr.open_mfdataset` of its files.
- `concat = "@unlimited"`: the same series along each file's record dimension, found in the
  files, then one more file appended along it; files that disagree on it are refused by name.
- ERA5's layout: a series along `valid_time` whose `expver` is a variable-length string along it,
  kept inline and joined across files (strings have no byte range to point at).
- Paths no profile matches: the error names the `files` profile.

Everything is written by the test with netCDF4 (netCDF-C) and h5netcdf.
"""
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

CFTIME = xr.coders.CFDatetimeCoder(use_cftime=True)


def producer(*args):
    return subprocess.run([binary("producer"), *map(str, args)], capture_output=True, text=True, timeout=600)


def write_grid(path):
    """No time at all: a grid with orography and a land mask."""
    with netCDF4.Dataset(path, "w") as ds:
        ds.title, ds.source, ds.history = "orography", "a grid file", "written by the test"
        ds.createDimension("lat", 3)
        ds.createDimension("lon", 4)
        lat = ds.createVariable("lat", "f4", ("lat",))
        lat.units, lat.standard_name = "degrees_north", "latitude"
        lat[:] = [-30.0, 0.0, 30.0]
        lon = ds.createVariable("lon", "f8", ("lon",))
        lon.units, lon.long_name = "degrees_east", "longitude"
        lon[:] = [0.0, 90.0, 180.0, 270.0]
        orog = ds.createVariable("orog", "f4", ("lat", "lon"), fill_value=np.float32(1e20))
        orog.units, orog.long_name = "m", "surface altitude"
        orog[:] = np.ma.masked_greater(np.arange(12, dtype="f4").reshape(3, 4) * 100, 1000)
        mask = ds.createVariable("landmask", "i1", ("lat", "lon"))
        mask.flag_values, mask.flag_meanings = np.array([0, 1], dtype="i1"), "sea land"
        mask[:] = (np.arange(12).reshape(3, 4) % 2).astype("i1")


def write_scalar_time(path):
    """A single field with a scalar time coordinate, named by `coordinates`."""
    with netCDF4.Dataset(path, "w") as ds:
        ds.Conventions = "CF-1.8"
        ds.createDimension("y", 2)
        ds.createDimension("x", 3)
        t = ds.createVariable("time", "f8", ())
        t.units, t.calendar, t.standard_name = "days since 2000-01-01", "noleap", "time"
        t.assignValue(365.0)
        tas = ds.createVariable("tas", "f4", ("y", "x"), zlib=True, chunksizes=(1, 3))
        tas.units, tas.coordinates = "K", "time"
        tas[:] = np.arange(6, dtype="f4").reshape(2, 3) + 270


def write_unrelated(path):
    """Several variables on dimensions of their own, packed integers and a string of chars."""
    with netCDF4.Dataset(path, "w") as ds:
        ds.institution = "nowhere"
        ds.createDimension("station", 5)
        ds.createDimension("level", 2)
        ds.createDimension("band", 3)
        height = ds.createVariable("height", "f8", ("station",))
        height.units = "m"
        height[:] = [1.5, 2.0, 10.0, 0.5, 3.0]
        packed = ds.createVariable("temperature", "i2", ("level", "band"), fill_value=np.int16(-999))
        packed.scale_factor, packed.add_offset, packed.units = 0.01, 273.15, "K"
        packed.set_auto_maskandscale(False)
        packed[:] = np.array([[100, -999, 300], [400, 500, 600]], dtype="i2")
        count = ds.createVariable("count", "u4", ("band",))
        count[:] = [7, 8, 9]
        ds.createDimension("name_len", 4)
        names = ds.createVariable("station_name", "S1", ("station", "name_len"))
        names[:] = netCDF4.stringtochar(np.array(["abcd", "efgh", "ijkl", "mnop", "qrst"], dtype="S4"))


def write_series(path):
    """A short series with time bounds, as one file."""
    with netCDF4.Dataset(path, "w") as ds:
        ds.frequency = "day"
        ds.createDimension("time", None)
        ds.createDimension("bnds", 2)
        ds.createDimension("lat", 2)
        t = ds.createVariable("time", "f8", ("time",))
        t.units, t.calendar, t.bounds, t.long_name = "days since 1990-01-01", "standard", "time_bnds", "time"
        t[:] = [0.5, 1.5, 2.5]
        tb = ds.createVariable("time_bnds", "f8", ("time", "bnds"))
        tb[:] = [[0, 1], [1, 2], [2, 3]]
        lat = ds.createVariable("lat", "f8", ("lat",))
        lat.units = "degrees_north"
        lat[:] = [10.0, 20.0]
        pr = ds.createVariable("pr", "f4", ("time", "lat"), zlib=True, chunksizes=(1, 2))
        pr.units, pr.cell_methods = "kg m-2 s-1", "time: mean"
        pr[:] = np.arange(6, dtype="f4").reshape(3, 2) * 1e-5


def write_h5netcdf(path):
    """Written by h5netcdf (h5py), in a sub-directory, with no time."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with h5netcdf.File(path, "w") as f:
        f.attrs["comment"] = "h5netcdf writer"
        f.dimensions = {"x": 4}
        x = f.create_variable("x", ("x",), "f8")
        x[:] = [0.0, 1.0, 2.0, 3.0]
        x.attrs["units"] = "km"
        v = f.create_variable("thickness", ("x",), "f4", chunks=(2,), compression="gzip")
        v[:] = [1.0, 2.0, 3.0, 4.0]
        v.attrs["units"] = "m"


def write_strings(path):
    """Variable-length strings (NetCDF-4 `string`): a label along the record dimension, a scalar
    and a 2-D table, none of which has a byte range to point at."""
    with netCDF4.Dataset(path, "w") as ds:
        ds.createDimension("step", None)
        ds.createDimension("station", 3)
        ds.createDimension("field", 2)
        label = ds.createVariable("expver", str, ("step",))
        label.long_name = "experiment version"
        label[:] = np.array(["0001", "0001", "0005", "ünï"], dtype=object)
        scalar = ds.createVariable("source_note", str, ())
        scalar[...] = "a note with 'quotes' and a\nnewline"
        table = ds.createVariable("station_field", str, ("station", "field"))
        table[:] = np.array([["a", ""], ["bc", "d e"], ["ééé", "x" * 300]], dtype=object)
        v = ds.createVariable("value", "f4", ("step",))
        v[:] = [1.0, 2.0, 3.0, 4.0]


FILES = {
    "strings.nc": write_strings,
    "grid/orog.nc": write_grid,
    "scalar_time.nc": write_scalar_time,
    "unrelated.nc": write_unrelated,
    "series.nc": write_series,
    "deep/er/h5.nc": write_h5netcdf,
}


def open_group(store, prefix, group):
    repo = icechunk.Repository.open(icechunk.local_filesystem_storage(str(store)),
                                    authorize_virtual_chunk_access={prefix: icechunk.credentials.LocalFileSystemAccess})
    return xr.open_zarr(repo.readonly_session("main").store, group=group, zarr_format=3, consolidated=False,
                        decode_times=CFTIME).load()


def without_floe(ds):
    ds.attrs = {k: v for k, v in ds.attrs.items() if not k.startswith("floe_")}
    return ds


@pytest.fixture(scope="module")
def files_store(tmp_path_factory):
    root = tmp_path_factory.mktemp("files")
    archive = root / "archive"
    for rel, write in FILES.items():
        (archive / rel).parent.mkdir(parents=True, exist_ok=True)
        write(archive / rel)
    store = root / "store"
    proc = producer("local", "--profile", "files", "--source", archive, "--store", store, "--json")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return {"archive": archive, "store": store, "summary": json.loads(proc.stdout), "prefix": f"file://{archive}/"}


# What floe cannot keep, by group: each must be named in the group's floe_warnings.
NOT_KEPT = {"unrelated": {"station_name"}}


def test_every_file_is_a_group_at_its_path(files_store):
    written = sorted(files_store["summary"]["written_groups"])
    assert written == sorted(rel[: -len(".nc")] for rel in FILES), written
    assert not files_store["summary"]["failed"], files_store["summary"]["failed"]
    partial = {g: set(v) for g, v in files_store["summary"]["partial_groups"].items()}
    assert partial == NOT_KEPT, partial


def test_a_variable_floe_cannot_keep_is_named_with_its_reason(files_store):
    repo = icechunk.Repository.open(icechunk.local_filesystem_storage(str(files_store["store"])))
    import zarr
    group = zarr.open_group(repo.readonly_session("main").store, path="unrelated", mode="r", zarr_format=3)
    warnings = json.loads(json.dumps(group.attrs["floe_warnings"]))
    assert [(w["variable"], w["file"].endswith("/unrelated.nc")) for w in warnings] == [("station_name", True)], warnings
    assert "|S1 has no Zarr v3 equivalent" in warnings[0]["reason"], warnings


@pytest.mark.parametrize("rel", sorted(FILES))
def test_each_group_is_identical_to_xarray_of_its_file(files_store, rel):
    group = rel[: -len(".nc")]
    stored = without_floe(open_group(files_store["store"], files_store["prefix"], group))
    expected = xr.open_dataset(files_store["archive"] / rel, decode_times=CFTIME).load()
    expected = expected.drop_vars(NOT_KEPT.get(group, set()))
    xr.testing.assert_identical(stored, expected)
    for name in expected.variables:
        assert same_dtype(stored[name], expected[name]), (rel, name, stored[name].dtype, expected[name].dtype)


def same_dtype(stored, expected):
    """Equal dtypes; strings are strings: xarray reads a Zarr v3 `string` array as numpy's
    StringDType, and a file's variable-length strings as `<U` (the values are compared apart)."""
    if expected.dtype.kind == "U":
        return stored.dtype.kind in "UT" and stored.values.tolist() == expected.values.tolist()
    return stored.dtype == expected.dtype


def local_series(tmp_path, archive, files, profile_text, group):
    """`producer local` of ARCHIVE under the profile PROFILE_TEXT: the run's summary, GROUP as stored
    (floe's attributes included) and `xr.open_mfdataset` of FILES with the first file's attributes."""
    profile = tmp_path / "profile.toml"
    profile.write_text(profile_text)
    proc = producer("local", "--profile", profile, "--source", archive, "--store", tmp_path / "store", "--json")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    stored = open_group(tmp_path / "store", f"file://{archive}/", group)
    expected = xr.open_mfdataset(files, combine="by_coords", decode_times=CFTIME, data_vars="minimal",
                                 coords="minimal", compat="override", join="exact").load()
    expected.attrs = dict(xr.open_dataset(files[0]).attrs)
    return json.loads(proc.stdout), stored, expected


def era5_file(path, month, expver):
    """ERA5 as the CDS serves it: record dimension `valid_time` (int64 seconds since 1970),
    `expver` a variable-length string along it, a scalar `number`."""
    with netCDF4.Dataset(path, "w") as ds:
        ds.Conventions, ds.institution = "CF-1.7", "European Centre for Medium-Range Weather Forecasts"
        ds.createDimension("valid_time", None)
        ds.createDimension("latitude", 2)
        ds.createDimension("longitude", 3)
        t = ds.createVariable("valid_time", "i8", ("valid_time",))
        t.units, t.calendar, t.standard_name = "seconds since 1970-01-01", "proleptic_gregorian", "time"
        start = np.datetime64(f"2024-{month:02d}-01", "s").astype("i8")
        t[:] = start + np.arange(2) * 86400
        lat = ds.createVariable("latitude", "f8", ("latitude",))
        lat.units = "degrees_north"
        lat[:] = [50.0, 49.75]
        lon = ds.createVariable("longitude", "f8", ("longitude",))
        lon.units = "degrees_east"
        lon[:] = [0.0, 0.25, 0.5]
        number = ds.createVariable("number", "i8", ())
        number.long_name = "ensemble member numerical id"
        number.assignValue(0)
        ex = ds.createVariable("expver", str, ("valid_time",))
        ex.long_name = "Experiment version"
        ex[:] = np.array([expver, expver], dtype=object)
        t2m = ds.createVariable("t2m", "f4", ("valid_time", "latitude", "longitude"), zlib=True,
                                chunksizes=(1, 2, 3), fill_value=np.float32("nan"))
        t2m.units, t2m.coordinates = "K", "number"
        t2m[:] = np.arange(12, dtype="f4").reshape(2, 2, 3) + 270 + month


ERA5_PROFILE = """
id = "era5-test"
version = 1
description = "ERA5 single levels: one variable's monthly files concatenated along valid_time"
pattern = "{variable}/{variable}_{month}.nc"
group_path = "{variable}"
concat = "valid_time"
time = "cf-exact"
"""


def test_variable_length_strings_concatenate_inline_along_the_record_dimension(tmp_path):
    """ERA5's `expver`: variable-length strings have no byte range to point at; each file's are read
    and the group keeps them inline, joined along valid_time, equal to xarray's."""
    archive = tmp_path / "archive"
    (archive / "t2m").mkdir(parents=True)
    files = [archive / "t2m" / f"t2m_2024{m:02d}.nc" for m in (1, 2, 3)]
    for month, (path, expver) in enumerate(zip(files, ("0001", "0001", "0005")), start=1):
        era5_file(path, month, expver)
    summary, stored, expected = local_series(tmp_path, archive, files, ERA5_PROFILE, "t2m")
    assert summary["written_groups"] == ["t2m"] and not summary["partial_groups"], summary
    stored = without_floe(stored)
    assert stored["expver"].values.tolist() == ["0001"] * 4 + ["0005"] * 2, stored["expver"].values
    assert set(stored.coords) == set(expected.coords), (set(stored.coords), set(expected.coords))
    for name in expected.variables:
        assert same_dtype(stored[name], expected[name]), (name, stored[name].dtype, expected[name].dtype)
    xr.testing.assert_identical(stored, expected)


def nemo_file(path, first_day, days):
    """NEMO's layout: record dimension time_counter, with time_centered along it (and time_counter's
    own values), nav_lat/nav_lon auxiliary coordinates, `coordinates` naming them."""
    with netCDF4.Dataset(path, "w") as ds:
        ds.setncattr("name", path.stem)
        ds.description = "ocean T grid variables"
        ds.createDimension("time_counter", None)
        ds.createDimension("axis_nbounds", 2)
        ds.createDimension("y", 2)
        ds.createDimension("x", 3)
        for name, dims in (("nav_lat", ("y", "x")), ("nav_lon", ("y", "x"))):
            v = ds.createVariable(name, "f4", dims)
            v.units = "degrees_north" if name == "nav_lat" else "degrees_east"
            v[:] = np.arange(6, dtype="f4").reshape(2, 3) + (0 if name == "nav_lat" else 100)
        steps = (first_day + np.arange(days)) * 86400.0 + 43200.0
        for name in ("time_counter", "time_centered"):
            v = ds.createVariable(name, "f8", ("time_counter",))
            v.units, v.calendar, v.standard_name = "seconds since 1900-01-01 00:00:00", "gregorian", "time"
            v.bounds = f"{name}_bounds"
            v[:] = steps
            b = ds.createVariable(f"{name}_bounds", "f8", ("time_counter", "axis_nbounds"))
            b[:] = np.stack([steps - 43200.0, steps + 43200.0], axis=1)
        sst = ds.createVariable("tos", "f4", ("time_counter", "y", "x"), zlib=True, chunksizes=(1, 2, 3),
                                fill_value=np.float32(1e20))
        sst.units, sst.coordinates = "degC", "time_centered nav_lat nav_lon"
        sst[:] = np.arange(days * 6, dtype="f4").reshape(days, 2, 3) + first_day


NEMO_PROFILE = """
id = "nemo-test"
version = 1
description = "NEMO output: one run's files concatenated along time_counter"
pattern = "{run}/{run}_1d_{start}_{end}_grid_T.nc"
group_path = "{run}"
concat = "time_counter"
time = "cf-exact"
"""


def nemo_series(tmp_path):
    """Three NEMO files of three days each, in ARCHIVE/ORCA2: the archive and the files."""
    archive = tmp_path / "archive"
    (archive / "ORCA2").mkdir(parents=True)
    files = []
    for k, first in enumerate((0, 3, 6)):
        path = archive / "ORCA2" / f"ORCA2_1d_{k:04d}0101_{k:04d}0103_grid_T.nc"
        nemo_file(path, first, 3)
        files.append(path)
    return archive, files


def test_a_nemo_series_concatenates_along_time_counter(tmp_path):
    archive, files = nemo_series(tmp_path)
    summary, stored, expected = local_series(tmp_path, archive, files, NEMO_PROFILE, "ORCA2")
    assert summary["written_groups"] == ["ORCA2"] and not summary["partial_groups"], summary
    stored = without_floe(stored)
    assert set(stored.coords) == set(expected.coords), (set(stored.coords), set(expected.coords))
    xr.testing.assert_identical(stored, expected)


UNLIMITED_PROFILE = NEMO_PROFILE.replace('concat = "time_counter"', 'concat = "@unlimited"').replace(
    "nemo-test", "record-test")


def test_a_series_concatenates_along_its_files_unlimited_dimension_and_appends_along_it(tmp_path):
    """`concat = "@unlimited"`: the dimension is each file's record dimension, found in the files.
    The group equals xarray's, records the dimension it used, and a new file is appended along it."""
    archive, files = nemo_series(tmp_path)

    def run_and_compare():
        summary, stored, expected = local_series(tmp_path, archive, files, UNLIMITED_PROFILE, "ORCA2")
        assert stored.attrs["floe_concat_dimension"] == "time_counter", stored.attrs
        xr.testing.assert_identical(without_floe(stored), expected)
        return summary

    first = run_and_compare()
    assert first["written_groups"] == ["ORCA2"] and not first["partial_groups"], first
    later = archive / "ORCA2" / "ORCA2_1d_00030101_00030103_grid_T.nc"
    nemo_file(later, 9, 3)
    files.append(later)
    second = run_and_compare()
    assert second["appended"] == [["ORCA2", 1]] and second["rebuilt"] == [], second


def test_files_that_disagree_on_their_unlimited_dimension_are_refused_by_name(tmp_path):
    archive = tmp_path / "archive"
    (archive / "ORCA2").mkdir(parents=True)
    nemo_file(archive / "ORCA2" / "ORCA2_1d_00000101_00000103_grid_T.nc", 0, 3)
    odd = archive / "ORCA2" / "ORCA2_1d_00010101_00010103_grid_T.nc"
    with netCDF4.Dataset(odd, "w") as ds:
        ds.createDimension("time", None)
        t = ds.createVariable("time", "f8", ("time",))
        t.units, t.calendar = "seconds since 1900-01-01 00:00:00", "gregorian"
        t[:] = [3 * 86400.0]
        ds.createVariable("tos", "f4", ("time",))[:] = [1.0]
    profile = tmp_path / "record.toml"
    profile.write_text(UNLIMITED_PROFILE)
    proc = producer("local", "--profile", profile, "--source", archive, "--store", tmp_path / "store", "--json")
    summary = json.loads(proc.stdout)
    failed = json.dumps(summary["failed"])
    assert "ORCA2_1d_00010101" in failed and "unlimited dimension is time" in failed, failed


def test_paths_no_profile_matches_point_to_the_files_profile(tmp_path):
    archive = tmp_path / "archive"
    archive.mkdir()
    write_series(archive / "anything.nc")
    proc = producer("local", "--profile", "cmip6", "--source", archive, "--store", tmp_path / "store")
    assert proc.returncode != 0
    assert "--profile files" in proc.stderr, proc.stderr[-2000:]


def fx_file(root, variable, values, units):
    """A CMIP6 fixed field (table fx): no time, no time range in its name, bounds beside lat and lon."""
    rel = (f"CMIP6/CMIP/INST/MODEL/historical/r1i1p1f1/fx/{variable}/gn/v20200101/"
           f"{variable}_fx_MODEL_historical_r1i1p1f1_gn.nc")
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    with netCDF4.Dataset(path, "w") as ds:
        for k, v in {"Conventions": "CF-1.7 CMIP-6.2", "table_id": "fx", "variable_id": variable,
                     "source_id": "MODEL", "tracking_id": f"hdl:21.14100/{variable}"}.items():
            ds.setncattr(k, v)
        ds.createDimension("lat", 2)
        ds.createDimension("lon", 3)
        ds.createDimension("bnds", 2)
        for name, vals in (("lat", [-45.0, 45.0]), ("lon", [0.0, 120.0, 240.0])):
            c = ds.createVariable(name, "f8", (name,))
            c.units, c.axis, c.bounds = ("degrees_north" if name == "lat" else "degrees_east"), name[1].upper(), \
                f"{name}_bnds"
            c[:] = vals
            b = ds.createVariable(f"{name}_bnds", "f8", (name, "bnds"))
            step = 90.0 if name == "lat" else 120.0
            b[:] = np.stack([np.array(vals) - step / 2, np.array(vals) + step / 2], axis=1)
        v = ds.createVariable(variable, "f4", ("lat", "lon"), fill_value=np.float32(1e20))
        v.units, v.standard_name, v.cell_methods = units, variable, "area: sum"
        v[:] = values
    return path


def test_cmip6_fixed_fields_are_a_group_of_their_own(tmp_path):
    archive = tmp_path / "archive"
    files = [fx_file(archive, "areacella", np.arange(6, dtype="f4").reshape(2, 3) * 1e10, "m2"),
             fx_file(archive, "sftlf", np.full((2, 3), 50, dtype="f4"), "%")]
    store = tmp_path / "store"
    proc = producer("local", "--profile", "cmip6", "--source", archive, "--store", store, "--json")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    summary = json.loads(proc.stdout)
    group = "MODEL/historical/r1i1p1f1/fx/gn"
    assert summary["written_groups"] == [group] and not summary["partial_groups"], summary
    stored = open_group(store, f"file://{archive}/", group)
    assert stored.attrs["floe_differing_attributes"] == ["tracking_id", "variable_id"], stored.attrs
    expected = xr.open_mfdataset(sorted(files), combine="by_coords", decode_times=CFTIME).load()
    xr.testing.assert_identical(without_floe(stored), expected)


def test_netcdf3_record_variables_are_referenced_record_by_record(tmp_path):
    """NetCDF-3 record variables (time, time_bnds and the data along an unlimited dimension) are
    interleaved record by record: each record is its own reference, never a slice of one
    contiguous block. Two CDF-2 files concatenated, and one file alone under `files`."""
    archive = tmp_path / "archive"
    archive.mkdir()
    files = []
    for k in range(2):
        path = archive / f"series_{k}.nc"
        with netCDF4.Dataset(path, "w", format="NETCDF3_64BIT_OFFSET") as ds:
            ds.createDimension("time", None)
            ds.createDimension("bnds", 2)
            ds.createDimension("lat", 3)
            t = ds.createVariable("time", "f8", ("time",))
            t.units, t.calendar, t.bounds = "days since 2000-01-01", "noleap", "time_bnds"
            tb = ds.createVariable("time_bnds", "f8", ("time", "bnds"))
            tas = ds.createVariable("tas", "f4", ("time", "lat"))
            tas.units = "K"
            steps = np.arange(4) + 4 * k
            t[:] = steps + 0.5
            tb[:] = np.stack([steps, steps + 1], axis=1)
            tas[:] = np.arange(12, dtype="f4").reshape(4, 3) + 100 * k
        files.append(path)
    profile = tmp_path / "series.toml"
    profile.write_text('id = "nc3"\nversion = 1\npattern = "series_{k}.nc"\ngroup_path = "all"\n'
                       'concat = "time"\ntime = "cf-exact"\n')
    for name, prof, group, expected in (
        ("series", profile, "all", xr.open_mfdataset(files, combine="by_coords", decode_times=CFTIME)),
        ("files", "files", "series_0", xr.open_dataset(files[0], decode_times=CFTIME)),
    ):
        store = tmp_path / f"store-{name}"
        proc = producer("local", "--profile", prof, "--source", archive, "--store", store, "--json")
        assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
        stored = without_floe(open_group(store, f"file://{archive}/", group))
        xr.testing.assert_identical(stored, expected.load())
