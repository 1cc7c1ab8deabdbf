"""Lesson 16's production patterns, with real workers, schedulers, consumers
and the HTTP service on the test session's Redis: rate limits (counted over
windows, never timed), priorities and starvation, the 429 of a bounded queue
(no accepted reservation lost), workflows, a cron scheduler killed with
SIGKILL, dead letters and poison messages."""

from __future__ import annotations

import threading
import time
import urllib.request
from datetime import datetime, timezone

import httpx
import pytest
from rq import RateLimit, Retry
from rq.job import Dependency
from rq.rate_limit import RateLimitRegistry
from waiting import wait_for

from helpers import seats
from helpers.api import start_service
from helpers.notifications import NOTIFICATION_JOBS
from helpers.patterns import (
    backpressure,
    dead_letters,
    priorities,
    rate_limits,
    schedules,
    workflows,
)
from helpers.patterns.keys import FLOW_QUEUE, HIGH_QUEUE, LOW_QUEUE, SMS_QUEUE, wait_all
from helpers.streams import add_message
from helpers.workers import queue, redis_connection, start_worker

PHONE, MESSAGE = "4153518743", "This is the code 4321 to verify your account"

# --- rate limits ----------------------------------------------------------------------------


def test_window_counts() -> None:
    assert rate_limits.max_in_window([], 1000) == 0
    # (t - 1000, t]: a send exactly one window later no longer counts the first
    assert rate_limits.max_in_window([0, 1000], 1000) == 1
    assert rate_limits.max_in_window([0, 999], 1000) == 2
    assert rate_limits.max_in_window([0, 10, 20, 1500, 1510, 2005], 1000) == 3
    assert rate_limits.per_window([0, 10, 1500, 2999], 1000) == [2, 1, 1]
    assert rate_limits.max_overlap([(0, 10), (10, 20)]) == 1  # end at a start: not at once
    assert rate_limits.max_overlap([(0, 10), (5, 20), (6, 7), (30, 40)]) == 3


