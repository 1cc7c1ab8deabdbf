"""Job events over RQ: counter ids, the event stream, callbacks, the creator side."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from rq.job import JobStatus

from helpers.job_events import (
    MESSAGES_WITHOUT_IDS,
    TERMINAL_EVENTS,
    CreatorListener,
    JobEvent,
    JobEvents,
    creator_listener,
    emit,
    enqueue_with_events,
    events_key,
    format_event,
    group_by_job,
    job_ids,
    job_number,
    next_job_id,
    report_progress,
    stop_listeners,
    wait_until_done,
)
from helpers.workers import queue, redis_connection, start_worker


def test_ids_count_up_per_queue(r) -> None:
    connection = redis_connection()
    assert [next_job_id(connection, "a") for _ in range(3)] == ["a-1", "a-2", "a-3"]
    assert next_job_id(connection, "b") == "b-1"  # another queue, its own counter
    assert job_ids(connection, "a", 3) == ["a-4", "a-5", "a-6"]
    assert job_ids(connection, "a", 0) == []
    assert job_number("push_notification_code_2-11") == 11


def test_lines_name_a_job_by_its_number(r) -> None:
    q = queue("test_numbers", is_async=False)
    job = enqueue_with_events(q, "operator.add", 1, 2)
    assert job.id == "test_numbers-1" and job_number(job) == 1  # a Job or its id
    assert job_number("7") == 7 and job_number("my-queue-12") == 12
    for not_a_counter_id in ("push_notification_code-forged", "3-x", "", "q-"):
        with pytest.raises(ValueError, match="not a counter id"):
            job_number(not_a_counter_id)
    assert format_event(JobEvent("lesson-x", "completed")) == "Notification job lesson-x completed"


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
    assert format_event(JobEvent("q-4", "created")) == "Notification job created: 4"
    assert format_event(done, templates=MESSAGES_WITHOUT_IDS) == "Notification job completed"
    assert format_event(failed, templates=MESSAGES_WITHOUT_IDS) == "Notification job failed"


def test_print_until_done_uses_the_listeners_prefix(r, capsys) -> None:
    events = JobEvents("reserve_seat_test", prefix="Seat reservation job")
    emit(redis_connection(), "reserve_seat_test", "reserve_seat_test-1", "failed", error="boom")
    events.print_until_done(["reserve_seat_test-1"], timeout=10)
    assert capsys.readouterr().out == "Seat reservation job 1 failed: boom\n"


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


# --- the creator listener: kue's job.on(...) handlers -------------------------


@pytest.fixture
def listener(r) -> Iterator[CreatorListener]:
    created = CreatorListener("cl", prefix="Notification job")
    try:
        yield created
    finally:
        created.stop()


def test_a_listener_prints_created_then_each_event_as_it_comes(r, listener) -> None:
    connection = redis_connection()
    lines: list[str] = []
    listener.expect(["cl-1", "cl-2"], lines.append)
    emit(connection, "cl", "cl-1", "progress", progress=0)  # a fast worker, before "created"
    emit(connection, "cl", "cl-9", "completed")  # not this creator's job
    time.sleep(0.5)  # the thread has read them: it holds them back
    assert lines == []
    listener.announce(["cl-1", "cl-2"])
    assert lines[:2] == ["Notification job created: 1", "Notification job created: 2"]
    emit(connection, "cl", "cl-2", "failed", error="Failed to send")
    emit(connection, "cl", "cl-1", "progress", progress=50)
    emit(connection, "cl", "cl-1", "completed")
    received = listener.wait(["cl-1", "cl-2"], timeout=10, until_recorded=False)
    assert lines == [
        "Notification job created: 1",
        "Notification job created: 2",
        "Notification job 1 0% complete",
        "Notification job 2 failed: Failed to send",
        "Notification job 1 50% complete",
        "Notification job 1 completed",
    ]
    assert [(e.job_id, e.kind) for e in received] == [
        ("cl-1", "progress"), ("cl-2", "failed"), ("cl-1", "progress"), ("cl-1", "completed")
    ]  # fmt: skip
    emit(connection, "cl", "cl-1", "progress", progress=0)  # after its end (a requeue): not ours
    time.sleep(0.5)
    assert len(lines) == 6


def test_a_listener_prints_only_the_kinds_it_is_given(r) -> None:
    seats_like = CreatorListener("ck", prefix="Seat reservation job", kinds=TERMINAL_EVENTS)
    try:
        lines: list[str] = []
        seats_like.expect(["ck-1"], lines.append)
        seats_like.announce(["ck-1"])
        emit(redis_connection(), "ck", "ck-1", "progress", progress=50)
        emit(redis_connection(), "ck", "ck-1", "completed")
        seats_like.wait(["ck-1"], timeout=10, until_recorded=False)
        assert lines == ["Seat reservation job 1 completed"]
    finally:
        seats_like.stop()


def test_a_listener_forgets_jobs_and_refuses_unknown_ones(r, listener) -> None:
    lines: list[str] = []
    listener.expect(["cl-1"], lines.append)
    listener.forget(["cl-1"])  # enqueueing it failed
    with pytest.raises(ValueError, match="not created with this listener"):
        listener.wait(["cl-1"], timeout=1)
    listener.expect(["cl-2"], lines.append)
    listener.announce(["cl-2"])
    with pytest.raises(TimeoutError, match=r"cl-2.*is a worker running on 'cl'"):
        listener.wait(["cl-2"], timeout=0.3)
    assert lines == ["Notification job created: 2"]


def test_one_listener_per_queue_and_wait_until_done(r) -> None:
    try:
        first = creator_listener(queue("one"))
        assert creator_listener(queue("one")) is first  # idempotent: started once
        other = creator_listener(queue("two"))
        assert other is not first
        lines: list[str] = []
        for each, job_id in ((first, "one-1"), (other, "two-1")):
            each.expect([job_id], lines.append)
            each.announce([job_id])
            emit(redis_connection(), each.queue_name, job_id, "completed")
        done = wait_until_done(["one-1", "two-1"], timeout=10, until_recorded=False)
        assert sorted(e.job_id for e in done) == ["one-1", "two-1"]
        with pytest.raises(ValueError, match="one-2 was not created"):
            wait_until_done(["one-2"], timeout=1)
    finally:
        stop_listeners()
    assert not first.running and creator_listener(queue("one")) is not first
    stop_listeners()
