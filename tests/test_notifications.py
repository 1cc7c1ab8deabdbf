"""create_push_notifications_jobs and the notification job functions.

Mirrors the original's ``8-job.test.js``: kue's test mode queued jobs
without processing them; here no worker runs, so jobs stay queued in the
real Redis, and events are fired by hand with ``helpers.job_events.emit``.
"""

from __future__ import annotations

import json
import zlib
from collections.abc import Iterator

import pytest
from rq import Queue
from rq.job import Job, JobStatus

from helpers.client import clear_keys
from helpers.job_events import JobEvents, emit
from helpers.notifications import (
    BLACKLISTED_NUMBERS,
    NOTIFICATION_JOBS,
    TESTED_QUEUE,
    BlacklistedNumber,
    create_push_notifications_jobs,
    process_notification_with_blacklist,
    send_notification,
    send_notification_with_blacklist,
)
from helpers.workers import queue, queue_keys, start_worker

JOBS = [
    {"phoneNumber": "4153518780", "message": "This is the code 1234 to verify your account"},
    {"phoneNumber": "4153518781", "message": "This is the code 4562 to verify your account"},
]


@pytest.fixture
def q(r) -> Iterator[Queue]:
    """The lesson's queue, no worker: jobs stay queued. Cleared after each test."""
    test_queue = queue(TESTED_QUEUE)
    yield test_queue
    test_queue.empty()
    clear_keys(r, *queue_keys(TESTED_QUEUE))
    assert r.keys(f"*{TESTED_QUEUE}*") == []


@pytest.mark.parametrize("not_a_list", [{}, {"phoneNumber": "1"}, "Hello", None, 42, 4.2, (1,)])
def test_a_non_list_raises_jobs_is_not_an_array(q, not_a_list) -> None:
    with pytest.raises(TypeError) as error:
        create_push_notifications_jobs(not_a_list, q)
    assert str(error.value) == "Jobs is not an array"
    assert q.count == 0


def test_two_jobs_are_queued_with_their_data(q, capsys) -> None:
    jobs = create_push_notifications_jobs(JOBS, q)
    assert len(jobs) == 2 and q.count == 2
    assert q.job_ids == [job.id for job in jobs]
    lines = capsys.readouterr().out.splitlines()
    assert lines == [f"Notification job created: {job.id}" for job in jobs]
    for job, data in zip(jobs, JOBS, strict=True):
        stored = Job.fetch(job.id, connection=q.connection, serializer=q.serializer)
        assert stored.origin == TESTED_QUEUE  # kue's "type"
        assert job.args == (data,)
        assert stored.args == [data] and stored.kwargs == {}  # JSON has lists, not tuples
        assert stored.get_status() == JobStatus.QUEUED
        assert stored.func_name == "helpers.notifications.process_notification_with_blacklist"


def test_job_ids_come_from_a_counter(q, capsys) -> None:
    first = create_push_notifications_jobs(JOBS, q)
    second = create_push_notifications_jobs(JOBS[:1], q)
    assert [j.id for j in first + second] == [f"{TESTED_QUEUE}-{n}" for n in (1, 2, 3)]


def test_input_is_not_modified(q, capsys) -> None:
    data = [dict(job) for job in JOBS]
    create_push_notifications_jobs(data, q)
    assert data == JOBS


def test_events_print_the_originals_lines(q, capsys) -> None:
    events = JobEvents(q)  # the creator listens from before it creates the jobs
    first, second = create_push_notifications_jobs(JOBS, q)
    capsys.readouterr()
    emit(q.connection, TESTED_QUEUE, first.id, "progress", progress=25)
    emit(q.connection, TESTED_QUEUE, first.id, "failed", error="Failed to send")
    emit(q.connection, TESTED_QUEUE, second.id, "completed")
    # Nothing runs these jobs (test mode): do not wait for RQ to record an outcome.
    received = events.print_until_done([first, second], timeout=10, until_recorded=False)
    assert [(e.job_id, e.kind) for e in received] == [
        (first.id, "progress"), (first.id, "failed"), (second.id, "completed")
    ]  # fmt: skip
    assert capsys.readouterr().out.splitlines() == [
        f"Notification job {first.id} 25% complete",
        f"Notification job {first.id} failed: Failed to send",
        f"Notification job {second.id} completed",
    ]


def test_an_empty_list_creates_nothing(q, capsys) -> None:
    assert create_push_notifications_jobs([], q) == []
    assert q.count == 0
    assert capsys.readouterr().out == ""


