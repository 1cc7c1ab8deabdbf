"""Tasks 9 and 100: the stock service and the seat reservations, HTTP apps.

Each file is run as the original was, a server: ``python FILE`` with ``PORT``
(a free port) and ``REDIS_URL`` (the sandbox's Redis). The checker waits
until it answers (bounded; a crash reports its last lines), then calls its
routes with ``httpx`` and compares the JSON bodies byte for byte with what
Express's ``res.json()`` wrote (compact JSON), reads the Redis keys, and
sends a few hundred requests at once: the original oversold its stock under
such a rush, and the course's version must not. For ``100-seat`` it also
reads the lines the app prints for its jobs, and runs the file's job
function in two workers at once: the seats must never go below zero.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import h11
import httpx
import redis

from helpers.check.driver import IMPORTED, after_import, call_driver, import_is_quiet
from helpers.check.observe import names, queued, until
from helpers.check.report import Requirement, requirement
from helpers.check.sandbox import Run, Sandbox, crash_text
from helpers.check.task import Task
from helpers.processes import BackgroundProcess
from helpers.server import free_port

if TYPE_CHECKING:
    from rq.job import Job

SERVE_TIMEOUT_S = 15.0  # the app must answer within this (imports, a loaded machine)
REQUEST_TIMEOUT_S = 5.0
RUSH_TIMEOUT_S = 20.0
LINES_TIMEOUT_S = 10.0  # the app's worker starts, then takes every job


def express_json(body: object) -> str:
    """A JSON body as Express's ``res.json()`` writes it: compact, no spaces."""
    return json.dumps(body, separators=(",", ":"), ensure_ascii=False)


def answer_text(status: int, body: bytes) -> str:
    """How a report shows an HTTP answer: ``200 {"status":...}``."""
    return f"{status} {body.decode(errors='replace')}"


def ok(body: object) -> str:
    """The expected answer: status 200 and ``body`` as Express wrote it."""
    return f"200 {express_json(body)}"


@dataclass
class App:
    """The learner's app, started by the checker on a free port."""

    process: BackgroundProcess
    port: int
    http: httpx.Client = field(init=False)

    def __post_init__(self) -> None:
        # A connection per request: an app that closes one after an error
        # (uvicorn does, after a 500) cannot make the next request fail.
        self.http = httpx.Client(
            base_url=self.base, timeout=REQUEST_TIMEOUT_S, headers={"Connection": "close"}
        )

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def crashed(self) -> str | None:
        """``crashed (exit N): <its last lines>`` once the app has exited, else None."""
        if self.process.running:
            return None
        return crash_text(self.process.returncode, self.process.output())

    def get(self, path: str) -> tuple[int, bytes] | str:
        """``GET path``: (status, body), or why there was no answer."""
        try:
            reply = self.http.get(path)
        except httpx.TimeoutException:
            return self.crashed() or f"no answer in {REQUEST_TIMEOUT_S:g} s"
        except httpx.HTTPError as error:
            return self.crashed() or f"no answer: {type(error).__name__}"
        return reply.status_code, reply.content

    def answer(self, path: str) -> str:
        """``GET path`` as a report shows it."""
        got = self.get(path)
        return got if isinstance(got, str) else answer_text(*got)

    def wait_serving(self, probe: str) -> str | None:
        """Wait until the app answers ``GET probe`` (any HTTP answer); the
        problem if it exits first or does not answer in time."""
        deadline = time.monotonic() + SERVE_TIMEOUT_S
        while time.monotonic() < deadline:
            try:
                httpx.get(self.base + probe, timeout=1.0)
                return None
            except httpx.HTTPError:
                pass
            if self.crashed():
                return self.crashed()
            time.sleep(0.05)
        return f"no answer on 127.0.0.1, port $PORT, in {SERVE_TIMEOUT_S:g} s"

    def close(self) -> None:
        self.http.close()


def start_app(sandbox: Sandbox, name: str) -> App:
    """Run the file as a server on a free port (``PORT``), logs of anything it
    starts kept in the sandbox."""
    port = free_port()
    process = sandbox.start(name=name, PORT=str(port), **data_dir(sandbox))
    return App(process, port)


