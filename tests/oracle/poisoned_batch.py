"""One committer batch of ten result messages on LocalStack, one of whose fragments is invalid
(a chunk reference of zero bytes, resealed with a valid envelope and digest, so that only the
committer's own checks can find it): what the committer does with the batch, and how long it
takes. Used by tests/oracle/test_poisoned_batch.py (the outcome) and bench/poisoned_batch.py
(the time, for BENCHMARKS.md).

The archive: ten ISMIP6 groups of one file each, virtualized by the real virtualizer workers.
Their ten result messages are taken off the results queue, one fragment is poisoned, and all ten
are sent back in one `SendMessageBatch`, then one committer worker takes them with
`--batch-size 10`.
"""
import hashlib
import json
import time
from urllib.parse import urlparse

import numcodecs

from fleet import Fleet
from localstack import client
from test_hostile import ismip6_file

GROUPS = [f"INST_MODEL/exp{i:02d}" for i in range(1, 11)]
POISONED = "INST_MODEL/exp04"


def write_archive(root):
    for i, group in enumerate(GROUPS):
        exp = group.split("/")[1]
        ismip6_file(root / "INST" / "MODEL" / exp / f"lithk_AIS_INST_MODEL_{exp}.nc", "lithk", offset=i)


def reseal_with_a_zero_length_reference(blob):
    """The fragment with its first reference's length set to 0, in a valid envelope."""
    assert blob[:8] == b"FLOEFRAG", blob[:8]
    doc = json.loads(numcodecs.Zstd().decode(blob[44:]))
    array = next(a for a in doc["arrays"] if a["refs"])
    array["refs"][0]["length"] = 0
    payload = numcodecs.Zstd(level=3).encode(json.dumps(doc).encode())
    return blob[:12] + hashlib.sha256(payload).digest() + bytes(payload), array["name"]


def take_results(fleet, count, timeout=60):
    sqs, taken, deadline = client("sqs"), {}, time.time() + timeout
    while len(taken) < count and time.time() < deadline:
        got = sqs.receive_message(QueueUrl=fleet.config["results_queue_url"], MaxNumberOfMessages=10,
                                  WaitTimeSeconds=1, VisibilityTimeout=120).get("Messages", [])
        for m in got:
            body = json.loads(m["Body"])
            taken[body["group_path"]] = body
            sqs.delete_message(QueueUrl=fleet.config["results_queue_url"], ReceiptHandle=m["ReceiptHandle"])
    assert len(taken) == count, sorted(taken)
    return taken


def poison(fleet, body):
    s3 = client("s3")
    url = urlparse(body["fragment_url"])
    blob = s3.get_object(Bucket=url.netloc, Key=url.path.lstrip("/"))["Body"].read()
    bad, array = reseal_with_a_zero_length_reference(blob)
    sha = hashlib.sha256(bad).hexdigest()
    key = url.path.lstrip("/").rsplit("/", 1)[0] + f"/{sha}.floefrag"
    s3.put_object(Bucket=url.netloc, Key=key, Body=bad)
    return dict(body, fragment_url=f"s3://{url.netloc}/{key}", fragment_sha256=sha), array


def run_poisoned_batch(tmp):
    """Runs the batch; returns what happened and the committer's wall time."""
    root = tmp / "archive"
    write_archive(root)
    fleet = Fleet(tmp, root, max_receive=2, visibility=10)
    enqueued = fleet.json("producer", "enqueue", "--all", "--json")
    assert sorted(enqueued["enqueued"]) == GROUPS, enqueued
    virtualizers = [fleet.start("virtualizer", "--exit-when-idle", 3)[0] for _ in range(2)]
    for p in virtualizers:
        assert p.wait(timeout=300) == 0, [log.read_text()[-2000:] for log in fleet.logs]
    bodies = take_results(fleet, len(GROUPS))
    bodies[POISONED], array = poison(fleet, bodies[POISONED])
    client("sqs").send_message_batch(QueueUrl=fleet.config["results_queue_url"], Entries=[
        {"Id": str(i), "MessageBody": json.dumps(bodies[g])} for i, g in enumerate(GROUPS)])
    started = time.perf_counter()
    committer, log = fleet.start("committer", "--batch-size", 10, "--batching-window", 2, "--exit-when-idle", 3)
    # The time the batch takes: until every message is committed or dead-lettered.
    settled = None
    while committer.poll() is None:
        status = fleet.status()
        if settled is None and fleet.depth(status, "results") == 0 and fleet.depth(status, "results-dlq") == 1:
            settled = time.perf_counter() - started
        time.sleep(0.1)
    exited = time.perf_counter() - started
    return {
        "fleet": fleet, "array": array, "exit": committer.returncode, "log": log.read_text(),
        "status": fleet.status(), "commits": fleet.commits(), "dead": fleet.dead_letters(),
        "settled_seconds": settled, "exited_seconds": exited,
    }
