#!/usr/bin/env python3
"""One group of FILES files on the fleet (LocalStack S3 + SQS): a MUR SST-shaped daily series
(tests/fixtures/make_mur.py, four packed variables a file) uploaded once, then

1. the baseline: `producer enqueue --all --shard-files 0`, the group in one message, which SQS
   refuses (over 1 MiB);
2. `producer enqueue --all` with the default shards (1,000 files each), V virtualizers and one
   committer, for each V of --virtualizers, each on a store and queues of its own (same source);
3. `producer local` on the same files on the local filesystem, for reference.

Reports wall time from enqueue to the group committed, files/s, and each process's peak RSS
(GNU time), the virtualizers' beside their Lambda size (infra/floe.yaml's VirtualizerMemory).
Checks that each store holds every step and equals the files at the first and last step.

    source localstack/env.sh && localstack/start.sh
    .ci/.oracle-venv/bin/python bench/large_group.py [--files 20000] [--virtualizers 2 4] [--out BENCHMARKS.md]
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))
sys.path.insert(0, str(ROOT / "tests" / "oracle"))
sys.path.insert(0, str(ROOT / "tests" / "fixtures"))
sys.path.insert(0, str(ROOT / "localstack"))
from cargo_target import binary as cargo_binary  # noqa: E402
from sections import measured_popen, publish, wait_rss  # noqa: E402

SECTION = "## Large groups"
PROFILE = ROOT / "profiles" / "mur-sst.toml"
LAMBDA_MB = 512  # infra/floe.yaml, VirtualizerMemory's default


def lambda_memory():
    import re
    text = (ROOT / "infra" / "floe.yaml").read_text()
    m = re.search(r"VirtualizerMemory:\s*\n(?:\s+\w+:.*\n)*?\s+Default:\s*(\d+)", text)
    return int(m.group(1)) if m else LAMBDA_MB


def upload(bucket, files, root):
    from localstack import client
    s3 = client("s3")
    with ThreadPoolExecutor(16) as pool:
        list(pool.map(lambda f: s3.upload_file(str(f), bucket, f"archive/{f.relative_to(root)}"), files))


class Run:
    """A store and queues of their own (localstack/seed.py) over a given source."""

    def __init__(self, tmp, source):
        from localstack import aws_env, unique
        from seed import seed, to_toml
        self.name = unique("floe-large")
        self.config = seed(self.name, source, 3, 120)
        self.toml = tmp / f"{self.name}.toml"
        self.toml.write_text(to_toml(self.config))
        self.env = aws_env()
        self.env.update({"FLOE_CONFIG": str(self.toml), "RUST_LOG": "warn"})

    def producer(self, *args):
        return subprocess.run([cargo_binary("producer", "release"), *map(str, args)], capture_output=True, text=True,
                              env=self.env, timeout=1800)

    def worker(self, program, *args, log=None):
        """A worker; a virtualizer's info log goes to LOG (what each shard read, for the table)."""
        env = {**self.env, "RUST_LOG": "info,floe_virtualizer=info"} if log else self.env
        return measured_popen([cargo_binary(program, "release"), "worker", "--exit-when-idle", 10, *args],
                              env=env, stdout=subprocess.DEVNULL, stderr=open(log, "w") if log else subprocess.PIPE,
                              text=True)

    def committed(self):
        proc = self.producer("status", "--json")
        return json.loads(proc.stdout)["committed"] if proc.returncode == 0 else 0

    def open_group(self, source):
        import icechunk
        import xarray as xr
        from localstack import ENDPOINT
        storage = icechunk.s3_storage(bucket=self.name, prefix="store", region="us-east-1", endpoint_url=ENDPOINT,
                                      allow_http=True, force_path_style=True, access_key_id="test",
                                      secret_access_key="test")
        creds = icechunk.containers_credentials(
            {f"{source}/": icechunk.s3_static_credentials(access_key_id="test", secret_access_key="test")})
        repo = icechunk.Repository.open(storage, authorize_virtual_chunk_access=creds)
        return xr.open_zarr(repo.readonly_session("main").store, group="MUR", zarr_format=3, consolidated=False,
                            mask_and_scale=False, decode_times=False)


