"""Seat reservations (the original's task 10): a queue of reservation jobs.

Redis keys, as in the original: ``available_seats`` (50 at start) and
``reservationEnabled`` (``"true"`` or ``"false"``; the original kept this
flag in the server's memory, here it lives in Redis so every process of the
service and every worker sees the same one). A missing key means the
initial value.

Reserving a seat is a job in the RQ queue ``reserve_seat``. Processing one
(:func:`process_seat_job`, run by a worker) takes one seat; at 0 it turns
reservations off; with no seat left it fails with ``Not enough seats
available``. The original read the seats then wrote them back, two steps
that two workers could interleave; :func:`take_seat` does both in one Lua
script, so seats never go below 0, however many workers run.

The task's own code (the keys, the script, :func:`take_seat`, the job, the
routes) is the reference solution :mod:`helpers.programs.t100_seat`,
imported here: one copy. The reference's Redis functions for the routes are
``async``: here they are :func:`get_current_available_seats_async`,
:func:`reservation_enabled_async` and :func:`reset_seats_async`, and this
module adds their blocking twins for a notebook's ``redis.Redis`` client.

The creator side prints the original's lines from the jobs' events
(:mod:`helpers.job_events`): ``Seat reservation job <n> completed`` and
``Seat reservation job <n> failed: <error>``, where ``n`` is the queue's
counter (RQ's job id is ``reserve_seat-<n>``).
"""

from __future__ import annotations

import redis
from rq import Queue
from rq.job import Job

from helpers.job_events import enqueue_with_events, events_key, job_ids_key
from helpers.programs import t100_seat
from helpers.programs.t100_seat import (
    ENABLED_KEY,
    INITIAL_SEATS,
    JOB_FUNCTION,
    JOB_PREFIX,
    NOT_ENOUGH_SEATS,
    QUEUE_KEY,
    QUEUE_NAME,
    SEATS_KEY,
    TAKE_SEAT_SCRIPT,
    TAKE_SEAT_SHA,
    NotEnoughSeats,
    take_seat,
)
from helpers.programs.t100_seat import (
    get_current_available_seats as get_current_available_seats_async,
)
from helpers.programs.t100_seat import reservation_enabled as reservation_enabled_async
from helpers.programs.t100_seat import reserve_seat as reserve_seat_async
from helpers.programs.t100_seat import reset_seats as reset_seats_async
from helpers.workers import queue, queue_keys

__all__ = [
    "ENABLED_KEY",
    "INITIAL_SEATS",
    "JOB_FUNCTION",
    "JOB_PREFIX",
    "NOT_ENOUGH_SEATS",
    "QUEUE_KEY",
    "QUEUE_NAME",
    "SEATS_KEY",
    "TAKE_SEAT_SCRIPT",
    "TAKE_SEAT_SHA",
    "NotEnoughSeats",
    "enqueue_seat_reservation",
    "get_current_available_seats",
    "get_current_available_seats_async",
    "process_seat_job",
    "reservation_enabled",
    "reservation_enabled_async",
    "reserve_seat",
    "reserve_seat_async",
    "reset_seats",
    "reset_seats_async",
    "seat_keys",
    "seat_queue",
    "take_seat",
]


def seat_keys() -> list[str]:
    """This module's keys and its queue's RQ and event keys (glob patterns), for
    :func:`helpers.client.clear_keys`."""
    return [
        SEATS_KEY,
        ENABLED_KEY,
        *queue_keys(QUEUE_NAME),
        f"rq:job:{QUEUE_NAME}-*",
        events_key(QUEUE_NAME),
        job_ids_key(QUEUE_NAME),
    ]


def _text(value: bytes | str | None) -> str | None:
    return value.decode() if isinstance(value, bytes) else value


def reserve_seat(client: redis.Redis, number: int) -> None:
    """The blocking twin of :func:`reserve_seat_async`: ``SET available_seats <number>``."""
    client.set(SEATS_KEY, number)


def get_current_available_seats(client: redis.Redis) -> str:
    """The blocking twin of :func:`get_current_available_seats_async`: the
    stored value, a string (``"50"``), as the original's route returns it."""
    return _text(client.get(SEATS_KEY)) or str(INITIAL_SEATS)  # type: ignore[arg-type]


def reservation_enabled(client: redis.Redis) -> bool:
    """The blocking twin of :func:`reservation_enabled_async`."""
    return _text(client.get(ENABLED_KEY)) != "false"  # type: ignore[arg-type]


def reset_seats(client: redis.Redis) -> None:
    """The blocking twin of :func:`reset_seats_async`: 50 seats, reservations on."""
    client.mset({SEATS_KEY: INITIAL_SEATS, ENABLED_KEY: "true"})


def process_seat_job() -> int:
    """The ``reserve_seat`` job, run by a worker (:data:`JOB_FUNCTION`, on the
    workers' allow-list under this name): the reference's job, which takes one
    seat (see :func:`take_seat`) and fails with ``Not enough seats available``
    when none is left. Returns the seats left."""
    return t100_seat.process_seat_job()


def seat_queue(connection: redis.Redis | None = None) -> Queue:
    """The RQ queue ``reserve_seat`` (JSON serializer)."""
    return queue(QUEUE_NAME, connection)


def enqueue_seat_reservation(q: Queue | None = None, job_id: str | None = None) -> Job:
    """Queue one seat reservation job, with completed/failed events for the
    creator (id ``reserve_seat-<n>`` from a Redis counter, unless given)."""
    return enqueue_with_events(q or seat_queue(), JOB_FUNCTION, job_id=job_id)