def test_sliding_window_holds_under_contention(r) -> None:
    """Four threads, each its own client, race for 8 places per 300 ms: every
    send goes, and no window of 300 ms ever holds more than 8."""
    limiter = rate_limits.SlidingWindowLimiter("test-threads", 8, 300)
    times: list[int] = []
    lock = threading.Lock()

    def sender(n: int) -> None:
        client = redis_connection()
        for i in range(8):
            sent_at, _waits = limiter.acquire(client, f"{n}-{i}", timeout_s=30)
            with lock:
                times.append(sent_at)
        client.close()

    threads = [threading.Thread(target=sender, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert len(times) == 32
    assert rate_limits.max_in_window(times, 300) == 8  # full windows, never more
    assert r.zcard(limiter.key) <= 8


def test_rate_limits_with_workers(r) -> None:
    """Three workers: the window (3 per 600 ms) holds over every window and
    holds jobs back without failing them; RQ's RateLimit bounds concurrency."""
    sms = queue(SMS_QUEUE)
    workers = start_worker(SMS_QUEUE, concurrency=3, name="test-patterns-sms")
    try:
        limiter = rate_limits.SlidingWindowLimiter("test-provider", 3, 600)
        ids = [f"test-sms-{i}" for i in range(9)]
        run = rate_limits.measure_window(
            sms, limiter, [(PHONE, MESSAGE)] * 9, workers=3, job_ids=ids
        )
        assert (run.finished, run.failed) == (9, 0), run
        assert run.max_in_window <= 3, run
        # 9 sends need 3 windows; three workers start a 4th long before 600 ms: it waits
        assert sum(run.per_window) == 9 and run.held_back >= 1, run

        limit = RateLimit("test-provider", concurrency=2)
        slow = [
            sms.enqueue(
                "helpers.patterns.rate_limits.send_slowly",
                PHONE,
                MESSAGE,
                "test-slow",
                0.15,
                rate_limit=limit,
                job_id=f"test-slow-{i}",
            )
            for i in range(6)
        ]
        assert [job.get_status(refresh=False).value for job in slow].count("rate_limited") == 4
        assert RateLimitRegistry("test-provider", sms.connection).get_rate_limited_job_count() >= 3
        assert wait_all(slow, 30) == ["finished"] * 6  # delayed, not failed
        assert rate_limits.max_overlap(rate_limits.run_intervals(r, "test-slow")) <= 2
    finally:
        workers.stop()


# --- priorities and backpressure ---------------------------------------------------------------


def test_priority_order_starvation_and_its_cure(r) -> None:
    record = "helpers.patterns.priorities.record_run"
    feed = "helpers.patterns.priorities.record_and_feed"
    high, low = queue(HIGH_QUEUE), queue(LOW_QUEUE)
    for label in ("low-1", "low-2"):
        low.enqueue(record, label)
    high.enqueue(record, "high-1")
    high.enqueue(record, "urgent", at_front=True)
    assert start_worker([HIGH_QUEUE, LOW_QUEUE], burst=True, name="test-order").wait(60) == 0
    assert priorities.run_order(r) == ["urgent", "high-1", "low-1", "low-2"]

    def starve(*worker_queues: list[str]) -> list[str]:
        r.delete(priorities.ran_key())
        for label in ("low-1", "low-2"):
            low.enqueue(record, label)
        high.enqueue(feed, "high-1", 9, HIGH_QUEUE)
        started = [
            start_worker(qs, burst=True, name=f"test-starve-{i}", wait=False)
            for i, qs in enumerate(worker_queues)
        ]
        assert [w.wait(60) for w in started] == [0] * len(started)
        return priorities.run_order(r)

    starved = starve([HIGH_QUEUE, LOW_QUEUE])
    assert priorities.positions(starved, "low") == [11, 12]  # after the whole feed
    cured = starve([HIGH_QUEUE, LOW_QUEUE], [LOW_QUEUE, HIGH_QUEUE])
    assert sorted(cured) == sorted(starved)  # the same jobs, each once
    assert max(priorities.positions(cured, "low")) < cured.index("high-10") + 1


def test_429_bounds_the_queue_and_loses_no_accepted_reservation(r) -> None:
    service = start_service(seat_queue_limit=3)
    try:
        seat_queue = seats.seat_queue()
        sampler = backpressure.DepthSampler(seat_queue, interval_s=0.02).start()
        first = backpressure.flood(service.url, 20, concurrency=4)
        assert first.accepted + first.rejected == 20 and first.rejected >= 1, first
        assert 3 <= first.accepted <= 3 + 4 - 1, first  # a soft bound: the requests in flight
        assert seat_queue.count == first.accepted
        reply = httpx.get(f"{service.url}/reserve_seat")  # the queue is full: no worker yet
        assert reply.status_code == 429 and reply.headers["Retry-After"] == "1"
        assert reply.json() == {"status": "Too many reservations waiting"}
        assert seat_queue.count == first.accepted  # a 429 enqueues nothing
        wait_for(lambda: backpressure.queue_depth(seat_queue)[1] > 0.1, 10)  # waiting jobs age

        urllib.request.urlopen(f"{service.url}/process").read()
        # with the worker running, clients that honour Retry-After all get in, eventually
        second = backpressure.flood(service.url, 15, concurrency=4, retries=20)
        accepted = first.accepted + second.accepted
        assert second.accepted == 15, second
        done = service.wait_for_lines("Seat reservation job", accepted, timeout=60)
        wait_for(lambda: seat_queue.count == 0, 30)
        wait_for(lambda: sampler.samples[-1][1] == 0, 10)  # the sampler has seen it too
        samples = sampler.stop()
        assert all(line.endswith("completed") for line in done), done
        assert len(done) == accepted  # every 200 "Reservation in process" ended processed
        assert int(r.get(seats.SEATS_KEY)) == seats.INITIAL_SEATS - accepted
        assert sampler.max_length >= 3 and samples[-1][1:] == (0, 0.0)  # grew, then recovered
    finally:
        service.stop()


# --- workflows ------------------------------------------------------------------------------


def test_fan_out_fan_in_and_failed_parents(r) -> None:
    flow = queue(FLOW_QUEUE)
    workers = start_worker(FLOW_QUEUE, concurrency=2, name="test-patterns-flow")
    try:
        ids = [f"test-fan-{i}" for i in range(11)]
        group, sends, summary = workflows.fan_out_fan_in(
            flow, NOTIFICATION_JOBS, ids, "test-fan-summary", "test-fanout"
        )
        assert {job.id for job in group.get_jobs()} == set(ids)
        assert wait_all([*sends, summary], 30)[-1] == "finished"
        assert summary.return_value() == {"parents": 11, "sent": 9, "failed": ids[:2]}
        assert r.llen(workflows.outbox_key()) == 9

        send = workflows.SEND
        a = flow.enqueue(send, "4153518780", MESSAGE, job_id="test-a")  # blacklisted: fails
        b = flow.enqueue(send, PHONE, "b", depends_on=a, job_id="test-b")
        c = flow.enqueue(send, PHONE, "c", depends_on=[a, b], job_id="test-c")  # two parents
        d = flow.enqueue(
            send, PHONE, "d", depends_on=Dependency(jobs=[a], allow_failure=True), job_id="test-d"
        )
        assert wait_all([a, d], 30) == ["failed", "finished"]
        time.sleep(0.5)  # were b and c going to run, they would by now
        assert workflows.statuses([b, c]) == {"test-b": "deferred", "test-c": "deferred"}
        assert set(flow.deferred_job_registry.get_job_ids()) == {"test-b", "test-c"}
    finally:
        workers.stop()


# --- schedules ------------------------------------------------------------------------------


def test_catch_up_enqueues_each_missed_tick_once(r) -> None:
    """No process: a durable scheduler whose last tick was 3 s ago enqueues
    the ticks since, as JSON jobs; a second pass repeats none of them. RQ's
    own way ignores the recorded tick: its next tick is in the future."""
    connection = redis_connection()
    last = int(time.time()) - 3
    for name in ("test-catch-up", "test-rq-way"):
        r.set(schedules.last_tick_key(name), last)
    scheduler = schedules.CourseCronScheduler(connection, catch_up=True, name="test-catch-up")
    scheduler.register_tick(schedules.record_tick, FLOW_QUEUE, "test-catch-up", "* * * * * *")
    assert len(scheduler.enqueue_jobs()) >= 3  # last+1 ... now
    scheduler.enqueue_jobs()  # again: only a tick that came due since, if any
    ticks = [
        job.args[1] for job in queue(FLOW_QUEUE).get_jobs()
    ]  # JSON: the course's queue reads them
    assert ticks == list(range(last + 1, last + 1 + len(ticks))), ticks  # each once, in order
    assert int(r.get(schedules.last_tick_key("test-catch-up"))) == ticks[-1]
    rq_way = schedules.CourseCronScheduler(connection, name="test-rq-way")
    job = rq_way.register_tick(schedules.record_tick, FLOW_QUEUE, "test-rq-way", "* * * * * *")
    # its first tick comes after now: the three recorded as missed are simply gone
    assert job.next_enqueue_time > datetime.fromtimestamp(last + 3, timezone.utc)


def test_cron_scheduler_killed_and_restarted(r) -> None:
    """SIGKILL both schedulers for 2 s: RQ's own way loses those ticks; the
    durable one loses none; neither runs a tick twice."""
    workers = start_worker(FLOW_QUEUE, name="test-patterns-cron")
    names = {"test-cron-rq": False, "test-cron-durable": True}

    def start() -> list:
        started = [
            schedules.start_cron_scheduler(n, FLOW_QUEUE, catch_up=c, wait=False)
            for n, c in names.items()
        ]
        for process in started:
            schedules.wait_cron_ready(process)
        return started

    try:
        cron = start()
        time.sleep(1.6)
        for process in cron:
            process.kill()
        time.sleep(2.0)
        cron = start()
        time.sleep(1.6)
        assert [process.stop() for process in cron] == [0, 0]
        reports = {}
        for name in names:
            schedules.wait_for_runs(r, name)
            reports[name] = schedules.tick_report(r, name)
    finally:
        workers.stop()
    durable, rq_way = reports["test-cron-durable"], reports["test-cron-rq"]
    assert durable.ticks >= 4 and durable.missing == [] and durable.twice == [], durable
    assert durable.ran == durable.ticks, durable
    assert rq_way.twice == [] and len(rq_way.missing) >= 1, rq_way


# --- dead letters -----------------------------------------------------------------------------


def test_failed_job_lands_in_failed_registry_then_requeues(r) -> None:
    flow = queue(FLOW_QUEUE)
    workers = start_worker(FLOW_QUEUE, name="test-patterns-dead")
    try:
        r.set(dead_letters.broken_key(), "1")
        job = flow.enqueue(
            dead_letters.SEND_OR_FAIL, PHONE, MESSAGE, retry=Retry(max=2), job_id="test-dead"
        )
        assert wait_all([job], 30) == ["failed"]
        assert r.hget(dead_letters.attempts_key(), job.id) == "3"  # once, then two retries
        assert flow.failed_job_registry.get_job_ids() == [job.id]
        assert (
            job.latest_result()
            .exc_string.strip()
            .endswith(f"ProviderRejected: provider rejected the message to {PHONE}")
        )
        assert "Requeueing 1 jobs" in dead_letters.rq_requeue(FLOW_QUEUE, [job.id])
        wait_for(lambda: r.hget(dead_letters.attempts_key(), job.id) == "4", 30)
        assert wait_all([job], 30) == ["failed"]  # not fixed: fails again (no retries left)
        r.delete(dead_letters.broken_key())
        flow.failed_job_registry.requeue(job.id)
        assert wait_all([job], 30) == ["finished"]
        assert r.lrange(dead_letters.dead_outbox_key(), 0, -1) == [f"{PHONE}: {MESSAGE}"]
    finally:
        workers.stop()


def test_poison_message_moved_to_dead_letters_after_n_deliveries(r) -> None:
    stream, group = "test:patterns:stream", "test group"
    consumer = dead_letters.start_dead_letter_consumer(
        "eve", stream, group, max_deliveries=3, claim_idle_ms=100
    )
    try:
        consumer.wait_for_output(
            lambda lines: any(x.startswith("consumer eve on") for x in lines), 30
        )
        good = [add_message(r, f"Holberton Student #{n} starts course", stream) for n in (1, 2)]
        poison = add_message(r, "not a lesson 05 message", stream)
        good.append(add_message(r, "Holberton Student #3 starts course", stream))
        consumer.wait_for_output(lambda lines: any(x.startswith("moved") for x in lines), 30)
    finally:
        assert consumer.stop() == 0
    lines = consumer.lines()
    assert [x for x in lines if x.startswith("handled")] == [
        f"handled {i}: student {n} has started" for i, n in zip(good, (1, 2, 3), strict=True)
    ]
    failures = [x for x in lines if x.startswith("delivery")]
    assert [x.split()[1] for x in failures] == ["1", "2", "3"]
    dead = r.xrange(dead_letters.dead_letter_stream(stream))
    assert len(dead) == 1
    assert dead[0][1] == {
        "original_id": poison, "group": group, "deliveries": "3", "message": "not a lesson 05 message"
    }  # fmt: skip
    assert r.xpending(stream, group)["pending"] == 0
    # moved once: a second move of the same entry does nothing
    assert not dead_letters.move_to_dead_letters(r, stream, group, poison, 3)
    assert r.xlen(dead_letters.dead_letter_stream(stream)) == 1


def test_handle_message() -> None:
    assert (
        dead_letters.handle_message("Holberton Student #7 starts course") == "student 7 has started"
    )
    for poison in (None, "", "Holberton Student #x starts course"):
        with pytest.raises(dead_letters.PoisonMessage):
            dead_letters.handle_message(poison)
