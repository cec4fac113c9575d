"""A committer batch of ten in which one fragment is invalid (issue 34): the other nine are
committed, in one commit, and acknowledged; only the bad one is dead-lettered, with its own
reason; nothing is left on the queue. Through LocalStack with the real workers; the time it takes
is measured by bench/poisoned_batch.py, not asserted here."""
import pytest

from poisoned_batch import GROUPS, POISONED, run_poisoned_batch


@pytest.fixture(scope="module")
def batch(tmp_path_factory):
    return run_poisoned_batch(tmp_path_factory.mktemp("poisoned-batch"))


def test_the_nine_good_groups_are_committed_once_each(batch):
    assert batch["exit"] == 0, batch["log"][-3000:]
    status = batch["status"]
    assert status["committed"] == len(GROUPS) - 1, status
    good = sorted(g for g in GROUPS if g != POISONED)
    committed = [g for c in batch["commits"] for g in c["groups"]]
    assert sorted(committed) == good, batch["commits"]
    # Together, in one commit: the bad fragment is refused before the session, not by splitting.
    assert len([c for c in batch["commits"] if set(c["groups"]) & set(good)]) == 1, batch["commits"]
    for group in GROUPS:
        if group != POISONED:
            ds = batch["fleet"].open_group(group)
            assert ds["lithk"].shape == (1, 4, 5)


def test_only_the_bad_fragment_is_dead_lettered_with_its_own_reason(batch):
    status, fleet = batch["status"], batch["fleet"]
    for q in ("results", "work", "work-dlq"):
        assert fleet.depth(status, q) == 0, q
    assert fleet.depth(status, "results-dlq") == 1
    [dead] = batch["dead"]
    assert dead["group"] == POISONED, dead
    assert f"array {batch['array']}" in dead["reason"] and "reference of zero bytes" in dead["reason"], dead
    assert batch["settled_seconds"] is not None, batch["log"][-3000:]
