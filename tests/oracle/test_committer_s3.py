"""The committer on LocalStack S3 with the real icechunk crate: N committers in
parallel over the same fragments, each delivered at least twice in random order;
the store is read back by Python icechunk + xarray and equals the sources."""
import json
import random
import signal
import subprocess
import sys
import warnings

import icechunk
import netCDF4
import numpy as np
import pytest
import xarray as xr

from conftest import ROOT, binary
from localstack import ENDPOINT, aws_env, bucket, client, upload_tree  # noqa: F401

warnings.filterwarnings("ignore", category=DeprecationWarning)
GROUPS = ["AWI_PISM1/exp05", "ILTS_PIK_SICOPOLIS1/hist_std", "UCIJPL_ISSM/exp13", "LSCE_GRISLI2/exp05"]


@pytest.fixture(scope="module")
def fragments(tmp_path_factory):
    out = tmp_path_factory.mktemp("s3archive")
    subprocess.run([sys.executable, str(ROOT / "tests/fixtures/make_archive.py"), str(out)], check=True)
    s3 = client("s3")
    name = f"floe-commit-{random.randrange(16**10):010x}"
    s3.create_bucket(Bucket=name)
    upload_tree(name, out / "archive", "archive")
    frags = []
    for group in GROUPS:
        inst_model, exp = group.split("/")
        listing = s3.list_objects_v2(Bucket=name, Prefix="archive/")["Contents"]
        inst, model = next((k["Key"].split("/")[1], k["Key"].split("/")[2]) for k in listing
                           if f'{k["Key"].split("/")[1]}_{k["Key"].split("/")[2]}' == inst_model)
        urls = [f"s3://{name}/{k['Key']}" for k in listing if k["Key"].startswith(f"archive/{inst}/{model}/{exp}/")]
        path = out / f"{inst_model}_{exp}.frag"
        proc = subprocess.run([binary("virtualizer"), "build-group", *urls, "--fragment", str(path)],
                              capture_output=True, text=True, env=aws_env(), timeout=120)
        assert proc.returncode == 0, proc.stderr
        frags.append(path)
    return {"bucket": name, "fragments": frags, "archive": out / "archive"}


def open_store(bucket_name, prefix):
    storage = icechunk.s3_storage(bucket=bucket_name, prefix=prefix, region="us-east-1", endpoint_url=ENDPOINT,
                                  allow_http=True, force_path_style=True, access_key_id="test", secret_access_key="test")
    creds = icechunk.containers_credentials(
        {f"s3://{bucket_name}/archive/": icechunk.s3_static_credentials(access_key_id="test", secret_access_key="test")})
    return icechunk.Repository.open(storage, authorize_virtual_chunk_access=creds)


