#!/usr/bin/env python3
"""Continuous indexing on LocalStack: the lag from a file's upload to its step being readable in
the store, with `producer watch`, two virtualizers and a committer (real processes, real SQS and
S3, S3's own notifications), files uploaded one at a time at a steady rate.

For each --rates R (files per second), a fresh fleet, then --seconds of uploads of MUR-shaped
daily files (tests/fixtures/make_mur.py) into one series. A reader polls the store through
icechunk every 0.2 s; a file's lag is the time from the end of its upload to the first poll that
sees the series reach its step. Reported: p50, p95 and max over every file, and the batches the
planner sent.

Then the requests: --request-files files at one a second through a counting proxy (mitmproxy,
tests/faults/faults.py at fault rate 0) that every floe process talks to, S3 and SQS counted by
operation, per appended file. Long polls of idle queues are shown apart: they are paid per
second, not per file.

    .ci/.oracle-venv/bin/python bench/watch_lag.py [--rates 1 20] [--seconds 120] [--profile debug] [--out BENCHMARKS.md]
"""
import argparse
import collections
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))
sys.path.insert(0, str(ROOT / "tests" / "oracle"))
sys.path.insert(0, str(ROOT / "tests" / "fixtures"))
sys.path.insert(0, str(ROOT / "localstack"))
from cargo_target import binary  # noqa: E402
from sections import publish  # noqa: E402
from seed import seed, to_toml  # noqa: E402
import make_mur  # noqa: E402

import boto3  # noqa: E402
import icechunk  # noqa: E402
import zarr  # noqa: E402

SECTION = "## Continuous indexing"
PROFILE = ROOT / "profiles" / "mur-sst.toml"
ENDPOINT = "http://127.0.0.1:4566"
AWS = {"AWS_ENDPOINT_URL": ENDPOINT, "AWS_REGION": "us-east-1", "AWS_DEFAULT_REGION": "us-east-1",
       "AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test"}


def s3_client():
    return boto3.client("s3", endpoint_url=ENDPOINT, region_name="us-east-1", aws_access_key_id="test",
                        aws_secret_access_key="test")


class Fleet:
    def __init__(self, tmp, profile, endpoint=ENDPOINT):
        self.name = f"floe-lag-{os.getpid()}-{int(time.time() * 1000) % 10**8}"
        self.config = seed(self.name, f"s3://{self.name}/archive", 3, 60, events=True)
        (tmp / self.name).mkdir()
        self.dir = tmp / self.name
        (self.dir / "floe.toml").write_text(to_toml(self.config))
        env = dict(os.environ, **AWS)
        env.update(AWS_ENDPOINT_URL=endpoint, FLOE_CONFIG=str(self.dir / "floe.toml"), RUST_LOG="info")
        run = [("producer", "watch", "--profile", PROFILE, "--gather", "1"),
               ("virtualizer", "worker", "--poll-wait", "1"), ("virtualizer", "worker", "--poll-wait", "1"),
               ("committer", "worker", "--poll-wait", "1", "--batch-size", "100", "--batching-window", "1")]
        self.logs = [self.dir / f"{i}-{cmd[0]}.log" for i, cmd in enumerate(run)]
        self.procs = [subprocess.Popen([str(binary(cmd[0], profile)), *map(str, cmd[1:])], env=env,
                                       stdout=open(log, "w"), stderr=subprocess.STDOUT)
                      for cmd, log in zip(run, self.logs)]

    def steps(self):
        storage = icechunk.s3_storage(bucket=self.name, prefix="store", region="us-east-1", endpoint_url=ENDPOINT,
                                      allow_http=True, force_path_style=True, access_key_id="test",
                                      secret_access_key="test")
        try:
            repo = icechunk.Repository.open(storage)
            group = zarr.open_group(repo.readonly_session("main").store, path="MUR", mode="r")
            return group["time"].shape[0]
        except Exception:  # noqa: BLE001 (no store or no group yet)
            return 0

    def sent(self):
        return self.logs[0].read_text(errors="replace").count("floe_producer::watch: sent")

    def stop(self):
        for p in self.procs:
            p.terminate()
        for p in self.procs:
            p.wait(timeout=60)


def upload_steadily(fleet, files, rate):
    """Uploads FILES in order, one every 1/RATE s; returns each upload's end time."""
    s3 = s3_client()
    done = []
    start = time.monotonic()
    for i, f in enumerate(files):
        due = start + i / rate
        time.sleep(max(0.0, due - time.monotonic()))
        s3.upload_file(str(f), fleet.name, f"archive/MUR/{f.name}")
        done.append(time.monotonic())
    return done, len(files) / (done[-1] - start)


