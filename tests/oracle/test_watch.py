"""Continuous indexing on LocalStack: files uploaded one by one, with no `enqueue`, reach the store
through S3's notifications (straight to the events queue, or through an SNS topic as NOAA's
buckets announce objects), `producer watch`, two virtualizers and a committer, all real
processes on real SQS, SNS and S3. The store is read back with icechunk + xarray and compared
with `xr.open_mfdataset` of the uploaded files. The drills: duplicated and unreadable
notifications, a file overwritten, a file deleted, a bad file, and a burst of 1,000 files."""
import json
import shutil
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import netCDF4
import numpy as np
import xarray as xr

from fleet import Fleet
from localstack import client

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests" / "fixtures"))
import make_mur  # noqa: E402

PROFILE = ROOT / "profiles" / "mur-sst.toml"


class Watched:
    """A fleet with an events queue and its workers running: the planner, two virtualizers, a committer."""

    def __init__(self, tmp, via_sns, watch_args=()):
        (tmp / "archive").mkdir()
        self.fleet = Fleet(tmp, tmp / "archive", upload=False, events=True, via_sns=via_sns)
        self.s3 = client("s3", connections=16)
        f = self.fleet
        self.watch, self.watch_log = f.start_command(
            "producer", "watch", "--profile", PROFILE, "--gather", 1, "--wait-in-flight", "20s", *watch_args)
        self.procs = [self.watch]
        self.procs += [f.start("virtualizer")[0] for _ in range(2)]
        self.procs += [f.start("committer", "--batch-size", 50, "--batching-window", 1)[0]]

    def upload(self, path, name=None):
        self.s3.upload_file(str(path), self.fleet.name, f"archive/MUR/{name or path.name}")

    def delete(self, name):
        self.s3.delete_object(Bucket=self.fleet.name, Key=f"archive/MUR/{name}")

    def steps(self, group="MUR"):
        try:
            return len(self.fleet.open_group(group)["time"])
        except Exception:  # noqa: BLE001 (not written yet)
            return 0

    def wait(self, what, predicate, timeout=180):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if predicate():
                return
            time.sleep(0.5)
        logs = "\n".join(p.read_text(errors="replace")[-4000:] for p in self.fleet.logs)
        raise AssertionError(f"timed out waiting for {what}\n{logs}")

    def stop(self):
        for p in self.procs:
            p.terminate()
        for p in self.procs:
            p.wait(timeout=60)


def assert_equals_open_mfdataset(ds, files):
    ref = xr.open_mfdataset([str(f) for f in files], combine="by_coords", mask_and_scale=False)
    assert len(ds["time"]) == len(files), (len(ds["time"]), len(files))
    for name in [*make_mur.VARIABLES, "time", "lat", "lon"]:
        assert ds[name].dtype == ref[name].dtype, name
        np.testing.assert_array_equal(ds[name].values, ref[name].values, err_msg=name)


def groups_committed(fleet):
    return [g for c in fleet.commits() for g in c["groups"]]


def s3_event(bucket, key, name="ObjectCreated:Put"):
    """A notification as S3 writes one (the shape LocalStack sends, and AWS)."""
    return json.dumps({"Records": [{
        "eventVersion": "2.1", "eventSource": "aws:s3", "awsRegion": "us-east-1",
        "eventTime": "2026-12-04T10:00:00.000Z", "eventName": name,
        "userIdentity": {"principalId": "test"}, "requestParameters": {"sourceIPAddress": "127.0.0.1"},
        "responseElements": {}, "s3": {"s3SchemaVersion": "1.0", "configurationId": "floe",
                                       "bucket": {"name": bucket, "ownerIdentity": {"principalId": "test"},
                                                  "arn": f"arn:aws:s3:::{bucket}"},
                                       "object": {"key": key, "size": 1, "eTag": "x", "sequencer": "0"}}}]})


def test_files_uploaded_one_by_one_through_sns_reach_the_store_as_appends(tmp_path):
    files = make_mur.make(tmp_path / "staging", 10)
    w = Watched(tmp_path, via_sns=True)
    try:
        for i, f in enumerate(files[:8]):
            w.upload(f)
            time.sleep(0.5)
            if i == 2:
                w.wait("the first three files", lambda: w.steps() == 3)
        w.wait("all eight files", lambda: w.steps() == 8)
        assert_equals_open_mfdataset(w.fleet.open_group("MUR"), files[:8])
        proc = w.fleet.run("producer", "verify", "--profile", PROFILE, "--json")
        assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
        log = w.watch_log.read_text(errors="replace")
        assert 'kind="build"' in log and 'kind="append"' in log, log[-3000:]
        assert 'kind="rebuild"' not in log, log[-3000:]
        committed = groups_committed(w.fleet)
        assert set(committed) == {"MUR"} and 2 <= len(committed) <= 8, committed
        status = w.fleet.status()
        watch = status["watch"]
        assert watch["last_event"]["url"].endswith(files[7].name), watch
        assert watch["in_flight"] == [] and watch["events_queue"]["depth"]["visible"] == 0, watch
        assert w.fleet.dead_letters() == []

        # Day 10, then day 9: the append of day 9 lands inside the stored axis and is refused by
        # the committer, which asks the planner to plan the group again: no later notification is
        # needed for the rebuild.
        w.upload(files[9])
        w.wait("day 10", lambda: w.steps() == 9)
        w.upload(files[8])
        w.wait("the rebuild with day 9", lambda: w.steps() == 10)
        assert_equals_open_mfdataset(w.fleet.open_group("MUR"), files)
        log = w.watch_log.read_text(errors="replace")
        assert "asked to plan the group again" in log and 'kind="rebuild"' in log, log[-3000:]
    finally:
        w.stop()


