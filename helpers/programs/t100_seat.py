"""100-seat: seat reservations queued as RQ jobs, an HTTP app (FastAPI) on port 1245.

Redis keys, as in the original: ``available_seats`` (50 at start) and
``reservationEnabled`` (``"true"`` at start). The original kept the flag in
the server's memory; here it lives in Redis, where the worker that turns it
off and every process of the app see the same one. Routes::

    GET /available_seats   {"numberOfAvailableSeats":"50"} (a string, as Redis's GET returns it)
    GET /reserve_seat      {"status":"Reservation are blocked"} when the flag is off; else
                           queue a job in ``reserve_seat``: {"status":"Reservation in process"}
                           ({"status":"Reservation failed"} if queueing failed)
    GET /process           {"status":"Queue processing"}, and a worker starts taking the jobs

A job takes one seat: at 0 it turns reservations off; with none left it
fails with ``Not enough seats available``. The original read the seats, then
wrote them back: here it is one Lua script, so the seats never go below 0
however many workers run. The app prints ``Seat reservation job <n>
completed`` / ``Seat reservation job <n> failed: <error>`` for each job it
queued, as the original's server did, from the jobs' events
(:mod:`helpers.job_events`; ``n`` is the queue's counter, RQ's id is
``reserve_seat-<n>``).

Run it: ``python helpers/programs/t100_seat.py`` (``PORT``, default 1245;
Redis at ``REDIS_URL``, else the course server).
"""

from __future__ import annotations

import hashlib
import os
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import redis
from fastapi import FastAPI, Request
from rq import Queue
from rq.job import Job, get_current_job

from helpers.job_events import TERMINAL_EVENTS, CreatorListener, enqueue_with_events, next_job_id
from helpers.programs.t9_stock import run_script
from helpers.server import redis_url
from helpers.workers import WorkerProcess, queue, redis_connection, start_worker

HOST = "127.0.0.1"
DEFAULT_PORT = 1245
SEATS_KEY = "available_seats"
ENABLED_KEY = "reservationEnabled"
INITIAL_SEATS = 50
QUEUE_NAME = "reserve_seat"
JOB_PREFIX = "Seat reservation job"
NOT_ENOUGH_SEATS = "Not enough seats available"
# A worker imports a job's function by name, and cannot import a program's
# `__main__`: the jobs name this file's process_seat_job as the course imports it.
JOB_FUNCTION = "helpers.seats.process_seat_job"


class NotEnoughSeats(Exception):
    """No seat left: the job fails with the original's message."""

    def __init__(self, message: str = NOT_ENOUGH_SEATS) -> None:
        super().__init__(message)


def reserve_seat(client: redis.Redis, number: int) -> None:
    """The original's ``reserveSeat(number)``: ``SET available_seats <number>``."""
    client.set(SEATS_KEY, number)


def get_current_available_seats(client: redis.Redis) -> str:
    """The original's ``getCurrentAvailableSeats()``: the stored value, a
    string (``"50"``), as the original's route returns it."""
    stored = client.get(SEATS_KEY)
    if stored is None:
        return str(INITIAL_SEATS)
    return stored.decode() if isinstance(stored, bytes) else stored


def reservation_enabled(client: redis.Redis) -> bool:
    """Whether reservations are open (the ``reservationEnabled`` flag)."""
    return client.get(ENABLED_KEY) not in ("false", b"false")


def reset_seats(client: redis.Redis) -> None:
    """50 seats, reservations on: what the original sets when it starts."""
    client.mset({SEATS_KEY: INITIAL_SEATS, ENABLED_KEY: "true"})


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
    """Take one seat in one step and return how many are left. At 0,
    reservations are turned off; with none left, raise :class:`NotEnoughSeats`."""
    keys, args = [SEATS_KEY, ENABLED_KEY], [INITIAL_SEATS]
    left = int(run_script(client, TAKE_SEAT_SCRIPT, TAKE_SEAT_SHA, keys, args))  # type: ignore[call-overload]
    if left < 0:
        raise NotEnoughSeats()
    return left


def process_seat_job() -> int:
    """The ``reserve_seat`` job, run by a worker: take one seat with the job's
    Redis connection. Returns the seats left (the job's result)."""
    job = get_current_job()
    if job is None:
        raise RuntimeError("process_seat_job() runs inside an RQ job")
    return take_seat(job.connection)


def queue_reservation(q: Queue, listener: CreatorListener) -> Job:
    """Queue one seat job, its lines printed by ``listener`` when it ends. The
    id is drawn, and listened for, first: a fast worker's event is never missed."""
    job_id = next_job_id(q.connection, q.name)
    listener.expect([job_id])
    try:
        job = enqueue_with_events(q, JOB_FUNCTION, job_id=job_id)
    except Exception:
        listener.forget([job_id])
        raise
    listener.announce([job_id])
    return job


# --- the HTTP app ---------------------------------------------------------


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    """Clients, the seats reset, and the listener that prints the jobs' lines."""
    url = redis_url()
    app.state.redis = redis.Redis.from_url(url, decode_responses=True)
    reset_seats(app.state.redis)
    app.state.queue = queue(QUEUE_NAME, redis_connection(url))  # RQ wants bytes replies
    app.state.listener = CreatorListener(
        QUEUE_NAME, app.state.queue.connection, prefix=JOB_PREFIX, kinds=TERMINAL_EVENTS
    )
    app.state.worker = None
    app.state.lock = threading.Lock()
    yield
    worker: WorkerProcess | None = app.state.worker
    if worker is not None:
        worker.stop(timeout=10)
    app.state.listener.stop()
    app.state.queue.connection.close()
    app.state.redis.close()


app = FastAPI(title="100-seat", lifespan=lifespan)


@app.get("/available_seats")
def available_seats(request: Request) -> dict[str, object]:
    """The seats left, a string."""
    return {"numberOfAvailableSeats": get_current_available_seats(request.app.state.redis)}


@app.get("/reserve_seat")
def reserve(request: Request) -> dict[str, object]:
    """Queue a seat job, unless reservations are blocked."""
    state = request.app.state
    if not reservation_enabled(state.redis):
        return {"status": "Reservation are blocked"}
    try:
        queue_reservation(state.queue, state.listener)
    except Exception:  # the original answers this for any queueing error
        return {"status": "Reservation failed"}
    return {"status": "Reservation in process"}


@app.get("/process")
def process(request: Request) -> dict[str, object]:
    """Answer at once, and start a worker (once) taking ``reserve_seat`` jobs."""
    state = request.app.state
    with state.lock:
        if state.worker is None or not state.worker.running:
            state.worker = start_worker(QUEUE_NAME, worker_class="simple", wait=False)
    return {"status": "Queue processing"}


def main() -> None:
    """Serve the app on 127.0.0.1, port ``$PORT`` (default 1245)."""
    import uvicorn  # noqa: PLC0415 (only the program needs it, not an import of the app)

    port = int(os.environ.get("PORT", DEFAULT_PORT))
    uvicorn.run(app, host=HOST, port=port, access_log=False)  # no line per request


if __name__ == "__main__":
    main()