def lag_run(tmp, profile, rate, seconds):
    files = make_mur.make(tmp / f"staging-{rate}", int(rate * seconds))
    fleet = Fleet(tmp, profile)
    seen = {}
    stop = threading.Event()

    def poll():
        while not stop.is_set():
            n = fleet.steps()
            now = time.monotonic()
            for i in range(len(seen), n):
                seen[i] = now
            time.sleep(0.2)
    poller = threading.Thread(target=poll, daemon=True)
    try:
        time.sleep(3)  # the workers' first long polls
        poller.start()
        uploaded, achieved = upload_steadily(fleet, files, rate)
        deadline = time.monotonic() + 300
        while len(seen) < len(files) and time.monotonic() < deadline:
            time.sleep(0.2)
        stop.set()
        poller.join()
        if len(seen) < len(files):
            raise SystemExit(f"only {len(seen)} of {len(files)} files reached the store; logs in {fleet.dir}")
        lags = sorted(seen[i] - uploaded[i] for i in range(len(files)))
        q = statistics.quantiles(lags, n=100)
        return {"rate": rate, "achieved": achieved, "files": len(files), "p50": q[49], "p95": q[94],
                "max": lags[-1], "batches": fleet.sent()}
    finally:
        stop.set()
        fleet.stop()


def request_run(tmp, profile, n):
    from faults import FaultProxy
    proxy = FaultProxy(tmp, rate=0.0)
    files = make_mur.make(tmp / "staging-requests", n)
    fleet = Fleet(tmp, profile, endpoint=proxy.url)
    try:
        time.sleep(3)
        t0 = time.time()
        upload_steadily(fleet, files, 1.0)
        deadline = time.monotonic() + 120
        while fleet.steps() < n and time.monotonic() < deadline:
            time.sleep(0.2)
        elapsed = time.time() - t0
        if fleet.steps() < n:
            raise SystemExit(f"the request run did not finish; logs in {fleet.dir}")
    finally:
        fleet.stop()
        proxy.stop()
    counts = collections.Counter()
    for e in proxy.entries():
        op = (e.get("target") or e["method"]).replace("AmazonSQS.", "")
        if e["service"] == "s3":
            parsed = urllib.parse.urlsplit(e["path"])
            query = urllib.parse.parse_qs(parsed.query)
            key = parsed.path.lstrip("/").partition("/")[2]
            if "list-type" in query:
                op, key = "LIST", query.get("prefix", [""])[0]
            where = {"archive": "source", "store": "store"}.get(key.split("/")[0], "records")
            op = f"{op} {where}"
        counts[(e["service"], op)] += 1
    return counts, n, elapsed


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rates", type=float, nargs="+", default=[1, 20])
    ap.add_argument("--seconds", type=float, default=120)
    ap.add_argument("--request-files", type=int, default=30)
    ap.add_argument("--profile", default="debug", help="cargo profile of the binaries")
    ap.add_argument("--out")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="floe-lag-") as tmp:
        tmp = Path(tmp)
        runs = [lag_run(tmp, args.profile, r, args.seconds) for r in args.rates]
        counts, n, elapsed = request_run(tmp, args.profile, args.request_files)
    lines = [SECTION, "",
             f"`bench/watch_lag.py --rates {' '.join(f'{r:g}' for r in args.rates)} --seconds {args.seconds:g}` "
             f"({args.profile} build; {time.strftime('%Y-%m-%d')}, {os.cpu_count()} cores, LocalStack on the same "
             "machine). A fresh fleet per rate: `producer watch --gather 1`, two virtualizers, one committer "
             "(`--batch-size 100 --batching-window 1`), S3 notifications straight to the events queue; MUR-shaped "
             "daily files uploaded one at a time into one series. Lag: from the end of a file's upload to the first "
             "0.2 s poll (icechunk, a reader of its own) that sees its step in the store.", "",
             "| rate (files/s) | achieved | files | lag p50 | lag p95 | lag max | batches sent |",
             "| ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for r in runs:
        lines.append(f"| {r['rate']:g} | {r['achieved']:.1f} | {r['files']:,} | {r['p50']:.1f} s | {r['p95']:.1f} s "
                     f"| {r['max']:.1f} s | {r['batches']:,} |")
    lines += ["", f"Requests per appended file: {n} files at one a second, every floe process through a counting "
              f"proxy ({elapsed:.0f} s from the first upload to the last step readable). Long polls "
              "(ReceiveMessage) are paid per second and per worker whatever the traffic, so they are shown apart.", "",
              "| service | operation | requests | per file |", "| --- | --- | ---: | ---: |"]
    polls = 0
    per_file_total = 0.0
    for (service, op), c in sorted(counts.items()):
        if op == "ReceiveMessage":
            polls += c
            continue
        per_file_total += c / n
        lines.append(f"| {service} | {op} | {c:,} | {c / n:.1f} |")
    lines += [f"| all but polls | | {sum(counts.values()) - polls:,} | {per_file_total:.1f} |",
              f"| sqs | ReceiveMessage (polls) | {polls:,} | ({polls / elapsed:.1f} per second) |"]
    publish(args.out, SECTION, "\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
