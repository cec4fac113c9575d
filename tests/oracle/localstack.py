"""LocalStack helpers: real boto3 clients against 127.0.0.1:4566, unique names per test."""
import os
import uuid

import boto3
import pytest

ENDPOINT = os.environ.get("AWS_ENDPOINT_URL", "http://127.0.0.1:4566")
AWS_ENV = {
    "AWS_ENDPOINT_URL": ENDPOINT,
    "AWS_REGION": "us-east-1",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_ACCESS_KEY_ID": "test",
    "AWS_SECRET_ACCESS_KEY": "test",
}


def aws_env():
    env = dict(os.environ)
    env.update(AWS_ENV)
    return env


def client(service, connections=10):
    from botocore.config import Config
    return boto3.client(service, endpoint_url=ENDPOINT, region_name="us-east-1",
                        aws_access_key_id="test", aws_secret_access_key="test",
                        config=Config(max_pool_connections=connections))


def unique(prefix):
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


@pytest.fixture
def bucket():
    s3 = client("s3")
    try:
        s3.list_buckets()
    except Exception as e:  # noqa: BLE001
        pytest.fail(f"LocalStack is not reachable at {ENDPOINT}: {e} (start it with localstack/start.sh)")
    name = unique("floe-test")
    s3.create_bucket(Bucket=name)
    return name


def upload_tree(bucket, root, prefix):
    """Uploads every file under ROOT as PREFIX/relative path, 16 at a time (boto3 clients are
    thread-safe); returns the keys in path order."""
    from concurrent.futures import ThreadPoolExecutor
    s3 = client("s3", connections=16)
    paths = [p for p in sorted(root.rglob("*")) if p.is_file()]
    keys = [f"{prefix}/{p.relative_to(root)}" for p in paths]
    with ThreadPoolExecutor(16) as pool:
        list(pool.map(lambda pk: s3.upload_file(str(pk[0]), bucket, pk[1]), zip(paths, keys)))
    return keys