def fleet_run(tmp, source, virtualizers, files, shard_files):
    run = Run(tmp, source)
    started = time.perf_counter()
    sent = run.producer("enqueue", "--all", "--profile", PROFILE, "--shard-files", shard_files, "--json")
    assert sent.returncode == 0, sent.stderr
    summary = json.loads(sent.stdout)
    logs = [tmp / f"{run.name}-virtualizer-{i}.log" for i in range(virtualizers)]
    procs = [run.worker("virtualizer", "--batch-size", 1, log=log) for log in logs]
    procs.append(run.worker("committer", "--batch-size", 10, "--batching-window", 1))
    while run.committed() < 1:
        assert time.perf_counter() - started < 1800, "the group was not committed within 30 min"
        assert all(p.poll() is None for p in procs), [p.stderr.read()[-2000:] for p in procs if p.poll() is not None]
        time.sleep(0.5)
    wall = time.perf_counter() - started
    results = [wait_rss(p) for p in procs]
    assert all(code == 0 for code, _ in results), [(c, (p.stderr.read() if p.stderr else "")[-2000:])
                                                   for (c, _), p in zip(results, procs)]
    ds = run.open_group(source)
    assert ds.sizes["time"] == len(files), ds.sizes
    check_against_files(ds, files)
    shares = [shard_reads(log) for log in logs]
    assert sum(s["files"] for s in shares) >= len(files), shares  # every file read (a redelivery reads again)
    assert all(s["shards"] > 0 for s in shares), f"a virtualizer read no shard: {shares}"
    return {"virtualizers": virtualizers, "messages": summary["messages"], "wall": wall, "shares": shares,
            "requests_per_file": sum(s["requests"] for s in shares) / sum(s["files"] for s in shares),
            "virtualizer_rss": [r for _, r in results[:-1]], "committer_rss": results[-1][1]}


def shard_reads(log):
    """Shards, files and ranged requests one virtualizer's log records (a stored shard, or the
    shard whose arrival assembled the group)."""
    import re
    out = {"shards": 0, "files": 0, "requests": 0}
    for line in log.read_text(errors="replace").splitlines():
        if "stored the shard's scans" in line or "read the batch's headers" in line:
            fields = dict(re.findall(r"(\w+)=(\S+)", line))
            out["shards"] += 1
            out["files"] += int(fields.get("files", 0))
            out["requests"] += int(fields.get("requests", 0))
    return out


def check_against_files(ds, files):
    import netCDF4
    import numpy as np
    for step in (0, len(files) - 1):
        with netCDF4.Dataset(files[step]) as nc:
            nc.set_auto_maskandscale(False)
            for name in ("analysed_sst", "mask"):
                np.testing.assert_array_equal(ds[name].isel(time=step).values, nc[name][0], err_msg=name)
            assert int(ds["time"].values[step]) == int(nc["time"][0])


