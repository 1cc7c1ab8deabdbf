"""create_push_notifications_jobs and the notification job functions.

Mirrors the original's ``8-job.test.js``: kue's test mode queued jobs
without processing them; here no worker runs, so jobs stay queued in the
real Redis, and events are fired by hand with ``helpers.job_events.emit``.
As the original's function attached its handlers, creating the jobs is
enough for their lines to print (a listener thread of this process); the
tests wait for them with ``wait_until_done``.
"""

from __future__ import annotations

import json
import zlib
from collections.abc import Iterator

import pytest
from rq import Queue
from rq.job import Job, JobStatus

from helpers.client import clear_keys
from helpers.job_events import emit, stop_listeners, wait_until_done
from helpers.notifications import (
    BLACKLISTED_NUMBERS,
    NOTIFICATION_JOBS,
    TESTED_QUEUE,
    close_gate,
    create_push_notifications_jobs,
    open_gate,
    process_notification_at_gate,
    process_notification_with_blacklist,
    send_notification,
    send_notification_with_blacklist,
    wait_until_running,
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
    stop_listeners()  # the listener this test's jobs started
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
    assert lines == ["Notification job created: 1", "Notification job created: 2"]  # kue's ids
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
    first, second = create_push_notifications_jobs(JOBS, q)  # no listener to set up
    assert capsys.readouterr().out.splitlines() == [
        "Notification job created: 1",
        "Notification job created: 2",
    ]
    emit(q.connection, TESTED_QUEUE, first.id, "progress", progress=25)
    emit(q.connection, TESTED_QUEUE, first.id, "failed", error="Failed to send")
    emit(q.connection, TESTED_QUEUE, second.id, "completed")
    # Nothing runs these jobs (test mode): do not wait for RQ to record an outcome.
    received = wait_until_done([first, second], timeout=10, until_recorded=False)
    assert [(e.job_id, e.kind) for e in received] == [
        (first.id, "progress"), (first.id, "failed"), (second.id, "completed")
    ]  # fmt: skip
    assert capsys.readouterr().out.splitlines() == [
        "Notification job 1 25% complete",
        "Notification job 1 failed: Failed to send",
        "Notification job 2 completed",
    ]


def test_lines_can_go_elsewhere_than_print(q, capsys) -> None:
    lines: list[str] = []
    (job,) = create_push_notifications_jobs(JOBS[:1], q, echo=lines.append)
    emit(q.connection, TESTED_QUEUE, job.id, "completed")
    wait_until_done([job], timeout=10, until_recorded=False)
    assert lines == ["Notification job created: 1", "Notification job 1 completed"]
    assert capsys.readouterr().out == ""


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
        with pytest.raises(ValueError) as error:
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
    """RQ's other test mode: is_async=False runs each job in the caller; every
    line is out when the function returns, each job's after its "created"."""
    sync_queue = queue(TESTED_QUEUE, is_async=False)
    try:
        ok, blacklisted = create_push_notifications_jobs(
            [NOTIFICATION_JOBS[2], NOTIFICATION_JOBS[0]], sync_queue
        )
        assert ok.get_status() == JobStatus.FINISHED
        assert blacklisted.get_status() == JobStatus.FAILED
        assert capsys.readouterr().out.splitlines() == [
            "Sending notification to 4153518743, with message: "
            "This is the code 4321 to verify your account",  # the job, inside enqueue
            "Notification job created: 1",
            "Notification job created: 2",
            "Notification job 1 0% complete",
            "Notification job 1 50% complete",
            "Notification job 1 completed",
            "Notification job 2 0% complete",
            "Notification job 2 failed: Phone number 4153518780 is blacklisted",
        ]
        assert ok.get_meta()["progress"] == 50
        assert blacklisted.get_meta()["error"] == "Phone number 4153518780 is blacklisted"
    finally:
        stop_listeners()
        clear_keys(r, *queue_keys(TESTED_QUEUE))


def _most_running_at_once(jobs: list[Job]) -> int:
    """A sweep over the jobs' [started_at, ended_at]: +1 at a start, -1 at an end."""
    moments = sorted([(j.started_at, 1) for j in jobs] + [(j.ended_at, -1) for j in jobs])
    running = peak = 0
    for _, change in moments:
        running += change
        peak = max(peak, running)
    return peak


def test_the_eleven_jobs_with_two_workers(r, capsys) -> None:
    """Section 7 end to end: 2 failures, 9 completions after 0% and 50%, the
    lines printed by the creator as they happen; behind a closed gate, two
    jobs are certainly running at once, and never more."""
    q = queue("test_notifications_eleven")
    close_gate(q)
    jobs = create_push_notifications_jobs(NOTIFICATION_JOBS, q, func=process_notification_at_gate)
    try:
        with start_worker(q.name, concurrency=2) as workers:
            try:
                assert wait_until_running(q, 2) == [jobs[0].id, jobs[1].id]
                assert r.xlen(f"jobs:events:{q.name}") == 0  # held before their first step
            finally:
                open_gate(q)  # never leave the workers holding jobs
            received = wait_until_done(jobs, timeout=120)
        lines = capsys.readouterr().out.splitlines()
        assert lines[:11] == [f"Notification job created: {n}" for n in range(1, 12)]
        assert sorted(lines[11:]) == sorted(
            [f"Notification job {n} 0% complete" for n in range(1, 12)]
            + [f"Notification job {n} 50% complete" for n in range(3, 12)]
            + [f"Notification job {n} completed" for n in range(3, 12)]
            + [f"Notification job 1 failed: Phone number {BLACKLISTED_NUMBERS[0]} is blacklisted"]
            + [f"Notification job 2 failed: Phone number {BLACKLISTED_NUMBERS[1]} is blacklisted"]
        )
        per_job = {job.id: [e.kind for e in received if e.job_id == job.id] for job in jobs}
        assert [per_job[j.id] for j in jobs[:2]] == [["progress", "failed"]] * 2
        assert [per_job[j.id] for j in jobs[2:]] == [["progress", "progress", "completed"]] * 9
        stored = [Job.fetch(j.id, connection=q.connection, serializer=q.serializer) for j in jobs]
        assert _most_running_at_once(stored) == 2
        log = workers.output()
        for data in NOTIFICATION_JOBS[2:]:
            line = f"Sending notification to {data['phoneNumber']}, with message: {data['message']}"
            assert line in log
        assert "Sending notification to 4153518780" not in log
    finally:
        stop_listeners()
        clear_keys(r, *queue_keys(q.name))


def test_the_job_function_needs_a_job_for_its_progress() -> None:
    with pytest.raises(RuntimeError, match="inside an RQ job"):
        process_notification_with_blacklist(JOBS[0])
