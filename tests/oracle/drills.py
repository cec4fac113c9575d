"""Failure drills on a whole fleet on LocalStack, at any scale: `tests/oracle/test_drills.py`
runs them small in every test run, `bench/drills.py` at the archive's 440 groups.

One drill run: an ISMIP6-shaped archive (make_archive.scale_archive) where 5% of the groups hold
a truncated file; every batch enqueued twice (SQS's at-least-once, made certain); two virtualizers
and one committer, a virtualizer and the committer SIGKILLed at random moments and restarted.
A truncated file costs its group that file's variable: the group is written partial, `status`
names the variable, the file and why, and nothing is dead-lettered. Then the files are fixed and
enqueued again. Afterwards:
- every group was written by exactly one commit per batch (the partial ones twice: partial, then
  whole), under the batch id of its current inputs (`enqueue --dry-run` finds nothing to send);
- the queues and both DLQs are empty;
- `producer verify` passes (references, bytes and decoded values of sampled chunks);
- `committer gc` lists the orphans the killed commits left, deletes them, and `verify` still
  passes.
The other drill: N committers at once on one S3 store, the same checks.

The fault drills put tests/faults/faults.py (mitmproxy) between floe and LocalStack: at 20% of
S3 and SQS requests answered with 503 SlowDown, 500 InternalError, a dropped connection or a lost
answer, the fleet (enqueue with pre-flight, 2 virtualizers, a committer) writes every good group
exactly once, the corrupted ones partial, nothing dead-lettered, and the store verifies; at 100% (an
outage) every command fails within its retry budget naming the endpoint and the cause, and a run
after the outage completes the store.
"""
import json
import os
import random
import re
import signal
import subprocess
import sys
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests" / "fixtures"))
sys.path.insert(0, str(ROOT / "localstack"))
sys.path.insert(0, str(ROOT / "tests" / "oracle"))
import make_archive as gen  # noqa: E402
from faults import FaultProxy  # noqa: E402
from seed import seed, to_toml  # noqa: E402

ENDPOINT = os.environ.get("AWS_ENDPOINT_URL", "http://127.0.0.1:4566")
WORKER = ["--poll-wait", "1", "--visibility-timeout", "10"]
ANSI = re.compile(r"\x1b\[[0-9;]*m")


def s3_client():
    import boto3
    return boto3.client("s3", endpoint_url=ENDPOINT, region_name="us-east-1", aws_access_key_id="test",
                        aws_secret_access_key="test")


