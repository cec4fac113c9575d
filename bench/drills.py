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
2. COMMITTERS committers at once on one S3 store, the same checks;
3. the fleet (`enqueue --all` with pre-flight, 2 virtualizers, a committer) through the mitmproxy
   fault addon answering 20% of S3 and SQS requests with 503 SlowDown, 500 InternalError, a
   dropped connection or a lost answer: every good group committed once, only the corrupted
   ones dead-lettered, `verify` green (mitmproxy comes from .ci/setup.sh's tools venv).
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
fault_drill = oracle_drills.fault_drill

SECTION = "## Drills"


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--groups", type=int, default=440)
    p.add_argument("--committers", type=int, default=16)
    p.add_argument("--only", nargs="+", choices=["crash", "parallel", "faults"],
                   default=["crash", "parallel", "faults"],
                   help="run only these drills")
    p.add_argument("--fault-rate", type=float, default=0.2, help="share of requests the faults drill fails")
    p.add_argument("--out", type=Path)
    args = p.parse_args()
    subprocess.run(["cargo", "build", "--release", "-q", "-p", "floe-producer", "-p", "floe-virtualizer", "-p",
                    "floe-committer", "--bins"], check=True, cwd=ROOT)

    def binary(name):
        return str(cargo_binary(name, "release"))

    def attempt(name, drill):
        """Runs one drill; a failed check is reported as such (with its message), not hidden."""
        started = time.perf_counter()
        try:
            result = drill()
            print(name, result, flush=True)
            return result, None
        except AssertionError as failure:
            seconds = time.perf_counter() - started
            print(name, "FAILED after", round(seconds), "s:", failure, flush=True)
            return None, f"FAILED after {seconds:.0f} s: {str(failure)[:300]}"

    tmp = Path(tempfile.mkdtemp(prefix="floe-drills-"))
    today = time.strftime("%Y-%m-%d %H:%M")
    rows = []
    try:
        if "crash" in args.only:
            crash, failed = attempt("crash drill", lambda: crash_drill(tmp / "crash", args.groups, binary))
            rows.append(f"| crashes, duplicates, corruption | {today} | {args.groups} | every message sent twice; a virtualizer "
                        "SIGKILLed mid-batch and the committer mid-commit, both restarted; 5% of the groups with a truncated "
                        "file, fixed, enqueued again | " + (failed and f"| {failed} |" or
                        f"{crash['seconds']:.0f} | passed: each group written once a batch, from its current inputs; "
                        f"{crash['corrupted']} truncated files gave {crash['partial']} partial groups, each naming "
                        "the variable, the file and the reason, then whole once fixed; queues and DLQs empty; `verify`: "
                        f"{crash['verified_chunks']} chunks by bytes, {crash['decoded_chunks']} decoded; `gc` found "
                        f"{crash['orphans']} orphan objects ({crash['orphan_manifests']} manifests), deleted them, "
                        "`verify` green again |"))
        if "parallel" in args.only:
            parallel, failed = attempt("parallel drill", lambda: parallel_committers_drill(
                tmp / "parallel", args.groups, binary, args.committers))
            rows.append(f"| {args.committers} committers on one S3 store | {today} | {args.groups} | committers racing on one "
                        "branch | " + (failed and f"| {failed} |" or
                        f"{parallel['seconds']:.0f} | passed: {parallel['commits']} commits; each group written "
                        f"once; queues and DLQs empty; `verify`: {parallel['verified_chunks']} chunks by bytes, "
                        f"{parallel['decoded_chunks']} decoded; visibility extensions: "
                        f"{parallel['slow_extensions']} slower than their period (slowest "
                        f"{parallel['slowest_extension_ms'] / 1000:.1f} s on LocalStack), "
                        f"{parallel['refused_extensions']} refused or failed |"))
        if "faults" in args.only:
            faults, failed = attempt("faults drill", lambda: fault_drill(tmp / "faults", args.groups, binary,
                                                                     rate=args.fault_rate))
            rows.append(f"| {args.fault_rate:.0%} of S3 and SQS requests failed | {today} | {args.groups} | mitmproxy "
                        "addon in front of LocalStack: 503 SlowDown, 500 InternalError, dropped connections, lost "
                        "answers; `enqueue --all` with pre-flight, 2 virtualizers, 1 committer | " + (
                            failed and f"| {failed} |" or
                            f"{faults['seconds']:.0f} | passed: {faults['faults']:,} faults in "
                            f"{faults['requests']:,} requests ({faults['slowdown']} SlowDown, {faults['internal']} "
                            f"InternalError, {faults['drop']} dropped, {faults['lost']} lost answers); each "
                            f"group written once; {faults['corrupted']} truncated files gave {faults['partial']} "
                            "partial groups (variable, file and reason named), nothing dead-lettered; "
                            f"`verify`: {faults['verified_chunks']} chunks by bytes, {faults['decoded_chunks']} "
                            "decoded |"))
    finally:
        if any("FAILED" in row for row in rows):
            print(f"kept the failed drill's logs and archive in {tmp}", flush=True)
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    # A drill run alone (--only) replaces its own row and keeps the other drill's from its last run.
    names = [row.split("|")[1].strip() for row in rows]
    kept = [row for row in previous_rows(args.out) if row.split("|")[1].strip() not in names]
    section = "\n".join([
        SECTION, "",
        f"{os.cpu_count()} cores, LocalStack on the same machine, `bench/drills.py --groups {args.groups} "
        f"--committers {args.committers}` (each row says when it ran; `--only crash|parallel|faults` reruns one). "
        "Every check of tests/oracle/drills.py is asserted; a drill whose check fails says FAILED with the "
        "check's message.", "",
        "| drill | ran | groups | what happened | seconds | checks |", "| --- | --- | ---: | --- | ---: | --- |",
        *sorted(kept + rows),
    ]) + "\n"
    publish(args.out, SECTION, section)


def previous_rows(out):
    """The table rows of the drills section already in OUT (none when there is no OUT or section)."""
    if not out or not Path(out).exists():
        return []
    text = Path(out).read_text()
    if SECTION + "\n" not in text:
        return []
    body = text.split(SECTION + "\n", 1)[1].split("\n## ", 1)[0]
    return [line for line in body.splitlines()
            if line.startswith("| ") and not line.startswith("| drill ") and not line.startswith("| ---")]


if __name__ == "__main__":
    main()
