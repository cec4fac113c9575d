"""Appends (`producer local`): a group the store holds, whose inputs are its stored ones plus files
after its time axis, is extended by reading the new files only. The proof that no old file is
read: their bytes are overwritten (same size, same modification time) while the append runs, then
put back; the store then equals `xr.open_mfdataset` of every file and `producer verify` passes.
Every other change rebuilds the group and says why: a replaced file, a removed file, and a file
whose step falls inside the stored axis (planned as an append, refused by the committer by name,
rebuilt in the same run)."""
import json
import os
import shutil
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import icechunk
import numpy as np
import xarray as xr

from conftest import binary

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests" / "fixtures"))
import make_mur  # noqa: E402

PROFILE = ROOT / "profiles" / "mur-sst.toml"


def producer(*args):
    return subprocess.run([binary("producer"), *map(str, args)], capture_output=True, text=True, timeout=900)


def local(archive, store):
    proc = producer("local", "--source", archive, "--store", store, "--profile", PROFILE, "--json")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return json.loads(proc.stdout)


def open_store(store, archive):
    repo = icechunk.Repository.open(
        icechunk.local_filesystem_storage(str(store)),
        authorize_virtual_chunk_access={f"file://{archive}/": icechunk.credentials.LocalFileSystemAccess})
    return xr.open_zarr(repo.readonly_session("main").store, group="MUR", zarr_format=3, consolidated=False)


def assert_equals_files(store, archive):
    files = sorted((archive / "MUR").glob("*.nc"))
    ours = open_store(store, archive)
    ref = xr.open_mfdataset([str(f) for f in files], combine="by_coords")
    assert ours.sizes["time"] == len(files), (ours.sizes, len(files))
    for name in [*make_mur.VARIABLES, "time", "lat", "lon"]:
        assert ours[name].dtype == ref[name].dtype, name
        np.testing.assert_array_equal(ours[name].values, ref[name].values, err_msg=name)


def verify(store, archive):
    proc = producer("verify", "--store", store, "--source", archive, "--profile", PROFILE, "--json")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]


def blanked(paths):
    """Overwrites each file with zeros of its size, keeping its modification time; returns what
    puts them back."""
    saved = {p: (p.read_bytes(), os.stat(p).st_mtime_ns) for p in paths}
    for p, (data, mtime) in saved.items():
        p.write_bytes(b"\0" * len(data))
        os.utime(p, ns=(mtime, mtime))

    def restore():
        for p, (data, mtime) in saved.items():
            p.write_bytes(data)
            os.utime(p, ns=(mtime, mtime))
    return restore


def test_ten_files_appended_to_600_read_none_of_the_old_ones(tmp_path):
    staging, archive, store = tmp_path / "staging", tmp_path / "archive", tmp_path / "store"
    files = make_mur.make(staging, 610)
    (archive / "MUR").mkdir(parents=True)
    for f in files[:600]:
        shutil.copy2(f, archive / "MUR" / f.name)
    first = local(archive, store)
    assert first["written_groups"] == ["MUR"] and first["appended"] == [], first

    old = sorted((archive / "MUR").glob("*.nc"))
    restore = blanked(old)
    for f in files[600:]:
        shutil.copy2(f, archive / "MUR" / f.name)
    try:
        appended = local(archive, store)
    finally:
        restore()
    assert appended["appended"] == [["MUR", 10]] and appended["rebuilt"] == [], appended
    assert appended["written_groups"] == ["MUR"] and appended["failed"] == [], appended
    # The new files' chunk references only: a tenth of a sixtieth of what the 600 files' build wrote.
    assert appended["refs"] * 600 == first["refs"] * 10 and appended["refs"] > 0, (appended, first["refs"])
    assert_equals_files(store, archive)
    verify(store, archive)
    again = local(archive, store)
    assert again["unchanged_groups"] == ["MUR"] and again["written"] == 0, again


def test_appends_across_a_manifest_split_and_a_time_chunk_read_as_the_files(tmp_path):
    """Appends that cross the 1,000th step: manifests split along time there, the input record
    grows past its first 32 KiB chunk, and the time coordinate goes from one chunk to chunks of
    1,000 values. Each append writes only the splits and chunks it extends; the store still equals
    the files, read by xarray through icechunk, and `verify` passes."""
    staging, archive, store = tmp_path / "staging", tmp_path / "archive", tmp_path / "store"
    files = make_mur.make(staging, 1004)
    (archive / "MUR").mkdir(parents=True)
    for f in files[:998]:
        shutil.copy2(f, archive / "MUR" / f.name)
    local(archive, store)
    for batch in (files[998:1001], files[1001:1004]):  # 1,001 steps, then 1,004
        for f in batch:
            shutil.copy2(f, archive / "MUR" / f.name)
        appended = local(archive, store)
        assert appended["appended"] == [["MUR", 3]] and appended["failed"] == [], appended
    repo = icechunk.Repository.open(
        icechunk.local_filesystem_storage(str(store)),
        authorize_virtual_chunk_access={f"file://{archive}/": icechunk.credentials.LocalFileSystemAccess})
    import zarr
    time_array = zarr.open_array(repo.readonly_session("main").store, path="MUR/time", mode="r")
    assert time_array.shape == (1004,) and time_array.chunks == (1000,), (time_array.shape, time_array.chunks)
    assert_equals_files(store, archive)
    verify(store, archive)


def test_a_replaced_a_removed_and_an_earlier_file_rebuild_the_group_saying_why(tmp_path):
    archive, store = tmp_path / "archive", tmp_path / "store"
    files = make_mur.make(archive, 6)
    local(archive, store)

    replaced = files[2]
    mtime = os.stat(replaced).st_mtime_ns + 5_000_000_000
    os.utime(replaced, ns=(mtime, mtime))
    summary = local(archive, store)
    assert summary["appended"] == [] and summary["written_groups"] == ["MUR"], summary
    [(group, why)] = summary["rebuilt"]
    assert group == "MUR" and replaced.name in why and "replaced" in why, why

    assert_equals_files(store, archive)

    # A day before the stored axis: planned as an append, refused by the store, rebuilt at once.
    earlier = make_mur.make(tmp_path / "early", 1, first_day=make_mur.FIRST_DAY - timedelta(days=30))[0]
    shutil.copy2(earlier, archive / "MUR" / earlier.name)
    summary = local(archive, store)
    assert summary["appended"] == [] and summary["failed"] == [], summary
    [(_, why)] = summary["rebuilt"]
    assert "append refused" in why and "not after the stored axis end" in why, why
    assert_equals_files(store, archive)
    verify(store, archive)
