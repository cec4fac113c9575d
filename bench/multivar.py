#!/usr/bin/env python3
"""Files with several variables at archive size: a MUR SST-shaped archive (tests/fixtures/make_mur.py,
four packed variables a day) of FILES daily files in one group, built by

1. VirtualiZarr, as its users do: `open_virtual_dataset` per file, `xr.concat` along time,
   `to_icechunk`, one commit (a process of its own, so its peak RSS is its own);
2. `producer local --profile profiles/mur-sst.toml` (release build);

on the local filesystem, the same files, one after the other. Reports files/s, wall time and peak
RSS, and checks that both stores read back equal (values of every variable, times).

    .ci/.oracle-venv/bin/python bench/multivar.py [--files 8000] [--out BENCHMARKS.md]
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
from cargo_target import binary as cargo_binary  # noqa: E402
from sections import measured_popen, publish, wait_rss  # noqa: E402

SECTION = "## Files with several variables"
PROFILE = ROOT / "profiles" / "mur-sst.toml"


def virtualizarr_child(archive, store):
    """Runs in its own process: VirtualiZarr's way, one commit."""
    import warnings

    import icechunk
    import xarray as xr
    from obstore.store import LocalStore
    from virtualizarr import open_virtual_dataset
    from virtualizarr.parsers import HDFParser
    from virtualizarr.registry import ObjectStoreRegistry

    warnings.simplefilter("ignore")
    files = sorted(Path(archive).glob("MUR/*.nc"))
    registry = ObjectStoreRegistry({"file://": LocalStore()})
    parser = HDFParser()
    started = time.perf_counter()
    datasets = [open_virtual_dataset(f"file://{f}", registry=registry, parser=parser, loadable_variables=["time", "lat", "lon"])
                for f in files]
    parsed = time.perf_counter() - started
    combined = xr.concat(datasets, dim="time", coords="minimal", compat="override", combine_attrs="override")
    prefix = f"file://{Path(archive).resolve()}/"
    config = icechunk.RepositoryConfig.default()
    config.set_virtual_chunk_container(icechunk.VirtualChunkContainer(prefix, icechunk.local_filesystem_store(prefix[7:])))
    repo = icechunk.Repository.create(icechunk.local_filesystem_storage(str(store)), config,
                                      authorize_virtual_chunk_access={prefix: icechunk.credentials.LocalFileSystemAccess})
    session = repo.writable_session("main")
    combined.vz.to_icechunk(session.store, group="MUR")
    session.commit("virtualizarr")
    print(json.dumps({"files": len(files), "parse_s": parsed, "total_s": time.perf_counter() - started}))


def open_store(store, archive):
    import icechunk
    import xarray as xr
    prefix = f"file://{Path(archive).resolve()}/"
    repo = icechunk.Repository.open(icechunk.local_filesystem_storage(str(store)),
                                    authorize_virtual_chunk_access={prefix: icechunk.credentials.LocalFileSystemAccess})
    return xr.open_zarr(repo.readonly_session("main").store, group="MUR", zarr_format=3, consolidated=False)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--files", type=int, default=8000)
    p.add_argument("--out", type=Path)
    p.add_argument("--virtualizarr-child", nargs=2, metavar=("ARCHIVE", "STORE"), help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.virtualizarr_child:
        return virtualizarr_child(*args.virtualizarr_child)

    import numpy as np
    import make_mur
    subprocess.run(["cargo", "build", "--release", "-q", "-p", "floe-producer", "--bins"], check=True, cwd=ROOT)
    tmp = Path(tempfile.mkdtemp(prefix="floe-multivar-"))
    try:
        started = time.perf_counter()
        make_mur.make(tmp / "archive", args.files)
        print(f"archive: {args.files} files in {time.perf_counter() - started:.0f} s", flush=True)

        proc = measured_popen([sys.executable, __file__, "--virtualizarr-child", tmp / "archive", tmp / "vz-store"],
                              stdout=subprocess.PIPE, text=True)
        out, _ = proc.communicate()
        code, vz_rss = wait_rss(proc)
        assert code == 0, f"VirtualiZarr run failed (exit {code})"
        vz = json.loads(out.strip().splitlines()[-1])
        print("virtualizarr", vz, f"{vz_rss:.0f} MB", flush=True)

        started = time.perf_counter()
        proc = measured_popen([cargo_binary("producer", "release"), "local", "--source", tmp / "archive", "--store",
                               tmp / "floe-store", "--profile", PROFILE, "--json"], stdout=subprocess.PIPE, text=True)
        out, _ = proc.communicate()
        code, floe_rss = wait_rss(proc)
        floe_s = time.perf_counter() - started
        assert code == 0, f"producer local failed (exit {code})"
        summary = json.loads(out)
        assert summary["written_groups"] == ["MUR"] and not summary["partial_groups"], summary
        print("floe", f"{floe_s:.1f} s", f"{floe_rss:.0f} MB", flush=True)

        ours, theirs = open_store(tmp / "floe-store", tmp / "archive"), open_store(tmp / "vz-store", tmp / "archive")
        for name in [*make_mur.VARIABLES, "time"]:
            np.testing.assert_array_equal(ours[name].values, theirs[name].values, err_msg=name)
        assert len(ours["time"]) == args.files

        rate = lambda s: args.files / s  # noqa: E731
        today = time.strftime("%Y-%m-%d")
        section = "\n".join([
            SECTION, "",
            f"{today}, {os.cpu_count()} cores, `bench/multivar.py --files {args.files}`: one MUR SST-shaped group of "
            f"{args.files} daily NetCDF-4 files (four packed variables each, {make_mur.NLAT}x{make_mur.NLON} cells, "
            "zlib chunks), on the local filesystem; the two stores read back equal (every variable, every time). "
            "VirtualiZarr's time is measured inside its process, after imports; floe's is the whole process. "
            f"The issue's target is ≥ 100× VirtualiZarr's files/s end to end: "
            f"**{'met' if vz['total_s'] / floe_s >= 100 else 'not met'}** on this run "
            f"({vz['total_s'] / floe_s:,.0f}×).", "",
            "| builder | wall s | files/s | peak RSS MB | vs VirtualiZarr |",
            "| --- | ---: | ---: | ---: | ---: |",
            f"| VirtualiZarr {__import__('virtualizarr').__version__}: `open_virtual_dataset` per file, `xr.concat`, "
            f"`to_icechunk`, one commit | {vz['total_s']:.1f} | {rate(vz['total_s']):,.1f} | {vz_rss:,.0f} | 1× |",
            f"| `producer local --profile profiles/mur-sst.toml` | {floe_s:.1f} | {rate(floe_s):,.0f} | "
            f"{floe_rss:,.0f} | {vz['total_s'] / floe_s:,.0f}× |",
            '| the LocalStack fleet | | | | see "Large groups" (bench/large_group.py: the group in shards, '
            '2 and 4 virtualizers) |',
        ]) + "\n"
        publish(args.out, SECTION, section)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
