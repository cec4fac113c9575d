"""FloeParser (the floe-icechunk wheel) against VirtualiZarr's HDFParser and NetCDF3Parser, side
by side in one process, on the same files: per file, the parser call alone and the whole
`open_virtual_dataset`. Writes BENCHMARKS.md's "Python parser" section.

    .ci/.oracle-venv/bin/python bench/parser.py --wheel target/wheels/floe_icechunk-*.whl

The wheel should be a release build (`cd python && maturin build --release`); without
--wheel one is built so. Each time is the median of --repeat calls, after one warm-up call.
"""
import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests/oracle"))
sys.path.insert(0, str(ROOT / "bench"))
from sections import publish  # noqa: E402

TITLE = "## Python parser: FloeParser against VirtualiZarr's parsers"


def install(wheel: Path) -> None:
    target = Path(tempfile.mkdtemp(prefix="floe-icechunk-"))
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-index", "--target",
                    str(target), str(wheel)], check=True)
    sys.path.insert(0, str(target))


def release_wheel() -> Path:
    out = Path(tempfile.mkdtemp(prefix="floe-wheel-"))
    maturin = ROOT / ".ci/.maturin-venv/bin/maturin"
    subprocess.run([str(maturin), "build", "--release", "--out", str(out)], cwd=ROOT / "python", check=True)
    return next(out.glob("*.whl"))


def median_seconds(call, repeat):
    call()  # warm-up: imports, caches, the OS page cache
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        call()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def measure(path, repeat):
    from floe_icechunk import FloeParser
    from obstore.store import LocalStore
    from virtualizarr import open_virtual_dataset
    from virtualizarr.parsers import HDFParser, NetCDF3Parser
    from virtualizarr.registry import ObjectStoreRegistry

    registry = ObjectStoreRegistry({"file://": LocalStore()})
    url = f"file://{path}"
    theirs = NetCDF3Parser() if path.read_bytes()[:3] == b"CDF" else HDFParser()
    row = {"file": path.name, "theirs": type(theirs).__name__}
    # VirtualiZarr's objects alone (ChunkManifest, ManifestArray, ManifestGroup, ManifestStore),
    # built from a header floe already read: what any parser returning them pays.
    from floe_icechunk import _native, parser as floe
    store, path_in_store = registry.resolve(url)
    try:
        header = _native.read_header(floe._native_store(store), path_in_store, url, None, [])
        row["objects"] = median_seconds(lambda: floe._manifest_store(url, registry, header), repeat)
    except Exception as e:  # noqa: BLE001
        row["objects"] = f"{type(e).__name__}"
    for side, parser in (("floe", FloeParser()), ("vz", theirs)):
        try:
            row[f"{side}_parse"] = median_seconds(lambda: parser(url, registry), repeat)
        except Exception as e:  # noqa: BLE001 - a parser that cannot read a file is reported
            row[f"{side}_parse"] = f"{type(e).__name__}"
            continue
        try:
            row[f"{side}_open"] = median_seconds(
                lambda: open_virtual_dataset(url, registry=registry, parser=parser).close(), repeat)
        except Exception as e:  # noqa: BLE001
            row[f"{side}_open"] = f"{type(e).__name__}"
    return row


def below_target(both):
    """Which files miss the 15× target, and what bounds them: VirtualiZarr's own time, and its
    own objects' share of floe's."""
    below = [r for r in both if r["vz_parse"] / r["floe_parse"] < 15]
    if not below:
        return "Every file meets the 15× target."
    bound = [r for r in below if isinstance(r.get("objects"), float) and r["objects"] > r["vz_parse"] / 15]
    slowest_theirs = max(r["vz_parse"] for r in below)
    fastest_ours = min(r["floe_parse"] for r in both)
    above = [r for r in both if r["vz_parse"] > slowest_theirs]
    return (f"Under 15×: {len(below)} of {len(both)} files, each one VirtualiZarr parses in at most "
            f"{slowest_theirs * 1e3:.2f} ms, where floe's fixed cost per call (at least {fastest_ours * 1e3:.2f} ms here: "
            "one read of the file, the header parse, and VirtualiZarr's own ManifestStore objects) "
            f"is more than a fifteenth; the {len(above)} files VirtualiZarr takes longer on are all at or above "
            f"{min((r['vz_parse'] / r['floe_parse'] for r in above), default=float('nan')):.1f}×. "
            f"On {len(bound)} of the {len(below)}, VirtualiZarr's own objects for the file (column \"objects\": the "
            "ManifestStore built from a header already read, no I/O, no parse) take longer than a fifteenth of "
            "VirtualiZarr's parse: there the target is out of reach for FloeParser whatever its reader costs.")


