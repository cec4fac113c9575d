"""Files that hold several variables: a MUR SST-shaped archive (tests/fixtures/make_mur.py: four
packed variables a day, a flag mask, int32 seconds since 1981, float32 lat/lon) through `producer
local --profile profiles/mur-sst.toml`, a profile without a `variable` field. Read back through
Python icechunk + xarray, it equals `xr.open_mfdataset` of the same files: decoded values (masked
points NaN in both), raw packed values, dtypes and their on-disk encodings, times, coordinates
and the flag attributes. A variable that some files lack is left out, naming a file of each kind,
the variables beside it are written, and `verify` reports the group as partial."""
import json
import subprocess
import sys
from pathlib import Path

import icechunk
import numpy as np
import pytest
import xarray as xr

from conftest import binary

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests" / "fixtures"))
import make_mur  # noqa: E402

PROFILE = ROOT / "profiles" / "mur-sst.toml"
DAYS = 12


def producer(*args):
    return subprocess.run([binary("producer"), *map(str, args)], capture_output=True, text=True, timeout=900)


def open_store(store, archive, **kwargs):
    repo = icechunk.Repository.open(
        icechunk.local_filesystem_storage(str(store)),
        authorize_virtual_chunk_access={f"file://{archive}/": icechunk.credentials.LocalFileSystemAccess})
    return xr.open_zarr(repo.readonly_session("main").store, group="MUR", zarr_format=3, consolidated=False,
                        **kwargs)


@pytest.fixture(scope="module")
def mur(tmp_path_factory):
    root = tmp_path_factory.mktemp("mur")
    files = make_mur.make(root / "archive", DAYS)
    store = root / "store"
    proc = producer("local", "--source", root / "archive", "--store", store, "--profile", PROFILE, "--json")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return {"root": root, "files": files, "store": store, "summary": json.loads(proc.stdout)}


def test_every_variable_of_every_file_equals_open_mfdataset(mur):
    assert mur["summary"]["written_groups"] == ["MUR"]
    ours = open_store(mur["store"], mur["root"] / "archive")
    ref = xr.open_mfdataset([str(f) for f in mur["files"]], combine="by_coords")
    assert sorted(ours.data_vars) == sorted(make_mur.VARIABLES)
    for name in [*make_mur.VARIABLES, "time", "lat", "lon"]:
        a, b = ours[name], ref[name]
        assert a.dims == b.dims, name
        assert a.dtype == b.dtype, (name, a.dtype, b.dtype)
        assert a.encoding.get("dtype") == b.encoding.get("dtype"), (name, a.encoding, b.encoding)
        np.testing.assert_array_equal(a.values, b.values, err_msg=name)
    assert len(ours["time"]) == DAYS
    assert str(ours["time"].values[0]) == "2002-06-01T09:00:00.000000000"
    # Land reads as NaN, as it does from the files; the flag attributes come through.
    assert np.isnan(ours["analysed_sst"].values[0, 0, 0])
    assert ours["mask"].attrs["flag_meanings"] == ref["mask"].attrs["flag_meanings"]
    assert list(ours["mask"].attrs["flag_masks"]) == list(ref["mask"].attrs["flag_masks"])
    assert ours["analysed_sst"].encoding["scale_factor"] == ref["analysed_sst"].encoding["scale_factor"]


def test_the_packed_bytes_read_raw_equal_the_files(mur):
    ours = open_store(mur["store"], mur["root"] / "archive", mask_and_scale=False, decode_times=False)
    ref = xr.open_mfdataset([str(f) for f in mur["files"]], combine="by_coords", mask_and_scale=False,
                            decode_times=False)
    for name in [*make_mur.VARIABLES, "time"]:
        assert ours[name].dtype == ref[name].dtype, name
        np.testing.assert_array_equal(ours[name].values, ref[name].values, err_msg=name)


def test_verify_passes_with_the_profile(mur):
    proc = producer("verify", "--store", mur["store"], "--source", mur["root"] / "archive", "--profile", PROFILE,
                    "--json")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    [group] = json.loads(proc.stdout)["groups"]
    assert group["status"] == "ok", group


def test_a_variable_some_files_lack_is_left_out_by_name_and_the_rest_written(tmp_path):
    files = make_mur.make_uneven(tmp_path / "archive")
    archive, store = tmp_path / "archive", tmp_path / "store"
    proc = producer("local", "--source", archive, "--store", store, "--profile", PROFILE, "--json")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    summary = json.loads(proc.stdout)
    assert summary["written_groups"] == ["MUR"]
    assert summary["partial_groups"] == {"MUR": ["mask"]}
    [reason] = summary["warnings"]
    assert "mask is in" in reason, reason
    assert files[0].name in reason and files[-1].name in reason, reason
    ours = open_store(store, archive)
    assert "mask" not in ours
    ref = xr.open_mfdataset([str(f) for f in files], combine="by_coords", data_vars="minimal")
    np.testing.assert_array_equal(ours["analysed_sst"].values, ref["analysed_sst"].values)
    proc = producer("verify", "--store", store, "--source", archive, "--profile", PROFILE, "--json")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    [group] = json.loads(proc.stdout)["groups"]
    assert group["status"] == "partial" and any(p.startswith("mask left out") for p in group["problems"]), group