def baseline(tmp, source):
    run = Run(tmp, source)
    proc = run.producer("enqueue", "--all", "--profile", PROFILE, "--shard-files", 0)
    if proc.returncode == 0:
        return "accepted (the group fits in one message)"
    last = [line for line in proc.stderr.splitlines() if line.strip()][-1]
    return "refused: " + " ".join(last.split())[:300]


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--files", type=int, default=20000)
    p.add_argument("--virtualizers", type=int, nargs="+", default=[2, 4])
    p.add_argument("--shard-files", type=int, default=1000)
    p.add_argument("--out", type=Path)
    args = p.parse_args()
    import make_mur
    subprocess.run(["cargo", "build", "--release", "-q", "-p", "floe-producer", "-p", "floe-virtualizer", "-p",
                    "floe-committer", "--bins"], check=True, cwd=ROOT)
    tmp = Path(tempfile.mkdtemp(prefix="floe-large-"))
    try:
        started = time.perf_counter()
        from datetime import datetime
        files = make_mur.make(tmp / "archive", args.files, first_day=datetime(1981, 1, 2))
        print(f"archive: {len(files)} files in {time.perf_counter() - started:.0f} s", flush=True)
        source_run = Run(tmp, None)
        source = f"s3://{source_run.name}/archive"
        started = time.perf_counter()
        upload(source_run.name, files, tmp / "archive")
        print(f"uploaded in {time.perf_counter() - started:.0f} s", flush=True)

        refused = baseline(tmp, source)
        print("baseline:", refused, flush=True)
        rows = []
        for v in args.virtualizers:
            row = fleet_run(tmp, source, v, files, args.shard_files)
            print(row, flush=True)
            rows.append(row)

        started = time.perf_counter()
        proc = measured_popen([cargo_binary("producer", "release"), "local", "--source", tmp / "archive", "--store",
                               tmp / "local-store", "--profile", PROFILE, "--json"], stdout=subprocess.PIPE, text=True)
        out, _ = proc.communicate()
        code, local_rss = wait_rss(proc)
        local_s = time.perf_counter() - started
        assert code == 0 and json.loads(out)["written_groups"] == ["MUR"], out[-2000:]

        n = args.files
        memory = lambda_memory()
        lines = [
            SECTION, "",
            f"{time.strftime('%Y-%m-%d')}, {os.cpu_count()} cores, `bench/large_group.py --files {n}`: one MUR "
            f"SST-shaped group of {n:,} daily NetCDF-4 files (four packed variables each) on LocalStack S3 and SQS on "
            "the same machine; wall time from `enqueue --all` to the group committed; each store holds every step and "
            "equals the files at the first and last step. The virtualizer's Lambda size is "
            f"{memory} MB (infra/floe.yaml).", "",
            "| run | messages | wall s | files/s | shards (files) read per virtualizer | ranged GETs per file | "
            "virtualizer peak RSS MB | committer peak RSS MB |",
            "| --- | ---: | ---: | ---: | --- | ---: | --- | ---: |",
            f"| baseline: the group in one message | 1 | | | | | {refused} | |",
        ]
        for r in rows:
            shares = ", ".join(f"{s['shards']} ({s['files']:,})" for s in r["shares"])
            rss = ", ".join(f"{x:,.0f}" for x in r["virtualizer_rss"])
            lines.append(f"| fleet, {r['virtualizers']} virtualizers, 1 committer, shards of {args.shard_files:,} files | "
                         f"{r['messages']} | {r['wall']:.1f} | {n / r['wall']:,.0f} | {shares} | "
                         f"{r['requests_per_file']:.2f} | {rss} | {r['committer_rss']:,.0f} |")
        lines.append(f"| `producer local` (one process, local filesystem) | | {local_s:.1f} | {n / local_s:,.0f} | | | "
                     f"{local_rss:,.0f} (the whole job) | |")
        peak = max(max(r["virtualizer_rss"]) for r in rows)
        per_file = (local_rss * 1024) / n
        lines += ["", (f"The assembling virtualizer peaked at {peak:,.0f} MB, "
                       f"{'within' if peak <= memory else 'above'} the {memory} MB Lambda size; `producer local` on "
                       f"the same files took {local_rss:,.0f} MB, about {per_file:,.0f} KB a file: the merge holds "
                       "every file's scan, so the assembler's memory grows with the group (set VirtualizerMemory "
                       "for the largest group). Wall time by virtualizers: "
                       + ", ".join(f"{r['virtualizers']}: {r['wall']:.0f} s" for r in rows)
                       + f"; every process, LocalStack included, shares these {os.cpu_count()} cores.")]
        publish(args.out, SECTION, "\n".join(lines) + "\n")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
