#!/usr/bin/env python3
"""Writes the NetCDF-4/HDF5 files of `producer sample` (run by hand, output committed).

    /usr/bin/python3 producer/data/sample/make_sample_nc4.py producer/data/sample

The NetCDF-3 files of the sample are written by `producer` itself (pure Rust); there is
no pure-Rust HDF5 writer that netCDF readers accept, so these files are written once by
netCDF-C (Debian's python3-netcdf4: netCDF 4.9, HDF5 1.10) and embedded in the binary
with include_bytes!. They give the demo a group read by the HDF5 reader: one chunked,
zlib+shuffle compressed variable (one chunk per step) and one contiguous variable (split
into one reference per step). Values are a smooth pattern in quarter units; tests compare the store
with the files, never with this formula.
"""
import os
import sys

import netCDF4
import numpy as np

N = 191  # 32 km grid
AXIS = (-3_040_000.0 + 32_000.0 * np.arange(N)).astype("f8")
FILES = [
    # variable, steps, flux, layout
    ("lithk", 4, False, "chunked"),
    ("acabf", 2, True, "contiguous"),
]


def value(variable, steps):
    seed = np.float32(sum(variable.encode()))
    cells = np.arange(N * N, dtype=np.float32)
    base = np.sin(cells / np.float32(97.0) + seed).astype(np.float32) * np.float32(100.0)
    # Quarter-unit steps keep the compressed file (embedded in the binary) small.
    base = np.round(base * np.float32(4.0)) / np.float32(4.0)
    return np.stack([base + np.float32(10.0 * t) for t in range(steps)]).reshape(steps, N, N)


def write(out, variable, steps, flux, layout):
    path = os.path.join(out, f"{variable}_AIS_JPL1_ISSM_exp05.nc")
    if os.path.exists(path):
        os.remove(path)
    with netCDF4.Dataset(path, "w", format="NETCDF4") as ds:
        ds.title = f"floe sample: JPL1 ISSM exp05 {variable} (NetCDF-4, {layout})"
        # A contiguous variable needs a fixed-size time dimension (as many ISMIP6 files have).
        ds.createDimension("time", None if layout == "chunked" else steps)
        ds.createDimension("y", N)
        ds.createDimension("x", N)
        t = ds.createVariable("time", "f8", ("time",))
        t.units = "days since 2015-01-01"
        t.calendar = "365_day"
        for axis in ("x", "y"):
            v = ds.createVariable(axis, "f8", (axis,))
            v.units = "m"
            v[:] = AXIS
        if layout == "chunked":
            v = ds.createVariable(variable, "f4", ("time", "y", "x"), zlib=True, complevel=4, shuffle=True,
                                  chunksizes=(1, N, N), fill_value=np.float32(9.96921e36))
        else:
            v = ds.createVariable(variable, "f4", ("time", "y", "x"), contiguous=True,
                                  fill_value=np.float32(9.96921e36))
        v.units = "kg m-2 s-1" if flux else "m"
        offset = 181.0 if flux else 0.0
        t[:] = np.arange(steps) * 365.0 + offset
        v[:] = value(variable, steps)
    return path


if __name__ == "__main__":
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.dirname(os.path.abspath(__file__))
    for spec in FILES:
        print(write(out, *spec), os.path.getsize(os.path.join(out, f"{spec[0]}_AIS_JPL1_ISSM_exp05.nc")))
