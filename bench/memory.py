#!/usr/bin/env python3
"""Memory and requests of the virtualizer and the committer, on archive-sized inputs.

    .ci/.oracle-venv/bin/python bench/memory.py [--groups 440] [--out BENCHMARKS.md]

Virtualizer (`virtualizer build-group --json`: the worker's code path, reading through the
same block cache and ranged reads as on S3, here over local files):
- one typical 8 km ISMIP6 file (761 x 761 float32, 86 yearly steps, about 200 MB), contiguous;
- the same file chunked per step (1, 761, 761) with zlib;
- one whole 8 km group of 23 files: 16 state variables (half contiguous, half chunked per step
  with zlib) and 7 scalar series.
Committer (`committer apply`, its own code path, one commit in a process of its own, on a local
store): batches of 10, 100 and GROUPS of the ISMIP6-shaped fragments `bench/commits.py` makes.

Peak RSS is the maximum resident set of each process (GNU time's %M), requests are
the ranged GETs the virtualizer counts per file. Targets (issue 13): the virtualizer at most
128 MB and a median of at most 2 requests per file; the committer's memory reported and bounded.
"""
import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import netCDF4
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))
sys.path.insert(0, str(ROOT / "tests" / "oracle"))
import commits  # noqa: E402  (the ISMIP6-shaped archive and fragments)
from cargo_target import binary as cargo_binary  # noqa: E402
from sections import measured_popen, publish, wait_rss  # noqa: E402

warnings.filterwarnings("ignore")
SECTION = "## Memory and requests"
N, STEPS = 761, 86
TARGET_RSS_MB = 128


