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

The creator side prints the original's lines from the jobs' events
(:mod:`helpers.job_events`): ``Seat reservation job <n> completed`` and
``Seat reservation job <n> failed: <error>``, where ``n`` is the queue's
counter (RQ's job id is ``reserve_seat-<n>``).
"""

from __future__ import annotations

import hashlib

import redis
import redis.asyncio
from rq import Queue
from rq.job import Job, get_current_job

from helpers.job_events import enqueue_with_events, events_key, job_ids_key
from helpers.stock import run_script
from helpers.workers import queue, queue_keys

SEATS_KEY = "available_seats"
ENABLED_KEY = "reservationEnabled"
INITIAL_SEATS = 50
QUEUE_NAME = "reserve_seat"
JOB_PREFIX = "Seat reservation job"
NOT_ENOUGH_SEATS = "Not enough seats available"


class NotEnoughSeats(Exception):
    """No seat left: the job fails with the original's message."""

    def __init__(self, message: str = NOT_ENOUGH_SEATS) -> None:
        super().__init__(message)


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


# --- the original's functions ------------------------------------------------


def reserve_seat(client: redis.Redis, number: int) -> None:
    """The original's ``reserveSeat(number)``: ``SET available_seats <number>``."""
    client.set(SEATS_KEY, number)


def get_current_available_seats(client: redis.Redis) -> str:
    """The original's ``getCurrentAvailableSeats()``: the stored value, a string
    (``"50"``), as the original's route returns it."""
    return _text(client.get(SEATS_KEY)) or str(INITIAL_SEATS)


async def get_current_available_seats_async(client: redis.asyncio.Redis) -> str:
    """The asyncio twin of :func:`get_current_available_seats`."""
    return _text(await client.get(SEATS_KEY)) or str(INITIAL_SEATS)


def reservation_enabled(client: redis.Redis) -> bool:
    """Whether reservations are open (the ``reservationEnabled`` flag)."""
    return _text(client.get(ENABLED_KEY)) != "false"


async def reservation_enabled_async(client: redis.asyncio.Redis) -> bool:
    """The asyncio twin of :func:`reservation_enabled`."""
    return _text(await client.get(ENABLED_KEY)) != "false"


def reset_seats(client: redis.Redis) -> None:
    """50 seats, reservations on: what the original sets when it starts."""
    client.mset({SEATS_KEY: INITIAL_SEATS, ENABLED_KEY: "true"})


# --- taking a seat: one atomic step ------------------------------------------

TAKE_SEAT_SCRIPT = """
-- KEYS[1]: available_seats   KEYS[2]: reservationEnabled   ARGV[1]: initial seats
-- Read, check and write in one command: two workers can never take the same seat.
local seats = tonumber(redis.call('GET', KEYS[1]) or ARGV[1])
if not seats then
  return redis.error_reply(KEYS[1] .. ' is not a number')
end
if seats < 1 then
  redis.call('SET', KEYS[2], 'false')
  return -1
end
seats = seats - 1
redis.call('SET', KEYS[1], seats)
if seats == 0 then
  redis.call('SET', KEYS[2], 'false')
end
return seats
""".strip()
"""Take one seat; return the seats left, or -1 when there was none."""

TAKE_SEAT_SHA = hashlib.sha1(TAKE_SEAT_SCRIPT.encode()).hexdigest()


def take_seat(client: redis.Redis) -> int:
    """Take one seat atomically and return how many are left. At 0,
    reservations are turned off; with none left, raise :class:`NotEnoughSeats`."""
    left = int(
        run_script(  # type: ignore[arg-type]
            client, TAKE_SEAT_SCRIPT, TAKE_SEAT_SHA, [SEATS_KEY, ENABLED_KEY], [INITIAL_SEATS]
        )
    )
    if left < 0:
        raise NotEnoughSeats()
    return left


def process_seat_job() -> int:
    """The ``reserve_seat`` job, run by a worker: take one seat (see
    :func:`take_seat`); the job fails with ``Not enough seats available``
    when none is left. Returns the seats left."""
    job = get_current_job()
    if job is None:
        raise RuntimeError("process_seat_job() runs inside an RQ job")
    return take_seat(job.connection)


def seat_queue(connection: redis.Redis | None = None) -> Queue:
    """The RQ queue ``reserve_seat`` (JSON serializer)."""
    return queue(QUEUE_NAME, connection)


def enqueue_seat_reservation(q: Queue | None = None, job_id: str | None = None) -> Job:
    """Queue one seat reservation job, with completed/failed events for the
    creator (id ``reserve_seat-<n>`` from a Redis counter, unless given)."""
    return enqueue_with_events(q or seat_queue(), "helpers.seats.process_seat_job", job_id=job_id)
