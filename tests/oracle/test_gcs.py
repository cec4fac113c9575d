"""gs:// on fake-gcs-server (a real GCS emulator over HTTP, STORAGE_EMULATOR_HOST): producer local
reads the archive's headers by ranged GETs, the store's gs:// container carries the endpoint, verify
passes, Python icechunk + xarray read values equal to netCDF4's, and a replaced object is named."""
import os
import subprocess

import icechunk
import netCDF4
import numpy as np
import xarray as xr

from conftest import binary
from gcs import FakeGcs


def producer(env, *args):
    return subprocess.run([binary("producer"), *map(str, args)], capture_output=True, text=True, env=env,
                          timeout=600)


def test_local_and_verify_from_gcs(tmp_path):
    gcs = FakeGcs(tmp_path)
    try:
        subprocess.run([binary("producer"), "sample", "--out", str(tmp_path / "sample")], check=True,
                       capture_output=True)
        gcs.upload_tree("ismip6-test", tmp_path / "sample", "ISMIP6/AIS")
        env = gcs.env(os.environ)
        src, store = "gs://ismip6-test/ISMIP6/AIS", tmp_path / "store"
        proc = producer(env, "local", "--source", src, "--store", store)
        assert proc.returncode == 0, proc.stderr
        assert "WARN" not in proc.stderr and "ERROR" not in proc.stderr, proc.stderr
        assert '{"gs://ismip6-test/ISMIP6/AIS/": None}' in proc.stdout
        proc = producer(env, "verify", "--source", src, "--store", store)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        repo = icechunk.Repository.open(icechunk.local_filesystem_storage(str(store)),
                                        authorize_virtual_chunk_access={f"{src}/": None})
        ds = xr.open_zarr(repo.readonly_session("main").store, group="AWI_PISM1/ctrl_proj", zarr_format=3,
                          consolidated=False, mask_and_scale=False)
        path = tmp_path / "sample/AWI/PISM1/ctrl_proj/lithk_AIS_AWI_PISM1_ctrl_proj.nc"
        with netCDF4.Dataset(path) as nc:
            nc.set_auto_maskandscale(False)
            expected = nc["lithk"][:]
        got = ds["lithk"].values
        assert got.shape[1:] == expected.shape[1:]
        assert np.array_equal(got[: expected.shape[0]], expected)
        # A replaced object: verify names it, whatever chunks it samples.
        changed = "ISMIP6/AIS/AWI/PISM1/ctrl_proj/lithk_AIS_AWI_PISM1_ctrl_proj.nc"
        gcs.upload("ismip6-test", changed, path.read_bytes() + b"\0")
        for _ in range(3):
            proc = producer(env, "verify", "--source", src, "--store", store)
            assert proc.returncode == 1 and f"changed: gs://ismip6-test/{changed}" in proc.stdout, proc.stdout
    finally:
        gcs.stop()
