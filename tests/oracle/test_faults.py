"""The fault drills of drills.py, small: a mitmproxy addon (tests/faults/faults.py) between floe and
LocalStack. At 20% of S3 and SQS requests failing (503 SlowDown, 500, dropped connections, lost
answers) every group is written once, the one with a truncated file partial (that variable named,
nothing dead-lettered), and the store verifies; in an outage every command fails naming the endpoint and the cause, creates nothing, and
the run after it completes the store."""
from conftest import binary
from drills import fault_drill, outage_drill


def test_fleet_at_twenty_percent_faults_writes_every_group_once(tmp_path):
    report = fault_drill(tmp_path, groups=12, binary=binary, rate=0.2)
    assert report["faults"] > 50 and all(report[k] > 0 for k in ("slowdown", "internal", "drop", "lost")), report
    assert report["partial"] == report["corrupted"] == 1, report


def test_fleet_at_twenty_percent_faults_with_every_group_in_shards(tmp_path):
    report = fault_drill(tmp_path, groups=8, binary=binary, rate=0.2, shard_files=8)
    assert report["messages"] == 24 and report["faults"] > 50, report
    assert report["partial"] == report["corrupted"] == 1, report


def test_an_outage_fails_every_command_by_name_and_the_next_run_completes(tmp_path):
    report = outage_drill(tmp_path, groups=4, binary=binary)
    assert all(s < 120 for s in report["seconds"].values()), report
