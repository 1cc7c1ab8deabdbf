"""Tasks 0, 1, 2 and 4: a client, ``SET``/``GET`` (blocking and awaited), a hash.

Each runs as a program against the sandbox's Redis (``REDIS_URL``), its lines
compared with the original's, then the functions it must define are called
by a driver that imports the file.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator

from helpers.check.report import Requirement, requirement
from helpers.check.sandbox import Run, Sandbox
from helpers.check.task import Task
from helpers.programs.t0_redis_client import CONNECTED, NOT_CONNECTED
from helpers.programs.t4_redis_advanced_op import SCHOOLS, SCHOOLS_HASH
from helpers.server import free_port

REFUSED_PREFIX = NOT_CONNECTED.split("{")[0]
OP_LINES = [CONNECTED, "School", "Reply: OK", "100"]
IMPORTED = "--- imported ---"  # what a driver prints once the file is imported


def ran(name: str, run: Run, must_exit: bool = True) -> Requirement:
    """The requirement that a run finished (in time, exit status 0)."""
    problem = run.problem(must_exit)
    return Requirement(
        name, problem is None, "it runs to the end with exit status 0", problem or ""
    )


def lines_in_order(name: str, run: Run, expected: list[str]) -> Requirement:
    """The requirement that ``run`` printed exactly ``expected``, in order
    (a crash or a hang is shown as what came)."""
    problem = run.problem()
    return requirement(name, expected, run.lines if problem is None else problem)


def call_driver(sandbox: Sandbox, body: str, timeout_s: float = 10.0) -> Run:
    """Import the file as ``task`` in a new interpreter, then run ``body``
    (which may use ``task``, ``client`` and ``REDIS_URL``)."""
    code = (
        "import importlib, os, redis\n"
        "REDIS_URL = os.environ['REDIS_URL']\n"
        "client = redis.Redis.from_url(REDIS_URL, decode_responses=True)\n"
        f"task = importlib.import_module({sandbox.module!r})\n"
        f"print({IMPORTED!r}, flush=True)\n" + body
    )
    return sandbox.run_python(code, timeout_s)


def after_import(run: Run) -> tuple[list[str], list[str]]:
    """What a driver printed while importing the file, and after it."""
    if IMPORTED not in run.lines:
        return run.lines, []
    at = run.lines.index(IMPORTED)
    return run.lines[:at], run.lines[at + 1 :]


def import_is_quiet(run: Run) -> Requirement:
    """Importing the file may define things, not run them (so its functions can be tested)."""
    during, _ = after_import(run)
    imported = IMPORTED in run.lines
    return Requirement(
        'importing the file runs nothing (the program runs under `if __name__ == "__main__":`)',
        imported and not during,
        "no output while importing",
        "\n".join(during) if imported else f"the import failed: {run.problem() or run.output}",
    )


def grade_redis_client(sandbox: Sandbox) -> Iterator[Requirement]:
    up = sandbox.run(timeout_s=10)
    yield requirement(
        "connected: prints the original's first line",
        CONNECTED,
        (up.lines or [""])[0] if up.lines else up.problem() or "nothing",
    )
    port = free_port()
    down = sandbox.run(timeout_s=8, REDIS_URL=f"redis://127.0.0.1:{port}/0")
    refused = [line for line in down.lines if line.startswith(REFUSED_PREFIX)]
    yield Requirement(
        "Redis down: prints `Redis client not connected to the server: <error>` on each attempt",
        len(refused) >= 2,
        "at least 2 such lines (one per attempt)",
        "\n".join(down.lines[-3:]) or (down.problem() or "nothing"),
    )
    yield Requirement(
        "Redis down: the error names the address it tried",
        bool(refused) and all(f"127.0.0.1:{port}" in line for line in refused),
        f"127.0.0.1:{port} in each error line",
        refused[0] if refused else "no error line",
    )
    yield Requirement(
        "Redis down: no traceback and no connected line",
        "Traceback (most recent call last)" not in down.output and CONNECTED not in down.lines,
        "only the error lines",
        "\n".join(down.lines[-3:]),
    )


def _seed_holberton(sandbox: Sandbox) -> None:
    sandbox.client.set("Holberton", "School")  # the original's dump.rdb held it


def grade_redis_op(sandbox: Sandbox) -> Iterator[Requirement]:
    _seed_holberton(sandbox)
    run = sandbox.run(timeout_s=10)
    yield lines_in_order("prints the original's four lines, in order", run, OP_LINES)
    yield requirement(
        "`HolbertonSanFrancisco` holds 100 in Redis",
        "100",
        sandbox.client.get("HolbertonSanFrancisco"),
    )
    driver = call_driver(
        sandbox,
        "task.set_new_school(client, 'CheckSchool', '7')\n"
        "task.display_school_value(client, 'CheckSchool')\n"
        "task.display_school_value(client, 'Holberton')\n",
    )
    yield import_is_quiet(driver)
    _, calls = after_import(driver)
    yield requirement(
        "set_new_school(client, name, value) and display_school_value(client, name) print the reply and the value",
        ["Reply: OK", "7", "School"],
        driver.problem() or calls,
    )


def grade_redis_op_async(sandbox: Sandbox) -> Iterator[Requirement]:
    _seed_holberton(sandbox)
    run = sandbox.run(timeout_s=10)
    yield lines_in_order("prints the original's four lines, in order", run, OP_LINES)
    yield requirement(
        "`HolbertonSanFrancisco` holds 100 in Redis",
        "100",
        sandbox.client.get("HolbertonSanFrancisco"),
    )
    driver = call_driver(
        sandbox,
        "import asyncio, inspect, redis.asyncio\n"
        "print(all(inspect.iscoroutinefunction(f) for f in (task.set_new_school, task.display_school_value)))\n"
        "async def calls():\n"
        "    aclient = redis.asyncio.Redis.from_url(REDIS_URL, decode_responses=True)\n"
        "    await task.set_new_school(aclient, 'CheckSchool', '7')\n"
        "    await task.display_school_value(aclient, 'CheckSchool')\n"
        "    await aclient.aclose()\n"
        "asyncio.run(calls())\n",
    )
    yield import_is_quiet(driver)
    _, calls = after_import(driver)
    shown = driver.problem() or calls
    yield requirement(
        "set_new_school and display_school_value are `async def` and take a redis.asyncio client",
        ["True", "Reply: OK", "7"],
        shown,
    )


HASH_LINE = repr({city: str(value) for city, value in SCHOOLS.items()})


def grade_redis_advanced_op(sandbox: Sandbox) -> Iterator[Requirement]:
    first = sandbox.run(timeout_s=10)
    yield lines_in_order(
        "first run: the connected line, `Reply: 1` six times, then the hash",
        first,
        [CONNECTED, *["Reply: 1"] * 6, HASH_LINE],
    )
    stored = sandbox.client.hgetall(SCHOOLS_HASH)
    yield requirement(
        f"`{SCHOOLS_HASH}` holds the six schools", {k: str(v) for k, v in SCHOOLS.items()}, stored
    )
    again = sandbox.run(timeout_s=10)
    yield lines_in_order(
        "a rerun: `Reply: 0` six times (the fields exist)",
        again,
        [CONNECTED, *["Reply: 0"] * 6, HASH_LINE],
    )
    last = first.lines[-1] if first.lines else ""
    try:
        parsed = ast.literal_eval(last)
    except (ValueError, SyntaxError):
        parsed = last
    yield Requirement(
        "the hash is printed as a mapping whose values are strings",
        isinstance(parsed, dict) and all(isinstance(v, str) for v in parsed.values()),
        HASH_LINE,
        last,
    )


TASKS = [
    Task(
        "0-redis_client",
        "01",
        "program",
        "connect to Redis and print the original's connected / not connected lines",
        """