def data_dir(sandbox: Sandbox) -> dict[str, str]:
    """The environment that keeps the course's logs (the app's worker, the
    checker's workers) in the sandbox, not in the learner's course folder."""
    return {"COURSE_DATA_DIR": str(sandbox.folder / "data")}


def rush(port: int, path: str, requests: int, connections: int = 100) -> Counter[str]:
    """Send ``requests`` GETs of ``path`` at once (at most ``connections`` open
    at a time), each on a connection of its own; count the answers as a
    report shows them (errors too). Plain asyncio streams and h11: a pooled
    client (httpx's) spends seconds of CPU on a few hundred connections."""
    limit = asyncio.Semaphore(connections)

    async def one() -> str:
        async with limit:
            try:
                reader, writer = await asyncio.open_connection("127.0.0.1", port)
            except OSError as error:
                return f"no answer: {type(error).__name__}"
            try:
                return await _exchange(reader, writer, path)
            except (OSError, h11.ProtocolError) as error:
                return f"no answer: {type(error).__name__}"
            finally:
                writer.close()

    async def all_of_them() -> list[str]:
        return await asyncio.wait_for(
            asyncio.gather(*(one() for _ in range(requests))), RUSH_TIMEOUT_S
        )

    try:
        return Counter(asyncio.run(all_of_them()))
    except asyncio.TimeoutError:
        return Counter({f"no answer in {RUSH_TIMEOUT_S:g} s": requests})


async def _exchange(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, path: str) -> str:
    """One ``GET path`` on an open connection: the answer as a report shows it."""
    connection = h11.Connection(h11.CLIENT)
    request = h11.Request(method="GET", target=path, headers=[("Host", "127.0.0.1")])
    writer.write(connection.send(request) + connection.send(h11.EndOfMessage()))
    await writer.drain()
    status, body = 0, b""
    while True:
        event = connection.next_event()
        if event is h11.NEED_DATA:
            connection.receive_data(await reader.read(65536))
        elif isinstance(event, h11.Response):
            status = event.status_code
        elif isinstance(event, h11.Data):
            body += event.data
        elif isinstance(event, (h11.EndOfMessage, h11.ConnectionClosed)):
            return answer_text(status, body)


def not_reached(name: str, expected: str, why: str) -> Requirement:
    """A requirement that could not be checked because an earlier step failed."""
    return Requirement(name, False, expected, f"not checked: {why}")


def driver_defines(sandbox: Sandbox, names: list[str]) -> tuple[Requirement, Requirement]:
    """Import the file in a driver: it must be quiet, and define ``names``
    (callables: ``app`` an ASGI app, functions)."""
    body = "".join(f"print({n!r}, callable(getattr(task, {n!r}, None)))\n" for n in names)
    return defines(call_driver(sandbox, body, timeout_s=SERVE_TIMEOUT_S), names)


# --- 9-stock ---------------------------------------------------------------

PRODUCTS: tuple[dict[str, object], ...] = (  # the original's, in its order (SEED-SPEC)
    {"itemId": 1, "itemName": "Suitcase 250", "price": 50, "initialAvailableQuantity": 4},
    {"itemId": 2, "itemName": "Suitcase 450", "price": 100, "initialAvailableQuantity": 10},
    {"itemId": 3, "itemName": "Suitcase 650", "price": 350, "initialAvailableQuantity": 2},
    {"itemId": 4, "itemName": "Suitcase 1050", "price": 550, "initialAvailableQuantity": 5},
)
NOT_FOUND = {"status": "Product not found"}
RUSH_ITEM = 3  # the Suitcase 650: 2 in stock
RUSH_REQUESTS = 300


def product(item_id: int, **extra: object) -> dict[str, object]:
    """The original's product ``item_id`` (its fields in order), plus ``extra``."""
    return {**next(p for p in PRODUCTS if p["itemId"] == item_id), **extra}


