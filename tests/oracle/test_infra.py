"""The CloudFormation template: cfn-lint clean; deployed to LocalStack's CloudFormation
(queues, DLQs, bucket, roles: the part that runs without Docker), its queues, redrive
policies, lifecycle and role policies are what the template says; `producer` reads its
configuration from the stack's outputs."""
import json
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import ROOT, binary
from localstack import aws_env, client, unique

TEMPLATE = ROOT / "infra" / "floe.yaml"


def test_template_passes_cfn_lint():
    proc = subprocess.run([str(Path(sys.executable).parent / "cfn-lint"), str(TEMPLATE)], capture_output=True,
                          text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.fixture(scope="module")
def stack():
    cfn = client("cloudformation")
    name = unique("floe-stack")
    topic = client("sns").create_topic(Name=unique("new-archive-object"))["TopicArn"]
    params = {"EnableWatch": "true", "SourceTopicArn": topic,"DeployFunctions": "false", "EnableAlarms": "false", "ArtifactBucket": "unused-artifacts",
              "MaxReceiveCount": "5", "VirtualizerTimeout": "120", "CommitterTimeout": "300",
              "CommitterBatchingWindow": "10", "FragmentRetentionDays": "7",
              "SourceUrl": "s3://some-archive/ISMIP6", "SourceS3BucketName": "some-archive",
              "SourceS3Prefix": "ISMIP6/"}
    cfn.create_stack(StackName=name, TemplateBody=TEMPLATE.read_text(), Capabilities=["CAPABILITY_IAM"],
                     Parameters=[{"ParameterKey": k, "ParameterValue": v} for k, v in params.items()])
    cfn.get_waiter("stack_create_complete").wait(StackName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 120})
    described = cfn.describe_stacks(StackName=name)["Stacks"][0]
    outputs = {o["OutputKey"]: o["OutputValue"] for o in described["Outputs"]}
    resources = {r["LogicalResourceId"]: r["PhysicalResourceId"]
                 for r in cfn.describe_stack_resources(StackName=name)["StackResources"]}
    return {"name": name, "outputs": outputs, "resources": resources, "topic": topic}


def attributes(url):
    return client("sqs").get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]


def test_queues_have_the_templates_redrive_and_visibility(stack):
    out = stack["outputs"]
    work, results = attributes(out["WorkQueueUrl"]), attributes(out["ResultsQueueUrl"])
    work_dlq, results_dlq = attributes(out["WorkDlqUrl"]), attributes(out["ResultsDlqUrl"])
    assert work["VisibilityTimeout"] == "720"  # 6 x 120 s virtualizer timeout
    assert results["VisibilityTimeout"] == "1810"  # 6 x 300 s committer timeout + 10 s window
    for queue, dlq in ((work, work_dlq), (results, results_dlq)):
        policy = json.loads(queue["RedrivePolicy"])
        assert policy["deadLetterTargetArn"] == dlq["QueueArn"] and int(policy["maxReceiveCount"]) == 5
        assert dlq["MessageRetentionPeriod"] == "1209600"


def test_bucket_expires_fragments_only(stack):
    bucket = stack["outputs"]["StoreUrl"].split("/")[2]
    assert stack["outputs"]["FragmentsUrl"] == f"s3://{bucket}/fragments"
    client("s3").head_bucket(Bucket=bucket)
    # LocalStack's bucket provider ignores LifecycleConfiguration, so the rule is checked
    # in the template as CloudFormation parses it (cfn-lint's decoder).
    from cfnlint.decode import decode
    template, problems = decode(str(TEMPLATE))
    assert not problems
    rules = template["Resources"]["DataBucket"]["Properties"]["LifecycleConfiguration"]["Rules"]
    expiring = [r for r in rules if "ExpirationInDays" in r]
    assert len(expiring) == 1 and expiring[0]["Prefix"] == "fragments/"
    assert expiring[0]["ExpirationInDays"] == {"Ref": "FragmentRetentionDays"}


def role_statements(stack, logical):
    iam = client("iam")
    role = stack["resources"][logical]
    statements = []
    for name in iam.list_role_policies(RoleName=role)["PolicyNames"]:
        doc = iam.get_role_policy(RoleName=role, PolicyName=name)["PolicyDocument"]
        doc = json.loads(doc) if isinstance(doc, str) else doc
        statements += doc["Statement"]
    return statements


def as_list(v):
    return v if isinstance(v, list) else [v]


