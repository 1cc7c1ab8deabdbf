"""helpers.seats: the keys, taking seats atomically (never below 0), and
seat reservation jobs run by real worker processes with the original's lines."""

from __future__ import annotations

import threading

import pytest
import redis
from rq.job import Job

from helpers import seats
from helpers.job_events import JobEvents
from helpers.workers import redis_connection, start_worker


def test_reset_sets_the_originals_start(r: redis.Redis) -> None:
    r.set("available_seats", 3)
    r.set("reservationEnabled", "false")
    seats.reset_seats(r)
    assert r.get("available_seats") == "50"
    assert r.get("reservationEnabled") == "true"
    assert seats.get_current_available_seats(r) == "50"
    assert seats.reservation_enabled(r) is True


def test_missing_keys_mean_the_initial_values(r: redis.Redis) -> None:
    assert seats.get_current_available_seats(r) == "50"
    assert seats.reservation_enabled(r) is True
    seats.reserve_seat(r, 7)  # the original's reserveSeat(number): a plain SET
    assert seats.get_current_available_seats(r) == "7"


def test_taking_seats_one_by_one_down_to_zero_then_failing(r: redis.Redis) -> None:
    seats.reset_seats(r)
    left = [seats.take_seat(r) for _ in range(50)]
    assert left == list(range(49, -1, -1))
    assert r.get("reservationEnabled") == "false"  # turned off at 0, as the original
    with pytest.raises(seats.NotEnoughSeats) as caught:
        seats.take_seat(r)
    assert str(caught.value) == "Not enough seats available"
    assert r.get("available_seats") == "0"


def test_concurrent_takers_never_go_below_zero(r: redis.Redis) -> None:
    seats.reset_seats(r)
    clients, per_client = 32, 10  # 320 attempts for 50 seats
    barrier = threading.Barrier(clients)
    taken = [0] * clients
    refused = [0] * clients

    def run(index: int) -> None:
        barrier.wait(timeout=30)
        for _ in range(per_client):
            try:
                seats.take_seat(r)
                taken[index] += 1
            except seats.NotEnoughSeats:
                refused[index] += 1

    threads = [threading.Thread(target=run, args=(i,)) for i in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert sum(taken) == 50
    assert sum(refused) == clients * per_client - 50
    assert r.get("available_seats") == "0"


def test_the_job_function_needs_a_job() -> None:
    with pytest.raises(RuntimeError, match="inside an RQ job"):
        seats.process_seat_job()


def test_seat_keys_cover_the_lessons_keys() -> None:
    keys = seats.seat_keys()
    for key in ("available_seats", "reservationEnabled", "rq:queue:reserve_seat"):
        assert key in keys
    assert "jobs:events:reserve_seat" in keys and "jobs:ids:reserve_seat" in keys
    assert "rq:job:reserve_seat-*" in keys


def test_jobs_processed_by_two_workers_print_the_originals_lines(r: redis.Redis) -> None:
    """55 reservation jobs for 50 seats, two worker processes at once: 50
    complete, 5 fail with the original's message, seats end at 0, never below."""
    seats.reset_seats(r)
    connection = redis_connection()
    events = JobEvents(seats.QUEUE_NAME, connection, prefix=seats.JOB_PREFIX)
    q = seats.seat_queue(connection)
    jobs = [seats.enqueue_seat_reservation(q) for _ in range(55)]
    assert [job.id for job in jobs] == [f"reserve_seat-{n}" for n in range(1, 56)]
    lines: list[str] = []
    with start_worker(seats.QUEUE_NAME, concurrency=2, worker_class="simple"):
        events.wait_for(jobs, timeout=120, on_event=lambda e: lines.append(events.message(e)))
    completed = [line for line in lines if line.endswith(" completed")]
    failed = [line for line in lines if " failed: " in line]
    assert len(completed) == 50 and len(failed) == 5, lines
    # Each job named by its number, as kue's ids were; RQ's id is reserve_seat-<n>.
    assert sorted(int(line.split()[3]) for line in lines) == list(range(1, 56))
    assert all(line.endswith(" failed: Not enough seats available") for line in failed)
    assert r.get("available_seats") == "0"
    assert r.get("reservationEnabled") == "false"
    results = [Job.fetch(j.id, connection=connection, serializer=q.serializer) for j in jobs]
    returned = sorted(j.return_value() for j in results if j.return_value() is not None)
    assert returned == list(range(50))  # each seat number taken exactly once
