"""The fast notification path: batches, exactly-once sends, crash recovery."""

from __future__ import annotations

import json

import pytest
from rq.job import Job, JobStatus
from waiting import wait_for

from helpers import fastpath
from helpers.notifications import BLACKLISTED_NUMBERS, NOTIFICATION_JOBS
from helpers.reliability import crash, recover_abandoned_jobs
from helpers.workers import queue, start_worker

NS = "test:fastpath"
ALLOWED = [job for job in NOTIFICATION_JOBS if job["phoneNumber"] not in BLACKLISTED_NUMBERS]


def notifications(count: int) -> list[dict[str, str]]:
    """``count`` valid, non-blacklisted notifications."""
    return [dict(ALLOWED[i % len(ALLOWED)]) for i in range(count)]


def batch(ids: list[int]) -> dict:
    items = [
        {"id": str(i), "phoneNumber": ALLOWED[i % len(ALLOWED)]["phoneNumber"], "message": "hi"}
        for i in ids
    ]
    return {"ns": NS, "items": items}


def test_a_batch_sends_each_notification_once_even_when_run_twice(r, capsys) -> None:
    connection = queue("test_fastpath_direct").connection
    first = fastpath.send_notification_batch(batch([1, 2, 3]), connection)
    again = fastpath.send_notification_batch(batch([1, 2, 3, 4]), connection)
    assert first == {"sent": 3, "already_sent": 0, "failed": 0}
    assert again == {"sent": 1, "already_sent": 3, "failed": 0}
    assert fastpath.sent_ids(r, NS) == {"1": 1, "2": 1, "3": 1, "4": 1}
    assert [json.loads(e)["id"] for e in r.lrange(fastpath.sent_key(NS), 0, -1)] == list("1234")
    assert 0 < r.ttl(fastpath.done_key("1", NS)) <= fastpath.DONE_TTL_S
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 4  # the original's line, once per notification actually sent
    assert lines[0] == f"Sending notification to {ALLOWED[1]['phoneNumber']}, with message: hi"


def test_blacklisted_numbers_fail_alone_not_the_batch(r, capsys) -> None:
    connection = queue("test_fastpath_direct").connection
    items = [
        {"id": "1", "phoneNumber": BLACKLISTED_NUMBERS[0], "message": "code"},
        {"id": "2", "phoneNumber": "4153518743", "message": "code"},
    ]
    counts = fastpath.send_notification_batch({"ns": NS, "items": items}, connection)
    assert counts == {"sent": 1, "already_sent": 0, "failed": 1}
    assert fastpath.sent_ids(r, NS) == {"2": 1}
    failed = [json.loads(e) for e in r.lrange(fastpath.failed_key(NS), 0, -1)]
    assert failed == [
        {**items[0], "error": f"Phone number {BLACKLISTED_NUMBERS[0]} is blacklisted"}
    ]
    # Run again: the failure is not recorded twice either.
    fastpath.send_notification_batch({"ns": NS, "items": items}, connection)
    assert r.llen(fastpath.failed_key(NS)) == 1


@pytest.mark.parametrize("not_a_list", [{}, "Hello", None, 42])
def test_enqueue_refuses_a_non_list(r, not_a_list) -> None:
    q = queue("test_fastpath_enqueue")
    with pytest.raises(TypeError, match="^Jobs is not an array$"):
        fastpath.enqueue_notification_batches(q, not_a_list, ns=NS)
    assert q.count == 0


def test_enqueue_validates_everything_before_enqueueing(r) -> None:
    q = queue("test_fastpath_enqueue")
    bad = [*notifications(3), {"phoneNumber": "12ab", "message": "x"}]
    with pytest.raises(ValueError, match="job 3"):
        fastpath.enqueue_notification_batches(q, bad, ns=NS)
    assert q.count == 0
    assert fastpath.enqueue_notification_batches(q, [], ns=NS) == []
    assert q.count == 0


