"""The Lambda entry points, unmodified binaries started as the Lambda service starts a
provided.al2023 function, fed real SqsEvent payloads through a Lambda Runtime API
emulator (lambda_emulator.py): partial batch failures come back as
`batchItemFailures`, and the good messages have their full effect on LocalStack."""
import json
import sys
import warnings

import pytest

from checks import assert_group_equals_sources
from conftest import ROOT, binary
from fleet import Fleet
from lambda_emulator import RuntimeApi, sqs_event
from localstack import client

warnings.filterwarnings("ignore", category=DeprecationWarning)


@pytest.fixture
def fleet(tmp_path):
    import subprocess
    out = tmp_path / "gen"
    subprocess.run([sys.executable, str(ROOT / "tests/fixtures/make_archive.py"), str(out)], check=True)
    f = Fleet(tmp_path, out / "archive")
    f.expected = json.loads((out / "expected.json").read_text())
    return f


def receive_all(queue_url, n):
    sqs = client("sqs")
    got = []
    for _ in range(20):
        got += sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=1,
                                   AttributeNames=["All"]).get("Messages", [])
        if len(got) >= n:
            break
    assert len(got) == n, got
    return got


def arn(queue_url):
    return client("sqs").get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]


def fake(message_id, body):
    return {"MessageId": message_id, "ReceiptHandle": f"handle-{message_id}", "Body": body,
            "Attributes": {"ApproximateReceiveCount": "1"}}


def invoke(program, fleet, event):
    api = RuntimeApi(program)
    env = dict(fleet.env)
    env.pop("FLOE_CONFIG")  # inside Lambda, configuration comes from FLOE_* variables
    env.update({k.upper() if k.startswith("floe") else f"FLOE_{k.upper()}": v for k, v in fleet.config.items()})
    proc = api.start_function(binary(program), env)
    try:
        kind, body = api.invoke(event, process=proc)
    finally:
        proc.kill()
        proc.wait()
        api.close()
    assert kind == "response", body
    return json.loads(body), proc.stderr.read()


def test_virtualizer_and_committer_lambdas_report_partial_batch_failures(fleet):
    c = fleet.config
    fleet.json("producer", "enqueue", "--filter", "AWI", "--filter", "ULB", "--json")
    work = receive_all(c["work_queue_url"], 2)
    malformed = fake("malformed-1", "this is not json")
    response, logs = invoke("virtualizer", fleet, sqs_event(work + [malformed], arn(c["work_queue_url"])))
    failed = sorted(f["itemIdentifier"] for f in response["batchItemFailures"])
    assert failed == ["malformed-1"], (response, logs)  # ULB's 0-byte file leaves out its variable only
    # Logs are JSON inside Lambda.
    assert all(json.loads(line) for line in logs.splitlines() if line.strip())

    results = receive_all(c["results_queue_url"], 2)
    by_group = {json.loads(m["Body"])["group_path"]: m for m in results}
    assert sorted(by_group) == ["AWI_PISM1/exp05", "ULB_fETISh_32km/expA6"], sorted(by_group)
    missing = json.loads(by_group["AWI_PISM1/exp05"]["Body"])
    missing["fragment_url"] = missing["fragment_url"].replace("fragments/", "fragments/gone/")
    gone = fake("gone-1", json.dumps(missing))
    response, logs = invoke("committer", fleet, sqs_event(results + [gone], arn(c["results_queue_url"])))
    assert [f["itemIdentifier"] for f in response["batchItemFailures"]] == ["gone-1"], (response, logs)
    for group in by_group:
        assert_group_equals_sources(fleet.open_group(group), fleet.archive_root, group, fleet.expected[group])


def test_the_planner_lambda_plans_notifications_and_reports_the_unreadable_one(tmp_path):
    """`producer` started bare by the Lambda runtime is the planner behind the events queue: the
    same handler as `producer watch`, fed the S3 notifications LocalStack delivered."""
    sys.path.insert(0, str(ROOT / "tests" / "fixtures"))
    import make_mur
    (tmp_path / "archive").mkdir()
    f = Fleet(tmp_path, tmp_path / "archive", upload=False, events=True)
    f.env["FLOE_PROFILE"] = str(ROOT / "profiles" / "mur-sst.toml")
    files = make_mur.make(tmp_path / "staging", 2)
    for path in files:
        client("s3").upload_file(str(path), f.name, f"archive/MUR/{path.name}")
    events = receive_all(f.config["events_queue_url"], 3)  # S3's s3:TestEvent and the two objects
    bad = fake("unreadable-1", "{not a notification")
    response, logs = invoke("producer", f, sqs_event(events + [bad], arn(f.config["events_queue_url"])))
    assert [x["itemIdentifier"] for x in response["batchItemFailures"]] == ["unreadable-1"], (response, logs)
    assert all(json.loads(line) for line in logs.splitlines() if line.strip())
    [work] = receive_all(f.config["work_queue_url"], 1)
    batch = json.loads(work["Body"])
    assert batch["group"]["path"] == "MUR" and sorted(x["url"].rsplit("/", 1)[1] for x in batch["files"]) == \
        sorted(p.name for p in files), batch
    # Its reason is recorded for `producer dlq list --queue events`, where the redrive policy puts it.
    record = client("s3").get_object(Bucket=f.name, Key="fragments/failures/events/message-unreadable-1.json")
    assert "not JSON" in json.loads(record["Body"].read())["reason"]
