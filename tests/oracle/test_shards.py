"""Large groups on the fleet (LocalStack): `producer enqueue --shard-files N` sends a group of more
than N files as shards of consecutive files; each virtualizer stores its shard's per-file scans
under the fragments prefix, and the one that finds every shard stored assembles the group. Read
back through Python icechunk + xarray, the group equals `xr.open_mfdataset` of its files, and it is
written once although every message is delivered twice and a virtualizer is killed mid-shard. A bad
file fails its shard only, named in the DLQ; the group beside it is written; fixing the file and
redriving the shard completes the group. A group of 8,000 files (past one message) goes in the
default shards, both virtualizers reading part of it."""
import json
import shutil
import signal
import sys
from pathlib import Path

import numpy as np
import xarray as xr

from fleet import Fleet
from localstack import client

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests" / "fixtures"))
import make_mur  # noqa: E402

PROFILE = ROOT / "profiles" / "mur-sst.toml"


def assert_equals_open_mfdataset(ds, files):
    ref = xr.open_mfdataset([str(f) for f in files], combine="by_coords", mask_and_scale=False)
    assert sorted(ds.data_vars) == sorted(make_mur.VARIABLES)
    assert len(ds["time"]) == len(files)
    for name in [*make_mur.VARIABLES, "time", "lat", "lon"]:
        assert ds[name].dtype == ref[name].dtype, name
        np.testing.assert_array_equal(ds[name].values, ref[name].values, err_msg=name)


def shard_reads(log):
    """How many shards a virtualizer's log says it read (stored, or read and assembled)."""
    text = log.read_text(errors="replace")
    return text.count("stored the shard's scans") + text.count("read the batch's headers")


def shard_objects(fleet):
    listed = client("s3").list_objects_v2(Bucket=fleet.name, Prefix="fragments/shards/")
    return sorted(o["Key"] for o in listed.get("Contents", []))


def test_a_sharded_group_is_assembled_once_through_duplicates_and_a_killed_worker(tmp_path):
    files = make_mur.make(tmp_path / "archive", 23)
    fleet = Fleet(tmp_path, tmp_path / "archive")
    for _ in range(2):  # every shard sent twice
        sent = fleet.json("producer", "enqueue", "--all", "--profile", PROFILE, "--shard-files", 5, "--json")
        assert sent["enqueued"] == ["MUR"] and sent["messages"] == 5 and sent["sharded"] == [["MUR", 5]], sent
    # A virtualizer killed right after receiving shards: nothing was acknowledged.
    victim, log = fleet.start("virtualizer", "--batch-size", "2", "--visibility-timeout", "5")
    assert fleet.wait_for_log(log, "received a batch"), log.read_text()
    victim.send_signal(signal.SIGKILL)
    victim.wait()
    fleet.drain(virtualizers=2, committers=1)
    status = fleet.status()
    assert status["planned"] == 1 and status["committed"] == 1, status
    for q in ("work", "results", "work-dlq", "results-dlq"):
        assert fleet.depth(status, q) == 0, q
    writes = [g for c in fleet.commits() for g in c["groups"]]
    assert writes == ["MUR"], writes  # assembled more than once maybe, written once
    # Which shards logged "stored" is a race (a virtualizer that reads all five at once finds every
    # one stored and assembles five times); that the group was assembled, from five stored shards, is not.
    logs = "".join(p.read_text() for p in fleet.logs)
    assert "every shard stored; assembling the group" in logs
    keys = shard_objects(fleet)
    assert len(keys) == 5 and all("/5/" in k for k in keys), keys
    assert_equals_open_mfdataset(fleet.open_group("MUR"), files)
    again = fleet.json("producer", "enqueue", "--all", "--profile", PROFILE, "--shard-files", 5, "--json")
    assert again["enqueued"] == [] and again["unchanged"] == ["MUR"], again


def test_a_bad_file_fails_its_shard_by_name_blocks_nothing_else_and_a_fix_completes_the_group(tmp_path):
    archive = tmp_path / "archive"
    files = make_mur.make(archive, 12)
    # A second product, small enough for one message.
    (archive / "OSTIA").mkdir()
    others = []
    for f in files[:3]:
        other = archive / "OSTIA" / f.name.replace("-MUR-", "-OSTIA-")
        shutil.copy(f, other)
        others.append(other)
    fleet = Fleet(tmp_path, archive)
    bad = files[5]  # in shard 1 of 3
    bad_key = f"archive/MUR/{bad.name}"
    client("s3").put_object(Bucket=fleet.name, Key=bad_key, Body=b"\x89HDF\r\n\x1a\n" + b"\0" * 200)
    sent = fleet.json("producer", "enqueue", "--all", "--profile", PROFILE, "--shard-files", 4, "--json")
    assert sorted(sent["enqueued"]) == ["MUR", "OSTIA"] and sent["sharded"] == [["MUR", 3]], sent
    fleet.drain(virtualizers=2, committers=1)
    status = fleet.status()
    assert status["committed"] == 1, status
    assert_equals_open_mfdataset(fleet.open_group("OSTIA"), others)
    [dead] = fleet.dead_letters()
    assert dead["group"] == "MUR" and dead["batch_id"].endswith("-s00001"), dead
    assert bad.name in (dead.get("file") or "") and dead.get("reason"), dead
    assert len(shard_objects(fleet)) == 2  # shards 0 and 2 stored, waiting for 1

    client("s3").upload_file(str(bad), fleet.name, bad_key)
    proc = fleet.run("producer", "dlq", "redrive", "--queue", "work")
    assert proc.returncode == 0 and "moved 1 message(s)" in proc.stdout, proc.stdout + proc.stderr
    fleet.drain(virtualizers=1, committers=1)
    assert fleet.dead_letters() == []
    writes = sorted(g for c in fleet.commits() for g in c["groups"])
    assert writes == ["MUR", "OSTIA"], writes
    assert_equals_open_mfdataset(fleet.open_group("MUR"), files)
    proc = fleet.run("producer", "verify", "--profile", PROFILE, "--json")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]


