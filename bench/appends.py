#!/usr/bin/env python3
"""Appending one day to a MUR SST-shaped daily series (tests/fixtures/make_mur.py, four packed
variables a file) of N files with `producer local`, against rebuilding the same group
(`--no-append`) from the same store, for each N of --steps. Reports, per run: wall time of the
whole command (listing, planning, reading, commit), the headers read (files virtualized), the
chunk references written, and the bytes and objects the commit added to the store (files new
under the store directory). Checks that both stores hold N+1 steps.

Without manifest splitting (not built yet, README "Status"), an append still rewrites each
extended array's whole manifest and the input record, so its bytes grow with N; the headers
read and references written do not.

    .ci/.oracle-venv/bin/python bench/appends.py [--steps 100 1000 3000] [--profile debug] [--out BENCHMARKS.md]
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))
sys.path.insert(0, str(ROOT / "tests" / "oracle"))
sys.path.insert(0, str(ROOT / "tests" / "fixtures"))
from cargo_target import binary  # noqa: E402
from sections import publish  # noqa: E402
import make_mur  # noqa: E402

SECTION = "## Appends"
PROFILE = ROOT / "profiles" / "mur-sst.toml"


def store_files(store):
    return {p: p.stat().st_size for p in Path(store).rglob("*") if p.is_file()}


def run_local(producer, archive, store, *extra):
    before = store_files(store)
    started = time.monotonic()
    proc = subprocess.run([producer, "local", "--source", archive, "--store", store, "--profile", PROFILE,
                           "--json", *extra], capture_output=True, text=True, timeout=3600)
    seconds = time.monotonic() - started
    if proc.returncode != 0:
        raise SystemExit(proc.stdout[-2000:] + proc.stderr[-2000:])
    after = store_files(store)
    added = {p: s for p, s in after.items() if p not in before}
    return json.loads(proc.stdout), seconds, sum(added.values()), len(added)


def measure(producer, tmp, steps):
    staging, archive, store = tmp / "staging", tmp / "archive", tmp / "store"
    files = make_mur.make(staging, steps + 1)
    (archive / "MUR").mkdir(parents=True)
    for f in files[:steps]:
        shutil.copy2(f, archive / "MUR" / f.name)
    run_local(producer, archive, store)
    rebuild_store = tmp / "store-rebuild"
    shutil.copytree(store, rebuild_store)
    shutil.copy2(files[steps], archive / "MUR" / files[steps].name)
    rows = []
    for kind, target, extra in (("append", store, ()), ("rebuild", rebuild_store, ("--no-append",))):
        summary, seconds, added_bytes, added_objects = run_local(producer, archive, target, *extra)
        assert summary["written_groups"] == ["MUR"], summary
        appended = sum(n for _, n in summary.get("appended", []))
        assert (appended == 1) == (kind == "append"), summary
        read = appended if kind == "append" else steps + 1
        rows.append((steps, kind, seconds, read, summary["refs"], added_bytes, added_objects))
    for target in (store, rebuild_store):
        check = subprocess.run([sys.executable, "-c", (
            "import icechunk, xarray as xr, sys;"
            "r = icechunk.Repository.open(icechunk.local_filesystem_storage(sys.argv[1]));"
            "print(xr.open_zarr(r.readonly_session('main').store, group='MUR', zarr_format=3,"
            " consolidated=False).sizes['time'])"), str(target)], capture_output=True, text=True)
        assert check.returncode == 0 and int(check.stdout) == steps + 1, check.stdout + check.stderr
    return rows


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--steps", type=int, nargs="+", default=[100, 1000, 3000])
    ap.add_argument("--profile", default="release", help="cargo profile of the producer binary")
    ap.add_argument("--out")
    args = ap.parse_args()
    producer = binary("producer", args.profile)
    if not producer.exists():
        raise SystemExit(f"{producer}: build it first (cargo build --profile {args.profile} -p floe-producer)")
    rows = []
    for steps in args.steps:
        with tempfile.TemporaryDirectory(prefix="floe-appends-") as tmp:
            rows.extend(measure(producer, Path(tmp), steps))
    lines = [
        SECTION, "",
        f"`bench/appends.py --steps {' '.join(map(str, args.steps))}` ({args.profile} build; "
        f"{time.strftime('%Y-%m-%d')}, {os.cpu_count()} cores), one day appended "
        "to a MUR-shaped series of N days with `producer local` on the local filesystem, against rebuilding "
        "the group from the same store (`--no-append`). Seconds are the whole command (listing the N+1 "
        "files, planning, reading, the commit); bytes and objects are what the commit added to the store.",
        "",
        "| series (N) | run | seconds | headers read | references written | bytes added | objects added |",
        "| ---: | --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for steps, kind, seconds, read, refs, added_bytes, objects in rows:
        lines.append(f"| {steps:,} | {kind} | {seconds:.2f} | {read:,} | {refs:,} | {added_bytes:,} | {objects} |")
    by = {(r[0], r[1]): r for r in rows}
    first, last = args.steps[0], args.steps[-1]
    growth = by[(last, "append")][5] / max(by[(first, "append")][5], 1)
    lines += ["", f"An append's bytes grew {growth:.1f}x from {first:,} to {last:,} steps (goal with manifest "
              "splitting: within 1.5x; splitting is not built yet, so each extended array's manifest and the "
              "input record are rewritten whole). Headers read and references written stay those of the new "
              "file."]
    publish(args.out, SECTION, "\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
