"""The HTTP service of the original's tasks 9 and 10 (stock and seats).

Routes, with the original's JSON bodies byte for byte (compact JSON)::

    GET /list_products                  the four products
    GET /list_products/<itemId>         one product + currentQuantity,
                                        or {"status":"Product not found"}
    GET /reserve_product/<itemId>       reserve one unit, atomically (Lua):
                                        {"status":"Reservation confirmed","itemId":1}
                                        {"status":"Not enough stock available","itemId":1}
                                        {"status":"Product not found"}
    GET /available_seats                {"numberOfAvailableSeats":"50"} (a string, as the original)
    GET /reserve_seat                   queue a job in ``reserve_seat``:
                                        {"status":"Reservation in process"}, or
                                        {"status":"Reservation are blocked"} when sold out,
                                        {"status":"Reservation failed"} if queueing failed
    GET /process                        {"status":"Queue processing"}, then a worker
                                        processes ``reserve_seat`` jobs until the service stops

The service is built from the two reference programs: the routes of
:mod:`helpers.programs.t9_stock` and :mod:`helpers.programs.t100_seat`, one
copy each, in one Starlette app with one asyncio Redis client (one
pipelined connection, :func:`~helpers.programs.t9_stock.connect`). What this module adds:

- ``GET /reserve_product_naive/<itemId>``, not the original's: it reserves
  the original's way (read, then write), only so that lesson 09 can show the
  race it loses;
- answers for what goes wrong, as JSON: unknown routes and methods a JSON
  404/405; Redis down or stalled a JSON 503 saying how to fix it (after at
  most about :data:`~helpers.programs.t9_stock.REDIS_TIMEOUT_S`), never a
  traceback;
- an optional bound on the seat queue (``seat_queue_limit``): with that many
  jobs waiting, ``/reserve_seat`` answers 429 with ``Retry-After: 1``;
- the command line, several processes (``--workers``), and
  :func:`start_service` for notebooks and tests.

Malformed ids (letters, signs, huge numbers, unicode, extra path segments)
are simply not found.

Run it::

    python -m helpers.api [--host 127.0.0.1] [--port 1245] [--workers N] [--seat-queue-limit N]

Starting the service sets every product's stock and the seats to their
initial values, as the original did when it started listening. The lines
``Seat reservation job <n> completed`` / ``failed: <error>`` (``n``, the
queue's counter, as kue's id was; RQ's id is ``reserve_seat-<n>``) are printed
to the service's output by the process that queued the job (the creator side).
From a notebook or a test, :func:`start_service` runs it in the background
with its output in a log file, and returns once it answers.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import urllib.request
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import redis
import redis.asyncio
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from helpers import seats, stock
from helpers.client import fix_hint
from helpers.processes import BackgroundProcess
from helpers.programs import t9_stock, t100_seat
from helpers.server import free_port, logs_dir, redis_url

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 1245
SEAT_QUEUE_LIMIT_ENV = "COURSE_SEAT_QUEUE_LIMIT"  # how the CLI passes the bound to its processes


def encode(body: object) -> bytes:
    """Compact JSON, as Express's ``res.json()`` writes it (no spaces)."""
    return json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()


# The bodies of the reservation route, for those who count answers (tests, the bench, a widget).
NOT_FOUND_BODY = encode(t9_stock.NOT_FOUND)
CONFIRMED_BODY = {
    p["itemId"]: encode({"status": "Reservation confirmed", "itemId": p["itemId"]})
    for p in stock.PRODUCTS
}
NOT_ENOUGH_BODY = {
    p["itemId"]: encode({"status": "Not enough stock available", "itemId": p["itemId"]})
    for p in stock.PRODUCTS
}


def reset_all(client: redis.Redis) -> None:
    """Every product's stock and the seats back to their initial values."""
    stock.reset_stock(client)
    seats.reset_seats(client)


async def reserve_product_naive(request: Request) -> JSONResponse:
    """The original's two-step reservation (read, then write): it oversells.
    Kept only for lesson 09's demonstration."""
    product = stock.get_item_by_id(request.path_params["item_id"])
    if product is None:
        return JSONResponse(t9_stock.NOT_FOUND)
    item_id = product["itemId"]
    if not await stock.reserve_stock_naive_async(request.app.state.redis, item_id):
        return JSONResponse({"status": "Not enough stock available", "itemId": item_id})
    return JSONResponse({"status": "Reservation confirmed", "itemId": item_id})


async def http_error(request: Request, error: Exception) -> Response:
    """Unknown routes and methods (an ``HTTPException``): a JSON error, like every other answer."""
    status, detail = getattr(error, "status_code", 500), getattr(error, "detail", "Error")
    return JSONResponse({"status": detail}, status, headers=getattr(error, "headers", None))


async def error_as_json(request: Request, error: Exception) -> Response:
    """Redis down, stalled or out of connections: a 503 saying how to fix it
    (handled here: no traceback in the log); anything else a JSON 500."""
    if isinstance(error, (redis.ConnectionError, redis.TimeoutError, OSError)):
        hint = fix_hint(request.app.state.url)
        return JSONResponse({"status": "Service unavailable", "error": hint}, 503)
    return JSONResponse({"status": "Internal error", "error": type(error).__name__}, 500)


