#!/usr/bin/env python3
"""How long a committer takes over a batch of ten result messages of which one fragment is
invalid (issue 34's "Done when"), through LocalStack with the real workers: the nine good groups
committed and acknowledged, the bad one dead-lettered with its reason. The scenario is
tests/oracle/poisoned_batch.py's; run with LocalStack up (`bash localstack/start.sh`):

    source localstack/env.sh
    .ci/.oracle-venv/bin/python bench/poisoned_batch.py [--runs 3] [--out BENCHMARKS.md]

The issue's baseline (the build before, not re-run): the committer took the permanent error for
contention, split the commit down to the bad group, retried 20 times (about 110 s a delivery),
then failed all ten messages; after a minute 2 good groups were committed, 6 never.
"""
import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))
sys.path.insert(0, str(ROOT / "tests" / "oracle"))
from cargo_target import binary  # noqa: E402
from poisoned_batch import GROUPS, POISONED, run_poisoned_batch  # noqa: E402
from sections import publish  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--out", help="write the section into this markdown file")
    args = parser.parse_args()
    rows = []
    for run in range(args.runs):
        with tempfile.TemporaryDirectory(prefix="floe-poisoned-") as tmp:
            r = run_poisoned_batch(Path(tmp))
            committed = sorted(g for c in r["commits"] for g in c["groups"])
            commits = len([c for c in r["commits"] if set(c["groups"]) & set(committed)])
            [dead] = r["dead"]
            rows.append((r["settled_seconds"], r["exited_seconds"], len(committed), commits, dead))
            print(f"run {run + 1}: settled in {r['settled_seconds']:.2f} s, {len(committed)} committed in "
                  f"{commits} commit(s), dead-lettered {dead['group']}: {dead['reason'][:120]}", flush=True)
    settled = [r[0] for r in rows]
    _, _, committed, commits, dead = rows[-1]
    lines = [
        "## Hostile input: a committer batch with one invalid fragment",
        "",
        f"`bench/poisoned_batch.py`, {time.strftime('%Y-%m-%d')}, LocalStack, the "
        f"{Path(binary('committer')).parent.name} build, {args.runs} runs: ten ISMIP6 groups virtualized by "
        "the real workers, their ten result messages sent back in one batch with one fragment resealed "
        f"with a zero-length reference ({POISONED}), one committer worker with `--batch-size 10 "
        "--batching-window 2`. Time from the committer's start until the results queue is empty and "
        "the bad message is in the DLQ (it includes the process start, the first receive and the "
        "2 s batching window):",
        "",
        "| | min | median | max |",
        "| --- | ---: | ---: | ---: |",
        f"| batch settled | {min(settled):.2f} s | {statistics.median(settled):.2f} s | {max(settled):.2f} s |",
        "",
        f"Every run: {committed} of {len(GROUPS) - 1} good groups committed, in {commits} commit, each "
        f"message acknowledged; only {dead['group']} dead-lettered, with its own reason "
        f"(`{dead['reason'][:160]}`). Baseline (the issue, the build before, not re-run): the permanent "
        "error was retried as contention, 20 times (about 110 s a delivery), then all ten messages "
        "failed; after a minute 2 good groups were committed, 6 never.",
        "",
    ]
    publish(args.out, lines[0], "\n".join(lines))


if __name__ == "__main__":
    main()
