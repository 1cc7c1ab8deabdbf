"""100-seat: seat reservations queued as RQ jobs, an HTTP app (Starlette) on port 1245.

Redis keys, as in the original: ``available_seats`` (50 at start) and
``reservationEnabled`` (``"true"`` at start). The original kept the flag in
the server's memory; here it lives in Redis, where the worker that turns it
off and every process of the app see the same one. Routes::

    GET /available_seats   {"numberOfAvailableSeats":"50"} (a string, as Redis's GET returns it)
    GET /reserve_seat      {"status":"Reservation are blocked"} when the flag is off; else
                           queue a job in ``reserve_seat``: {"status":"Reservation in process"}
                           ({"status":"Reservation failed"} if queueing failed)
    GET /process           {"status":"Queue processing"}, and a worker starts taking the jobs

Not the original's, and off here: with ``seat_queue_limit`` N (the course's
service sets it, :func:`helpers.api.create_app`), ``/reserve_seat`` answers
429 ``{"status":"Too many reservations waiting"}`` (``Retry-After: 1``) while
N jobs already wait, and queues nothing.

A job takes one seat: at 0 it turns reservations off; with none left it
fails with ``Not enough seats available``. The original read the seats, then
wrote them back: here it is one Lua script, so the seats never go below 0
however many workers run. The app prints ``Seat reservation job <n>
completed`` / ``Seat reservation job <n> failed: <error>`` for each job it
queued, as the original's server did, from the jobs' events
(:mod:`helpers.job_events`; ``n`` is the queue's counter, RQ's id is
``reserve_seat-<n>``).

The routes are ``async`` and share one asyncio Redis client, one pipelined
connection (:func:`helpers.programs.t9_stock.connect`). RQ is not asyncio:
it builds each job's commands (:func:`queue_reservation`), the app's client
sends them. The worker's side (:func:`take_seat`, the
job) is plain blocking code. :mod:`helpers.api` serves these same
:data:`routes` (and those of ``9-stock``) as the course's service.

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
import redis.asyncio
from rq.job import get_current_job
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import State
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from helpers.autopipeline import AutoPipelinedRedis
from helpers.job_events import (
    TERMINAL_EVENTS,
    CreatorListener,
    counter_job_id,
    enqueue_with_events,
    job_ids_key,
)
from helpers.programs.t9_stock import connect
from helpers.server import redis_url
from helpers.workers import WorkerProcess, queue, redis_connection, start_worker

HOST = "127.0.0.1"
DEFAULT_PORT = 1245
SEATS_KEY = "available_seats"
ENABLED_KEY = "reservationEnabled"
INITIAL_SEATS = 50
QUEUE_NAME = "reserve_seat"
QUEUE_KEY = f"rq:queue:{QUEUE_NAME}"  # RQ's list of the jobs waiting in it
JOB_PREFIX = "Seat reservation job"
NOT_ENOUGH_SEATS = "Not enough seats available"
# A worker imports a job's function by name, and cannot import a program's
# `__main__`: the jobs name this file's process_seat_job as the course imports it.
JOB_FUNCTION = "helpers.seats.process_seat_job"


class NotEnoughSeats(Exception):
    """No seat left: the job fails with the original's message."""

    def __init__(self, message: str = NOT_ENOUGH_SEATS) -> None:
        super().__init__(message)


async def reserve_seat(client: redis.asyncio.Redis, number: int) -> None:
    """The original's ``reserveSeat(number)``: ``SET available_seats <number>``."""
    await client.set(SEATS_KEY, number)


async def get_current_available_seats(client: redis.asyncio.Redis) -> str:
    """The original's ``getCurrentAvailableSeats()``: the stored value, a
    string (``"50"``), as the original's route returns it."""
    stored = await client.get(SEATS_KEY)
    return str(INITIAL_SEATS) if stored is None else stored


async def reservation_enabled(client: redis.asyncio.Redis) -> bool:
    """Whether reservations are open (the ``reservationEnabled`` flag)."""
    return await client.get(ENABLED_KEY) != "false"


async def reset_seats(client: redis.asyncio.Redis) -> None:
    """50 seats, reservations on: what the original sets when it starts."""
    await client.mset({SEATS_KEY: INITIAL_SEATS, ENABLED_KEY: "true"})


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

TAKE_SEAT_SHA = hashlib.sha1(TAKE_SEAT_SCRIPT.encode()).hexdigest()  # its name in Redis's cache


def take_seat(client: redis.Redis) -> int:
    """Take one seat in one step and return how many are left. At 0,
    reservations are turned off; with none left, raise :class:`NotEnoughSeats`.
    (A worker's blocking client; ``register_script`` sends ``EVALSHA``, and
    the script's text only if Redis answers ``NOSCRIPT``.)"""
    take = client.register_script(TAKE_SEAT_SCRIPT)
    left = int(take(keys=[SEATS_KEY, ENABLED_KEY], args=[INITIAL_SEATS]))  # type: ignore[arg-type]
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


