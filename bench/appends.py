#!/usr/bin/env python3
"""Appending one day to a MUR SST-shaped daily series (tests/fixtures/make_mur.py, four packed
variables a file) of N files with `producer local`, against rebuilding the same group
(`--no-append`) from the same store, for each N of --steps. Reports, per run: wall time of the
whole command (listing, planning, reading, commit), the headers read (files virtualized), the
chunk references written, and the bytes and objects the commit added to the store (files new
under the store directory). Checks that both stores hold N+1 steps.

Each N is run twice, with manifest splitting (the default, FLOE_MANIFEST_SPLIT_STEPS=1000 steps
a split) and without (FLOE_MANIFEST_SPLIT_STEPS=0, every array one manifest): with it an append
rewrites only the split its new step falls in and the input record's last chunk, so its bytes
are bounded by one split; without it they grow with N. The headers read and the references
written are those of the new file either way.

    .ci/.oracle-venv/bin/python bench/appends.py [--steps 100 1000 10000] [--profile debug] [--out BENCHMARKS.md]
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


def run_local(producer, archive, store, *extra, split=None):
    before = store_files(store)
    env = dict(os.environ)
    if split is not None:
        env["FLOE_MANIFEST_SPLIT_STEPS"] = str(split)
    started = time.monotonic()
    proc = subprocess.run([producer, "local", "--source", archive, "--store", store, "--profile", PROFILE,
                           "--json", *extra], capture_output=True, text=True, timeout=3600, env=env)
    seconds = time.monotonic() - started
    if proc.returncode != 0:
        raise SystemExit(proc.stdout[-2000:] + proc.stderr[-2000:])
    after = store_files(store)
    added = {p: s for p, s in after.items() if p not in before}
    return json.loads(proc.stdout), seconds, sum(added.values()), len(added)


def measure(producer, tmp, steps):
    staging, archive = tmp / "staging", tmp / "archive"
    files = make_mur.make(staging, steps + 1)
    (archive / "MUR").mkdir(parents=True)
    for f in files[:steps]:
        shutil.copy2(f, archive / "MUR" / f.name)
    stores = {}
    for split in (None, 0):
        stores[split] = tmp / f"store-{split}"
        run_local(producer, archive, stores[split], split=split)
    rebuild_store = tmp / "store-rebuild"
    shutil.copytree(stores[None], rebuild_store)
    shutil.copy2(files[steps], archive / "MUR" / files[steps].name)
    rows = []
    for kind, target, extra, split in (("append", stores[None], (), None),
                                       ("append, no splitting", stores[0], (), 0),
                                       ("rebuild", rebuild_store, ("--no-append",), None)):
        summary, seconds, added_bytes, added_objects = run_local(producer, archive, target, *extra, split=split)
        assert summary["written_groups"] == ["MUR"], summary
        appended = sum(n for _, n in summary.get("appended", []))
        assert (appended == 1) == kind.startswith("append"), summary
        read = appended if kind.startswith("append") else steps + 1
        rows.append((steps, kind, seconds, summary["commit_seconds"], read, summary["refs"], added_bytes,
                     added_objects))
    seen = set()
    for target in (*stores.values(), rebuild_store):
        check = subprocess.run([sys.executable, "-c", (
            "import hashlib, icechunk, xarray as xr, sys;"
            "r = icechunk.Repository.open(icechunk.local_filesystem_storage(sys.argv[1]),"
            " authorize_virtual_chunk_access={f'file://{sys.argv[2]}/': icechunk.credentials.LocalFileSystemAccess});"
            "ds = xr.open_zarr(r.readonly_session('main').store, group='MUR', zarr_format=3, consolidated=False);"
            "n = ds.sizes['time']; steps = sorted({0, min(999, n - 1), min(1000, n - 1), n - 2, n - 1});"
            "print(n, hashlib.sha256(ds['time'].values.tobytes() + b''.join(ds[v].isel(time=steps).values.tobytes()"
            " for v in sorted(ds.data_vars))).hexdigest())"), str(target), str(archive)],
            capture_output=True, text=True)
        assert check.returncode == 0 and int(check.stdout.split()[0]) == steps + 1, check.stdout + check.stderr
        seen.add(check.stdout.split()[1])
    assert len(seen) == 1, f"the split, unsplit and rebuilt stores read differently: {seen}"
    return rows


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--steps", type=int, nargs="+", default=[100, 1000, 10000])
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
        "the group from the same store (`--no-append`), with manifest splitting (the default, 1,000 steps a "
        "split) and without (`FLOE_MANIFEST_SPLIT_STEPS=0`). Seconds are the whole command (listing the N+1 "
        "files, planning, reading, the commit); bytes and objects are what the commit added to the store.",
        "",
        "| series (N) | run | seconds | of which commit | headers read | references written | bytes added | objects added |",
        "| ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for steps, kind, seconds, commit, read, refs, added_bytes, objects in rows:
        lines.append(f"| {steps:,} | {kind} | {seconds:.2f} | {commit:.3f} | {read:,} | {refs:,} | {added_bytes:,} "
                     f"| {objects} |")
    by = {(r[0], r[1]): r for r in rows}
    first, last = args.steps[0], args.steps[-1]

    def growth(kind, column):
        return by[(last, kind)][column] / max(by[(first, kind)][column], 1e-9)
    lines += ["", f"From {first:,} to {last:,} steps, an append's bytes grew {growth('append', 6):.2f}x with "
              f"splitting (its commit's seconds {growth('append', 3):.2f}x, the whole command's "
              f"{growth('append', 2):.2f}x) and {growth('append, no splitting', 6):.1f}x without (commit "
              f"{growth('append, no splitting', 3):.2f}x, command {growth('append, no splitting', 2):.2f}x); goal: "
              "within 1.5x. The command's seconds also list the N+1 files and read the input record, which "
              "grow with N by nature; the commit is what splitting bounds. With splitting, "
              "an append writes the split its step falls in (up to 1,000 steps of references) and the input "
              "record's last 32 KiB chunk, and the time coordinate's last chunk of 1,000 values, so its bytes "
              "depend on where in its split the series ends, not on its length. xarray reads the same time axis, and the same values at the first step, both sides of the first split boundary and the last two steps, from the split, unsplit and rebuilt stores."]
    publish(args.out, SECTION, "\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