class DrillFleet:
    """One fleet (bucket, queues, floe.toml) over an archive uploaded to its bucket."""

    def __init__(self, tmp, archive_root, binary, endpoint=ENDPOINT):
        self.tmp, self.root, self.binary = Path(tmp), Path(archive_root), binary
        self.name = f"floe-drill-{uuid.uuid4().hex[:10]}"
        self.config = seed(self.name, f"s3://{self.name}/archive", 3, 10)
        self.toml = self.tmp / f"{self.name}.toml"
        self.toml.write_text(to_toml(self.config))
        # floe's processes talk to `endpoint` (a fault proxy, say); the drill's own checks and
        # uploads talk to LocalStack directly.
        self.env = {**os.environ, "AWS_ENDPOINT_URL": endpoint, "AWS_REGION": "us-east-1",
                    "AWS_DEFAULT_REGION": "us-east-1", "AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test",
                    "FLOE_CONFIG": str(self.toml), "RUST_LOG": "info", "NO_COLOR": "1"}
        self.logs = []
        self.upload(sorted(p for p in self.root.rglob("*") if p.is_file()))

    def upload(self, paths, sources=None):
        s3 = s3_client()

        def put(i):
            key = f"archive/{paths[i].relative_to(self.root)}"
            s3.put_object(Bucket=self.name, Key=key, Body=Path((sources or paths)[i]).read_bytes())

        with ThreadPoolExecutor(16) as pool:
            list(pool.map(put, range(len(paths))))

    def run(self, program, *args, timeout=900):
        return subprocess.run([self.binary(program), *map(str, args)], capture_output=True, text=True,
                              env=self.env, timeout=timeout)

    def json(self, program, *args):
        proc = self.run(program, *args)
        assert proc.returncode == 0, proc.stderr[-3000:]
        return json.loads(proc.stdout)

    def lines(self, program, *args):
        proc = self.run(program, *args)
        assert proc.returncode == 0, proc.stderr[-3000:]
        return [json.loads(line) for line in proc.stdout.splitlines() if line.strip()]

    def start(self, program, *args):
        log = self.tmp / f"{self.name}-{program}-{len(self.logs)}.log"
        self.logs.append(log)
        return subprocess.Popen([self.binary(program), "worker", *WORKER, *map(str, args)], stdout=open(log, "w"),
                                stderr=subprocess.STDOUT, env=self.env), log

    def wait_for_log(self, log, text, timeout=120):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if text in log.read_text(errors="replace"):
                return True
            time.sleep(0.05)
        return False

    def wait_all(self, procs, timeout=1800):
        for p in procs:
            p.wait(timeout=timeout)
        failed = [(p.args[:2], p.returncode) for p in procs if p.returncode != 0]
        assert not failed, (failed, [log.read_text(errors="replace")[-2000:] for log in self.logs[-len(procs):]])

    def drain(self, virtualizers=2, committers=1, idle=8):
        procs = [self.start("virtualizer", "--exit-when-idle", idle)[0] for _ in range(virtualizers)]
        procs += [self.start("committer", "--exit-when-idle", idle + 4, "--batch-size", 100, "--batching-window",
                             2)[0] for _ in range(committers)]
        self.wait_all(procs)

    def heartbeat_stats(self):
        """What the workers' logs say about visibility extensions: how many took longer than their
        period (and the slowest), and how many the queue refused (a message that may reappear)."""
        text = "".join(ANSI.sub("", log.read_text(errors="replace")) for log in self.logs)
        slow = [int(m) for m in re.findall(r"slower than its period.*?took_ms=(\d+)", text)]
        return {"slow_extensions": len(slow), "slowest_extension_ms": max(slow, default=0),
                "refused_extensions": text.count("could not extend the visibility timeout")}

    def status(self):
        return self.json("producer", "status", "--json")

    def depths(self):
        status = self.status()
        return {q["name"]: q["depth"]["visible"] + q["depth"]["in_flight"] + q["depth"]["delayed"]
                for q in status["queues"]}

    def depths_direct(self):
        """Queue depths read from LocalStack itself (not through the fleet's endpoint)."""
        import boto3
        sqs = boto3.client("sqs", endpoint_url=ENDPOINT, region_name="us-east-1", aws_access_key_id="test",
                           aws_secret_access_key="test")
        names = ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible",
                 "ApproximateNumberOfMessagesDelayed"]
        return {key: sum(int(v) for v in sqs.get_queue_attributes(QueueUrl=self.config[key],
                                                                  AttributeNames=names)["Attributes"].values())
                for key in ("work_queue_url", "work_dlq_url", "results_queue_url", "results_dlq_url")}

    def writes(self):
        return [g for c in self.lines("committer", "log", "--store", self.config["store_url"], "-n", "100000",
                                      "--json") for g in c["groups"]]


def check_exactly_once(fleet, groups, rewritten=()):
    """Every group written by exactly one commit (those of REWRITTEN by two: a partial build,
    then the whole one after its file was fixed), from its current inputs; every queue empty."""
    writes = fleet.writes()
    expected = sorted([*groups, *rewritten])
    extra = sorted({g for g in writes if writes.count(g) > expected.count(g)})
    assert not extra, f"written more often than once a batch: {extra[:10]}"
    assert sorted(writes) == expected, (len(writes), len(expected))
    plan = fleet.json("producer", "enqueue", "--all", "--dry-run", "--json")
    assert plan["enqueued"] == [] and len(plan["unchanged"]) == len(groups), plan.get("enqueued", [])[:5]
    depths = fleet.depths()
    assert all(n == 0 for n in depths.values()), depths