def test_a_group_of_8000_files_is_read_by_both_virtualizers_and_equals_the_files(tmp_path):
    """Past what one message holds (about 6,000 files): the default shards (at most 1,000 files and
    200 KiB each), two virtualizers each reading some, one group written, equal to the files."""
    import netCDF4
    files = make_mur.make(tmp_path / "archive", 8000)
    fleet = Fleet(tmp_path, tmp_path / "archive")
    sent = fleet.json("producer", "enqueue", "--all", "--profile", PROFILE, "--json")
    [[group, shards]] = sent["sharded"]
    assert group == "MUR" and shards >= 8 and sent["messages"] == shards, sent
    # At the virtualizer's defaults (one message a receive, four loops), each worker takes a shard
    # only when it has room: the first to poll does not take them all.
    fleet.drain(virtualizers=2, committers=1, timeout=1200)
    reads = [shard_reads(log) for log in fleet.logs if log.name.startswith("virtualizer")]
    assert len(reads) == 2 and all(n > 0 for n in reads) and sum(reads) >= shards, reads
    assert [g for c in fleet.commits() for g in c["groups"]] == ["MUR"]
    assert fleet.dead_letters() == []
    ds = fleet.open_group("MUR")
    assert sorted(ds.data_vars) == sorted(make_mur.VARIABLES) and ds.sizes["time"] == len(files), ds.sizes
    times = ds["time"].values
    edges = [i * len(files) // shards for i in range(1, shards)]  # as floe_group::shard::split cuts
    for step in sorted({0, 4321, len(files) - 1, *edges, *(e - 1 for e in edges)}):
        with netCDF4.Dataset(files[step]) as nc:
            nc.set_auto_maskandscale(False)
            expected = netCDF4.num2date(nc["time"][0], nc["time"].units, only_use_cftime_datetimes=False,
                                        only_use_python_datetimes=True)
            assert times[step] == np.datetime64(expected, "ns"), (step, times[step], expected)
            for name in make_mur.VARIABLES:
                np.testing.assert_array_equal(ds[name].isel(time=step).values, nc[name][0], err_msg=f"{name} {step}")


def test_an_append_on_the_fleet_reads_the_new_files_once_through_duplicates_and_a_stale_base_is_refused(tmp_path):
    """Files uploaded after a series was indexed travel as an append of the new files only (sent
    twice: the second changes nothing); the store equals every file. An append whose base was
    rebuilt meanwhile is refused into the results DLQ by name, and `enqueue` plans the group again."""
    staging = tmp_path / "staging"
    files = make_mur.make(staging, 14)
    (tmp_path / "archive" / "MUR").mkdir(parents=True)
    for f in files[:10]:
        shutil.copy2(f, tmp_path / "archive" / "MUR" / f.name)
    fleet = Fleet(tmp_path, tmp_path / "archive")
    fleet.json("producer", "enqueue", "--all", "--profile", PROFILE, "--json")
    fleet.drain(virtualizers=1, committers=1)
    s3 = client("s3")
    for f in files[10:12]:
        s3.upload_file(str(f), fleet.name, f"archive/MUR/{f.name}")
    for _ in range(2):
        sent = fleet.json("producer", "enqueue", "--all", "--profile", PROFILE, "--json")
        assert sent["appended"] == [["MUR", 2]] and sent["rebuilt"] == [] and sent["messages"] == 1, sent
    fleet.drain(virtualizers=2, committers=1)
    logs = "".join(p.read_text(errors="replace") for p in fleet.logs)
    assert logs.count("files=2 ") >= 1 and "files=12" not in logs  # only the new files were read
    assert [g for c in fleet.commits() for g in c["groups"]] == ["MUR", "MUR"]  # built, appended once
    assert fleet.dead_letters() == []
    assert_equals_open_mfdataset(fleet.open_group("MUR"), files[:12])

    # Planned on one state, committed on another: the append's result is held back while the group
    # is rebuilt (a file replaced), then handed to the committer.
    s3.upload_file(str(files[12]), fleet.name, f"archive/MUR/{files[12].name}")
    stale = fleet.json("producer", "enqueue", "--all", "--profile", PROFILE, "--json")
    assert stale["appended"] == [["MUR", 1]], stale
    fleet.drain(virtualizers=1, committers=0)
    sqs = client("sqs")
    held = sqs.receive_message(QueueUrl=fleet.config["results_queue_url"], WaitTimeSeconds=2)["Messages"]
    [result] = [json.loads(m["Body"]) for m in held]
    for m in held:
        sqs.delete_message(QueueUrl=fleet.config["results_queue_url"], ReceiptHandle=m["ReceiptHandle"])
    s3.upload_file(str(files[0]), fleet.name, f"archive/MUR/{files[0].name}")  # a new ETag
    rebuild = fleet.json("producer", "enqueue", "--all", "--profile", PROFILE, "--json")
    assert rebuild["appended"] == [] and "replaced" in rebuild["rebuilt"][0][1], rebuild
    fleet.drain(virtualizers=1, committers=1)
    proc = fleet.run("committer", "apply", "--store", fleet.config["store_url"], "--container",
                     f"s3://{fleet.name}/archive/", result["fragment_url"])
    assert proc.returncode == 2 and "append refused" in proc.stderr and "is gone" in proc.stderr, proc.stderr
    assert_equals_open_mfdataset(fleet.open_group("MUR"), files[:13])