def test_drills_duplicates_overwrite_delete_and_a_bad_file(tmp_path):
    files = make_mur.make(tmp_path / "staging", 12)
    other = tmp_path / "other"  # a second series, group MUR25, that must go on while MUR waits
    other.mkdir()
    others = []
    for f in files[:4]:
        others.append(other / f.name.replace("-MUR-", "-MUR25-"))
        shutil.copy2(f, others[-1])
    w = Watched(tmp_path, via_sns=False)
    fleet = w.fleet
    try:
        for f in files[:3]:
            w.upload(f)
        for f in others[:2]:
            w.upload(f)
        w.wait("MUR and MUR25", lambda: w.steps("MUR") == 3 and w.steps("MUR25") == 2)
        before = len(fleet.commits())

        # Duplicated notifications and one that is not a notification at all.
        for _ in range(2):
            fleet.send_raw("events_queue_url", s3_event(fleet.name, f"archive/MUR/{files[1].name}"))
        fleet.send_raw("events_queue_url", "this is not a notification")
        w.wait("the unreadable notification in the events DLQ",
               lambda: any(d["queue"] == "events" for d in fleet.dead_letters()))
        [letter] = [d for d in fleet.dead_letters() if d["queue"] == "events"]
        assert "not JSON" in letter["reason"], letter
        time.sleep(3)
        assert len(fleet.commits()) == before, "duplicate notifications wrote something"

        # A file overwritten: the group is rebuilt, and verify passes.
        w.upload(files[0])
        w.wait("the rebuild", lambda: "rebuilding" in w.watch_log.read_text(errors="replace")
               and len(fleet.commits()) > before)
        w.wait("the rebuild committed", lambda: fleet.status()["watch"]["in_flight"] == [])
        assert "replaced" in w.watch_log.read_text(errors="replace")
        proc = fleet.run("producer", "verify", "--profile", PROFILE, "--json")
        assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]

        # A file deleted: the group is rebuilt without it.
        w.delete(files[2].name)
        w.wait("the deletion", lambda: w.steps("MUR") == 2)
        assert_equals_open_mfdataset(fleet.open_group("MUR"), files[:2])

        # A bad file: named in the work DLQ; MUR25 goes on; MUR does not skip it (no gap in time).
        bad = tmp_path / files[9].name
        bad.write_bytes(b"\x89HDF\r\n\x1a\n" + b"\0" * 4000)
        w.upload(bad)
        w.wait("the bad file in the work DLQ",
               lambda: any(d["queue"] == "work" and bad.name in (d["file"] or "") for d in fleet.dead_letters()))
        w.upload(others[2])
        w.wait("MUR25 going on", lambda: w.steps("MUR25") == 3)
        w.upload(files[10])  # after the bad file: appending it alone would leave a silent gap
        w.wait("the second failure", lambda: sum(d["queue"] == "work" for d in fleet.dead_letters()) == 2)
        assert w.steps("MUR") == 2
        w.delete(bad.name)  # the fix: the bad file goes, MUR catches up with the file after it
        w.wait("MUR catching up", lambda: w.steps("MUR") == 3)
        assert_equals_open_mfdataset(fleet.open_group("MUR"), [*files[:2], files[10]])
        assert_equals_open_mfdataset(fleet.open_group("MUR25"), others[:3])
        ignored = fleet.status()["watch"]["ignored"]
        assert ignored == {}, ignored
    finally:
        w.stop()


def test_a_burst_of_1000_files_is_gathered_into_a_few_appends(tmp_path):
    files = make_mur.make(tmp_path / "staging", 1000)
    w = Watched(tmp_path, via_sns=False)
    try:
        w.upload(files[0])
        w.wait("the first file", lambda: w.steps() == 1)
        with ThreadPoolExecutor(16) as pool:
            list(pool.map(w.upload, files[1:]))
        w.upload(Path(__file__), "README.txt")  # matches no profile: counted, ignored
        w.wait("all 1,000 files", lambda: w.steps() == 1000, timeout=600)
        ds = w.fleet.open_group("MUR")
        times = [int(netCDF4.Dataset(f)["time"][0]) for f in files]
        np.testing.assert_array_equal(ds["time"].values.astype("datetime64[s]").astype(np.int64)
                                      - np.datetime64("1981-01-01T00:00:00", "s").astype(np.int64), times)
        for i in [0, 1, 499, 998, 999]:
            with netCDF4.Dataset(files[i]) as nc:
                nc.set_auto_maskandscale(False)
                np.testing.assert_array_equal(ds["analysed_sst"].values[i], nc["analysed_sst"][0], err_msg=str(i))
        log = w.watch_log.read_text(errors="replace")
        sent = log.count("floe_producer::watch: sent")
        assert sent <= 60, f"{sent} batches for a burst of 1,000 files"
        # Uploaded 16 at a time, files land out of order: an append planned before an earlier
        # day arrived is refused by the committer, which records why and asks the planner to
        # plan the group again; the group is rebuilt, and nothing reaches a DLQ.
        assert w.fleet.dead_letters() == []
        committer_log = w.fleet.logs[-1].read_text(errors="replace")
        refused = committer_log.count("the planner plans the group again")
        assert ("its last append was refused" in log) == (refused > 0), (refused, log[-3000:])
        ignored = w.fleet.status()["watch"]["ignored"]
        assert sum(ignored.values()) == 1 and "README.txt" not in json.dumps(ignored), ignored
    finally:
        w.stop()