def check_partial(fleet, broken):
    """The groups of BROKEN ({group: (truncated file, good file)}) are committed without the
    truncated file's variable, each named with the file and the reason; no dead letter."""
    status = fleet.status()
    partial = {p["group"]: p["left_out"] for p in status["partial"]}
    assert sorted(partial) == sorted(broken), (sorted(partial), sorted(broken))
    for group, (rel, _) in broken.items():
        [left_out] = partial[group]
        assert left_out["file"].endswith(rel) and "file cannot be read" in left_out["reason"], left_out
        assert Path(rel).name.startswith(left_out["variable"] + "_"), left_out
    dead = fleet.lines("producer", "dlq", "list", "--json")
    assert dead == [], dead[:3]
    return partial


def check_verify(fleet, partial=()):
    """`producer verify` passes: every group ok, those of PARTIAL verified as partial."""
    proc = fleet.run("producer", "verify", "--json")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    report = json.loads(proc.stdout)
    statuses = {g["group"]: g["status"] for g in report["groups"]}
    assert all(s == ("partial" if g in partial else "ok") for g, s in statuses.items()), statuses
    return sum(g["chunks_read"] for g in report["groups"]), sum(g["chunks_decoded"] for g in report["groups"])


def kill_and_restart(fleet, proc, log, role, args, rng, wait_text, within=1.5):
    """SIGKILLs PROC at a random moment within WITHIN seconds after it logged WAIT_TEXT, then
    starts a replacement."""
    assert fleet.wait_for_log(log, wait_text, timeout=300), log.read_text(errors="replace")[-2000:]
    time.sleep(rng.uniform(0.0, within))
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    return fleet.start(role, *args)


def shard_args(shard_files):
    """`enqueue`'s arguments for groups in shards of SHARD_FILES files (None: the default, one
    message per ISMIP6 group)."""
    return [] if shard_files is None else ["--shard-files", shard_files]


def crash_drill(tmp, groups, binary, fraction=0.05, seed_=7, shard_files=None):
    """The crash, duplicate and corruption drill; returns what it measured. Asserts every check.
    With SHARD_FILES, every group travels in shards, each its own message and dead letter."""
    rng = random.Random(seed_)
    tmp = Path(tmp)
    bad = max(1, round(groups * fraction))
    root, files, broken = gen.scale_archive(str(tmp / "archive"), groups, bad)
    started = time.perf_counter()
    fleet = DrillFleet(tmp, root, binary)
    all_groups = sorted(f"{d.parts[-3]}_{d.parts[-2]}/{d.parts[-1]}" for d in Path(root).glob("*/*/*"))
    for _ in range(2):  # every message delivered twice
        sent = fleet.json("producer", "enqueue", "--all", *shard_args(shard_files), "--json")
        assert len(sent["enqueued"]) == groups, sent.get("failed")
    v_args = ["--exit-when-idle", 8]
    c_args = ["--exit-when-idle", 12, "--batch-size", 100, "--batching-window", 2]
    v1, v1_log = fleet.start("virtualizer", *v_args)
    v2, _ = fleet.start("virtualizer", *v_args)
    c1, c1_log = fleet.start("committer", *c_args)
    v1, _ = kill_and_restart(fleet, v1, v1_log, "virtualizer", v_args, rng, "received a batch")
    # Mid-commit: manifests are being written, so the kill leaves orphans for `gc` to find.
    c1, _ = kill_and_restart(fleet, c1, c1_log, "committer", c_args, rng, "writing the commit", within=0.5)
    fleet.wait_all([v1, v2, c1])
    partial = check_partial(fleet, broken)
    # Fix every corrupted file, enqueue again (only the fixed groups go), drain.
    fleet.upload([Path(root) / rel for rel, _ in broken.values()], [good for _, good in broken.values()])
    fixes = fleet.json("producer", "enqueue", "--all", *shard_args(shard_files), "--json")
    assert sorted(fixes["enqueued"]) == sorted(broken), fixes.get("enqueued")
    fleet.drain()
    elapsed = time.perf_counter() - started
    check_exactly_once(fleet, all_groups, rewritten=broken)
    read, decoded = check_verify(fleet)
    dry = fleet.json("committer", "gc", "--store", fleet.config["store_url"], "--older-than", "0s", "--json")
    gone = fleet.json("committer", "gc", "--store", fleet.config["store_url"], "--older-than", "0s", "--delete",
                      "--json")
    orphans = dry["snapshots"] + dry["transaction_logs"] + dry["manifests"] + dry["chunks"]
    assert (gone["snapshots"], gone["manifests"]) == (dry["snapshots"], dry["manifests"]), (dry, gone)
    again = check_verify(fleet)
    check_exactly_once(fleet, all_groups, rewritten=broken)
    return {"groups": groups, "files": files, "corrupted": len(broken), "partial": len(partial),
            "messages": sent["messages"], "kills": 2, "seconds": elapsed, "orphans": orphans, "orphan_manifests": dry["manifests"],
            "verified_chunks": read, "decoded_chunks": decoded, "verified_after_gc": again[0]}