def create_app(
    *,
    url: str | None = None,
    reset_on_startup: bool = True,
    seat_queue_limit: int | None = None,
) -> Starlette:
    """The service as an ASGI app. ``reset_on_startup``: set the stock and the
    seats to their initial values when it starts (the CLI does it once, before
    starting its processes, and passes False). ``seat_queue_limit``: with that
    many jobs waiting in ``reserve_seat``, ``/reserve_seat`` answers 429 and
    queues nothing (None: no bound, the original's behaviour)."""

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        resolved = url or redis_url()
        app.state.url = resolved
        app.state.redis = t9_stock.connect(resolved)
        if reset_on_startup:
            try:
                await stock.reset_stock_async(app.state.redis)
                await seats.reset_seats_async(app.state.redis)
            except redis.RedisError:
                print(f"Stock and seats not reset: {fix_hint(resolved)}", flush=True)
        print(f"Service process {os.getpid()} ready.", flush=True)
        try:
            async with t100_seat.seat_jobs(app, resolved, seat_queue_limit):
                yield
        finally:
            await app.state.redis.aclose()
            print(f"Service process {os.getpid()} stopped.", flush=True)

    routes = [
        *t9_stock.routes,
        Route("/reserve_product_naive/{item_id:path}", reserve_product_naive),
        *t100_seat.routes,
    ]
    return Starlette(
        routes=routes,
        lifespan=lifespan,
        exception_handlers={
            HTTPException: http_error,
            redis.RedisError: error_as_json,
            OSError: error_as_json,
            Exception: error_as_json,  # anything else: still JSON (and logged)
        },
    )


def create_service_app() -> Starlette:
    """The app each process of ``python -m helpers.api`` serves (the CLI has
    already reset the stock and seats, once for all its processes)."""
    limit = os.environ.get(SEAT_QUEUE_LIMIT_ENV)
    return create_app(
        url=os.environ.get("REDIS_URL"),
        reset_on_startup=False,
        seat_queue_limit=int(limit) if limit else None,
    )


@dataclass(kw_only=True)
class ServiceProcess(BackgroundProcess):
    """The service running in the background (see :func:`start_service`)."""

    url: str
    port: int

    def stop(self, timeout: float = 20.0) -> int:
        """Graceful stop (SIGTERM): requests in flight finish, the seat worker
        stops, then the service exits. Kills it after ``timeout`` seconds."""
        return super().stop(timeout)


def start_service(
    port: int | None = None,
    *,
    host: str = DEFAULT_HOST,
    workers: int = 1,
    timeout: float = 30.0,
    env: dict[str, str] | None = None,
    seat_queue_limit: int | None = None,
) -> ServiceProcess:
    """Run ``python -m helpers.api`` in the background on ``port`` (a free
    one by default) and return once it answers. Its output goes to a log file
    in :func:`helpers.server.logs_dir`; ``.stop()`` stops it, and it stops by
    itself if this process (a notebook's kernel) exits first.
    ``seat_queue_limit``: see :func:`create_app`."""
    port = port or free_port()
    environment = dict(os.environ)
    environment.setdefault("REDIS_URL", redis_url())
    environment.update(env or {})
    args = ["helpers.api", "--host", host, "--port", str(port), "--workers", str(workers)]
    if seat_queue_limit is not None:
        args += ["--seat-queue-limit", str(seat_queue_limit)]
    service = ServiceProcess.start(
        args,
        log_file=logs_dir() / f"api-{port}.log",
        env=environment,
        url=f"http://{host}:{port}",
        port=port,
    )

    def answers() -> bool:
        try:
            with urllib.request.urlopen(f"{service.url}/list_products", timeout=1) as reply:
                return reply.status == 200
        except OSError:
            return False

    service.wait_until_ready(answers, timeout, f"the service on port {port}")
    return service


def build_parser() -> argparse.ArgumentParser:
    """The command line of ``python -m helpers.api``."""
    parser = argparse.ArgumentParser(
        prog="python -m helpers.api", description="The stock and seat reservation service."
    )
    parser.add_argument("--host", default=DEFAULT_HOST, help=f"default {DEFAULT_HOST}")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"default {DEFAULT_PORT}")
    parser.add_argument("--workers", type=int, default=1, help="server processes (default 1)")
    parser.add_argument(
        "--seat-queue-limit",
        type=int,
        default=None,
        metavar="N",
        help="with N seat jobs waiting, /reserve_seat answers 429 (default: no bound)",
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.workers < 1:
        parser.error("--workers must be at least 1")
    if args.seat_queue_limit is not None and args.seat_queue_limit < 0:
        parser.error("--seat-queue-limit must be 0 or more")
    from granian import Granian  # noqa: PLC0415
    from granian.constants import Interfaces, Loops  # noqa: PLC0415

    url = redis_url()
    os.environ["REDIS_URL"] = url  # every worker process uses this same Redis
    if args.seat_queue_limit is not None:
        os.environ[SEAT_QUEUE_LIMIT_ENV] = str(args.seat_queue_limit)
    try:
        client = redis.Redis.from_url(url, socket_connect_timeout=2)
        reset_all(client)
        client.close()
        print("Stock and seats set to their initial values.", flush=True)
    except redis.RedisError:
        print(f"Stock and seats not reset: {fix_hint(url)}", flush=True)
    # granian: HTTP parsed and written by Rust threads, the app on uvloop;
    # measured faster here than uvicorn with the same app (see lesson 14).
    Granian(
        "helpers.api:create_service_app",
        factory=True,
        address=args.host,
        port=args.port,
        interface=Interfaces.ASGI,
        workers=args.workers,
        loop=Loops.uvloop,
        websockets=False,
        log_access=False,  # no per-request logging: it costs more than the request
        workers_kill_timeout=10,  # graceful stop: requests in flight get this long
    ).serve()
    return 0


if __name__ == "__main__":
    sys.exit(main())