async def queue_reservation(state: State) -> str:
    """Queue one seat job, its lines printed by the listener when it ends;
    return its id. RQ writes the job into a pipeline of its blocking client
    that is never executed: its commands (the job's hash, the queue's list)
    go to Redis as one MULTI/EXEC down the app's asyncio client instead, so
    queueing waits for Redis without holding a thread. The id is drawn, and
    listened for, first: a fast worker's event is never missed."""
    client: AutoPipelinedRedis = state.redis
    job_id = counter_job_id(QUEUE_NAME, await client.incr(job_ids_key(QUEUE_NAME)))
    state.listener.expect([job_id])
    try:
        pipe = state.queue.connection.pipeline()
        enqueue_with_events(state.queue, JOB_FUNCTION, job_id=job_id, pipeline=pipe)
        await client.transaction(args for args, _ in pipe.command_stack)
    except Exception:
        state.listener.forget([job_id])
        raise
    state.listener.announce([job_id])
    return job_id


def start_listener(state: State) -> None:
    """Start the listener that prints the jobs' lines (once), and learn
    Redis's version for RQ's job records: both read Redis (blocking, so a
    route runs this in a thread), which may be down when the app starts."""
    with state.lock:
        if state.listener is None:
            state.queue.get_redis_server_version()  # RQ asks once, then remembers
            state.listener = CreatorListener(
                QUEUE_NAME, state.queue.connection, prefix=JOB_PREFIX, kinds=TERMINAL_EVENTS
            )


# --- the HTTP app ---------------------------------------------------------


# JSONResponse writes compact JSON (no spaces): byte for byte what Express's res.json() wrote.


async def available_seats(request: Request) -> JSONResponse:
    """The seats left, a string."""
    seats = await get_current_available_seats(request.app.state.redis)
    return JSONResponse({"numberOfAvailableSeats": seats})


async def reserve(request: Request) -> JSONResponse:
    """Queue a seat job, unless reservations are blocked (or, with a
    ``seat_queue_limit``, too many jobs already wait: 429, try again in 1 s)."""
    state = request.app.state
    if not await reservation_enabled(state.redis):
        return JSONResponse({"status": "Reservation are blocked"})
    limit = state.seat_queue_limit  # None: no bound, as the original
    if limit is not None and await state.redis.llen(QUEUE_KEY) >= limit:
        return JSONResponse(
            {"status": "Too many reservations waiting"}, 429, headers={"Retry-After": "1"}
        )
    try:
        if state.listener is None:
            await run_in_threadpool(start_listener, state)
        await queue_reservation(state)
    except Exception:  # the original answers this for any queueing error
        return JSONResponse({"status": "Reservation failed"})
    return JSONResponse({"status": "Reservation in process"})


def start_processing(state: State) -> None:
    """Start a worker (once; again if it died) taking ``reserve_seat`` jobs."""
    with state.lock:
        worker: WorkerProcess | None = state.worker
        if worker is None or not worker.running:
            state.worker = start_worker(QUEUE_NAME, worker_class="simple", wait=False)


async def process(request: Request) -> JSONResponse:
    """Answer at once, and start a worker (once) taking ``reserve_seat`` jobs."""
    state = request.app.state
    await state.redis.ping()  # no worker for a Redis that does not answer (an error)
    if state.worker is None or not state.worker.running:
        await run_in_threadpool(start_processing, state)  # starting a process blocks
    return JSONResponse({"status": "Queue processing"})


routes = [
    Route("/available_seats", available_seats),
    Route("/reserve_seat", reserve),
    Route("/process", process),
]


@asynccontextmanager
async def seat_jobs(
    app: Starlette, url: str, seat_queue_limit: int | None = None
) -> AsyncIterator[None]:
    """What the seat routes need beside ``app.state.redis``: RQ's queue (a
    blocking client, bytes replies, as RQ wants), the listener that prints
    the jobs' lines, and the worker ``/process`` starts (stopped at the end)."""
    state = app.state
    state.queue = queue(QUEUE_NAME, redis_connection(url))
    state.listener = None  # started with the first job (see start_listener)
    state.seat_queue_limit = seat_queue_limit
    state.worker = None
    state.lock = threading.Lock()
    try:
        yield
    finally:
        await run_in_threadpool(stop_jobs, state)


def stop_jobs(state: State) -> None:
    """Stop the worker, then the listener, then close RQ's client."""
    with state.lock:
        if state.worker is not None:
            state.worker.stop(timeout=10)
    if state.listener is not None:
        state.listener.stop()
    state.queue.connection.close()


@asynccontextmanager
async def lifespan(app: Starlette) -> AsyncIterator[None]:
    """The Redis client, the seats reset, and the seat jobs' side."""
    url = redis_url()
    app.state.redis = connect(url)
    await reset_seats(app.state.redis)
    async with seat_jobs(app, url):
        yield
    await app.state.redis.aclose()


app = Starlette(routes=routes, lifespan=lifespan)


def main() -> None:
    """Serve the app on 127.0.0.1, port ``$PORT`` (default 1245)."""
    import uvicorn  # noqa: PLC0415 (only the program needs it, not an import of the app)

    port = int(os.environ.get("PORT", DEFAULT_PORT))
    uvicorn.run(app, host=HOST, port=port, access_log=False)  # no line per request


if __name__ == "__main__":
    main()