def grade_stock(sandbox: Sandbox) -> Iterator[Requirement]:
    app = start_app(sandbox, "9-stock")
    try:
        yield from driver_defines(sandbox, ["app"])
        problem = app.wait_serving("/list_products")
        yield Requirement(
            "run as a program, serves HTTP on 127.0.0.1 at the port in `PORT`",
            problem is None,
            "an HTTP answer",
            problem or "",
        )
        yield from _stock_routes(sandbox, app)
    finally:
        app.close()


def _stock_routes(sandbox: Sandbox, app: App) -> Iterator[Requirement]:
    r = sandbox.client
    yield requirement(
        "`GET /list_products`: the four products, the original's fields in order, byte for byte",
        ok([dict(p) for p in PRODUCTS]),
        app.answer("/list_products"),
    )
    yield requirement(
        "at start, a product's `currentQuantity` is its initial quantity (`/list_products/4`)",
        ok(product(4, currentQuantity=5)),
        app.answer("/list_products/4"),
    )
    r.set("item.2", 7)
    yield requirement(
        "`GET /list_products/2`: the product and `currentQuantity`, the units left in `item.2`",
        ok(product(2, currentQuantity=7)),
        app.answer("/list_products/2"),
    )
    yield requirement(
        '`GET /list_products/12` (no such product): `{"status":"Product not found"}`',
        ok(NOT_FOUND),
        app.answer("/list_products/12"),
    )
    yield requirement(
        "an id that is not a number (`/list_products/abc`) is not found either, not an error",
        ok(NOT_FOUND),
        app.answer("/list_products/abc"),
    )
    confirmed = app.answer("/reserve_product/2")
    yield requirement(
        "`GET /reserve_product/2`: confirmed, and `item.2` goes from 7 to 6 (the key holds the units left)",
        [ok({"status": "Reservation confirmed", "itemId": 2}), "item.2 = 6"],
        [confirmed, f"item.2 = {r.get('item.2')}"],
    )
    r.set("item.1", 0)
    yield requirement(
        '`GET /reserve_product/1` with none left: `{"status":"Not enough stock available","itemId":1}`, `item.1` stays 0',
        [ok({"status": "Not enough stock available", "itemId": 1}), "item.1 = 0"],
        [app.answer("/reserve_product/1"), f"item.1 = {r.get('item.1')}"],
    )
    yield requirement(
        '`GET /reserve_product/12` (no such product): `{"status":"Product not found"}`',
        ok(NOT_FOUND),
        app.answer("/reserve_product/12"),
    )
    r.set("item.3", 2)
    answers = rush(app.port, f"/reserve_product/{RUSH_ITEM}", RUSH_REQUESTS)
    confirmed_body = ok({"status": "Reservation confirmed", "itemId": RUSH_ITEM})
    refused_body = ok({"status": "Not enough stock available", "itemId": RUSH_ITEM})
    yield requirement(
        f"{RUSH_REQUESTS} reservations at once of the Suitcase 650 (2 in stock): exactly 2 "
        "confirmed, the others refused, `item.3` ends at 0 (no overselling)",
        f"2 confirmed, {RUSH_REQUESTS - 2} refused, 0 other answers; item.3 = 0",
        _rush_summary(answers, confirmed_body, refused_body, f"item.3 = {r.get('item.3')}"),
    )


def _rush_summary(answers: Counter[str], confirmed: str, refused: str, after: str) -> str:
    others = {a: n for a, n in answers.items() if a not in (confirmed, refused)}
    text = (
        f"{answers[confirmed]} confirmed, {answers[refused]} refused, "
        f"{sum(others.values())} other answers; {after}"
    )
    if others:
        shown, count = max(others.items(), key=lambda item: item[1])
        text += f" (e.g. {count} × {shown})"
    return text


# --- 100-seat --------------------------------------------------------------

