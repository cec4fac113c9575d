"""The fleet end to end on LocalStack: `producer enqueue --all` → virtualizer and committer
workers (several of each) over real SQS and S3 → an Icechunk store on S3 read back by
Python icechunk + xarray, equal to the sources. A malformed message in the DLQ, an unreadable
file that costs its group one variable (a partial group, fixed by enqueueing again), duplicate
deliveries, and workers killed mid-batch."""
import json
import signal
import subprocess
import sys
import time
import warnings

import pytest

from checks import assert_group_equals_sources
from conftest import ROOT
from fleet import Fleet

sys.path.insert(0, str(ROOT / "tests/fixtures"))
from make_archive import Archive  # noqa: E402

warnings.filterwarnings("ignore", category=DeprecationWarning)
GOOD = ["AWI_PISM1/exp05", "ILTS_PIK_SICOPOLIS1/hist_std", "UCIJPL_ISSM/exp13", "LSCE_GRISLI2/exp05",
        "VUB_AISMPALEO/exp05", "CPOM_BISICLES/exp05"]
BAD = "ULB_fETISh_32km/expA6"


@pytest.fixture(scope="module")
def archive(tmp_path_factory):
    out = tmp_path_factory.mktemp("fleet-archive")
    subprocess.run([sys.executable, str(ROOT / "tests/fixtures/make_archive.py"), str(out)], check=True)
    return {"root": out / "archive", "expected": json.loads((out / "expected.json").read_text())}


@pytest.fixture(scope="module")
def poisoned(archive, tmp_path_factory):
    fleet = Fleet(tmp_path_factory.mktemp("fleet"), archive["root"])
    malformed = fleet.send_raw("work_queue_url", '{"schema_version": 1, "batch_id": "oops"}')
    # Well formed, with a batch id of floe's format, but naming floe's own records as its group.
    hostile = fleet.send_raw("work_queue_url", json.dumps({
        "schema_version": 5, "batch_id": "0123456789abcdef0123456789abcdef", "group": {"path": "AWI_PISM1/_floe"},
        "files": [{"url": "s3://elsewhere/x.nc", "size": 1, "variable": "lithk"}]}))
    # Well formed in every way, but naming a file outside the fleet's source.
    outside = fleet.send_raw("work_queue_url", json.dumps({
        "schema_version": 5, "batch_id": "fedcba9876543210fedcba9876543210", "group": {"path": "ZZZ_OUT/exp01"},
        "files": [{"url": "file:///etc/passwd", "size": 1, "variable": "lithk"}]}))
    enqueued = fleet.json("producer", "enqueue", "--all", "--json")
    fleet.drain()
    return {"fleet": fleet, "enqueued": enqueued, "malformed": malformed, "hostile": hostile, "outside": outside,
            "status": fleet.status(), "dead": fleet.dead_letters(), "expected": archive["expected"]}


def test_enqueue_sends_one_batch_per_group_and_leaves_out_the_skip_list(poisoned):
    e = poisoned["enqueued"]
    assert e["planned"] == len(GOOD) + 1 and sorted(e["enqueued"]) == sorted(GOOD + [BAD]) and e["unchanged"] == []
    assert any("NCAR/CISM/expD12" in url for url, _ in e["skipped_files"])


def test_good_groups_commit_an_unreadable_file_costs_one_variable_and_poison_lands_in_the_dlq(poisoned):
    fleet, status = poisoned["fleet"], poisoned["status"]
    # The empty xvelbase file: its group is written without xvelbase, named as partial.
    assert status["planned"] == len(GOOD) + 1 and status["committed"] == len(GOOD) + 1 and status["pending"] == []
    partial = {p["group"]: p for p in status["partial"]}
    expected_partial = sorted(g for g, e in poisoned["expected"].items() if isinstance(e, dict) and e.get("left_out"))
    assert sorted(partial) == expected_partial and BAD in partial, sorted(partial)
    [left_out] = partial[BAD]["left_out"]
    assert left_out["variable"] == "xvelbase", partial[BAD]
    assert "xvelbase" in left_out["file"] and "file cannot be read" in left_out["reason"], left_out
    assert "empty" in left_out["reason"], left_out
    for q in ("work", "results", "results-dlq"):
        assert fleet.depth(status, q) == 0, q
    # Only the malformed and the two hostile messages are dead-lettered, each with its reason (the
    # hostile ones' found under their batch ids, as dlq list looks them up).
    assert fleet.depth(status, "work-dlq") == 3
    dead = {d["message_id"]: d for d in poisoned["dead"]}
    malformed, hostile, outside = (dead[poisoned[k]] for k in ("malformed", "hostile", "outside"))
    assert malformed["group"] is None and "malformed batch descriptor" in malformed["reason"]
    assert "segment _floe is where floe keeps a group's records" in hostile["reason"], hostile
    assert "file:///etc/passwd is outside this fleet's source" in outside["reason"], outside
    ds = fleet.open_group(BAD)
    assert "lithk" in ds.data_vars and "xvelbase" not in ds.data_vars
    listed = fleet.run("producer", "dlq", "list")
    assert f"{BAD}: xvelbase left out" in listed.stdout, listed.stdout


