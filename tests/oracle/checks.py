"""Value checks shared by the end-to-end tests: a group read back through Python
icechunk + xarray equals its source files (read with netCDF4) at the matching year."""
import netCDF4
import numpy as np


def source_of(archive_root, group, var):
    exp = group.split("/")[1]
    files = [p for p in archive_root.rglob("*.nc") if p.name.split("_AIS_")[0] in (var, exp + var)
             and "_".join(p.parts[-4:-2]) == group.split("/")[0] and p.parts[-2] == group.split("/")[1]]
    assert len(files) == 1, (group, var, files)
    return files[0]


def assert_group_equals_sources(ds, archive_root, group, expected):
    """Every expected variable is present, on the union time axis (or, where the generator says
    so, its own axis `time_{var}`), equal to its source at each of its years and NaN elsewhere."""
    union = sorted({y for v in expected["variables"].values() for y in v["years"]})
    for var, spec in expected["variables"].items():
        assert var in ds, f"{group}: {var} missing"
        da = ds[var]
        time_dim = da.dims[0]
        assert time_dim == ("time" if spec.get("axis", "time") == "time" else f"time_{var}"), (group, var, da.dims)
        years = [int(str(t)[:4]) for t in ds[time_dim].values]
        if time_dim == "time":
            assert years == union, f"{group}: union axis {years} != {union}"
        else:  # own axis for multi-step chunks
            assert years == spec["years"]
        with netCDF4.Dataset(source_of(archive_root, group, var)) as src:
            src.set_auto_maskandscale(False)
            values = np.asarray(src[var][...])
        got = da.values
        for i, year in enumerate(spec["years"]):
            np.testing.assert_array_equal(got[years.index(year)], values[i], err_msg=f"{group} {var} {year}")
        for k, year in enumerate(years):
            if year not in spec["years"]:
                assert np.isnan(got[k]).all(), f"{group} {var}: missing year {year} must read as NaN"