def test_the_events_queue_subscribes_to_the_source_topic(stack):
    out = stack["outputs"]
    events, dlq = attributes(out["EventsQueueUrl"]), attributes(out["EventsDlqUrl"])
    policy = json.loads(events["RedrivePolicy"])
    assert policy["deadLetterTargetArn"] == dlq["QueueArn"] and int(policy["maxReceiveCount"]) == 5
    assert out["EventsQueueArn"] == events["QueueArn"]
    subs = client("sns").list_subscriptions_by_topic(TopicArn=stack["topic"])["Subscriptions"]
    assert [(s["Protocol"], s["Endpoint"]) for s in subs] == [("sqs", events["QueueArn"])], subs
    allowed = json.loads(events["Policy"])["Statement"]
    assert {s["Principal"]["Service"] for s in allowed} == {"s3.amazonaws.com", "sns.amazonaws.com"}
    # A message on the topic reaches the queue, in its SNS envelope, which the planner reads.
    client("sns").publish(TopicArn=stack["topic"], Message='{"Records": []}')
    got = client("sqs").receive_message(QueueUrl=out["EventsQueueUrl"], WaitTimeSeconds=5)["Messages"]
    assert json.loads(got[0]["Body"])["Type"] == "Notification"


@pytest.mark.parametrize("role", ["VirtualizerRole", "CommitterRole", "PlannerRole"])
def test_roles_are_least_privilege(stack, role):
    statements = role_statements(stack, role)
    assert statements
    for s in statements:
        for action in as_list(s["Action"]):
            assert "*" not in action, (role, action)  # no s3:*, no sqs:*
        for resource in as_list(s["Resource"]):
            assert resource != "*" and not resource.endswith(":::*"), (role, resource)
    actions = {a for s in statements for a in as_list(s["Action"])}
    resources = " ".join(r for s in statements for r in as_list(s["Resource"]))
    if role == "VirtualizerRole":
        assert "sqs:SendMessage" in actions and "s3:GetObject" in actions
        assert "some-archive/ISMIP6/*" in resources and "/store/" not in resources
    elif role == "PlannerRole":
        # Lists the source (never reads it), sends work, reads the store and its own records.
        assert "sqs:SendMessage" in actions and "s3:ListBucket" in actions
        assert "arn:aws:s3:::some-archive" in resources and "some-archive/ISMIP6/*" not in resources
    else:
        # The committer sends only to the events queue (a refused append asks the planner to replan).
        sends = [s for s in statements if "sqs:SendMessage" in as_list(s["Action"])]
        assert [as_list(s["Resource"]) for s in sends] == [[stack["outputs"]["EventsQueueArn"]]], sends
        assert "/store/*" in resources and "some-archive" in resources


def test_producer_reads_its_configuration_from_the_stack(stack):
    env = aws_env()
    proc = subprocess.run([binary("producer"), "config", "--stack", stack["name"]], capture_output=True, text=True,
                          env=env, cwd=ROOT / "infra")
    assert proc.returncode == 0, proc.stderr
    out = stack["outputs"]
    for key, output in [("work_queue_url", "WorkQueueUrl"), ("results_dlq_url", "ResultsDlqUrl"),
                        ("store_url", "StoreUrl"), ("source_url", "SourceUrl")]:
        assert f'{key} = "{out[output]}"' in proc.stdout, proc.stdout
    # The function timeouts, for the pre-flight check of the queues' visibility timeouts.
    assert f"virtualizer_timeout_seconds = {out['VirtualizerTimeout']}" in proc.stdout, proc.stdout
    assert f"committer_timeout_seconds = {out['CommitterTimeout']}" in proc.stdout, proc.stdout
    status = subprocess.run([binary("producer"), "status", "--stack", stack["name"], "--json"], capture_output=True,
                            text=True, env=env, cwd=ROOT / "infra")
    assert status.returncode == 0, status.stderr
    s = json.loads(status.stdout)
    assert [q["name"] for q in s["queues"]] == ["work", "work-dlq", "results", "results-dlq", "events", "events-dlq"]
    assert s["watch"]["last_event"] is None and s["watch"]["in_flight"] == []
    assert s["planned"] == 0 and all(q["depth"]["visible"] == 0 for q in s["queues"])
    # Looking does not create: no repository appears under store/.
    bucket = out["StoreUrl"].split("/")[2]
    assert client("s3").list_objects_v2(Bucket=bucket, Prefix="store/").get("KeyCount", 0) == 0
    log = subprocess.run([binary("committer"), "log", "--store", out["StoreUrl"]], capture_output=True, text=True,
                         env=env)
    assert log.returncode != 0 and "no Icechunk repository at" in log.stderr


def test_unknown_stack_is_a_named_error():
    proc = subprocess.run([binary("producer"), "config", "--stack", "no-such-stack-" + unique("x")],
                          capture_output=True, text=True, env=aws_env(), cwd=ROOT / "infra")
    assert proc.returncode != 0 and "stack no-such-stack" in proc.stderr