def parallel_committers_drill(tmp, groups, binary, committers=16):
    """N committers on one S3 store at once: every group exactly once, and the store verifies."""
    tmp = Path(tmp)
    root, files, _ = gen.scale_archive(str(tmp / "archive"), groups, 0)
    started = time.perf_counter()
    fleet = DrillFleet(tmp, root, binary)
    all_groups = sorted(f"{d.parts[-3]}_{d.parts[-2]}/{d.parts[-1]}" for d in Path(root).glob("*/*/*"))
    sent = fleet.json("producer", "enqueue", "--all", "--json")
    assert len(sent["enqueued"]) == groups
    procs = [fleet.start("virtualizer", "--exit-when-idle", 8)[0] for _ in range(2)]
    procs += [fleet.start("committer", "--exit-when-idle", 14, "--batch-size", 10, "--batching-window", 1)[0]
              for _ in range(committers)]
    fleet.wait_all(procs)
    elapsed = time.perf_counter() - started
    check_exactly_once(fleet, all_groups)
    read, decoded = check_verify(fleet)
    commits = fleet.lines("committer", "log", "--store", fleet.config["store_url"], "-n", "100000", "--json")
    return {"groups": groups, "committers": committers, "seconds": elapsed,
            "commits": sum(1 for c in commits if c["groups"]), "verified_chunks": read, "decoded_chunks": decoded,
            **fleet.heartbeat_stats()}


def fault_drill(tmp, groups, binary, rate=0.2, fraction=0.05, seed_=11, shard_files=None):
    """The fleet through a proxy that fails RATE of S3 and SQS requests; returns what it measured.
    With SHARD_FILES, every group travels in shards."""
    tmp = Path(tmp)
    bad = max(1, round(groups * fraction))
    root, files, broken = gen.scale_archive(str(tmp / "archive"), groups, bad)
    proxy = FaultProxy(tmp, rate=rate, seed=seed_)
    try:
        started = time.perf_counter()
        fleet = DrillFleet(tmp, root, binary, endpoint=proxy.url)
        all_groups = sorted(f"{d.parts[-3]}_{d.parts[-2]}/{d.parts[-1]}" for d in Path(root).glob("*/*/*"))
        sent = fleet.json("producer", "enqueue", "--all", *shard_args(shard_files), "--json")  # pre-flight on
        assert len(sent["enqueued"]) == groups, sent.get("failed")
        fleet.drain(virtualizers=2, committers=1)
        elapsed = time.perf_counter() - started
        partial = check_partial(fleet, broken)
        writes = fleet.writes()
        assert sorted(writes) == all_groups, (len(writes), len(all_groups), sorted(set(writes) ^ set(all_groups))[:5])
        read, decoded = check_verify(fleet, partial)
        injected = proxy.faults()
        kinds = {k: sum(1 for f in injected if f["fault"] == k) for k in ("slowdown", "internal", "drop", "lost")}
        requests = len(proxy.entries())
    finally:
        proxy.stop()
    return {"groups": groups, "files": files, "corrupted": len(broken), "partial": len(partial), "rate": rate,
            "messages": sent["messages"],
            "requests": requests, "faults": len(injected), **kinds, "seconds": elapsed, "verified_chunks": read,
            "decoded_chunks": decoded, **fleet.heartbeat_stats()}


