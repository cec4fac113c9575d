"""Reads over s3:// (LocalStack, real object_store S3 client) give the same output as file://."""
import h5py

from conftest import FIXTURES, fixture_files, run_inspect
from localstack import aws_env, bucket, client  # noqa: F401 (fixture)


def test_inspect_over_s3_equals_file(bucket):  # noqa: F811
    files = [p for p in fixture_files(".nc", ".h5")]
    s3 = client("s3")
    for p in files:
        s3.upload_file(str(p), bucket, f"fixtures/{p.name}")
    local, proc = run_inspect(*files)
    assert proc.returncode == 0, proc.stderr
    remote, proc = run_inspect(*[f"s3://{bucket}/fixtures/{p.name}" for p in files], env=aws_env())
    assert proc.returncode == 0, proc.stderr
    assert len(local) == len(remote) > 0

    def strip(r):
        r = dict(r)
        r.pop("file")
        return r

    for a, b in zip(local, remote):
        assert a["file"].rsplit("/", 1)[1] == b["file"].rsplit("/", 1)[1]
        assert strip(a) == strip(b)


def test_bad_file_over_s3_names_the_url(bucket):  # noqa: F811
    bad = [p for p in fixture_files(".nc", bad=True) if "empty" in p.name][0]
    client("s3").upload_file(str(bad), bucket, "bad/empty.nc")
    records, proc = run_inspect(f"s3://{bucket}/bad/empty.nc", f"s3://{bucket}/bad/missing.nc", env=aws_env())
    assert proc.returncode != 0 and records == []
    assert f"s3://{bucket}/bad/empty.nc: file is empty" in proc.stderr
    assert f"s3://{bucket}/bad/missing.nc: not found" in proc.stderr