SEATS_KEY, ENABLED_KEY, SEAT_QUEUE = "available_seats", "reservationEnabled", "reserve_seat"
NOT_ENOUGH = "Not enough seats available"
IN_PROCESS = ok({"status": "Reservation in process"})
BLOCKED = ok({"status": "Reservation are blocked"})
LINE = re.compile(r"Seat reservation job (\S+) (completed|failed: (.*))")
FIRST_JOBS = 3  # queued one by one before /process
RUSH_SEATS, SEAT_RUSH = 10, 60  # 60 reservations at once for 10 seats
CHECK_QUEUE = "check_seats"  # the checker's own queue, for the job function alone
CHECK_WORKERS, CHECK_SEATS, CHECK_JOBS = 2, 8, 24
JOB_TIMEOUT_S = 10.0


def job_lines(output: str) -> list[tuple[str, str]]:
    """The app's job lines: (job, ``completed`` or the error)."""
    found = []
    for line in output.splitlines():
        match = LINE.fullmatch(line.strip())
        if match:
            found.append((match[1], "completed" if match[2] == "completed" else match[3]))
    return found


WORKER_DRIVER = """
import importlib, sys
task = importlib.import_module({module!r})
print({imported!r}, flush=True)
{names}
print({listed!r}, flush=True)
from helpers.workers import main
sys.exit(main({args!r}))
"""
LISTED = "--- names listed ---"


def start_check_workers(sandbox: Sandbox, names: list[str]) -> list[BackgroundProcess]:
    """The course's workers (allow-listed: the file is ``workspace.t100_seat``)
    on the checker's own queue, to run the file's job function two at a time.
    Each imports the file before it starts working (else the first job would
    wait for the import while the other worker took every job), saying what
    it defines: the import check costs no interpreter of its own."""
    listing = "".join(
        f"print({n!r}, callable(getattr(task, {n!r}, None)), flush=True)\n" for n in names
    )
    workers = []
    for i in range(1, CHECK_WORKERS + 1):
        driver = sandbox.folder / f"import_then_work_{i}.py"
        args = [CHECK_QUEUE, "--worker-class", "simple", "--name", f"check-{i}"]
        driver.write_text(
            WORKER_DRIVER.format(
                module=sandbox.module, imported=IMPORTED, names=listing, listed=LISTED, args=args
            )
        )
        workers.append(sandbox.start_module([str(driver)], name=f"worker-{i}", **data_dir(sandbox)))
    return workers


def imported_by(worker: BackgroundProcess, timeout_s: float = SERVE_TIMEOUT_S) -> Run:
    """What the first worker printed while importing the file and listing its
    names, as a :class:`Run` (a crash or a hang as such)."""
    deadline = time.monotonic() + timeout_s
    while True:
        output = worker.output()
        if LISTED in output.splitlines():
            return Run(output.split(LISTED, 1)[0], 0, timeout_s)
        if not worker.running:
            return Run(worker.output(), worker.returncode, timeout_s)
        if time.monotonic() > deadline:
            return Run(output, None, timeout_s)
        time.sleep(0.05)


def defines(run: Run, names: list[str]) -> tuple[Requirement, Requirement]:
    """The import check: quiet, and ``names`` defined (callables)."""
    _, calls = after_import(run)
    shown = " and ".join(f"`{n}`" for n in names)
    return import_is_quiet(run), requirement(
        f"the file defines {shown}",
        [f"{n} True" for n in names],
        calls or run.problem() or run.lines[-3:],
    )


def grade_seat(sandbox: Sandbox) -> Iterator[Requirement]:
    names = ["app", "process_seat_job"]
    workers = start_check_workers(sandbox, names)  # they start while the app does
    app = start_app(sandbox, "100-seat")
    try:
        yield from defines(imported_by(workers[0]), names)
        problem = app.wait_serving("/available_seats")
        yield Requirement(
            "run as a program, serves HTTP on 127.0.0.1 at the port in `PORT`",
            problem is None,
            "an HTTP answer",
            problem or "",
        )
        yield from _seat_routes(sandbox, app)
        _stop_app(app, sandbox.client)
        yield _job_function_with_two_workers(sandbox, workers)
    finally:
        app.close()


