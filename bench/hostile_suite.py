#!/usr/bin/env python3
"""Peak memory of every floe process across the hostile suite (issue 34: "across the hostile
suite, the peak RSS of every process stays under 512 MB"). The suite's tests run as they do in
the test command, but each binary they start (virtualizer, committer, producer, workers
included) is run under GNU time, which records that process's own peak RSS. Needs LocalStack up
for the fleet tests (`bash localstack/start.sh`):

    source localstack/env.sh
    .ci/.oracle-venv/bin/python bench/hostile_suite.py [--out BENCHMARKS.md]
"""
import argparse
import collections
import os
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))
sys.path.insert(0, str(ROOT / "tests" / "oracle"))
from cargo_target import binary  # noqa: E402
from sections import publish  # noqa: E402

LAMBDA_MB = 512
SUITE = ["test_hostile.py", "test_hostile_headers.py", "test_limits.py", "test_poisoned_batch.py",
         "test_fleet.py"]
PROGRAMS = ["producer", "virtualizer", "committer"]


def wrappers(tmp, log):
    """A directory of scripts, one per binary, that run it under GNU time appending to LOG."""
    out = Path(tmp) / "bin"
    out.mkdir()
    for program in PROGRAMS:
        real = str(binary(program))
        script = out / program
        script.write_text("#!/bin/sh\n"
                          f"exec /usr/bin/time -q -a -o {shlex.quote(str(log))} -f '%M {program} %C' "
                          f"{shlex.quote(real)} \"$@\"\n")
        script.chmod(0o755)
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", help="write the section into this markdown file")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="floe-hostile-suite-") as tmp:
        log = Path(tmp) / "rss.log"
        env = dict(os.environ, FLOE_BIN_DIR=str(wrappers(tmp, log)))
        env.setdefault("FLOE_FIXTURES", str(ROOT / "tests" / "fixtures" / "generated"))
        started = time.perf_counter()
        # GNU time does not pass SIGTERM on to its command: the one test that signals a worker
        # is not a hostile case, and runs in the test command as it is.
        proc = subprocess.run([sys.executable, "-m", "pytest", "-q", *[f"tests/oracle/{t}" for t in SUITE],
                               "--deselect", "tests/oracle/test_fleet.py::test_worker_stops_cleanly_on_sigterm"],
                              cwd=ROOT, env=env, capture_output=True, text=True)
        seconds = time.perf_counter() - started
        summary = proc.stdout.strip().splitlines()[-1] if proc.stdout.strip() else proc.stderr[-500:]
        if proc.returncode != 0:
            raise SystemExit(f"the hostile suite failed: {summary}\n{proc.stdout[-3000:]}")
        peaks = collections.defaultdict(list)
        for line in log.read_text().splitlines():
            fields = line.split(" ", 2)
            if len(fields) == 3 and fields[0].isdigit():
                peaks[fields[1]].append((int(fields[0]) / 1024, fields[2]))
    lines = [
        "## Hostile input: peak memory of every process of the hostile suite",
        "",
        f"`bench/hostile_suite.py`, {time.strftime('%Y-%m-%d')}: the hostile suite "
        f"({', '.join(f'`{t}`' for t in SUITE)}; {summary}, {seconds:.0f} s) with every floe "
        f"process it starts run under GNU time (workers on LocalStack included; the SIGTERM test, "
        "which GNU time would not pass on, deselected); the "
        f"{Path(binary('virtualizer')).parent.name} build.",
        "",
        "| program | processes | peak RSS, largest | median | the largest's command |",
        "| --- | ---: | ---: | ---: | --- |",
    ]
    worst = 0.0
    for program in PROGRAMS:
        runs = sorted(peaks.get(program, []))
        if not runs:
            continue
        largest, command = runs[-1]
        worst = max(worst, largest)
        median = runs[len(runs) // 2][0]
        command = command.replace(str(ROOT), ".").replace("|", "\\|")
        command = command if len(command) <= 120 else command[:120] + "…"
        lines.append(f"| {program} | {len(runs)} | {largest:.0f} MB | {median:.0f} MB | `{command}` |")
    lines += [
        "",
        f"Largest of all: **{worst:.0f} MB**, against the {LAMBDA_MB} MB the stack gives a virtualizer "
        "Lambda.",
        "",
    ]
    publish(args.out, lines[0], "\n".join(lines))


if __name__ == "__main__":
    main()