def write_8km(path, var, layout, steps=STEPS):
    """One ISMIP6 8 km file: time, y, x and VAR (contiguous, or chunked per step with zlib)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with netCDF4.Dataset(path, "w") as ds:
        ds.createDimension("time", steps)
        ds.createDimension("y", N)
        ds.createDimension("x", N)
        t = ds.createVariable("time", "f8", ("time",))
        t.units, t.calendar = "days since 2015-01-01", "365_day"
        t[:] = np.arange(steps) * 365.0 + 181.0
        for axis in "xy":
            ds.createVariable(axis, "f8", (axis,))[:] = np.linspace(-3040000, 3040000, N)
        if layout == "contiguous":
            v = ds.createVariable(var, "f4", ("time", "y", "x"), contiguous=True)
        else:
            v = ds.createVariable(var, "f4", ("time", "y", "x"), chunksizes=(1, N, N), zlib=True, complevel=1)
        plane = np.fromfunction(lambda y, x: (x + y) % 251, (N, N), dtype="f4")
        for i in range(steps):
            v[i] = plane + i


def write_scalar(path, var, steps=STEPS):
    path.parent.mkdir(parents=True, exist_ok=True)
    with netCDF4.Dataset(path, "w") as ds:
        ds.createDimension("time", steps)
        t = ds.createVariable("time", "f8", ("time",))
        t.units, t.calendar = "days since 2015-01-01", "365_day"
        t[:] = np.arange(steps) * 365.0 + 181.0
        ds.createVariable(var, "f4", ("time",))[:] = np.arange(steps, dtype="f4")


def measured(cmd, env=None):
    """Runs CMD; returns (stdout, peak RSS in MB, seconds)."""
    started = time.perf_counter()
    with tempfile.TemporaryFile() as out:
        with tempfile.TemporaryFile() as err:
            proc = measured_popen(cmd, stdout=out, stderr=err, env=env)
            code, rss = wait_rss(proc)
            seconds = time.perf_counter() - started
            if code != 0:
                err.seek(0)
                raise RuntimeError(f"{cmd[0]} failed: {err.read().decode()[-2000:]}")
        out.seek(0)
        return out.read().decode(), rss, seconds


def build_group(files):
    out, rss, seconds = measured([str(cargo_binary("virtualizer", "release")), "build-group", "--json",
                                  *map(str, files)])
    lines = [json.loads(line) for line in out.strip().splitlines()]
    summary = lines[-1]
    summary["references"] = sum(a.get("references", 0) for a in lines[:-1])
    return summary, rss, seconds


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--groups", type=int, default=440, help="groups for the committer's largest batch")
    p.add_argument("--out", type=Path, help=f"write the table into this markdown file's '{SECTION}' section")
    args = p.parse_args()
    subprocess.run(["cargo", "build", "--release", "-q", "-p", "floe-committer", "--bin", "committer",
                    "-p", "floe-virtualizer", "--bin", "virtualizer"], check=True, cwd=ROOT)
    tmp = Path(tempfile.mkdtemp(prefix="floe-memory-"))
    try:
        rows = []
        one = tmp / "one"
        for layout in ("contiguous", "chunked"):
            path = one / "MEM" / layout.upper() / "exp05" / f"lithk_AIS_MEM_{layout.upper()}_exp05.nc"
            write_8km(path, "lithk", layout)
            summary, rss, seconds = build_group([path])
            label = "contiguous (split per step)" if layout == "contiguous" else "chunked (1, 761, 761), zlib"
            rows.append(("virtualizer", f"one 8 km file, {label}, {path.stat().st_size / 1e6:.0f} MB", rss, summary,
                         seconds))
            print(rows[-1][:3], flush=True)
        group = tmp / "group" / "MEM" / "GROUP" / "exp05"
        for i, var in enumerate(commits.STATE_VARS):
            write_8km(group / f"{var}_AIS_MEM_GROUP_exp05.nc", var, "contiguous" if i % 2 == 0 else "chunked")
        for var in commits.SCALAR_VARS:
            write_scalar(group / f"{var}_AIS_MEM_GROUP_exp05.nc", var)
        files = sorted(group.iterdir())
        size = sum(f.stat().st_size for f in files)
        summary, rss, seconds = build_group(files)
        rows.append(("virtualizer", f"one 8 km group: {len(files)} files, {size / 1e9:.1f} GB", rss, summary, seconds))
        print(rows[-1][:3], flush=True)

        archive, dirs = commits.make_archive(tmp / "commits", args.groups, 23)
        fragments = commits.build_fragments(dirs, tmp / "fragments")
        committer = []
        for batch in (10, 100, args.groups):
            # `committer apply`: the committer's own code path, one commit of BATCH fragments,
            # in a process of its own, so its peak is one batch's.
            out, rss, seconds = measured([str(cargo_binary("committer", "release")), "apply", "--store",
                                          str(tmp / f"store-{batch}"), "--container", f"file://{archive}/",
                                          *map(str, fragments[:batch])])
            committer.append((batch, rss, seconds))
            print("committer", batch, round(rss), "MB", flush=True)

        lines = [SECTION, "",
                 f"One run ({time.strftime('%Y-%m-%d')}, {os.cpu_count()} cores), `bench/memory.py --groups "
                 f"{args.groups}`. Peak RSS: the maximum resident set of the process alone (GNU time). Requests: "
                 "the ranged GETs the virtualizer makes per file (headers and coordinate values, through its block "
                 "cache), here on local files; on S3 each is one GET.", "",
                 "| process | input | peak RSS | requests per file, median (max) | bytes read per file, median | "
                 "chunk references | seconds |",
                 "| --- | --- | ---: | ---: | ---: | ---: | ---: |"]
        for proc, what, rss, summary, seconds in rows:
            reqs, read = summary["requests_per_file"], summary["bytes_read_per_file"]
            lines.append(f"| {proc} | {what} | {rss:.0f} MB | {statistics.median(reqs):.0f} ({max(reqs)}) | "
                         f"{statistics.median(read) / 1024:.0f} KiB | {summary['references']} | "
                         f"{seconds:.2f} |")
        for batch, rss, seconds in committer:
            lines.append(f"| committer | one commit of {batch} ISMIP6-shaped groups (`committer apply`), local "
                         f"store | {rss:.0f} MB | | | | {seconds:.2f} |")
        (small, small_rss, _), (large, large_rss, _) = committer[0], committer[-1]
        per_group_kb = (large_rss - small_rss) * 1024 / max(large - small, 1)
        base_mb = small_rss - per_group_kb * small / 1024
        worst = max(rss for _, _, rss, _, _ in rows)
        medians = [statistics.median(s["requests_per_file"]) for _, _, _, s, _ in rows]
        lines += ["",
                  f"Targets: the virtualizer's peak RSS ≤ {TARGET_RSS_MB} MB (largest here: {worst:.0f} MB, "
                  f"{'met' if worst <= TARGET_RSS_MB else 'NOT met'}); a median of ≤ 2 requests per file (here: "
                  f"{', '.join(f'{m:.0f}' for m in medians)}, {'met' if max(medians) <= 2 else 'NOT met'}). The "
                  "committer's peak grows with the groups per commit (a commit holds its batch's fragments and "
                  f"writes their manifests), here by about {per_group_kb:.0f} KiB per group above a base of "
                  f"{base_mb:.0f} MB: it is bounded by the batch size of the committer's event source mapping "
                  "(`CommitterBatchSize` in infra/floe.yaml), and 440 is the whole archive in one commit."]
        section = "\n".join(lines) + "\n"
        publish(args.out, SECTION, section)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
