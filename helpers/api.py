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

One route is not the original's: ``GET /reserve_product_naive/<itemId>``
reserves the original's way (read, then write), only so that lesson 09 can
show the race it loses. Malformed ids (letters, signs, huge numbers, unicode,
extra path segments) are simply not found. When Redis is down every route
answers a JSON 503 saying how to fix it.

Run it::

    python -m helpers.api [--host 127.0.0.1] [--port 1245] [--workers N]

Starting the service sets every product's stock and the seats to their
initial values, as the original did when it started listening. The lines
``Seat reservation job <n> completed`` / ``failed: <error>`` (``n``, the
queue's counter, as kue's id was; RQ's id is ``reserve_seat-<n>``) are printed
to the service's output by the process that queued the job (the creator side).
From a notebook or a test, :func:`start_service` runs it in the background
with its output in a log file, and returns once it answers.

Built for speed: async handlers, a pooled ``redis.asyncio`` client (hiredis
parser), the Lua script called by its SHA1, pre-encoded bodies, uvloop and
httptools, no access log, and ``--workers N`` processes sharing the port.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import threading
import urllib.request
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import redis
import redis.asyncio
from fastapi import FastAPI, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from helpers import seats, stock
from helpers.client import fix_hint
from helpers.job_events import TERMINAL_EVENTS, CreatorListener, next_job_id
from helpers.processes import BackgroundProcess
from helpers.server import free_port, logs_dir, redis_url
from helpers.workers import WorkerProcess, start_worker

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 1245
JSON_TYPE = "application/json; charset=utf-8"  # what Express's res.json() sends
REDIS_POOL_SIZE = 64  # connections to Redis per process (more would only queue in Redis)


def encode(body: object) -> bytes:
    """Compact JSON, as Express's ``res.json()`` writes it (no spaces)."""
    return json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()


# Bodies that never change are encoded once.
PRODUCTS_BODY = encode(list(stock.PRODUCTS))
NOT_FOUND_BODY = encode({"status": "Product not found"})
CONFIRMED_BODY = {
    p["itemId"]: encode({"status": "Reservation confirmed", "itemId": p["itemId"]})
    for p in stock.PRODUCTS
}
NOT_ENOUGH_BODY = {
    p["itemId"]: encode({"status": "Not enough stock available", "itemId": p["itemId"]})
    for p in stock.PRODUCTS
}
SEAT_IN_PROCESS_BODY = encode({"status": "Reservation in process"})
SEAT_BLOCKED_BODY = encode({"status": "Reservation are blocked"})
SEAT_FAILED_BODY = encode({"status": "Reservation failed"})
PROCESSING_BODY = encode({"status": "Queue processing"})
_INITIAL = {p["itemId"]: p["initialAvailableQuantity"] for p in stock.PRODUCTS}


def _json(body: bytes, status_code: int = 200) -> Response:
    return Response(body, status_code=status_code, media_type=JSON_TYPE)


def reset_all(client: redis.Redis) -> None:
    """Every product's stock and the seats back to their initial values."""
    stock.reset_stock(client)
    seats.reset_seats(client)


class DirectConnections:
    """``redis.asyncio`` connections used directly, for the hottest route.

    redis-py's client wraps every command in retries, timeouts and metrics
    hooks that cost more CPU than the Redis call itself. Here a command is
    packed once (its bytes never change), then each call borrows an idle
    connection, sends the bytes and reads the reply (parsed by hiredis).
    Idle connections are kept for reuse, at most ``keep`` of them.
    """

    def __init__(self, url: str, keep: int = REDIS_POOL_SIZE) -> None:
        self.pool = redis.asyncio.ConnectionPool.from_url(url, socket_connect_timeout=2)
        self.keep = keep
        self.idle: list[redis.asyncio.Connection] = []

    def pack(self, *args: str | int) -> list[bytes]:
        """The bytes of a command, to send with :meth:`call` as often as needed."""
        return self.pool.make_connection().pack_command(*args)

    async def call(self, packed: list[bytes]) -> Any:
        """Send a packed command and return its reply."""
        conn = self.idle.pop() if self.idle else self.pool.make_connection()
        try:
            await conn.send_packed_command(packed, check_health=False)
            reply = await conn.read_response()
        except redis.ResponseError:
            self._release(conn)  # an error reply: the connection is fine
            raise
        except BaseException:
            await conn.disconnect(nowait=True)  # broken or interrupted: never reuse it
            raise
        self._release(conn)
        return reply

    def _release(self, conn: redis.asyncio.Connection) -> None:
        if len(self.idle) < self.keep:
            self.idle.append(conn)
        else:
            asyncio.get_running_loop().create_task(conn.disconnect(nowait=True))

    async def aclose(self) -> None:
        while self.idle:
            await self.idle.pop().disconnect(nowait=True)


def seat_listener(url: str) -> CreatorListener:
    """The creator side of seat jobs in one service process: prints
    ``Seat reservation job <n> completed`` / ``failed: <error>`` for the jobs
    this process queued (another process of the service prints its own)."""
    client = redis.Redis.from_url(url, socket_connect_timeout=2, socket_timeout=5)
    return CreatorListener(seats.QUEUE_NAME, client, prefix=seats.JOB_PREFIX, kinds=TERMINAL_EVENTS)


@dataclass
class _State:
    """What one process of the service holds (in ``app.state.course``)."""

    url: str
    client: redis.asyncio.Redis
    direct: DirectConnections
    reserve_commands: dict[int, list[bytes]]
    sync_client: redis.Redis | None = None
    seat_events: CreatorListener | None = None
    worker: WorkerProcess | None = None  # once /process was called
    lock: threading.Lock = field(default_factory=threading.Lock)

    def sync(self) -> redis.Redis:
        """A blocking client, for RQ (which is not asyncio), in a thread pool."""
        if self.sync_client is None:
            self.sync_client = redis.Redis.from_url(
                self.url, socket_connect_timeout=2, socket_timeout=5
            )
        return self.sync_client


async def reserve_product_body(state: _State, raw_item_id: str) -> bytes:
    """The answer of ``GET /reserve_product/<raw_item_id>``: one unit reserved
    atomically by the Lua script (``EVALSHA``; ``EVAL`` once if Redis does not
    know the script yet), or why not."""
    item_id = stock.parse_item_id(raw_item_id)
    command = state.reserve_commands.get(item_id) if item_id is not None else None
    if command is None:
        return NOT_FOUND_BODY
    try:
        left = await state.direct.call(command)
    except redis.exceptions.NoScriptError:
        left = await state.client.eval(
            stock.RESERVE_SCRIPT, 1, stock.item_key(item_id), _INITIAL[item_id]
        )
    return CONFIRMED_BODY[item_id] if int(left) >= 0 else NOT_ENOUGH_BODY[item_id]


def _error_body(state: _State, error: Exception) -> tuple[int, bytes]:
    """Status and JSON body for an exception: Redis down is a 503 saying how
    to fix it; anything else a JSON 500, never a traceback."""
    if isinstance(error, (redis.ConnectionError, redis.TimeoutError, OSError)):
        return 503, encode({"status": "Service unavailable", "error": fix_hint(state.url)})
    return 500, encode({"status": "Internal error", "error": type(error).__name__})


class ReservationFastPath:
    """ASGI middleware answering ``GET /reserve_product/<itemId>`` itself.

    The reservation route is the one under load, and FastAPI's routing,
    parameter handling and response objects cost about as much CPU as the
    rest of the request together. This path goes straight from the decoded
    path to :func:`reserve_product_body` and sends pre-encoded bytes; every
    other request goes on to the FastAPI app."""

    PATH_PREFIX = "/reserve_product/"

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if (
            scope["type"] != "http"
            or scope["method"] != "GET"
            or not scope["path"].startswith(self.PATH_PREFIX)
        ):
            await self.app(scope, receive, send)
            return
        state: _State = scope["app"].state.course
        item_id = scope["path"][len(self.PATH_PREFIX) :]
        try:
            status, body = 200, await reserve_product_body(state, item_id)
        except Exception as error:  # answered as JSON, like every other route
            status, body = _error_body(state, error)
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [
                    (b"content-type", JSON_TYPE.encode()),
                    (b"content-length", str(len(body)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})


def create_app(*, url: str | None = None, reset_on_startup: bool = True) -> FastAPI:
    """The service as an ASGI app. ``reset_on_startup``: set the stock and the
    seats to their initial values when it starts (the CLI does it once, before
    starting its worker processes, and passes False)."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        resolved = url or redis_url()
        # Requests beyond REDIS_POOL_SIZE wait for a connection (redis-py's plain
        # pool would raise "Too many connections" instead).
        pool = redis.asyncio.BlockingConnectionPool.from_url(
            resolved,
            max_connections=REDIS_POOL_SIZE,
            timeout=10,
            socket_connect_timeout=2,
            socket_timeout=5,
        )
        direct = DirectConnections(resolved)
        state = _State(
            url=resolved,
            client=redis.asyncio.Redis(connection_pool=pool),
            direct=direct,
            reserve_commands={
                item_id: direct.pack("EVALSHA", stock.RESERVE_SHA, 1, stock.item_key(item_id), n)
                for item_id, n in _INITIAL.items()
            },
        )
        app.state.course = state
        if reset_on_startup:
            try:
                await run_in_threadpool(reset_all, state.sync())
            except redis.RedisError:
                print(f"Stock and seats not reset: {fix_hint(resolved)}", flush=True)
        try:
            yield
        finally:
            await run_in_threadpool(_shutdown, state)
            await direct.aclose()
            await state.client.aclose()

    app = FastAPI(
        title="Stock and seat reservations",
        description="The original's tasks 9 and 10 (see helpers.api).",
        lifespan=lifespan,
    )
    app.add_middleware(ReservationFastPath)

    def course(request: Request) -> _State:
        return request.app.state.course

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, error: StarletteHTTPException) -> Response:
        # Unknown routes and methods: a JSON error, like every other answer.
        return _json(encode({"status": error.detail}), error.status_code)

    @app.exception_handler(redis.RedisError)  # handled here: no traceback in the log
    @app.exception_handler(OSError)
    @app.exception_handler(Exception)  # anything else: still JSON (and logged)
    async def error_as_json(request: Request, error: Exception) -> Response:
        status, body = _error_body(course(request), error)
        return _json(body, status)

    @app.get("/list_products")
    async def list_products() -> Response:
        """The four products."""
        return _json(PRODUCTS_BODY)

    @app.get("/list_products/{item_id:path}")
    async def product_detail(item_id: str, request: Request) -> Response:
        """One product and its current quantity."""
        product = stock.get_item_by_id(item_id)
        if product is None:
            return _json(NOT_FOUND_BODY)
        quantity = await stock.current_quantity_async(course(request).client, product["itemId"])
        return _json(encode({**product, "currentQuantity": quantity}))

    @app.get("/reserve_product/{item_id:path}")
    async def reserve_product(item_id: str, request: Request) -> Response:
        """Reserve one unit, atomically: never oversells. (Served by
        :class:`ReservationFastPath`; declared here for the API's docs.)"""
        return _json(await reserve_product_body(course(request), item_id))

    @app.get("/reserve_product_naive/{item_id:path}")
    async def reserve_product_naive(item_id: str, request: Request) -> Response:
        """The original's two-step reservation (read, then write): it oversells.
        Kept only for lesson 09's demonstration."""
        parsed = stock.parse_item_id(item_id)
        if parsed not in _INITIAL:
            return _json(NOT_FOUND_BODY)
        confirmed = await stock.reserve_stock_naive_async(course(request).client, parsed)
        return _json(CONFIRMED_BODY[parsed] if confirmed else NOT_ENOUGH_BODY[parsed])

    @app.get("/available_seats")
    async def available_seats(request: Request) -> Response:
        """Seats left, as a string (the original's body)."""
        number = await seats.get_current_available_seats_async(course(request).client)
        return _json(encode({"numberOfAvailableSeats": number}))

    @app.get("/reserve_seat")
    async def reserve_seat(request: Request) -> Response:
        """Queue a seat reservation job, unless reservations are blocked."""
        state = course(request)
        if not await seats.reservation_enabled_async(state.client):
            return _json(SEAT_BLOCKED_BODY)
        try:
            await run_in_threadpool(_queue_seat_job, state)
        except Exception:  # the original answers this for any queueing error
            return _json(SEAT_FAILED_BODY)
        return _json(SEAT_IN_PROCESS_BODY)

    @app.get("/process")
    async def process(request: Request) -> Response:
        """Answer at once, and have a worker process ``reserve_seat`` jobs."""
        await run_in_threadpool(_start_processing, course(request))
        return _json(PROCESSING_BODY)

    return app


def _queue_seat_job(state: _State) -> None:
    with state.lock:
        if state.seat_events is None:
            state.seat_events = seat_listener(state.url)
    q = seats.seat_queue(state.sync())
    # The id is known, and listened for, before the job exists: a fast worker's
    # "completed" event can never arrive before we know the job is ours.
    job_id = next_job_id(q.connection, q.name)
    state.seat_events.expect([job_id])
    try:
        seats.enqueue_seat_reservation(q, job_id)
    except Exception:
        state.seat_events.forget([job_id])
        raise
    state.seat_events.announce([job_id])


def _start_processing(state: _State) -> None:
    with state.lock:
        if state.seat_events is None:
            state.seat_events = seat_listener(state.url)
        if state.worker is None or state.worker.process.poll() is not None:
            state.worker = start_worker(seats.QUEUE_NAME, worker_class="simple", wait=False)


def _shutdown(state: _State) -> None:
    with state.lock:
        if state.worker is not None:
            state.worker.stop(timeout=15)
        if state.seat_events is not None:
            state.seat_events.stop()
            state.seat_events.connection.close()
        if state.sync_client is not None:
            state.sync_client.close()


def create_service_app() -> FastAPI:
    """The app each process of ``python -m helpers.api`` serves (the CLI has
    already reset the stock and seats, once for all its processes)."""
    return create_app(url=os.environ.get("REDIS_URL"), reset_on_startup=False)


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
) -> ServiceProcess:
    """Run ``python -m helpers.api`` in the background on ``port`` (a free
    one by default) and return once it answers. Its output goes to a log file
    in :func:`helpers.server.logs_dir`; ``.stop()`` stops it, and it stops by
    itself if this process (a notebook's kernel) exits first."""
    port = port or free_port()
    environment = dict(os.environ)
    environment.setdefault("REDIS_URL", redis_url())
    environment.update(env or {})
    service = ServiceProcess.start(
        ["helpers.api", "--host", host, "--port", str(port), "--workers", str(workers)],
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
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.workers < 1:
        parser.error("--workers must be at least 1")
    import uvicorn  # noqa: PLC0415

    url = redis_url()
    os.environ["REDIS_URL"] = url  # every worker process uses this same Redis
    try:
        client = redis.Redis.from_url(url, socket_connect_timeout=2)
        reset_all(client)
        client.close()
        print("Stock and seats set to their initial values.", flush=True)
    except redis.RedisError:
        print(f"Stock and seats not reset: {fix_hint(url)}", flush=True)
    uvicorn.run(
        "helpers.api:create_service_app",
        factory=True,
        host=args.host,
        port=args.port,
        workers=args.workers,
        loop="uvloop",
        http="httptools",
        access_log=False,  # no per-request logging: it costs more than the request
        log_level="info",
        timeout_graceful_shutdown=10,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
