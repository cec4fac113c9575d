"""gs:// on fake-gcs-server (a real GCS emulator over HTTP, STORAGE_EMULATOR_HOST): producer local
reads the archive's headers by ranged GETs, the store's gs:// container carries the endpoint, verify
passes, Python icechunk + xarray read values equal to netCDF4's, and a replaced object is named.
The seed's cross-cloud layout on the fleet: the source on the GCS emulator (`gcs_endpoint` in
floe.toml), the store, fragments and queues on LocalStack."""
import json
import os
import subprocess
import sys

import icechunk
import netCDF4
import numpy as np
import xarray as xr

from checks import assert_group_equals_sources
from conftest import ROOT, binary
from faults import FaultProxy
from fleet import Fleet
from gcs import FakeGcs
from localstack import ENDPOINT, client

sys.path.insert(0, str(ROOT / "localstack"))
from seed import to_toml  # noqa: E402


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
        snippet = 'icechunk.containers_credentials({"gs://ismip6-test/ISMIP6/AIS/": icechunk.gcs_credentials(anonymous=True)})'
        assert snippet in proc.stdout, proc.stdout
        proc = producer(env, "verify", "--source", src, "--store", store)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        repo = icechunk.Repository.open(icechunk.local_filesystem_storage(str(store)),
                                        authorize_virtual_chunk_access=icechunk.containers_credentials(
                                            {f"{src}/": icechunk.gcs_credentials(anonymous=True)}))
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
            proc = producer(env, "verify", "--source", src, "--store", store, "--verbose")
            assert proc.returncode == 1 and f"changed: gs://ismip6-test/{changed}" in proc.stdout, proc.stdout
    finally:
        gcs.stop()


def service_account_key(path):
    """A service-account key file as Google issues them (PKCS#8 RSA key, PEM), for an emulator that
    does not check signatures: what matters is that floe signs its requests with it."""
    pem = subprocess.run(["openssl", "genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"],
                         check=True, capture_output=True, text=True).stdout
    assert pem.startswith("-----BEGIN PRIVATE KEY-----"), pem[:40]
    doc = {"type": "service_account", "project_id": "floe-test", "private_key_id": "floe-test-key-1",
           "private_key": pem, "client_email": "floe-reader@floe-test.iam.gserviceaccount.com",
           "client_id": "1", "token_uri": "https://oauth2.googleapis.com/token"}
    path.write_text(json.dumps(doc))
    return doc


def recorded_sample_run(tmp_path, bucket, extra_env=(), verify=False):
    """`producer local` (and `verify`) of the sample archive on fake-gcs-server, through a proxy that
    records every request floe sends to it; returns the recorded requests."""
    gcs = FakeGcs(tmp_path)
    proxy = FaultProxy(tmp_path, upstream=gcs.url, keep_host=False)
    try:
        subprocess.run([binary("producer"), "sample", "--out", str(tmp_path / "sample")], check=True,
                       capture_output=True)
        gcs.upload_tree(bucket, tmp_path / "sample", "ISMIP6/AIS")
        env = {**gcs.env(os.environ), "STORAGE_EMULATOR_HOST": proxy.host, **dict(extra_env)}
        src, store = f"gs://{bucket}/ISMIP6/AIS", tmp_path / "store"
        proc = producer(env, "local", "--source", src, "--store", store)
        assert proc.returncode == 0, proc.stderr
        if verify:
            proc = producer(env, "verify", "--source", src, "--store", store)
            assert proc.returncode == 0, proc.stdout + proc.stderr
        return proxy.entries()
    finally:
        proxy.stop()
        gcs.stop()


