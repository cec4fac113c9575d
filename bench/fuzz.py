#!/usr/bin/env python3
"""Fuzzes every parser of outside data and writes the totals to BENCHMARKS.md.

    rustup toolchain install nightly && cargo install cargo-fuzz
    python3 bench/fuzz.py [--runs 2000000] [--jobs 2] [--out BENCHMARKS.md]

Targets (fuzz/fuzz_targets/): `headers` (NetCDF-3 and HDF5 headers), `messages` (batch, result and
failure messages), `fragments` (manifest fragments, behind the envelope's digest), `commit` (a
fragment through the committer's checks into a commit on an in-memory icechunk repository), `profiles`
(profile TOML and the paths it classifies), `time_units` (CF time units, calendars and values).
Each runs RUNS executions per job, starting from the seeds committed in fuzz/corpus/TARGET plus
what earlier runs found (fuzz/corpus-work/TARGET, not committed), and fails on the first crash,
leak or timeout, whose input libFuzzer leaves in fuzz/artifacts/TARGET.
"""
import argparse
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FUZZ = ROOT / "fuzz"
sys.path.insert(0, str(ROOT / "bench"))
from sections import publish  # noqa: E402

SECTION = "## Fuzzing"
# name: (what must hold, -max_len, memory limit in MB: past it a run fails, RSS or one allocation)
TARGETS = {
    "headers": ("NetCDF-3 / HDF5 header readers: a manifest whose ranges lie inside the file, or a typed "
                "error; no allocation past 512 MB", 65536, 512),
    "messages": ("batch, result and failure messages: a validated batch names a group inside the store and "
                 "re-encodes unchanged", 8192, 2048),
    "fragments": ("manifest fragments (the envelope, and the JSON behind a valid digest): a decoded fragment "
                  "re-encodes to the same references", 16384, 2048),
    "commit": ("a fragment through the committer's checks into a commit by the real `Committer` on an "
               "in-memory icechunk repository: the commit never fails as a whole, and what the checks "
               "refuse is never written", 16384, 2048),
    "profiles": ("profile TOML, then the paths it classifies", 4096, 2048),
    "time_units": ("CF time units, calendars and time values", 4096, 2048),
}


def run_target(name, runs, jobs, max_len, memory_mb):
    """Runs one target; returns (executions, seconds, corpus files, corpus bytes)."""
    seeds, work = FUZZ / "corpus" / name, FUZZ / "corpus-work" / name
    work.mkdir(parents=True, exist_ok=True)
    # -runs counts per job: each job (a process of its own) runs RUNS executions.
    cmd = ["cargo", "+nightly", "fuzz", "run", "--release", "--debug-assertions", name, str(work), str(seeds),
           "--", f"-runs={runs}", f"-max_len={max_len}", "-timeout=10", f"-rss_limit_mb={memory_mb}",
           f"-malloc_limit_mb={memory_mb}",
           "-print_final_stats=1"]
    if jobs > 1:
        cmd += [f"-jobs={jobs}", f"-workers={jobs}"]
    started = time.perf_counter()
    proc = subprocess.run(cmd, cwd=FUZZ, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    # With -jobs each job writes its own fuzz-N.log, and the stats also reach stderr: count the
    # job logs alone then, or every execution is counted twice.
    job_logs = "".join(p.read_text(errors="replace") for p in FUZZ.glob("fuzz-*.log"))
    logs = job_logs if jobs > 1 else proc.stderr
    for log in FUZZ.glob("fuzz-*.log"):
        log.unlink()
    if proc.returncode != 0:
        sys.stderr.write(logs[-6000:])
        raise SystemExit(f"fuzz target {name} failed (exit {proc.returncode}); see fuzz/artifacts/{name}")
    executions = sum(int(n) for n in re.findall(r"stat::number_of_executed_units:\s*(\d+)", logs))
    files = [p for p in work.iterdir() if p.is_file()]
    return executions, seconds, len(files), sum(p.stat().st_size for p in files)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--runs", type=int, default=1_000_000, help="executions per target and job")
    p.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    p.add_argument("--only", nargs="+", choices=sorted(TARGETS), default=list(TARGETS))
    p.add_argument("--runs-for", nargs="+", default=[], metavar="TARGET=RUNS",
                   help="executions per job of one target, instead of --runs (e.g. commit=20000)")
    p.add_argument("--out", type=Path)
    args = p.parse_args()
    if not shutil.which("cargo-fuzz"):
        raise SystemExit("cargo-fuzz is missing: rustup toolchain install nightly && cargo install cargo-fuzz")
    today = time.strftime("%Y-%m-%d")
    rows, total = [], 0
    runs_for = {}
    for item in args.runs_for:
        target, _, runs = item.partition("=")
        if target not in TARGETS or not runs.isdigit():
            raise SystemExit(f"--runs-for {item}: give TARGET=RUNS, TARGET one of {', '.join(TARGETS)}")
        runs_for[target] = int(runs)
    for name in args.only:
        what, max_len, memory_mb = TARGETS[name]
        runs = runs_for.get(name, args.runs)
        executions, seconds, files, size = run_target(name, runs, args.jobs, max_len, memory_mb)
        total += executions
        print(f"{name}: {executions:,} executions in {seconds:.0f} s, corpus {files} files / {size:,} bytes",
              flush=True)
        rows.append(f"| `{name}` | {what} | {executions:,} | {seconds:.0f} | {files:,} ({size / 1024:,.0f} KiB) | "
                    "none |")
    seeds = sum(1 for t in args.only for f in (FUZZ / "corpus" / t).iterdir() if f.is_file())
    section = "\n".join([
        SECTION, "",
        f"{today}, {os.cpu_count()} cores, `python3 bench/fuzz.py --runs {args.runs} --jobs {args.jobs}"
        f"{' --runs-for ' + ' '.join(args.runs_for) if args.runs_for else ''}` "
        "(cargo-fuzz, libFuzzer, nightly, release with debug assertions, AddressSanitizer). Each target "
        f"started from its committed seeds ({seeds} files in fuzz/corpus) and the corpus earlier runs grew; "
        "the corpus column is its size after the run. A crash, leak, timeout (10 s) or a process or "
        "single allocation past the target's memory limit (512 MB for `headers`, 2 GiB for the others) "
        "fails the run.", "",
        "| target | what must hold | executions | seconds | corpus after | crashes |",
        "| --- | --- | ---: | ---: | ---: | --- |",
        *rows,
        f"| **total** | | **{total:,}** | | | none |",
    ]) + "\n"
    publish(args.out, SECTION, section)


if __name__ == "__main__":
    main()