def _seat_routes(sandbox: Sandbox, app: App) -> Iterator[Requirement]:
    r = sandbox.client
    yield requirement(
        "at start: `available_seats` is 50 and `reservationEnabled` true, in Redis",
        {SEATS_KEY: "50", ENABLED_KEY: "true"},
        {SEATS_KEY: r.get(SEATS_KEY), ENABLED_KEY: r.get(ENABLED_KEY)},
    )
    yield requirement(
        '`GET /available_seats`: `{"numberOfAvailableSeats":"50"}` (a string)',
        ok({"numberOfAvailableSeats": "50"}),
        app.answer("/available_seats"),
    )
    answers = [app.answer("/reserve_seat") for _ in range(FIRST_JOBS)]
    waiting = queued(r, SEAT_QUEUE)
    yield requirement(
        f'`GET /reserve_seat` ({FIRST_JOBS} times): `{{"status":"Reservation in process"}}`, '
        "one job queued in `reserve_seat` each, no seat taken before `/process`",
        [*[IN_PROCESS] * FIRST_JOBS, f"{FIRST_JOBS} jobs in reserve_seat", "available_seats = 50"],
        [
            *answers,
            f"{len(waiting)} jobs in reserve_seat",
            f"available_seats = {r.get(SEATS_KEY)}",
        ],
    )
    processing = app.answer("/process")
    yield requirement(
        '`GET /process`: `{"status":"Queue processing"}` at once',
        ok({"status": "Queue processing"}),
        processing,
    )
    name = (
        f"then each job completes: `Seat reservation job <ID> completed` ({FIRST_JOBS} lines), "
        "47 seats left"
    )
    expected = [*[f"job {job_id}: completed" for job_id in waiting], "available_seats = 47"]
    lines: list[tuple[str, str]] = []
    if not waiting or processing != ok({"status": "Queue processing"}):
        yield not_reached(name, "\n".join(expected), "no job queued, or `/process` did not answer")
    else:
        outcomes = {}
        until(
            lambda: len(job_lines(app.process.output())) >= len(waiting),
            LINES_TIMEOUT_S,
            app.process,
        )
        lines = job_lines(app.process.output())
        for shown, outcome in lines:
            for job_id in waiting:
                if names(shown, job_id):
                    outcomes[job_id] = outcome if outcome == "completed" else f"failed: {outcome}"
        got = [f"job {job_id}: {outcomes.get(job_id, 'no line')}" for job_id in waiting]
        yield requirement(name, expected, [*got, f"available_seats = {r.get(SEATS_KEY)}"])
    # Without a single job line so far, waiting for more would only use up the bound.
    yield from _seat_rush(sandbox, app, processing=bool(lines))


