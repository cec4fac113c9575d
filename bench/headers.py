#!/usr/bin/env python3
"""Header-reading benchmark: floe vs VirtualiZarr, same files, one core, same run.

    .ci/.oracle-venv/bin/python bench/headers.py [--out BENCHMARKS.md]

Builds the release `floe-bench`, generates the fixture set plus one typical 8 km
ISMIP6 file (761 x 761 float32, 86 yearly steps, contiguous, ~200 MB), and writes a
table of files/s and requests/bytes per file. Run with `taskset -c 0` (done here)
so both sides get one core.
"""
import argparse
import json
import os
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
sys.path.insert(0, str(ROOT / "tests" / "oracle"))
from cargo_target import binary as cargo_binary  # noqa: E402  (wherever cargo builds: CARGO_TARGET_DIR)
warnings.filterwarnings("ignore")


def typical_8km(path, steps=86):
    n = 761
    ds = netCDF4.Dataset(path, "w")
    ds.createDimension("time", steps)
    ds.createDimension("y", n)
    ds.createDimension("x", n)
    t = ds.createVariable("time", "f8", ("time",))
    t.units, t.calendar = "days since 2015-01-01", "365_day"
    t[:] = np.arange(steps) * 365.0
    for axis in "xy":
        v = ds.createVariable(axis, "f8", (axis,))
        v[:] = np.linspace(-3040000, 3040000, n)
    v = ds.createVariable("lithk", "f4", ("time", "y", "x"), contiguous=True)
    row = np.ones((n, n), "f4")
    for i in range(steps):
        v[i] = row * i
    ds.close()


def bench_virtualizarr(files, repeat):
    from obstore.store import LocalStore
    from virtualizarr import open_virtual_dataset
    from virtualizarr.parsers import HDFParser, NetCDF3Parser
    from virtualizarr.registry import ObjectStoreRegistry

    registry = ObjectStoreRegistry({"file://": LocalStore()})
    ok, failed = [], []
    for f in files:
        parser = HDFParser() if f.suffix == ".h5" or open(f, "rb").read(4) == b"\x89HDF" else NetCDF3Parser()
        try:
            open_virtual_dataset(f"file://{f}", registry=registry, parser=parser).close()
            ok.append((f, parser))
        except Exception as e:  # noqa: BLE001 - a parser that cannot read a fixture is reported, not fatal
            failed.append((f.name, f"{type(e).__name__}: {str(e)[:80]}"))
    start = time.perf_counter()
    for _ in range(repeat):
        for f, parser in ok:
            open_virtual_dataset(f"file://{f}", registry=registry, parser=parser).close()
    elapsed = time.perf_counter() - start
    return (len(ok) * repeat) / elapsed if ok else float("nan"), [f for f, _ in ok], failed


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=str(ROOT / "BENCHMARKS.md"))
    ap.add_argument("--repeat", type=int, default=10)
    args = ap.parse_args()
    subprocess.run(["cargo", "build", "--release", "-q", "-p", "floe-virtualizer", "--bin", "floe-bench"], cwd=ROOT, check=True)
    fixtures = ROOT / "tests/fixtures/generated"
    files = sorted(p for p in fixtures.iterdir() if p.suffix in (".nc", ".h5") and not p.name.startswith("bad_"))
    tmp = Path(tempfile.mkdtemp())
    typical = tmp / "lithk_AIS_BENCH_8km_exp05.nc"
    typical_8km(typical)

    vz_rate, vz_files, vz_failed = bench_virtualizarr(files, args.repeat)
    def floe(paths, repeat):
        out = subprocess.run(["taskset", "-c", "0", str(cargo_binary("floe-bench", "release")), *map(str, paths), "--repeat", str(repeat)],
                             capture_output=True, text=True, check=True)
        return json.loads(out.stdout)
    floe_all = floe(files, args.repeat * 20)
    floe_same = floe(vz_files, args.repeat * 20)
    typical_floe = floe([typical], 1)["files"][0]
    # One file: enough repeats that a run lasts about a second on each side.
    vz_typical_rate, _, _ = bench_virtualizarr([typical], max(args.repeat, 30))

    typical_rate = floe([typical], 2000)["files_per_second"]
    reqs = [f["requests"] for f in floe_all["files"]]
    fraction = typical_floe["bytes_read"] / typical_floe["size"]
    lines = [
        "# Benchmarks",
        "",
        f"Produced by `.ci/.oracle-venv/bin/python bench/headers.py` on {time.strftime('%Y-%m-%d')} "
        f"({os.cpu_count()} cores, floe pinned to one core with taskset; VirtualiZarr single-threaded Python).",
        "",
        "## Header reading (issue: virtualizer core)",
        "",
        "| what | floe | VirtualiZarr 2.8 (HDFParser / NetCDF3Parser) | ratio |",
        "| --- | ---: | ---: | ---: |",
        f"| files/s, the {len(vz_files)} fixtures both can read | {floe_same['files_per_second']:.0f} | {vz_rate:.1f} | {floe_same['files_per_second'] / vz_rate:.1f}x |",
        f"| files/s, typical 8 km ISMIP6 file (761x761x86 f4, {typical_floe['size'] / 1e6:.0f} MB) | {typical_rate:.0f} | {vz_typical_rate:.1f} | {typical_rate / vz_typical_rate:.1f}x |",
        f"| files/s, all {len(files)} fixtures | {floe_all['files_per_second']:.0f} | | |",
        f"| requests per file, median (max) over all fixtures | {statistics.median(reqs):.0f} ({max(reqs)}) | | |",
        f"| typical 8 km file: requests, bytes read, share of file | {typical_floe['requests']}, {typical_floe['bytes_read']}, {fraction:.3%} | | |",
        "",
        "Targets: >= 100x VirtualiZarr's files/s; median <= 2 requests (<= 4 at most); <= 1% of a typical 8 km file's bytes.",
    ]
    if vz_failed:
        lines += ["", "Fixtures VirtualiZarr could not read (left out of its rate):", ""]
        lines += [f"- {name}: {why}" for name, why in vz_failed]
    text = "\n".join(lines) + "\n"
    out = Path(args.out)
    # Keep the other benchmarks' sections (bench/commits.py writes "## Commits").
    old = out.read_text() if out.exists() else ""
    rest = old[old.index("\n## Commits"):] if "\n## Commits" in old else ""
    out.write_text(text + rest)
    print(text)


if __name__ == "__main__":
    sys.exit(main())
