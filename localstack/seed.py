#!/usr/bin/env python3
"""Create one floe fleet's queues and bucket on LocalStack and print its floe.toml.

    python localstack/seed.py --name demo > floe.toml

Creates: bucket NAME (fragments under fragments/, store under store/), queues
NAME-work and NAME-results, each with a dead-letter queue (NAME-work-dlq,
NAME-results-dlq) and a redrive policy (maxReceiveCount = --max-receive).
With --events (and --source s3://BUCKET/PREFIX): also the events queue
NAME-events with its DLQ, and the source bucket's notification of every
ObjectCreated/ObjectRemoved under PREFIX, straight to the queue, or with
--via-sns through a topic NAME-objects (as NOAA's buckets announce objects);
events_queue_url and events_dlq_url go into the config.
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


def queue_arn(sqs, url):
    return sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]


def notify(source, queue_url, name, via_sns):
    """The source bucket announces objects under the source prefix on the events queue."""
    if not (source or "").startswith("s3://"):
        raise SystemExit("--events needs --source s3://BUCKET/PREFIX (the bucket whose objects are announced)")
    bucket, _, prefix = source[len("s3://"):].partition("/")
    prefix = prefix.strip("/") + "/" if prefix.strip("/") else ""
    s3, sqs = client("s3"), client("sqs")
    events = ["s3:ObjectCreated:*", "s3:ObjectRemoved:*"]
    rules = {"Key": {"FilterRules": [{"Name": "prefix", "Value": prefix}]}}
    arn = queue_arn(sqs, queue_url)
    if via_sns:
        sns = client("sns")
        topic = sns.create_topic(Name=f"{name}-objects")["TopicArn"]
        sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=arn)
        allow = {"Service": "sns.amazonaws.com"}, topic
        notification = {"TopicConfigurations": [{"TopicArn": topic, "Events": events, "Filter": rules}]}
    else:
        allow = {"Service": "s3.amazonaws.com"}, f"arn:aws:s3:::{bucket}"
        notification = {"QueueConfigurations": [{"QueueArn": arn, "Events": events, "Filter": rules}]}
    policy = {"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Principal": allow[0], "Action": "sqs:SendMessage", "Resource": arn,
        "Condition": {"ArnEquals": {"aws:SourceArn": allow[1]}}}]}
    sqs.set_queue_attributes(QueueUrl=queue_url, Attributes={"Policy": json.dumps(policy)})
    s3.put_bucket_notification_configuration(Bucket=bucket, NotificationConfiguration=notification)


def seed(name, source=None, max_receive=3, visibility=120, events=False, via_sns=False):
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
    if events:
        config["events_queue_url"], config["events_dlq_url"] = create_queue_pair(
            sqs, f"{name}-events", max_receive, visibility)
        notify(source, config["events_queue_url"], name, via_sns)
    return config


def to_toml(config):
    return "".join(f"{k} = {json.dumps(v)}\n" for k, v in config.items())


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--name", required=True, help="bucket and queue name prefix (lowercase, digits, '-')")
    p.add_argument("--source", help="source archive URL to put in the config (e.g. s3://NAME/archive)")
    p.add_argument("--max-receive", type=int, default=3, help="deliveries before a message goes to its DLQ")
    p.add_argument("--visibility", type=int, default=120, help="queue visibility timeout, seconds")
    p.add_argument("--events", action="store_true",
                   help="also the events queue (and DLQ) and the source bucket's notifications of its objects")
    p.add_argument("--via-sns", action="store_true",
                   help="with --events: the bucket notifies an SNS topic NAME-objects, which the queue subscribes to")
    a = p.parse_args()
    print(to_toml(seed(a.name, a.source, a.max_receive, a.visibility, a.events, a.via_sns)), end="")


if __name__ == "__main__":
    main()