def _seat_rush(sandbox: Sandbox, app: App, processing: bool) -> Iterator[Requirement]:
    r = sandbox.client
    r.mset({SEATS_KEY: RUSH_SEATS, ENABLED_KEY: "true"})
    before = len(job_lines(app.process.output()))
    lowest = [RUSH_SEATS]
    answers = rush(app.port, "/reserve_seat", SEAT_RUSH, connections=SEAT_RUSH)
    in_process = answers[IN_PROCESS]
    others = SEAT_RUSH - in_process - answers[BLOCKED]
    example = next((a for a in answers if a not in (IN_PROCESS, BLOCKED)), "")
    yield Requirement(
        f"{SEAT_RUSH} reservations at once for {RUSH_SEATS} seats: each answers "
        f"`Reservation in process` or `Reservation are blocked`, at least {RUSH_SEATS} in process",
        others == 0 and in_process >= RUSH_SEATS,
        f"0 other answers, at least {RUSH_SEATS} in process",
        f"{others} other answers, {in_process} in process"
        + (f" (e.g. {answers[example]} × {example})" if example else ""),
    )
    name = (
        f"exactly {RUSH_SEATS} of those jobs complete; each other one prints "
        f"`Seat reservation job <ID> failed: {NOT_ENOUGH}`"
    )
    expected = f"{RUSH_SEATS} completed, {max(in_process - RUSH_SEATS, 0)} failed: {NOT_ENOUGH}"
    lines: list[tuple[str, str]] = []
    if in_process == 0 or not processing:
        why = "no job line after `/process`" if in_process else "no reservation was in process"
        yield not_reached(name, expected, why)
    else:
        lines = _wait_watching(app, before + in_process, lambda: _seats(r), lowest)[before:]
        outcomes = Counter(outcome for _, outcome in lines)
        got = f"{outcomes['completed']} completed, {outcomes[NOT_ENOUGH]} failed: {NOT_ENOUGH}"
        rest = {o: n for o, n in outcomes.items() if o not in ("completed", NOT_ENOUGH)}
        if rest or len(lines) != in_process:
            got += f"; {len(lines)} lines for {in_process} jobs" + "".join(
                f", {n} × {o!r}" for o, n in rest.items()
            )
        if len({job for job, _ in lines}) != len(lines):
            got += "; a job named twice"
        yield requirement(name, expected, got)
    yield requirement(
        "the seats stop at 0, never below",
        "available_seats = 0, lowest seen 0",
        f"available_seats = {r.get(SEATS_KEY)}, lowest seen {min(lowest)}",
    )
    jobs_before = len(_app_jobs(r))
    blocked = app.answer("/reserve_seat")
    yield requirement(
        'sold out: `reservationEnabled` is false and `/reserve_seat` answers `{"status":"Reservation are blocked"}`, queueing nothing',
        [f"{ENABLED_KEY} = false", BLOCKED, "0 new jobs"],
        [
            f"{ENABLED_KEY} = {r.get(ENABLED_KEY)}",
            blocked,
            f"{len(_app_jobs(r)) - jobs_before} new jobs",
        ],
    )
    name = "no job left behind: every job queued in `reserve_seat` has completed or failed"
    expected = "0 jobs waiting, 0 running, 0 unfinished"
    jobs = _app_jobs(r)
    if not jobs:
        yield not_reached(name, expected, "no job was queued")
    else:
        yield requirement(name, expected, _unfinished(r, SEAT_QUEUE, jobs))


def _seats(r: redis.Redis) -> int | None:
    value = r.get(SEATS_KEY)
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


def _wait_watching(
    app: App, count: int, read: Callable[[], int | None], lowest: list[int]
) -> list[tuple[str, str]]:
    """Wait (bounded, not after a crash) until the app has printed ``count``
    job lines, noting the lowest seat count seen meanwhile."""
    deadline = time.monotonic() + LINES_TIMEOUT_S
    while True:
        seats = read()
        if seats is not None:
            lowest.append(seats)
        lines = job_lines(app.process.output())
        if len(lines) >= count or time.monotonic() > deadline or not app.process.running:
            final = read()
            if final is not None:
                lowest.append(final)
            return lines
        time.sleep(0.02)


def _app_jobs(r: redis.Redis) -> list[str]:
    """The ids of every job the app made (RQ's job hashes, outside the checker's queue)."""
    ids = [key.removeprefix("rq:job:") for key in r.scan_iter("rq:job:*", count=1000)]
    origins = [r.hget(f"rq:job:{i}", "origin") for i in ids]
    return [i for i, origin in zip(ids, origins, strict=True) if origin == SEAT_QUEUE]


def _unfinished(r: redis.Redis, queue_name: str, ids: list[str]) -> str:
    waiting = r.llen(f"rq:queue:{queue_name}")
    running = r.zcard(f"rq:wip:{queue_name}")
    statuses = [r.hget(f"rq:job:{i}", "status") for i in ids]
    unfinished = sum(s not in ("finished", "failed") for s in statuses)
    return f"{waiting} jobs waiting, {running} running, {unfinished} unfinished"


