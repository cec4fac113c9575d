#!/usr/bin/env python3
"""Commits on a faithful S3 model: floe's committer core against Python icechunk's one commit
per group, on an S3 server that is not itself the bottleneck.

    .ci/.oracle-venv/bin/python bench/s3model.py [--groups 440] [--python-groups 40]
        [--latency-ms 0 20 50] [--out BENCHMARKS.md]

The backend is s3s-fs 0.14.1, a Rust S3 server (conditional PUTs, ranged GETs, ListObjectsV2),
installed on first use into .ci/.tools with `cargo install s3s-fs --version 0.14.1 --features
binary` (a few minutes), behind `floe-latency-proxy`, which adds each request's round trip (20
and 50 ms: S3's small-object latency) and counts the requests at the wire by HTTP method, for
Python and floe alike. floe also counts them inside icechunk with its own `MeteringStorage`, per
commit (`floe-commit-bench --meter`). LocalStack is not used: it saturates at about 650 small
PUTs/s on two cores (BENCHMARKS.md, "## Commits", keeps those emulator-bound rows).

Rows: Python icechunk 2.3, one writable session and one commit per group, serially, over the
first PYTHON_GROUPS groups (its rate only falls as the store grows, so extrapolating it to 440
groups flatters Python); floe with one committer, batches of 10, 100 and 440, and at the largest
batch also with 256 manifests in flight instead of floe's default 64. Every row starts from a
fresh store with its parent groups made before the clock starts. Then: commit k's time against k
(every commit rewrites the whole snapshot), the committer's peak RSS per batch size, and the
arithmetic of the critical path.
"""
import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))
sys.path.insert(0, str(ROOT / "tests" / "oracle"))
import commits  # noqa: E402  (the archive, the fragments and Python's one-commit-per-group writer)
from cargo_target import binary as cargo_binary  # noqa: E402
from sections import publish  # noqa: E402

warnings.filterwarnings("ignore")
S3S_VERSION = "0.14.1"
TOOLS = ROOT / ".ci" / ".tools"
SECTION = "## Commits on an S3 model"


