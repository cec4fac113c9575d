#!/usr/bin/env python3
"""Failure drills at the archive's scale, on LocalStack (the test suite runs them small).

    source localstack/env.sh && localstack/start.sh
    .ci/.oracle-venv/bin/python bench/drills.py [--groups 440] [--committers 16] [--out BENCHMARKS.md]

Two drills, each asserting every check of tests/oracle/drills.py and reporting what it saw:
1. one GROUPS-group run where 5% of the groups hold a corrupted file, every message is delivered
   twice, a virtualizer and the committer are SIGKILLed at random moments and restarted, then
   the files are fixed and the work DLQ redriven: every group committed exactly once under its
   current inputs' batch id, the queues and DLQs empty, `producer verify` green, `committer gc`
   listing and deleting the orphans, `verify` green again;
2. COMMITTERS committers at once on one S3 store, the same checks.
Uses the release binaries.
"""
import argparse
import importlib.util
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "oracle"))
sys.path.insert(0, str(ROOT / "bench"))
from cargo_target import binary as cargo_binary  # noqa: E402
from sections import publish  # noqa: E402

# tests/oracle/drills.py, loaded under its own name: `import drills` would find this script.
_spec = importlib.util.spec_from_file_location("oracle_drills", ROOT / "tests" / "oracle" / "drills.py")
oracle_drills = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(oracle_drills)
crash_drill, parallel_committers_drill = oracle_drills.crash_drill, oracle_drills.parallel_committers_drill

SECTION = "## Drills"


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--groups", type=int, default=440)
    p.add_argument("--committers", type=int, default=16)
    p.add_argument("--out", type=Path)
    args = p.parse_args()
    subprocess.run(["cargo", "build", "--release", "-q", "-p", "floe-producer", "-p", "floe-virtualizer", "-p",
                    "floe-committer", "--bins"], check=True, cwd=ROOT)

    def binary(name):
        return str(cargo_binary(name, "release"))

    tmp = Path(tempfile.mkdtemp(prefix="floe-drills-"))
    try:
        crash = crash_drill(tmp / "crash", args.groups, binary)
        print("crash drill", crash, flush=True)
        parallel = parallel_committers_drill(tmp / "parallel", args.groups, binary, args.committers)
        print("parallel drill", parallel, flush=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    section = "\n".join([
        SECTION, "",
        f"One run ({time.strftime('%Y-%m-%d')}, {os.cpu_count()} cores, LocalStack on the same machine), "
        f"`bench/drills.py --groups {args.groups} --committers {args.committers}`; every check asserted, so a row "
        "is only written when the drill passed.", "",
        "| drill | groups | what happened | seconds | checks passed |", "| --- | ---: | --- | ---: | --- |",
        f"| crashes, duplicates, corruption | {crash['groups']} ({crash['files']} files) | every message sent twice; "
        f"a virtualizer and the committer SIGKILLed mid-batch and restarted; {crash['corrupted']} groups with a "
        f"corrupted file → {crash['dead_letters']} dead letters with file and reason, fixed, redriven | "
        f"{crash['seconds']:.0f} | each group written once, from its current inputs; queues and DLQs empty; "
        f"`verify`: {crash['verified_chunks']} chunks by bytes, {crash['decoded_chunks']} decoded; `gc` found "
        f"{crash['orphans']} orphan objects ({crash['orphan_manifests']} manifests), deleted them, `verify` "
        f"green again |",
        f"| {parallel['committers']} committers on one S3 store | {parallel['groups']} | {parallel['commits']} "
        f"commits racing on one branch | {parallel['seconds']:.0f} | each group written once; queues empty; "
        f"`verify`: {parallel['verified_chunks']} chunks by bytes, {parallel['decoded_chunks']} decoded |",
    ]) + "\n"
    publish(args.out, SECTION, section)


if __name__ == "__main__":
    main()