def _job_function_with_two_workers(
    sandbox: Sandbox, workers: list[BackgroundProcess]
) -> Requirement:
    name = (
        f"`process_seat_job` in {CHECK_WORKERS} workers at once: {CHECK_SEATS} seats, "
        f"{CHECK_JOBS} jobs: exactly {CHECK_SEATS} finish, the others fail with "
        f"`{NOT_ENOUGH}`; seats end at 0 (never below), `reservationEnabled` false"
    )
    expected = (
        f"{CHECK_SEATS} finished, {CHECK_JOBS - CHECK_SEATS} failed: {NOT_ENOUGH}; "
        f"available_seats = 0 (lowest 0); {ENABLED_KEY} = false"
    )
    from rq import Queue  # noqa: PLC0415 (RQ only for this task: --list stays quick)
    from rq.job import Job  # noqa: PLC0415
    from rq.serializers import JSONSerializer  # noqa: PLC0415

    r = sandbox.client
    problem = _wait_workers(r, workers)
    if problem:
        return not_reached(name, expected, problem)
    r.mset({SEATS_KEY: CHECK_SEATS, ENABLED_KEY: "true"})
    connection = redis.Redis.from_url(sandbox.url)
    try:
        q = Queue(CHECK_QUEUE, connection=connection, serializer=JSONSerializer)
        function = f"{sandbox.module}.process_seat_job"
        jobs = [q.enqueue_call(function, job_id=f"check-{n}") for n in range(1, CHECK_JOBS + 1)]
        lowest = [CHECK_SEATS]
        done = _wait_jobs(r, [job.id for job in jobs], lowest, workers)
        if done:
            return Requirement(name, False, expected, done)
        outcomes = Counter(
            _outcome(job)
            for job in Job.fetch_many([j.id for j in jobs], connection, JSONSerializer)
            if job
        )
    finally:
        connection.close()
    got = (
        f"{outcomes['finished']} finished, {outcomes[NOT_ENOUGH]} failed: {NOT_ENOUGH}; "
        f"available_seats = {r.get(SEATS_KEY)} (lowest {min(lowest)}); {ENABLED_KEY} = {r.get(ENABLED_KEY)}"
    )
    rest = {o: n for o, n in outcomes.items() if o not in ("finished", NOT_ENOUGH)}
    got += "".join(f"; {n} × {o}" for o, n in rest.items())
    return requirement(name, expected, got)


def _stop_app(app: App, r: redis.Redis) -> None:
    """Stop the app, and wait (bounded) until the workers it started have gone:
    its jobs would take seats from the checker's jobs."""
    app.close()
    app.process.stop(timeout=5)
    deadline = time.monotonic() + JOB_TIMEOUT_S
    while r.scard(f"rq:workers:{SEAT_QUEUE}") and time.monotonic() < deadline:
        time.sleep(0.05)


def _blocked_clients(r: redis.Redis) -> int:
    """How many clients wait in a blocking pop (a worker listening for a job)."""
    return sum("b" in client.get("flags", "") for client in r.client_list())


def _wait_workers(r: redis.Redis, workers: list[BackgroundProcess]) -> str | None:
    """Wait until each of the checker's workers waits for a job (blocked in
    its pop: not merely registered, so the first jobs cannot all go to one
    worker while the other is still starting); why not, if they do not."""
    deadline = time.monotonic() + SERVE_TIMEOUT_S
    while _blocked_clients(r) < len(workers):
        dead = next((w for w in workers if not w.running), None)
        if dead is not None:
            return f"the checker's worker stopped: {crash_text(dead.returncode, dead.output())}"
        if time.monotonic() > deadline:
            return f"the checker's workers did not start in {SERVE_TIMEOUT_S:g} s"
        time.sleep(0.05)
    return None


def _wait_jobs(
    r: redis.Redis, ids: list[str], lowest: list[int], workers: list[BackgroundProcess]
) -> str | None:
    """Wait until every job has finished or failed, noting the lowest seat
    count seen; why not, if they do not in time."""
    deadline = time.monotonic() + JOB_TIMEOUT_S
    while True:
        seats = _seats(r)
        if seats is not None:
            lowest.append(seats)
        pipe = r.pipeline()
        for job_id in ids:
            pipe.hget(f"rq:job:{job_id}", "status")
        statuses = pipe.execute()
        if all(s in ("finished", "failed") for s in statuses):
            final = _seats(r)
            if final is not None:
                lowest.append(final)
            return None
        if time.monotonic() > deadline:
            left = sum(s not in ("finished", "failed") for s in statuses)
            return f"{left} of {len(ids)} jobs unfinished after {JOB_TIMEOUT_S:g} s"
        if not any(w.running for w in workers):
            return "the checker's workers stopped"
        time.sleep(0.02)