OUTAGE_CAUSES = ("SlowDown", "InternalError", "RequestThrottled", "InternalFailure", "503", "500",
                 "connection closed", "error sending request", "dispatch failure")


def outage_drill(tmp, groups, binary, attempts=4, budget=8):
    """Every S3 and SQS request fails (an outage): each command fails on its own, within its retry
    budget, naming the endpoint and the cause, and leaves nothing a later run does not repair; the
    run after the outage writes every group. Returns each command's seconds."""
    tmp = Path(tmp)
    root, _, _ = gen.scale_archive(str(tmp / "archive"), groups, 0)
    proxy = FaultProxy(tmp, rate=1.0, kinds="slowdown,internal,drop")
    timings = {}
    try:
        fleet = DrillFleet(tmp, root, binary, endpoint=proxy.url)
        fleet.env.update({"FLOE_RETRY_ATTEMPTS": str(attempts), "FLOE_RETRY_BUDGET": f"{budget}s"})
        store = fleet.config["store_url"]
        commands = {
            "plan": ("producer", "plan"),
            "enqueue": ("producer", "enqueue", "--all"),
            "status": ("producer", "status"),
            "dlq list": ("producer", "dlq", "list"),
            "verify": ("producer", "verify"),
            "local": ("producer", "local", "--source", fleet.config["source_url"], "--store", store),
            "committer worker": ("committer", "worker", "--exit-when-idle", "5"),
            "virtualizer worker": ("virtualizer", "worker", "--exit-when-idle", "5", "--poll-wait", "1"),
        }
        for name, command in commands.items():
            started = time.perf_counter()
            proc = fleet.run(*command, timeout=600)
            timings[name] = time.perf_counter() - started
            err = ANSI.sub("", proc.stderr)
            assert proc.returncode != 0, (name, proc.stdout[-2000:], err[-2000:])
            # The program's own error line, naming the endpoint and the cause.
            final = err[err.rfind(f"\n{command[0]}: ") + 1:] if f"\n{command[0]}: " in err else err
            assert final.startswith(f"{command[0]}: "), (name, err[-3000:])
            assert proxy.host in final, (name, final[-3000:])
            assert any(c in final for c in OUTAGE_CAUSES), (name, final[-3000:])
        # Nothing was created: no repository object, no message sent.
        s3 = s3_client()
        assert s3.list_objects_v2(Bucket=fleet.name, Prefix="store/").get("KeyCount", 0) == 0
        assert all(n == 0 for n in DrillFleet.depths_direct(fleet).values())
    finally:
        proxy.stop()
    # The outage is over: the same commands complete the store.
    fleet.env["AWS_ENDPOINT_URL"] = ENDPOINT
    all_groups = sorted(f"{d.parts[-3]}_{d.parts[-2]}/{d.parts[-1]}" for d in Path(root).glob("*/*/*"))
    sent = fleet.json("producer", "enqueue", "--all", "--json")
    assert len(sent["enqueued"]) == groups, sent
    fleet.drain()
    check_exactly_once(fleet, all_groups)
    check_verify(fleet)
    return {"groups": groups, "attempts": attempts, "budget_s": budget, "seconds": timings}