def cell(value):
    return f"{value * 1e3:.2f}" if isinstance(value, float) else f"fails ({value})"


def ratio(ours, theirs):
    return f"{theirs / ours:.1f}×" if isinstance(ours, float) and isinstance(theirs, float) else ""


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--wheel", type=Path, help="a release build of the floe-icechunk wheel")
    ap.add_argument("--out", default=str(ROOT / "BENCHMARKS.md"))
    ap.add_argument("--repeat", type=int, default=15)
    ap.add_argument("--real", type=int, default=20, help="ESMValTool sample files to include")
    args = ap.parse_args()
    warnings.simplefilter("ignore")
    install(args.wheel or release_wheel())
    fixtures = Path(os.environ.get("FLOE_FIXTURES") or ROOT / "tests/fixtures/generated")
    files = sorted(p for p in fixtures.iterdir() if p.suffix in (".nc", ".h5") and not p.name.startswith("bad_"))
    files += sorted((fixtures / "compound").glob("*_compound.h5"))  # records (HDF5 compounds)
    import esmvaltool_sample_data
    sample = Path(esmvaltool_sample_data.__file__).parent / "data/timeseries/CMIP6"
    real = sorted(sample.rglob("*.nc"))
    files += real[:: max(1, len(real) // args.real)][: args.real]
    rows = [measure(f, args.repeat) for f in files]
    both = [r for r in rows if isinstance(r.get("floe_parse"), float) and isinstance(r.get("vz_parse"), float)]
    parse_speedups = [r["vz_parse"] / r["floe_parse"] for r in both]
    opened = [r for r in both if isinstance(r.get("floe_open"), float) and isinstance(r.get("vz_open"), float)]
    open_speedups = [r["vz_open"] / r["floe_open"] for r in opened]
    lines = [
        TITLE, "",
        f"`.ci/.oracle-venv/bin/python bench/parser.py`, one run on {time.strftime('%Y-%m-%d')} (2 cores, shared), "
        f"a release build of the wheel, VirtualiZarr {__import__('virtualizarr').__version__}; each time the median "
        f"of {args.repeat} calls in one process, in ms. \"parse\": `parser(url=..., registry=...)` alone; \"objects\": "
        "VirtualiZarr's objects alone (the ManifestStore FloeParser builds from a header already read); \"open\": "
        "the whole `open_virtual_dataset` (parse, then the virtual xarray Dataset). Target: parse ≥ 15× faster.", "",
        f"Parser call alone, over the {len(both)} files both read: median speedup **{statistics.median(parse_speedups):.1f}×** "
        f"(geometric mean {statistics.geometric_mean(parse_speedups):.1f}×, min {min(parse_speedups):.1f}×, "
        f"max {max(parse_speedups):.1f}×); whole `open_virtual_dataset`, over the {len(opened)} both open: median "
        f"{statistics.median(open_speedups):.1f}× (min {min(open_speedups):.1f}×).", "",
        below_target(both), "",
        "| file | VirtualiZarr's parser | parse: floe | objects | parse: VirtualiZarr | × | open: floe | open: VirtualiZarr | × |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in rows:
        lines.append(f"| {r['file']} | {r['theirs']} | {cell(r.get('floe_parse'))} | {cell(r.get('objects'))} | "
                     f"{cell(r.get('vz_parse'))} | "
                     f"{ratio(r.get('floe_parse'), r.get('vz_parse'))} | {cell(r.get('floe_open', 'n/a'))} | "
                     f"{cell(r.get('vz_open', 'n/a'))} | {ratio(r.get('floe_open'), r.get('vz_open'))} |")
    publish(args.out, TITLE, "\n".join(lines) + "\n")


if __name__ == "__main__":
    sys.exit(main())