def _outcome(job: Job) -> str:
    """``finished``, the failed job's error message (its last line), or its status."""
    status = job.get_status(refresh=False).value
    if status == "finished":
        return "finished"
    if status == "failed":
        result = job.latest_result()
        text = (result.exc_string or "").strip().splitlines() if result else []
        last = text[-1] if text else "no error"
        return last.split(": ", 1)[1] if ": " in last else last
    return status


STOCK_CONTRACT = """
Write an HTTP app. The file defines `app`, an ASGI app (Starlette, as the
reference, or FastAPI); importing it starts nothing. Run as a program (under
`if __name__ == "__main__":`) it serves `app` with uvicorn on 127.0.0.1, port
$PORT (default 1245); Redis at REDIS_URL (`helpers.server.redis_url()` reads
it, else the course server).

Products, in this order, with exactly these fields:
    itemId 1 Suitcase 250 price 50 initialAvailableQuantity 4 / 2 Suitcase 450 100 10 /
    3 Suitcase 650 350 2 / 4 Suitcase 1050 550 5
Redis key per product: `item.<itemId>`, holding the units LEFT (a missing key:
the initial quantity; at start you may set each key to it, as the original).
Routes (answers with status 200 and compact JSON, as Express's res.json()):
    GET /list_products            the four products
    GET /list_products/<itemId>   the product + "currentQuantity", or {"status":"Product not found"}
    GET /reserve_product/<itemId> {"status":"Reservation confirmed","itemId":1},
                                  {"status":"Not enough stock available","itemId":1},
                                  or {"status":"Product not found"}
An id that is not a number is not found (never an error). Reserving must
never oversell: the checker sends 300 reservations at once for 2 units.
"""

SEAT_CONTRACT = """
Write an HTTP app. The file defines `app`, an ASGI app (Starlette, as the
reference, or FastAPI), and `process_seat_job()`, the job; importing it
starts nothing. Run as a program
it serves `app` with uvicorn on 127.0.0.1, port $PORT (default 1245); Redis at
REDIS_URL (`helpers.server.redis_url()`).
At start: `available_seats` = 50 and `reservationEnabled` = "true" (the flag
lives in Redis, so the worker and the app see the same one).
    GET /available_seats  {"numberOfAvailableSeats":"50"} (a string)
    GET /reserve_seat     flag off: {"status":"Reservation are blocked"}; else queue
                          a job in the RQ queue `reserve_seat` (`helpers.workers.queue`)
                          and answer {"status":"Reservation in process"}
                          ({"status":"Reservation failed"} if queueing fails)
    GET /process          {"status":"Queue processing"} at once, then a worker takes
                          the jobs (`helpers.workers.start_worker(..., wait=False)`)
The job, `process_seat_job()`: take one seat in ONE step (a Lua script) with
the job's connection (`rq.get_current_job().connection`); at 0 set
`reservationEnabled` to "false"; with none left raise an error whose message
is `Not enough seats available`. Seats never go below 0: the checker runs it
in two workers at once. Jobs name their function by string (a worker cannot
import `__main__`): the checker imports your file as workspace.t100_seat, so
`workspace.t100_seat.process_seat_job` (the reference names its own code by
the course's name, `helpers.seats.process_seat_job`).
The app prints, in its own output, for each job it queued:
    Seat reservation job <ID> completed  /  Seat reservation job <ID> failed: <error>
(<ID>: the job's id or its number; `helpers.job_events`: `enqueue_with_events`
and a `CreatorListener`, as lesson 10 shows).
"""

TASKS = [
    Task(
        "9-stock",
        "09",
        "HTTP app",
        "the stock service: list products, reserve one, never oversell",
        STOCK_CONTRACT,
        grade_stock,
    ),
    Task(
        "100-seat",
        "10",
        "HTTP app",
        "seat reservations queued as jobs, blocked when sold out, never below zero",
        SEAT_CONTRACT,
        grade_seat,
    ),
]
