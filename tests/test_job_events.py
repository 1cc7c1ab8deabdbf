"""Job events over RQ: counter ids, the event stream, callbacks, the creator side."""

from __future__ import annotations

import time

import pytest
from rq.job import JobStatus

from helpers.job_events import (
    MESSAGES_WITHOUT_IDS,
    JobEvent,
    JobEvents,
    emit,
    enqueue_with_events,
    events_key,
    format_event,
    group_by_job,
    job_ids,
    job_number,
    next_job_id,
    report_progress,
)
from helpers.workers import queue, redis_connection, start_worker


def test_ids_count_up_per_queue(r) -> None:
    connection = redis_connection()
    assert [next_job_id(connection, "a") for _ in range(3)] == ["a-1", "a-2", "a-3"]
    assert next_job_id(connection, "b") == "b-1"  # another queue, its own counter
    assert job_ids(connection, "a", 3) == ["a-4", "a-5", "a-6"]
    assert job_ids(connection, "a", 0) == []
    assert job_number("push_notification_code_2-11") == 11


def test_unknown_event_kinds_are_refused(r) -> None:
    with pytest.raises(ValueError, match="unknown event kind"):
        emit(redis_connection(), "q", "q-1", "exploded")


def test_a_listener_reads_from_where_the_stream_stood(r) -> None:
    connection = redis_connection()
    emit(connection, "ev", "ev-1", "completed")  # before the listener: not for it
    events = JobEvents("ev")
    emit(connection, "ev", "ev-2", "progress", progress=10)
    assert [(e.job_id, e.kind, e.progress) for e in events.read()] == [("ev-2", "progress", 10)]
    assert events.read() == []  # it moved past what it read
    everything = JobEvents("ev", from_start=True).read()
    assert [e.job_id for e in everything] == ["ev-1", "ev-2"]
    assert r.type(events_key("ev")) == "stream"


def test_a_late_listener_misses_nothing(r) -> None:
    """The reason for a stream: the job finishes before anyone reads."""
    q = queue("test_events_late")
    events = JobEvents(q)
    job = enqueue_with_events(q, "operator.add", 2, 3)
    with start_worker(q.name, worker_class="simple"):
        deadline = time.monotonic() + 60
        while job.get_status(refresh=True) != JobStatus.FINISHED and time.monotonic() < deadline:
            time.sleep(0.05)
    assert job.get_status(refresh=True) == JobStatus.FINISHED
    # A pub/sub subscriber arriving now would hear nothing; the stream kept it.
    assert [(e.job_id, e.kind) for e in events.wait_for([job], timeout=30)] == [
        (job.id, "completed")
    ]


def test_worker_callbacks_send_completed_and_failed(r) -> None:
    q = queue("test_events_callbacks")
    events = JobEvents(q)
    ok = enqueue_with_events(q, "operator.add", 2, 3)
    bad = enqueue_with_events(q, "operator.truediv", 1, 0)
    with start_worker(q.name):
        received = events.wait_for([ok, bad], timeout=60)
    assert {(e.job_id, e.kind, e.error) for e in received} == {
        (ok.id, "completed", None),
        (bad.id, "failed", "division by zero"),
    }
    # wait_for also waited for RQ's own record of each outcome:
    assert ok.get_status(refresh=True) == JobStatus.FINISHED and ok.return_value() == 5
    assert bad.get_status(refresh=True) == JobStatus.FAILED
    assert bad.get_meta()["error"] == "division by zero"


def test_an_event_without_a_recorded_outcome_is_not_enough(r) -> None:
    q = queue("test_events_unrecorded")
    events = JobEvents(q)
    job = enqueue_with_events(q, "operator.add", 1, 2)  # stays queued: no worker
    emit(q.connection, q.name, job.id, "completed")  # fired by hand
    with pytest.raises(TimeoutError, match="did not record"):
        events.wait_for([job], timeout=0.5)
    assert [
        e.kind for e in JobEvents(q, from_start=True).wait_for([job], until_recorded=False)
    ] == ["completed"]


def test_progress_is_kept_in_meta_and_sent_as_event(r) -> None:
    q = queue("test_events_progress", is_async=False)
    events = JobEvents(q)
    job = q.enqueue("operator.add", 1, 1)  # a finished job, to report on by hand
    report_progress(25, job=job)
    assert job.get_meta(refresh=True)["progress"] == 25
    assert [(e.job_id, e.kind, e.progress) for e in events.read()] == [(job.id, "progress", 25)]
    with pytest.raises(RuntimeError, match="inside an RQ job"):
        report_progress(10)


def test_wait_for_times_out_naming_the_jobs(r) -> None:
    events = JobEvents("nobody_works_here")
    with pytest.raises(TimeoutError, match=r"nobody_works_here-1.*is a worker running"):
        events.wait_for(["nobody_works_here-1"], timeout=0.3)


def test_wait_for_keeps_only_its_jobs_events_in_order(r) -> None:
    connection = redis_connection()
    events = JobEvents("w")
    emit(connection, "w", "w-1", "progress", progress=0)
    emit(connection, "w", "w-9", "completed")  # someone else's job
    emit(connection, "w", "w-1", "progress", progress=50)
    emit(connection, "w", "w-1", "completed")
    seen: list[str] = []
    received = events.wait_for(["w-1"], timeout=10, on_event=lambda e: seen.append(e.kind))
    assert seen == ["progress", "progress", "completed"]
    assert [e.progress for e in received] == [0, 50, None]


def test_lines_take_a_prefix_and_templates() -> None:
    done = JobEvent("7", "completed")
    failed = JobEvent("7", "failed", error="Not enough seats available")
    half = JobEvent("3", "progress", progress=50)
    assert format_event(half) == "Notification job 3 50% complete"
    assert format_event(done, "Seat reservation job") == "Seat reservation job 7 completed"
    assert format_event(failed, "Seat reservation job") == (
        "Seat reservation job 7 failed: Not enough seats available"
    )
    assert format_event(done, templates=MESSAGES_WITHOUT_IDS) == "Notification job completed"
    assert format_event(failed, templates=MESSAGES_WITHOUT_IDS) == "Notification job failed"


def test_print_until_done_uses_the_listeners_prefix(r, capsys) -> None:
    events = JobEvents("reserve_seat_test", prefix="Seat reservation job")
    emit(redis_connection(), "reserve_seat_test", "reserve_seat_test-1", "failed", error="boom")
    events.print_until_done(["reserve_seat_test-1"], timeout=10)
    assert capsys.readouterr().out == "Seat reservation job reserve_seat_test-1 failed: boom\n"


def test_group_by_job_keeps_each_jobs_order() -> None:
    events = [
        JobEvent("q-2", "progress", 0),
        JobEvent("q-1", "progress", 0),
        JobEvent("q-2", "completed"),
        JobEvent("q-1", "failed", error="x"),
        JobEvent("q-3", "completed"),
    ]
    grouped = group_by_job(events, ["q-1", "q-2"])
    assert list(grouped) == ["q-1", "q-2"]
    assert [e.kind for e in grouped["q-1"]] == ["progress", "failed"]
    assert [e.kind for e in grouped["q-2"]] == ["progress", "completed"]