def test_enqueue_numbers_notifications_and_batches_them(r) -> None:
    q = queue("test_fastpath_enqueue")
    jobs = fastpath.enqueue_notification_batches(q, notifications(25), batch_size=10, ns=NS)
    assert [job.id for job in jobs] == [
        "test_fastpath_enqueue-1",
        "test_fastpath_enqueue-11",
        "test_fastpath_enqueue-21",
    ]
    assert q.job_ids == [job.id for job in jobs]
    stored = Job.fetch(jobs[2].id, connection=q.connection, serializer=q.serializer)
    assert stored.func_name == fastpath.JOB_FUNCTION
    (data,) = stored.args
    assert data["ns"] == NS
    assert [item["id"] for item in data["items"]] == [str(i) for i in range(21, 26)]
    assert data["items"][0] == {"id": "21", **notifications(25)[20]}
    # The counter goes on: a second call never reuses an id.
    more = fastpath.enqueue_notification_batches(q, notifications(1), ns=NS)
    assert more[0].id == "test_fastpath_enqueue-26"


def test_queue_names_become_valid_job_ids(r) -> None:
    q = queue("test:fastpath:colons")
    jobs = fastpath.enqueue_notification_batches(q, notifications(2), ns=NS)
    assert jobs[0].id == "test-fastpath-colons-1"


def test_workers_send_every_notification_exactly_once(r) -> None:
    q = queue("test_fastpath_workers")
    jobs = fastpath.enqueue_notification_batches(q, notifications(500), batch_size=50, ns=NS)
    with start_worker("test_fastpath_workers", worker_class="simple", concurrency=2) as workers:
        wait_for(lambda: all(j.get_status(refresh=True) == JobStatus.FINISHED for j in jobs))
        log = workers.output()
    assert fastpath.sent_ids(r, NS) == {str(i): 1 for i in range(1, 501)}
    assert sum(j.return_value()["sent"] for j in jobs) == 500
    assert log.count("Sending notification to ") == 500


def test_sigkill_mid_batch_then_recovery_loses_and_repeats_nothing(r) -> None:
    q = queue("test_fastpath_crash")
    # 10 batches of 20; the first one's first run hangs after its 7th notification.
    jobs = fastpath.enqueue_notification_batches(
        q, notifications(200), batch_size=20, ns=NS, hang_after=7
    )
    assert all(job.retries_left == fastpath.MAX_RETRIES for job in jobs)
    worker = start_worker("test_fastpath_crash", worker_class="simple")
    wait_for(lambda: fastpath.sent_count(r, NS) >= 7, step=0.001)
    crash(worker)  # SIGKILL, mid-batch: no chance to finish or clean up
    assert fastpath.sent_count(r, NS) == 7  # it hung there: nothing sent after
    assert fastpath.sent_ids(r, NS) == {str(i): 1 for i in range(1, 8)}
    abandoned = q.started_job_registry.get_job_ids(cleanup=False)
    assert abandoned == [jobs[0].id]
    assert q.fetch_job(abandoned[0]).get_status() == JobStatus.STARTED

    # Lesson 12's recovery: the dead worker's batch goes back on the queue.
    recovery = recover_abandoned_jobs(q)
    assert recovery.requeued == abandoned and recovery.failed == []
    assert q.started_job_registry.get_job_ids(cleanup=False) == []
    assert abandoned[0] in q.job_ids

    with start_worker("test_fastpath_crash", worker_class="simple"):  # the retry does not hang
        wait_for(lambda: all(j.get_status(refresh=True) == JobStatus.FINISHED for j in jobs))
    # Every notification sent exactly once: none lost, none sent twice.
    assert fastpath.sent_ids(r, NS) == {str(i): 1 for i in range(1, 201)}
    assert jobs[0].return_value() == {"sent": 13, "already_sent": 7, "failed": 0}
    assert [j.return_value()["sent"] for j in jobs[1:]] == [20] * 9


def test_only_the_first_batch_carries_hang_after(r) -> None:
    q = queue("test_fastpath_enqueue")
    jobs = fastpath.enqueue_notification_batches(
        q, notifications(30), batch_size=10, ns=NS, hang_after=3
    )
    batches = [
        Job.fetch(j.id, connection=q.connection, serializer=q.serializer).args[0] for j in jobs
    ]
    assert [b.get("hang_after") for b in batches] == [3, None, None]


def test_without_the_done_marks_a_retried_batch_would_send_twice(r) -> None:
    """The guard matters: the same batch replayed with its marks deleted (as
    a naive job without idempotency keys would behave) sends again."""
    connection = queue("test_fastpath_direct").connection
    fastpath.send_notification_batch(batch([1, 2]), connection)
    r.delete(fastpath.done_key("1", NS), fastpath.done_key("2", NS))
    fastpath.send_notification_batch(batch([1, 2]), connection)
    assert fastpath.sent_ids(r, NS) == {"1": 2, "2": 2}
