#!/usr/bin/env python3
"""Create one floe fleet's queues and bucket on LocalStack and print its floe.toml.

    python localstack/seed.py --name demo > floe.toml

Creates: bucket NAME (fragments under fragments/, store under store/), queues
NAME-work and NAME-results, each with a dead-letter queue (NAME-work-dlq,
NAME-results-dlq) and a redrive policy (maxReceiveCount = --max-receive).
Idempotent. Every test calls it with its own name: LocalStack has no reset.
Uses boto3 (in LocalStack's venv and in the oracle venv).
"""
import argparse
import json
import os

import boto3

ENDPOINT = os.environ.get("AWS_ENDPOINT_URL", "http://127.0.0.1:4566")


def client(service):
    return boto3.client(service, endpoint_url=ENDPOINT, region_name=os.environ.get("AWS_REGION", "us-east-1"),
                        aws_access_key_id=os.environ.get("AWS_ACCESS_KEY_ID", "test"),
                        aws_secret_access_key=os.environ.get("AWS_SECRET_ACCESS_KEY", "test"))


def create_queue_pair(sqs, name, max_receive, visibility):
    dlq_url = sqs.create_queue(QueueName=f"{name}-dlq",
                               Attributes={"MessageRetentionPeriod": str(14 * 24 * 3600)})["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    url = sqs.create_queue(QueueName=name, Attributes={
        "VisibilityTimeout": str(visibility),
        "RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": str(max_receive)}),
    })["QueueUrl"]
    return url, dlq_url


def seed(name, source=None, max_receive=3, visibility=120):
    """Creates the fleet's resources; returns its configuration as a dict."""
    s3 = client("s3")
    try:
        s3.create_bucket(Bucket=name)
    except s3.exceptions.BucketAlreadyOwnedByYou:
        pass
    sqs = client("sqs")
    work, work_dlq = create_queue_pair(sqs, f"{name}-work", max_receive, visibility)
    results, results_dlq = create_queue_pair(sqs, f"{name}-results", max_receive, visibility)
    config = {
        "store_url": f"s3://{name}/store",
        "fragments_url": f"s3://{name}/fragments",
        "work_queue_url": work,
        "work_dlq_url": work_dlq,
        "results_queue_url": results,
        "results_dlq_url": results_dlq,
    }
    if source:
        config["source_url"] = source
    return config


def to_toml(config):
    return "".join(f"{k} = {json.dumps(v)}\n" for k, v in config.items())


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--name", required=True, help="bucket and queue name prefix (lowercase, digits, '-')")
    p.add_argument("--source", help="source archive URL to put in the config (e.g. s3://NAME/archive)")
    p.add_argument("--max-receive", type=int, default=3, help="deliveries before a message goes to its DLQ")
    p.add_argument("--visibility", type=int, default=120, help="queue visibility timeout, seconds")
    a = p.parse_args()
    print(to_toml(seed(a.name, a.source, a.max_receive, a.visibility)), end="")


if __name__ == "__main__":
    main()