def test_a_service_account_key_signs_every_gcs_request(tmp_path):
    """GOOGLE_APPLICATION_CREDENTIALS naming a service-account key: every request floe sends to GCS
    carries a bearer JWT signed with that key (RS256, its key id), recorded by a proxy in between."""
    key = service_account_key(tmp_path / "key.json")
    sent = recorded_sample_run(tmp_path, "private-archive", verify=True,
                               extra_env={"GOOGLE_APPLICATION_CREDENTIALS": str(tmp_path / "key.json")})
    assert len(sent) > 10, sent
    unsigned = [e for e in sent if e["auth"] != "Bearer" or e["jwt"] is None]
    assert not unsigned, unsigned[:3]
    assert {json.dumps(e["jwt"], sort_keys=True) for e in sent} == {
        json.dumps({"alg": "RS256", "typ": "JWT", "kid": key["private_key_id"]}, sort_keys=True)}


def test_anonymous_reads_send_no_credentials(tmp_path):
    """The default for a public bucket: no credentials file, no Authorization header at all."""
    sent = recorded_sample_run(tmp_path, "public-archive")
    assert len(sent) > 10 and all(e["auth"] is None for e in sent), [e for e in sent if e["auth"]][:3]


def test_fleet_from_a_gcs_source_into_an_s3_store(tmp_path):
    gen = tmp_path / "gen"
    subprocess.run([sys.executable, str(ROOT / "tests/fixtures/make_archive.py"), str(gen)], check=True)
    expected = json.loads((gen / "expected.json").read_text())
    gcs = FakeGcs(tmp_path)
    try:
        gcs.upload_tree("ismip6-fleet", gen / "archive", "ISMIP6/AIS")
        src = "gs://ismip6-fleet/ISMIP6/AIS"
        fleet = Fleet(tmp_path, gen / "archive", upload=False)
        fleet.config["source_url"] = src
        fleet.config["gcs_endpoint"] = gcs.url
        fleet.toml.write_text(to_toml(fleet.config))
        fleet.env.pop("STORAGE_EMULATOR_HOST", None)  # the setting alone points floe at the emulator
        good = sorted(g for g in expected if g != "skipped")
        sent = fleet.json("producer", "enqueue", "--all", "--json")
        assert sorted(sent["enqueued"]) == good, sent
        fleet.drain()
        status = fleet.status()
        assert status["committed"] == len(good) and status["pending"] == [], status
        assert fleet.dead_letters() == []
        # The 0-byte file is named by its gs:// URL where `status` lists the partial group.
        [ulb] = [p for p in status["partial"] if p["group"] == "ULB_fETISh_32km/expA6"]
        assert [w["variable"] for w in ulb["left_out"]] == ["xvelbase"], ulb
        assert ulb["left_out"][0]["file"].startswith(src + "/") and "empty" in ulb["left_out"][0]["reason"], ulb
        assert client("s3").list_objects_v2(Bucket=fleet.name, Prefix="archive/").get("KeyCount", 0) == 0
        proc = fleet.run("producer", "verify", "--verbose")
        assert proc.returncode == 0, proc.stdout + proc.stderr
        # Groups with a variable left out (a bad variable or file beside good ones) verify as partial.
        partial = sorted(g for g in good if expected[g].get("left_out"))
        assert "ULB_fETISh_32km/expA6" in partial, partial
        assert (f"{len(good) - len(partial)} ok, {len(partial)} partial, 0 missing, 0 stale, 0 wrong"
                in proc.stdout), proc.stdout
        for g in partial:
            for variable in expected[g]["left_out"]:
                assert f"{variable} left out (" in proc.stdout, proc.stdout
        storage = icechunk.s3_storage(bucket=fleet.name, prefix="store", region="us-east-1", endpoint_url=ENDPOINT,
                                      allow_http=True, force_path_style=True, access_key_id="test",
                                      secret_access_key="test")
        repo = icechunk.Repository.open(storage, authorize_virtual_chunk_access=icechunk.containers_credentials(
                                            {f"{src}/": icechunk.gcs_credentials(anonymous=True)}))
        for group in good:
            ds = xr.open_zarr(repo.readonly_session("main").store, group=group, zarr_format=3,
                              consolidated=False, mask_and_scale=False)
            assert_group_equals_sources(ds, gen / "archive", group, expected[group])
    finally:
        gcs.stop()
