"""Hostile input, each case written by the test: it gets its named refusal, nothing is committed
wrongly, and every group beside it is written.

- An ISMIP6 file whose HDF5 dataspace declares 2^40 points along x (chunked, nothing allocated,
  no x coordinate): regenerating its grid would allocate 8.8 TB. The variable is left out by
  name; the process neither aborts nor grows.
- File paths that would make group paths floe refuses (a `_floe` segment, a character that
  imitates `/`, one outside Unicode normalization form C) under `--profile files`: each file is
  skipped with the rule it breaks; the plain file beside them is written.
"""
import json
import subprocess
import unicodedata

import h5py
import netCDF4
import numpy as np
import pytest

from conftest import binary


def producer(*args):
    return subprocess.run([binary("producer"), *map(str, args)], capture_output=True, text=True, timeout=600)


def ismip6_file(path, var, x_coordinate=True, offset=0, ny=4, nx=5, steps=1, **variable_options):
    """One ISMIP6 file of VAR: STEPS yearly steps of an NY x NX grid (32 km spacing), values
    OFFSET + 0, 1, ...; VARIABLE_OPTIONS go to netCDF4's createVariable (chunksizes, contiguous)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with netCDF4.Dataset(path, "w") as ds:
        ds.createDimension("time", steps)
        ds.createDimension("y", ny)
        ds.createDimension("x", nx)
        t = ds.createVariable("time", "f8", ("time",))
        t.units, t.calendar = "days since 2015-01-01", "365_day"
        t[:] = np.arange(steps) * 365.0
        for name, n in (("y", ny), ("x", nx)):
            if name == "x" and not x_coordinate:
                continue
            c = ds.createVariable(name, "f8", (name,))
            c[:] = np.linspace(-3040000.0, 3040000.0, 191)[:n]
        v = ds.createVariable(var, "f4", ("time", "y", "x"), **variable_options)
        v[:] = np.arange(steps * ny * nx, dtype="f4").reshape(steps, ny, nx) + offset


def huge_x(path):
    """An HDF5 dataset of (1, 4, 2^40) float32 with chunks of (1, 4, 5): nothing is written."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with h5py.File(path, "w") as f:
        f.create_dataset("time", data=np.array([0.0]))
        f["time"].attrs["units"] = "days since 2015-01-01"
        f["time"].attrs["calendar"] = "365_day"
        f.create_dataset("acabf", shape=(1, 4, 2 ** 40), chunks=(1, 4, 5), dtype="f4")
        f["time"].make_scale("time")
        f["acabf"].dims[0].attach_scale(f["time"])


def test_a_declared_grid_of_two_to_the_forty_points_is_refused_by_name(tmp_path):
    archive = tmp_path / "archive"
    exp = archive / "INST" / "MODEL" / "exp05"
    ismip6_file(exp / "lithk_AIS_INST_MODEL_exp05.nc", "lithk")
    huge_x(exp / "acabf_AIS_INST_MODEL_exp05.nc")
    proc = producer("local", "--source", archive, "--store", tmp_path / "store", "--json")
    assert proc.returncode in (0, 2), proc.stderr[-3000:]
    summary = json.loads(proc.stdout)
    assert summary["written_groups"] == ["INST_MODEL/exp05"], summary
    assert summary["partial_groups"] == {"INST_MODEL/exp05": ["acabf"]}, summary
    reason = " ".join(summary["warnings"])
    assert "acabf_AIS_INST_MODEL_exp05.nc" in reason and "more than the 100000 a grid axis may have" in reason, \
        reason


@pytest.mark.parametrize("segment, rule", [
    ("_floe", "floe keeps a group's records"),
    ("a\uff0fb", "U+FF0F"),
    (unicodedata.normalize("NFD", "été"), "normalization form C"),
])
def test_paths_that_make_refused_group_paths_are_skipped_by_rule(tmp_path, segment, rule):
    archive = tmp_path / "archive"
    ismip6_file(archive / "plain" / "good.nc", "lithk")
    ismip6_file(archive / segment / "bad.nc", "lithk")
    proc = producer("local", "--profile", "files", "--source", archive, "--store", tmp_path / "store", "--json")
    assert proc.returncode == 0, proc.stderr[-3000:]
    summary = json.loads(proc.stdout)
    assert summary["written_groups"] == ["plain/good"], summary
    skipped = dict(map(tuple, summary["skipped_files"]))
    [(url, reason)] = [(u, r) for u, r in skipped.items() if u.endswith("/bad.nc")]
    assert rule in reason, (url, reason)