@pytest.mark.parametrize(
    ("bad", "error", "words"),
    [
        ("not a job", TypeError, "job 1 is not an object"),
        ({"message": "hi"}, ValueError, "job 1 has no phoneNumber"),
        ({"phoneNumber": "4153518780"}, ValueError, "job 1 has no message"),
        ({"phoneNumber": 4153518780, "message": "hi"}, TypeError, "string of digits"),
        ({"phoneNumber": "415-351", "message": "hi"}, ValueError, "only digits"),
        ({"phoneNumber": "", "message": "hi"}, ValueError, "only digits"),
        ({"phoneNumber": "4153518780", "message": ""}, ValueError, "message is empty"),
        ({"phoneNumber": "4153518780", "message": "  "}, ValueError, "message is empty"),
        ({"phoneNumber": "4153518780", "message": None}, TypeError, "message must be a string"),
    ],
)
def test_every_job_is_validated_before_any_is_enqueued(q, capsys, bad, error, words) -> None:
    with pytest.raises(error, match=words):
        create_push_notifications_jobs([JOBS[0], bad], q)
    assert q.count == 0
    assert q.connection.get(f"jobs:ids:{TESTED_QUEUE}") is None  # no id was used either
    assert capsys.readouterr().out == ""


def test_jobs_are_stored_as_json(q, capsys) -> None:
    (job,) = create_push_notifications_jobs(JOBS[:1], q)
    raw = zlib.decompress(q.connection.hget(f"rq:job:{job.id}", "data"))
    assert json.loads(raw) == [
        "helpers.notifications.process_notification_with_blacklist", None, [JOBS[0]], {}
    ]  # fmt: skip


def test_send_notification_prints_the_originals_line(capsys) -> None:
    send_notification("4153518780", "This is the code to verify your account")
    assert capsys.readouterr().out == (
        "Sending notification to 4153518780, with message: This is the code to verify your account\n"
    )


def test_blacklisted_numbers_fail_after_0_percent(capsys) -> None:
    assert BLACKLISTED_NUMBERS == ("4153518780", "4153518781")
    for number in BLACKLISTED_NUMBERS:
        progress: list[int] = []
        with pytest.raises(BlacklistedNumber) as error:
            send_notification_with_blacklist(number, "hi", progress.append)
        assert str(error.value) == f"Phone number {number} is blacklisted"
        assert progress == [0]
    assert capsys.readouterr().out == ""


def test_other_numbers_report_0_then_50_then_send(capsys) -> None:
    progress: list[int] = []
    send_notification_with_blacklist("4153518743", "hello", progress.append)
    assert progress == [0, 50]
    assert capsys.readouterr().out == "Sending notification to 4153518743, with message: hello\n"


def test_a_synchronous_queue_runs_jobs_at_once_with_events(r, capsys) -> None:
    """RQ's other test mode: is_async=False runs each job in the caller."""
    sync_queue = queue(TESTED_QUEUE, is_async=False)
    events = JobEvents(sync_queue)
    try:
        ok, blacklisted = create_push_notifications_jobs(
            [NOTIFICATION_JOBS[2], NOTIFICATION_JOBS[0]], sync_queue
        )
        assert ok.get_status() == JobStatus.FINISHED
        assert blacklisted.get_status() == JobStatus.FAILED
        lines = [events.message(e) for e in events.read()]
        assert lines == [
            f"Notification job {ok.id} 0% complete",
            f"Notification job {ok.id} 50% complete",
            f"Notification job {ok.id} completed",
            f"Notification job {blacklisted.id} 0% complete",
            f"Notification job {blacklisted.id} failed: Phone number 4153518780 is blacklisted",
        ]
        assert ok.get_meta()["progress"] == 50
        assert blacklisted.get_meta()["error"] == "Phone number 4153518780 is blacklisted"
        out = capsys.readouterr().out
        assert "Sending notification to 4153518743, with message: " in out
    finally:
        clear_keys(r, *queue_keys(TESTED_QUEUE))


def test_the_eleven_jobs_with_two_workers(r, capsys) -> None:
    """Section 7 end to end: 2 failures, 9 completions after 0% and 50%."""
    q = queue("test_notifications_eleven")
    events = JobEvents(q)
    jobs = create_push_notifications_jobs(NOTIFICATION_JOBS, q)
    with start_worker(q.name, concurrency=2) as workers:
        received = events.wait_for(jobs, timeout=120)
    per_job = {job.id: [e.kind for e in received if e.job_id == job.id] for job in jobs}
    assert [per_job[j.id] for j in jobs[:2]] == [["progress", "failed"]] * 2
    assert [per_job[j.id] for j in jobs[2:]] == [["progress", "progress", "completed"]] * 9
    progress = [e.progress for e in received if e.kind == "progress" and e.job_id == jobs[5].id]
    assert progress == [0, 50]
    log = workers.read_log()
    for data in NOTIFICATION_JOBS[2:]:
        assert (
            f"Sending notification to {data['phoneNumber']}, with message: {data['message']}" in log
        )
    assert "Sending notification to 4153518780" not in log


def test_the_job_function_needs_a_job_for_its_progress() -> None:
    with pytest.raises(RuntimeError, match="inside an RQ job"):
        process_notification_with_blacklist(JOBS[0])
