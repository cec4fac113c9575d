"""Pre-flight checks of `producer plan` and `producer enqueue` on LocalStack (real SQS and S3
through the AWS SDK): each misconfiguration is named with how to fix it, nothing is sent or
written when a check fails, and `--skip-checks` bypasses them."""
import subprocess
import sys

import pytest

from conftest import ROOT
from faults import FaultProxy
from fleet import Fleet
from localstack import client

sys.path.insert(0, str(ROOT / "localstack"))


@pytest.fixture
def fleet(tmp_path):
    gen = tmp_path / "gen"
    subprocess.run([sys.executable, str(ROOT / "tests/fixtures/make_archive.py"), str(gen)], check=True)
    return Fleet(tmp_path, gen / "archive")


def work_messages(fleet):
    attrs = client("sqs").get_queue_attributes(QueueUrl=fleet.config["work_queue_url"],
                                               AttributeNames=["ApproximateNumberOfMessages"])["Attributes"]
    return int(attrs["ApproximateNumberOfMessages"])


def test_a_good_fleet_passes_every_check(fleet):
    proc = fleet.run("producer", "plan")
    assert proc.returncode == 0, proc.stderr
    assert "pre-flight:" in proc.stdout and "FAIL" not in proc.stdout
    for name in ["AWS credentials", "lists", "is writable", "virtual chunk containers cover"]:
        assert name in proc.stdout, proc.stdout


def test_a_missing_queue_is_named_and_nothing_is_sent(fleet):
    client("sqs").delete_queue(QueueUrl=fleet.config["results_queue_url"])
    proc = fleet.run("producer", "enqueue", "--all")
    assert proc.returncode == 1
    assert "results queue" in proc.stderr and fleet.config["results_queue_url"] in proc.stderr, proc.stderr
    assert "cannot be read" in proc.stderr and "--skip-checks" in proc.stderr
    assert work_messages(fleet) == 0
    assert client("s3").list_objects_v2(Bucket=fleet.name, Prefix="store/").get("KeyCount", 0) == 0


@pytest.mark.parametrize("request_line", ["AmazonSQS.GetQueueAttributes", "PUT /"])
def test_enqueue_survives_a_dropped_connection_during_pre_flight(fleet, tmp_path, request_line):
    """One connection dropped mid-check (the queue check, or the store's write probe) is retried
    like every other call: the checks pass and the groups are sent."""
    proxy = FaultProxy(tmp_path, kinds="drop", first=1, match=request_line)
    try:
        fleet.env["AWS_ENDPOINT_URL"] = proxy.url
        proc = fleet.run("producer", "enqueue", "--all")
        dropped = proxy.faults()
    finally:
        proxy.stop()
    assert proc.returncode == 0, proc.stderr
    assert len(dropped) == 1 and dropped[0]["fault"] == "drop", dropped
    assert request_line in f"{dropped[0]['method']} {dropped[0]['path']} {dropped[0]['target']}", dropped
    assert work_messages(fleet) > 0


def test_a_queue_without_redrive_policy_is_named(fleet):
    sqs = client("sqs")
    sqs.set_queue_attributes(QueueUrl=fleet.config["work_queue_url"], Attributes={"RedrivePolicy": ""})
    proc = fleet.run("producer", "enqueue", "--all")
    assert proc.returncode == 1 and "no redrive policy" in proc.stderr, proc.stderr
    assert work_messages(fleet) == 0


def test_a_visibility_timeout_shorter_than_the_function_is_named(fleet):
    fleet.toml.write_text(fleet.toml.read_text() + "virtualizer_timeout_seconds = 300\n")
    proc = fleet.run("producer", "enqueue", "--all")
    assert proc.returncode == 1
    assert "visibility timeout (10 s) is shorter than the function timeout (300 s)" in proc.stderr, proc.stderr


def test_an_unreadable_source_is_named(fleet):
    proc = fleet.run("producer", "plan", "--source", "s3://no-such-bucket-floe-preflight/archive")
    assert proc.returncode == 1
    assert "source s3://no-such-bucket-floe-preflight/archive lists" in proc.stderr, proc.stderr
    assert "cannot be listed" in proc.stderr


def test_a_store_without_a_container_for_the_source_is_named(fleet, tmp_path):
    # A store made for another archive: its repository has no container for this fleet's source.
    subprocess.run([sys.executable, str(ROOT / "tests/fixtures/make_archive.py"), str(tmp_path / "gen2")], check=True)
    made = fleet.run("producer", "local", "--source", tmp_path / "gen2/archive", "--store", fleet.config["store_url"],
                     "--filter", "AWI_PISM1/exp05")
    assert made.returncode == 0, made.stderr
    proc = fleet.run("producer", "plan")
    assert proc.returncode == 1
    assert f"cover s3://{fleet.name}/archive/" in proc.stderr and "producer enqueue` adds the container" in proc.stderr, \
        proc.stderr
    assert fleet.run("producer", "plan", "--skip-checks").returncode == 0