def s3s_fs():
    """The s3s-fs binary: on PATH, in .ci/.tools, or installed there now."""
    found = shutil.which("s3s-fs") or (TOOLS / "bin" / "s3s-fs")
    if Path(found).exists():
        return str(found)
    print(f"installing s3s-fs {S3S_VERSION} into {TOOLS} (a few minutes)", flush=True)
    subprocess.run(["cargo", "install", "--quiet", "s3s-fs", "--version", S3S_VERSION, "--features", "binary",
                    "--locked", "--root", str(TOOLS)], check=True)
    return str(TOOLS / "bin" / "s3s-fs")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class S3sServer:
    """s3s-fs on a free loopback port, serving a temporary directory."""

    def __init__(self, root):
        root.mkdir(parents=True)
        self.port = free_port()
        self.proc = subprocess.Popen([s3s_fs(), "--host", "127.0.0.1", "--port", str(self.port), "--access-key",
                                      "test", "--secret-key", "test", str(root)],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.endpoint = f"http://127.0.0.1:{self.port}"
        for _ in range(200):
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("s3s-fs did not start")

    def close(self):
        self.proc.terminate()
        self.proc.wait()


class CountingProxy:
    """floe-latency-proxy in front of the server: DELAY_MS per request, requests counted by method."""

    def __init__(self, upstream_port, delay_ms):
        self.proc = subprocess.Popen([str(cargo_binary("floe-latency-proxy", "release")), "--delay-ms",
                                      str(delay_ms), "--upstream", f"127.0.0.1:{upstream_port}"],
                                     stdout=subprocess.PIPE, text=True)
        self.endpoint = "http://" + self.proc.stdout.readline().split()[-1]

    def close(self):
        """Stops the proxy and returns its request counts by method."""
        self.proc.terminate()
        out = self.proc.stdout.read()
        self.proc.wait()
        return json.loads(out.strip().splitlines()[-1])["requests"]


def python_rate(server, bucket, prefix, delay_ms, container, fragments):
    proxy = CountingProxy(server.port, delay_ms)
    try:
        r = commits.python_one_commit_per_group(commits.s3_storage(bucket, prefix, proxy.endpoint), container,
                                                fragments)
    finally:
        counts = proxy.close()
    r["wire"] = counts
    return r


def floe_rate(server, bucket, prefix, delay_ms, container, fragments, batch, concurrency=None):
    proxy = CountingProxy(server.port, delay_ms)
    extra = ["--manifest-concurrency", str(concurrency)] if concurrency else []
    try:
        proc = subprocess.run([str(cargo_binary("floe-commit-bench", "release")), "--store",
                               f"s3://{bucket}/{prefix}", "--container", container, "--batch-size", str(batch),
                               "--committers", "1", "--meter", *extra, *map(str, fragments)],
                              capture_output=True, text=True,
                              env={**os.environ, "AWS_ENDPOINT_URL": proxy.endpoint, "AWS_ACCESS_KEY_ID": "test",
                                   "AWS_SECRET_ACCESS_KEY": "test", "AWS_REGION": "us-east-1"})
    finally:
        counts = proxy.close()
    if proc.returncode != 0:
        raise RuntimeError(proc.stderr[-4000:])
    r = json.loads(proc.stdout)
    r["wire"] = counts
    return r


def per_group(counts, groups):
    return sum(counts.values()) / max(groups, 1)


def render(args, arrays, refs, rows, growth, memory, notes):
    out = [SECTION, "",
           f"{args.groups} ISMIP6-shaped groups ({arrays:.0f} arrays and {refs:.0f} chunk references each), one run "
           f"({time.strftime('%Y-%m-%d')}, {os.cpu_count()} cores), `bench/s3model.py --groups {args.groups} "
           f"--python-groups {args.python_groups} --latency-ms {' '.join(map(str, args.latency_ms))}`. Backend: "
           f"s3s-fs {S3S_VERSION} on loopback behind `floe-latency-proxy` (the added latency per request); requests "
           "counted at the wire by the proxy (all of them: the parents' commit, which is outside the clock, included) "
           "and, for floe, by icechunk's `MeteringStorage` over the timed commits only.", "",
           "| added latency | writer | groups timed | groups/commit | manifests in flight | groups/s | requests/group "
           "(wire) | PUT/group | GET/group | × Python (same latency) |",
           "| ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for r in rows:
        wire = r["wire"]
        out.append(f"| {r['latency']} ms | {r['writer']} | {r['groups']} | {r['batch']} | {r['inflight']} | "
                   f"{r['groups_per_s']:.2f} | {per_group(wire, r['groups']):.1f} | "
                   f"{wire.get('PUT', 0) / r['groups']:.1f} | {wire.get('GET', 0) / r['groups']:.1f} | "
                   f"{r['ratio']:.1f}× |")
    out += ["", "Commit k's time against k (floe, batches of 10, one committer; every commit rewrites the whole "
            "snapshot, so a commit costs more as the store grows). Requests from `MeteringStorage`:", "",
            "| added latency | k | groups in store after k | seconds | requests | of which PUTs |",
            "| ---: | ---: | ---: | ---: | ---: | ---: |"]
    for latency, k, total, seconds, requests, manifests in growth:
        out.append(f"| {latency} ms | {k} | {total} | {seconds:.2f} | {requests} | {manifests} |")
    out += ["", "Peak RSS of the `floe-commit-bench` process, no added latency. It decodes all the fragments before "
            "the clock starts, so this is an upper bound of a committer holding the whole archive, not the "
            "memory of one batch (`bench/memory.py` has the committer's own table):", "",
            "| groups/commit | peak RSS |", "| ---: | ---: |"]
    for batch, rss in memory:
        out.append(f"| {batch} | {rss:.0f} MB |")
    out += [""] + notes
    return "\n".join(out) + "\n"


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--groups", type=int, default=440, help="groups floe commits (ISMIP6: about 440)")
    p.add_argument("--python-groups", type=int, default=40,
                   help="groups Python commits one by one (its rate is extrapolated; it only falls as the store grows)")
    p.add_argument("--variables", type=int, default=23, help="variables per group (ISMIP6: about 23)")
    p.add_argument("--latency-ms", type=int, nargs="+", default=[0, 20, 50], help="added latency per request")
    p.add_argument("--out", type=Path, help=f"write the results into this markdown file's '{SECTION}' section")
    args = p.parse_args()
    subprocess.run(["cargo", "build", "--release", "-q", "-p", "floe-committer", "--bin", "floe-commit-bench",
                    "--bin", "floe-latency-proxy", "-p", "floe-virtualizer", "--bin", "virtualizer"],
                   check=True, cwd=ROOT)
    s3s_fs()
    tmp = Path(tempfile.mkdtemp(prefix="floe-s3model-"))
    server = None
    try:
        archive, dirs = commits.make_archive(tmp, args.groups, args.variables)
        fragments = commits.build_fragments(dirs, tmp / "fragments")
        docs = [commits.read_fragment(f) for f in fragments[:10]]
        arrays = sum(len(d["arrays"]) for d in docs) / len(docs)
        refs = sum(len(a["refs"]) + len(a["inline_chunks"]) for d in docs for a in d["arrays"]) / len(docs)
        container = f"file://{archive}/"
        server = S3sServer(tmp / "s3")
        import boto3
        bucket = f"floe-s3model-{uuid.uuid4().hex[:8]}"
        boto3.client("s3", endpoint_url=server.endpoint, region_name="us-east-1", aws_access_key_id="test",
                     aws_secret_access_key="test").create_bucket(Bucket=bucket)
        rows, growth, memory = [], [], []
        for latency in args.latency_ms:
            py = python_rate(server, bucket, f"python-{latency}", latency, container,
                             fragments[:args.python_groups])
            base = py["groups_per_s"]
            rows.append({"latency": latency, "writer": "Python icechunk, 1 commit/group", "batch": 1,
                         "inflight": 1, "ratio": 1.0, **py})
            print(latency, "ms python", round(base, 2), "groups/s", flush=True)
            plan = [(10, None), (100, None), (args.groups, None), (args.groups, 256)]
            for batch, concurrency in plan:
                r = floe_rate(server, bucket, f"floe-{latency}-{batch}-{concurrency or 64}", latency, container,
                              fragments, batch, concurrency)
                rows.append({"latency": latency, "writer": "floe", "batch": batch,
                             "inflight": r["manifest_concurrency"], "ratio": r["groups_per_s"] / base, **r})
                print(latency, "ms floe", batch, r["manifest_concurrency"], round(r["groups_per_s"], 1), "groups/s",
                      flush=True)
                if batch == 10:
                    seen = 0
                    for c in sorted(r["per_commit"], key=lambda c: c["k"]):
                        seen += c["groups"]
                        if c["k"] in (1, 2, 5, 10, 20, 30, 40) or c["k"] == len(r["per_commit"]):
                            requests = sum(c["requests"].values())
                            growth.append((latency, c["k"], seen, c["seconds"], requests,
                                           c["requests"].get("put_object", 0)))
                if latency == args.latency_ms[0] and concurrency is None:
                    memory.append((batch, r["peak_rss_mb"]))
        notes = critical_path_notes(rows, arrays)
        section = render(args, arrays, refs, rows, growth, memory, notes)
        publish(args.out, SECTION, section)
    finally:
        if server:
            server.close()
        shutil.rmtree(tmp, ignore_errors=True)


def critical_path_notes(rows, arrays):
    """The arithmetic beside the numbers: what waits on what in each writer's commit."""
    notes = ["Reading it (the arithmetic of the critical path):", ""]
    by = {(r["latency"], r["writer"], r["batch"], r["inflight"]): r for r in rows}
    for latency in sorted({r["latency"] for r in rows}):
        py = by.get((latency, "Python icechunk, 1 commit/group", 1, 1))
        floes = [r for r in rows if r["latency"] == latency and r["writer"] == "floe"]
        if not py or not floes:
            continue
        best = max(floes, key=lambda r: r["groups_per_s"])
        per_py = 1 / py["groups_per_s"]
        notes.append(
            f"- {latency} ms: Python spends {per_py:.2f} s per group, {per_group(py['wire'], py['groups']):.0f} "
            f"requests one after another (icechunk writes a commit's {arrays:.0f} manifests one at a time by default, "
            f"then the snapshot, the transaction log and the branch update, each waiting on the last), so about "
            f"{per_group(py['wire'], py['groups']):.0f} × {latency} ms = "
            f"{per_group(py['wire'], py['groups']) * latency / 1000:.2f} s of it is latency. floe's best row, "
            f"{best['batch']} groups per commit with {best['inflight']} manifests in flight, makes "
            f"{per_group(best['wire'], best['groups']):.1f} requests per group, but a commit waits for only about "
            f"⌈{arrays:.0f} × {best['batch']} / {best['inflight']}⌉ = "
            f"{-(-int(arrays) * best['batch'] // best['inflight'])} rounds of manifest writes plus a handful of "
            f"serial requests: {best['groups_per_s']:.1f} groups/s, {best['ratio']:.0f}× Python.")
    notes.append("- With no added latency the server answers in well under a millisecond, and what is left is CPU: "
                 "Python's per-commit work and floe's per-group manifest encoding on two shared cores.")
    notes.append("- The target (issue 13) is ≥ 50× Python on this model for 440 groups; the ratio column says where "
                 "it stands at each latency. Python's rate comes from its first groups only and falls as the store "
                 "grows (see commit k's time), so the ratios understate floe.")
    return notes


if __name__ == "__main__":
    main()