@pytest.mark.parametrize("group", GOOD)
def test_values_read_through_python_icechunk_equal_the_sources(poisoned, archive, group):
    ds = poisoned["fleet"].open_group(group)
    assert_group_equals_sources(ds, archive["root"], group, archive["expected"][group])


def test_fixed_file_and_enqueue_add_the_variable(poisoned, archive, tmp_path):
    fleet = poisoned["fleet"]
    # Fix the empty file: upload a real one under the same key.
    fixed = Archive(str(tmp_path), 1).write("ULB", "fETISh_32km", "expA6", "xvelbase", years=[2015, 2016, 2017],
                                            grid="missing")
    key = "archive/ULB/fETISh_32km/expA6/xvelbase_AIS_ULB_fETISh_32km_expA6.nc"
    from localstack import client
    client("s3").upload_file(fixed, fleet.name, key)
    # The fixed file changes the group's inputs, so the next enqueue sends that group alone.
    fixes = fleet.json("producer", "enqueue", "--all", "--json")
    assert fixes["enqueued"] == [BAD] and len(fixes["unchanged"]) == len(GOOD), fixes
    fleet.drain(virtualizers=1, committers=1)
    status = fleet.status()
    assert status["committed"] == len(GOOD) + 1 and status["pending"] == []
    assert BAD not in {p["group"] for p in status["partial"]}, status["partial"]
    dead = fleet.dead_letters()  # the malformed and hostile messages stay in the DLQ, alone
    assert sorted(d["message_id"] for d in dead) == sorted(poisoned[k] for k in ("malformed", "hostile", "outside"))
    ds = fleet.open_group(BAD)
    assert {"lithk", "xvelbase"} <= set(ds.data_vars)
    # Nothing duplicated: every group written once per batch (the partial one, then the whole).
    writes = [g for c in fleet.commits() for g in c["groups"]]
    assert sorted(writes) == sorted(GOOD + [BAD, BAD])
    # A new enqueue sees every group committed from its current inputs.
    again = fleet.json("producer", "enqueue", "--all", "--json")
    assert again["enqueued"] == [] and len(again["unchanged"]) == len(GOOD) + 1


def test_duplicates_and_killed_workers_converge(archive, tmp_path):
    fleet = Fleet(tmp_path, archive["root"])
    groups = ["AWI_PISM1/exp05", "UCIJPL_ISSM/exp13", "VUB_AISMPALEO/exp05"]
    filters = ["--filter", "AWI", "--filter", "UCIJPL", "--filter", "VUB"]
    for _ in range(2):  # every message sent twice
        assert len(fleet.json("producer", "enqueue", *filters, "--json")["enqueued"]) == 3
    # A virtualizer killed right after receiving its batch: nothing was acknowledged.
    victim, log = fleet.start("virtualizer", "--batch-size", "10", "--visibility-timeout", "5")
    assert fleet.wait_for_log(log, "received a batch"), log.read_text()
    victim.send_signal(signal.SIGKILL)
    victim.wait()
    # A committer killed mid-batch, with a virtualizer feeding it.
    feeder, _ = fleet.start("virtualizer", "--exit-when-idle", "8")
    victim, log = fleet.start("committer", "--batch-size", "10", "--batching-window", "1",
                              "--visibility-timeout", "5")
    assert fleet.wait_for_log(log, "received a batch", timeout=120), log.read_text()
    victim.send_signal(signal.SIGKILL)
    victim.wait()
    feeder.wait(timeout=300)
    fleet.drain(virtualizers=2, committers=2)
    status = fleet.status()
    assert status["planned"] == 3 and status["committed"] == 3
    for q in ("work", "results", "work-dlq", "results-dlq"):
        assert fleet.depth(status, q) == 0, q
    writes = [g for c in fleet.commits() for g in c["groups"]]
    assert sorted(writes) == sorted(groups), writes  # each group written once, duplicates acknowledged
    for group in groups:
        assert_group_equals_sources(fleet.open_group(group), archive["root"], group, archive["expected"][group])


