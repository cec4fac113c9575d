"""The failure drills of `drills.py`, small enough for every test run (the archive's full 440
groups: `bench/drills.py`). On LocalStack, with the real binaries: SIGKILLed workers, every
message twice, a truncated file costing its group that variable only (written partial, named in
`status`, nothing dead-lettered), then fixed and enqueued again; then exactly-once, empty queues, a
store that verifies before and after `committer gc --delete`; and 16 committers on one S3 store."""
from conftest import binary
from drills import crash_drill, parallel_committers_drill


def test_crash_duplicate_and_corruption_drill_converges(tmp_path):
    report = crash_drill(tmp_path, groups=24, binary=binary, fraction=0.1)
    assert report["corrupted"] == 2 and report["partial"] == 2, report
    assert report["verified_chunks"] > 0 and report["decoded_chunks"] > 0, report


def test_the_crash_drill_converges_with_every_group_in_shards(tmp_path):
    """The same drill with each 23-file group in 3 shards: a killed virtualizer, every shard twice, a
    truncated file leaving out its variable from its group only, then fixed and enqueued again; each
    group assembled and written once a batch."""
    report = crash_drill(tmp_path, groups=12, binary=binary, fraction=0.1, shard_files=8)
    assert report["messages"] == 36 and report["corrupted"] == 1 and report["partial"] == 1, report
    assert report["verified_chunks"] > 0 and report["decoded_chunks"] > 0, report


def test_sixteen_committers_on_one_store_write_every_group_once(tmp_path):
    report = parallel_committers_drill(tmp_path, groups=16, binary=binary, committers=16)
    assert report["commits"] >= 2, report  # 16 groups in batches of 10 cannot fit one commit