Write a program. Run as `python 0-redis_client.py`, it connects to the Redis
at REDIS_URL (the checker sets it; `helpers.server.redis_url()` reads it, and
without it gives the course server) and prints
    Redis client connected to the server
If no Redis answers, it prints, on each connection attempt (at least 2),
    Redis client not connected to the server: <the error, naming the address>
without a traceback, then gives up (exit status 1) or keeps trying.
""",
        grade_redis_client,
    ),
    Task(
        "1-redis_op",
        "02",
        "program",
        "SET and GET with the original's output: School, Reply: OK, 100",
        """
Define set_new_school(client, school_name, value) (SET, then print
`Reply: OK`) and display_school_value(client, school_name) (GET, print the
value); `client` is a redis.Redis with decode_responses=True. Run as a
program (under `if __name__ == "__main__":`), connect to REDIS_URL printing
the connected line (helpers.client.connect() does), display `Holberton`, set
`HolbertonSanFrancisco` to 100, display it. Output, exactly:
    Redis client connected to the server / School / Reply: OK / 100
The checker's Redis holds Holberton = School, as the original's dump did.
""",
        grade_redis_op,
    ),
    Task(
        "2-redis_op_async",
        "03",
        "program",
        "the same with redis.asyncio and await, same output",
        """
As 1-redis_op, with `async def set_new_school(client, school_name, value)` and
`async def display_school_value(client, school_name)` taking a
redis.asyncio.Redis (decode_responses=True) and awaiting each command. Run as
a program (asyncio.run), the same four lines in the same order
(helpers.client.connect_async() prints the first).
""",
        grade_redis_op_async,
    ),
    Task(
        "4-redis_advanced_op",
        "04",
        "program",
        "six HSETs into HolbertonSchools, each reply printed, then HGETALL",
        f"""
Run as a program: connect to REDIS_URL (printing the connected line), then
HSET each school into `{SCHOOLS_HASH}` in this order, printing `Reply: <n>`
for each (1 for a new field, 0 when it existed):
    {", ".join(f"{k}={v}" for k, v in SCHOOLS.items())}
then print HGETALL's mapping (a dict; values are strings), exactly:
    {HASH_LINE}
""",
        grade_redis_advanced_op,
    ),
]