def test_worker_stops_cleanly_on_sigterm(archive, tmp_path):
    fleet = Fleet(tmp_path, archive["root"])
    worker, log = fleet.start("committer")
    assert fleet.wait_for_log(log, "", timeout=1)
    import time
    time.sleep(2)
    worker.send_signal(signal.SIGTERM)
    assert worker.wait(timeout=30) == 0
    assert "committer worker: 0 batch(es)" in log.read_text()


def test_missing_configuration_is_named(tmp_path):
    from fleet import env_without_config
    from conftest import binary
    proc = subprocess.run([binary("producer"), "enqueue", "--all"], capture_output=True, text=True,
                          env=env_without_config(), cwd=tmp_path)
    assert proc.returncode != 0
    assert "no source archive" in proc.stderr and "FLOE_SOURCE_URL" in proc.stderr


def test_a_committer_started_with_the_work_waits_for_the_whole_pipeline(archive, tmp_path):
    """--exit-when-idle counts only while the whole pipeline is idle: with a batch waiting on the
    work queue and no virtualizer yet, a committer with a 2 s idle limit is still there after
    8 s; once a virtualizer runs, the group is committed and both exit by themselves."""
    fleet = Fleet(tmp_path, archive["root"])
    fleet.json("producer", "enqueue", "--filter", "AWI_PISM1/exp05", "--json")
    committer, log = fleet.start("committer", "--exit-when-idle", 2, "--batch-size", 10, "--batching-window", 1)
    time.sleep(8)
    assert committer.poll() is None, log.read_text()[-2000:]
    virtualizer, vlog = fleet.start("virtualizer", "--exit-when-idle", 2)
    assert virtualizer.wait(timeout=120) == 0, vlog.read_text()[-2000:]
    assert committer.wait(timeout=120) == 0, log.read_text()[-2000:]
    assert [g for c in fleet.commits() for g in c["groups"]] == ["AWI_PISM1/exp05"]


def test_a_message_declaring_another_etag_is_read_as_the_file_is(archive, tmp_path):
    """A work message whose file's ETag is not the object's (a replaced file, a forged message): the
    first answer's ETag names the difference, the virtualizer builds from the file as it is now, and
    the store records the file's real identity, so a later enqueue finds the group current."""
    from localstack import client
    fleet = Fleet(tmp_path, archive["root"])
    group = GOOD[0]
    fleet.json("producer", "enqueue", "--filter", group, "--json")
    sqs = client("sqs")
    [message] = sqs.receive_message(QueueUrl=fleet.config["work_queue_url"], MaxNumberOfMessages=1,
                                    WaitTimeSeconds=5)["Messages"]
    body = json.loads(message["Body"])
    body["files"][0]["etag"] = '"0123456789abcdef0123456789abcdef"'
    sqs.delete_message(QueueUrl=fleet.config["work_queue_url"], ReceiptHandle=message["ReceiptHandle"])
    fleet.send_raw("work_queue_url", json.dumps(body))
    fleet.drain(virtualizers=1, committers=1)
    log = "".join(p.read_text() for p in fleet.logs if p.name.startswith("virtualizer"))
    assert "it was listed with: it changed since" in log, log[-3000:]
    assert "inputs changed since planning" in log, log[-3000:]
    assert [g for c in fleet.commits() for g in c["groups"]] == [group]
    again = fleet.json("producer", "enqueue", "--filter", group, "--dry-run", "--json")
    assert again["enqueued"] == [] and again["unchanged"] == [group], again