@pytest.mark.parametrize("n", [1, 4, 16])
def test_parallel_committers_write_every_group_exactly_once(fragments, n):
    store = f"s3://{fragments['bucket']}/store-n{n}"
    rng = random.Random(n)
    procs = []
    for _ in range(n):
        deliveries = fragments["fragments"] * (2 if n == 1 else 1)
        rng.shuffle(deliveries)
        procs.append(subprocess.Popen(
            [binary("committer"), "apply", *map(str, deliveries), "--store", store, "--container", f"s3://{fragments['bucket']}/archive/"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=aws_env()))
    for p in procs:
        out, err = p.communicate(timeout=600)
        assert p.returncode == 0, err  # no error surfaced to the caller
    if n > 1:  # every fragment delivered at least twice overall
        assert n * 1 >= 2
    log = subprocess.run([binary("committer"), "log", "--store", store, "--json", "-n", "1000"],
                         capture_output=True, text=True, env=aws_env(), check=True)
    entries = [json.loads(line) for line in log.stdout.splitlines()]
    written = [g for e in entries for g in e["groups"]]
    assert sorted(written) == sorted(GROUPS), f"each group written exactly once: {written}"
    repo = open_store(fragments["bucket"], f"store-n{n}")
    for group in GROUPS:
        ds = xr.open_zarr(repo.readonly_session("main").store, group=group, zarr_format=3,
                          consolidated=False, mask_and_scale=False)
        assert len(ds.attrs["floe_batch_id"]) == 32
    # values equal the source for one group
    ds = xr.open_zarr(repo.readonly_session("main").store, group="AWI_PISM1/exp05", zarr_format=3,
                      consolidated=False, mask_and_scale=False)
    with netCDF4.Dataset(fragments["archive"] / "AWI/PISM1/exp05/lithk_AIS_AWI_PISM1_exp05.nc") as src:
        src.set_auto_maskandscale(False)
        np.testing.assert_array_equal(ds.lithk.values, src["lithk"][...])


def test_bad_fragments_fail_alone_and_leave_the_store_untouched(fragments, tmp_path):
    store = f"s3://{fragments['bucket']}/store-bad"
    good = fragments["fragments"][0]
    truncated = tmp_path / "truncated.frag"
    truncated.write_bytes(good.read_bytes()[:100])
    future = tmp_path / "future.frag"
    data = bytearray(good.read_bytes())
    data[8] = 99
    future.write_bytes(bytes(data))
    proc = subprocess.run([binary("committer"), "apply", str(truncated), str(future), str(tmp_path / "missing.frag"),
                           "--store", store, "--container", f"s3://{fragments['bucket']}/elsewhere/"],
                          capture_output=True, text=True, env=aws_env())
    assert proc.returncode == 2
    assert "truncated.frag" in proc.stderr and "checksum" in proc.stderr
    assert "future.frag" in proc.stderr and "unknown schema version 99" in proc.stderr
    assert "missing.frag" in proc.stderr and "not found" in proc.stderr
    # a good fragment whose sources no container covers fails alone too
    proc = subprocess.run([binary("committer"), "apply", str(good), "--store", store,
                           "--container", f"s3://{fragments['bucket']}/elsewhere/"], capture_output=True, text=True, env=aws_env())
    assert proc.returncode == 2 and "no virtual chunk container" in proc.stderr
    log = subprocess.run([binary("committer"), "log", "--store", store, "--json"], capture_output=True, text=True, env=aws_env(), check=True)
    assert all(not json.loads(line)["groups"] for line in log.stdout.splitlines()), "store must be untouched"


def store_contents(repo):
    """Everything a reader can see: per group its batch id, and per array its metadata
    document and decoded values; plus every virtual chunk location of the snapshot."""
    import zarr
    session = repo.readonly_session("main")
    root = zarr.open_group(session.store, mode="r", zarr_format=3)
    out = {"locations": sorted(session.all_virtual_chunk_locations())}
    for group in GROUPS:
        g = root[group]
        arrays = {}
        for name, arr in sorted(g.arrays()):
            arrays[name] = (json.dumps(arr.metadata.to_dict(), sort_keys=True, default=str), arr[...])
        out[group] = (g.attrs["floe_batch_id"], arrays)
    return out


def assert_same_contents(a, b):
    """Two `store_contents` are equal: chunk locations, batch ids, array metadata and values."""
    assert a["locations"] == b["locations"]
    for group in GROUPS:
        assert a[group][0] == b[group][0], group
        assert a[group][1].keys() == b[group][1].keys(), group
        for name, (meta, values) in a[group][1].items():
            assert b[group][1][name][0] == meta, (group, name)
            np.testing.assert_array_equal(b[group][1][name][1], values, err_msg=f"{group}/{name}")


def test_committer_killed_at_random_points_converges_to_the_clean_store(fragments):
    bucket, container = fragments["bucket"], f"s3://{fragments['bucket']}/archive/"
    frags = [str(f) for f in fragments["fragments"]]

    def apply(store, paths):
        return subprocess.Popen([binary("committer"), "apply", *paths, "--store", f"s3://{bucket}/{store}",
                                 "--container", container], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                env=aws_env())

    import time
    started = time.monotonic()
    clean = apply("store-clean", frags)
    assert clean.wait(timeout=300) == 0, clean.stderr.read()
    duration = time.monotonic() - started

    rng = random.Random(20)
    kills = 0
    runs = 0
    while kills < 25 and runs < 100:
        runs += 1
        subset = rng.sample(frags, rng.randint(1, len(frags)))
        proc = apply("store-crash", subset + subset)
        # Anywhere from process start to just before a full commit completes: opening,
        # writing, writing the snapshot, updating the branch.
        time.sleep(rng.uniform(0, duration * 0.9))
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            kills += 1
        proc.wait()
    assert kills >= 20, f"only {kills} runs were still going when killed"
    restart = apply("store-crash", frags)
    assert restart.wait(timeout=300) == 0, restart.stderr.read()

    log = subprocess.run([binary("committer"), "log", "--store", f"s3://{bucket}/store-crash", "--json", "-n", "1000"],
                         capture_output=True, text=True, env=aws_env(), check=True)
    written = [g for line in log.stdout.splitlines() for g in json.loads(line)["groups"]]
    assert sorted(written) == sorted(GROUPS), f"each group written exactly once: {written}"

    assert_same_contents(store_contents(open_store(bucket, "store-clean")),
                         store_contents(open_store(bucket, "store-crash")))


def s3_keys(bucket_name, prefix):
    """The store's data objects (GC also rewrites the repository's info file: not counted)."""
    pages = client("s3").get_paginator("list_objects_v2").paginate(Bucket=bucket_name, Prefix=prefix + "/")
    return {o["Key"] for page in pages for o in page.get("Contents", [])
            if o["Key"].split("/")[1] in ("snapshots", "manifests", "chunks", "transactions")}


def test_gc_deletes_only_what_no_branch_reaches(fragments):
    """`committer gc`: a dry run counts without deleting; an age guard keeps fresh objects
    (commits in flight); --delete removes exactly the unreachable objects, and the store
    reads the same afterwards."""
    import time
    import zarr
    bucket_name, store = fragments["bucket"], "store-gc"
    url = f"s3://{bucket_name}/{store}"
    subprocess.run([binary("committer"), "apply", *map(str, fragments["fragments"]), "--store", url,
                    "--container", f"s3://{bucket_name}/archive/"], check=True, capture_output=True, env=aws_env())
    repo = open_store(bucket_name, store)
    before = store_contents(repo)
    # Orphans as a lost commit leaves them: a snapshot, its transaction log, a manifest and a
    # chunk (100 kB: above the inline threshold) that no branch reaches once "scratch" is gone.
    main = repo.lookup_branch("main")
    repo.create_branch("scratch", main)
    session = repo.writable_session("scratch")
    arr = zarr.create_array(session.store, name="scratch", shape=(25_000,), chunks=(25_000,), dtype="f4",
                            compressors=None)
    arr[:] = np.random.default_rng(1).random(25_000, dtype="f4")
    session.commit("to be orphaned")
    repo.delete_branch("scratch")
    keys = s3_keys(bucket_name, store)
    time.sleep(2)

    def gc(*args):
        proc = subprocess.run([binary("committer"), "gc", "--store", url, "--json", *args],
                              capture_output=True, text=True, env=aws_env())
        assert proc.returncode == 0, proc.stderr
        return json.loads(proc.stdout)

    guarded = gc("--older-than", "1h", "--delete")
    assert (guarded["snapshots"], guarded["manifests"], guarded["chunks"]) == (0, 0, 0), guarded
    assert s3_keys(bucket_name, store) == keys
    dry = gc("--older-than", "0s")
    assert dry["dry_run"] and dry["snapshots"] == 1 and dry["manifests"] >= 1 and dry["chunks"] == 1, dry
    assert s3_keys(bucket_name, store) == keys, "a dry run deletes nothing"
    done = gc("--older-than", "0s", "--delete")
    assert not done["dry_run"] and done["failed"] == 0
    assert {k: done[k] for k in ("snapshots", "manifests", "chunks")} == \
        {k: dry[k] for k in ("snapshots", "manifests", "chunks")}
    gone = keys - s3_keys(bucket_name, store)
    assert len(gone) == done["snapshots"] + done["transaction_logs"] + done["manifests"] + done["chunks"], gone
    assert_same_contents(before, store_contents(open_store(bucket_name, store)))
    again = gc("--older-than", "0s", "--delete")
    assert (again["snapshots"], again["manifests"], again["chunks"]) == (0, 0, 0)
