"""Tasks 0, 1, 2 and 4: a client, ``SET``/``GET`` (blocking and awaited), a hash.

Each runs as a program against the sandbox's Redis (``REDIS_URL``), its lines
compared with the original's. Then a driver imports the file and calls the
functions it must define, and runs it once more as ``__main__`` with
``Holberton`` changed, so a program that prints the right words without
asking Redis fails; for the async task the driver also records every command
sent, so a blocking client is caught. Task 4 is run twice, the second time
with a field the checker added, so a hand-written dict fails.
"""

from __future__ import annotations

import ast
import json
import textwrap
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from helpers.check.driver import IMPORTED, RECORD, after_import, call_driver, import_is_quiet
from helpers.check.report import Requirement, requirement
from helpers.check.sandbox import Run, Sandbox, crash_text
from helpers.check.task import Task
from helpers.programs.t0_redis_client import CONNECTED, NOT_CONNECTED
from helpers.programs.t4_redis_advanced_op import SCHOOLS, SCHOOLS_HASH
from helpers.server import free_port

REFUSED_PREFIX = NOT_CONNECTED.split("{")[0]
OP_LINES = [CONNECTED, "School", "Reply: OK", "100"]
SECTION = "--- section {} ---"  # what a sectioned driver prints before each part
CHANGED_HOLBERTON = "Checker School"  # what the checker puts in Holberton for a second run
ADDED_FIELD = ("Added by the checker", "1")  # a field the checker adds before task 4's rerun
TRACEBACK = "Traceback (most recent call last)"
WATCH_S = 8.0  # how long a background run of task 0 may take to show what it must


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


# ------------------------------------------------------------ sectioned drivers


@dataclass
class Section:
    """What one part of a sectioned driver printed: the file's lines, the
    driver's records (``@@`` lines, parsed as JSON), or why it did not run."""

    lines: list[str]
    records: list[object]
    problem: str | None  # the part raised, or never ran (import failed, hang)

    @property
    def shown(self) -> list[str] | str:
        """The lines, or the problem: what a requirement shows as ``got``."""
        return self.problem or self.lines


def call_sections(
    sandbox: Sandbox, sections: dict[str, str], setup: str = "", timeout_s: float = 10.0
) -> tuple[Run, dict[str, Section]]:
    """Import the file (as :func:`call_driver`), run ``setup``, then each of
    ``sections`` (name -> code) in turn, each one's exception caught and
    shown, so one broken function does not hide the others. The file's
    stderr is folded into stdout, so a warning stays in its section."""
    body = "import sys, traceback\nsys.stderr = sys.stdout\n" + setup
    for name, code in [*sections.items(), ("end", "pass")]:
        body += (
            f"print({SECTION.format(name)!r}, flush=True)\n"
            "try:\n"
            f"{textwrap.indent(code.strip(), '    ')}\n"
            "except SystemExit as exit_:\n"
            "    if exit_.code not in (None, 0):\n"
            "        print('!! exited with status', exit_.code)\n"
            "except Exception as error:\n"
            "    print('!!', traceback.format_exception_only(error)[-1].strip())\n"
            "sys.stdout.flush()\n"
        )
    run = call_driver(sandbox, body, timeout_s)
    _, lines = after_import(run)
    markers = {SECTION.format(name): name for name in [*sections, "end"]}
    printed: dict[str, list[str]] = {}
    for line in lines:
        if line in markers:
            printed[markers[line]] = []
        elif printed:
            printed[list(printed)[-1]].append(line)
    if IMPORTED not in run.lines:
        stopped = f"the import failed: {run.problem() or run.output.strip() or 'no output'}"
    else:
        stopped = run.problem() or "it stopped before this part"
    found: dict[str, Section] = {}
    for name in sections:
        if name not in printed:
            found[name] = Section([], [], stopped)
            continue
        records = [json.loads(x[len(RECORD) :]) for x in printed[name] if x.startswith(RECORD)]
        shown = [x for x in printed[name] if not x.startswith(RECORD)]
        problem = None
        if any(x.startswith("!! ") for x in shown):  # it raised: show what came, then why
            problem = " | ".join(x.removeprefix("!! ") for x in shown)
        elif "end" not in printed and name == list(printed)[-1]:
            problem = stopped  # it hung or crashed the driver in this part
        found[name] = Section(shown, records, problem)
    return run, found


def run_as_main() -> str:
    """Driver code running the file once more, as ``python FILE`` would."""
    return "import runpy\nrunpy.run_path(task.__file__, run_name='__main__')"


# ---------------------------------------------------------------- watched runs


@dataclass
class Watched:
    """A program run in the background until it showed what was asked, exited,
    or ran out of time (then it is stopped)."""

    output: str
    returncode: int | None  # None: it was still running when stopped
    waited_s: float

    @property
    def lines(self) -> list[str]:
        """Its output's lines."""
        return self.output.splitlines()

    def problem(self) -> str | None:
        """A crash (with its last lines), or None."""
        if self.returncode not in (None, 0) and TRACEBACK in self.output:
            return crash_text(self.returncode, self.output)
        return None


def watch(
    sandbox: Sandbox,
    name: str,
    until: Callable[[list[str]], bool],
    timeout_s: float = WATCH_S,
    **env: str,
) -> Watched:
    """Start the file in the background, wait until ``until(lines)`` holds, it
    exits, or ``timeout_s`` passes, then stop it: for programs that, like the
    original's, may keep running."""
    process = sandbox.start(name=name, **env)
    start = time.monotonic()
    while process.running and time.monotonic() - start < timeout_s:
        output = process.output()
        if until(output.splitlines()) and TRACEBACK not in output:  # a crash: let it finish
            break
        time.sleep(0.02)
    returncode = process.returncode
    if returncode is None:
        process.stop(timeout=2)
    return Watched(sandbox.unstaged(process.output()), returncode, time.monotonic() - start)


def connections_received(sandbox: Sandbox) -> int:
    """How many connections the sandbox's Redis has accepted so far."""
    return int(sandbox.client.info("stats")["total_connections_received"])


# ------------------------------------------------------------------------ task 0


def grade_redis_client(sandbox: Sandbox) -> Iterator[Requirement]:
    before = connections_received(sandbox)
    up = watch(sandbox, "up", lambda lines: bool(lines))
    first = up.lines[0] if up.lines else ""
    if not up.lines:
        first = up.problem() or f"nothing in {up.waited_s:.0f} s"
    elif first.startswith(TRACEBACK):
        first = up.problem() or first
    yield requirement("connected: prints `Redis client connected to the server`", CONNECTED, first)
    yield Requirement(
        "connects to the Redis at `REDIS_URL` (the checker's server saw it connect)",
        connections_received(sandbox) > before,
        "at least one connection to the checker's Redis",
        "none: it connected elsewhere, or not at all",
    )
    port = free_port()
    down = watch(
        sandbox,
        "down",
        lambda lines: sum(line.startswith(REFUSED_PREFIX) for line in lines) >= 3,
        REDIS_URL=f"redis://127.0.0.1:{port}/0",
    )
    refused = [line for line in down.lines if line.startswith(REFUSED_PREFIX)]
    last = "\n".join(down.lines[-3:]) or "nothing"
    yield Requirement(
        "Redis down: prints `Redis client not connected to the server: <error>` on each attempt",
        len(refused) >= 2,
        "at least 2 such lines (one per attempt)",
        down.problem() or last,
    )
    yield Requirement(
        "Redis down: the error names the address it tried",
        bool(refused) and all(f"127.0.0.1:{port}" in line for line in refused),
        f"127.0.0.1:{port} in each error line",
        refused[0] if refused else "no error line",
    )
    yield Requirement(
        "Redis down: no traceback and no connected line",
        TRACEBACK not in down.output and CONNECTED not in down.lines,
        "only the error lines",
        down.problem() or last,
    )


# ------------------------------------------------------------------ tasks 1 and 2


def _seed_holberton(sandbox: Sandbox) -> None:
    sandbox.client.set("Holberton", "School")  # the original's dump.rdb held it


CHANGE_HOLBERTON = (
    f"client.set('Holberton', {CHANGED_HOLBERTON!r})\nclient.delete('HolbertonSanFrancisco')\n"
)


def _program_lines(sandbox: Sandbox) -> Iterator[Requirement]:
    _seed_holberton(sandbox)
    run = sandbox.run(timeout_s=10)
    yield lines_in_order("prints the original's four lines, in order", run, OP_LINES)
    yield requirement(
        "`HolbertonSanFrancisco` holds 100 in Redis",
        "100",
        sandbox.client.get("HolbertonSanFrancisco"),
    )


def _reads_holberton(section: Section) -> Requirement:
    return requirement(
        f"prints what Redis holds for `Holberton`, not a fixed `School` (the checker set it to `{CHANGED_HOLBERTON}`)",
        [CONNECTED, CHANGED_HOLBERTON, "Reply: OK", "100"],
        section.shown,
    )


def grade_redis_op(sandbox: Sandbox) -> Iterator[Requirement]:
    yield from _program_lines(sandbox)
    driver, parts = call_sections(
        sandbox,
        {
            "set": "task.set_new_school(client, 'CheckSchool', '7')",
            "display": "client.set('CheckShown', 'Value 42')\n"
            "task.display_school_value(client, 'CheckShown')\n"
            "task.display_school_value(client, 'Holberton')",
            "main": CHANGE_HOLBERTON + run_as_main(),
        },
        setup="client.set('Holberton', 'School')\n",
    )
    yield import_is_quiet(driver)
    stored = sandbox.client.get("CheckSchool")
    yield requirement(
        "set_new_school(client, name, value) sets the key and prints `Reply: OK`",
        (["Reply: OK"], "7"),
        (parts["set"].shown, stored),
    )
    yield requirement(
        "display_school_value(client, name) prints the value Redis holds",
        ["Value 42", "School"],
        parts["display"].shown,
    )
    yield _reads_holberton(parts["main"])


# Records every command the driver's process sends, blocking or awaited (a
# coroutine never awaited sends nothing, so it is not recorded).
COUNT_COMMANDS = """
import asyncio, inspect, json
import redis.asyncio
SENT = []
_blocking = redis.Redis.execute_command
def _counted_blocking(self, *args, **options):
    SENT.append('blocking ' + str(args[0]).upper())
    return _blocking(self, *args, **options)
redis.Redis.execute_command = _counted_blocking
_awaited = redis.asyncio.Redis.execute_command
async def _counted_awaited(self, *args, **options):
    SENT.append('awaited ' + str(args[0]).upper())
    return await _awaited(self, *args, **options)
redis.asyncio.Redis.execute_command = _counted_awaited
"""
ASYNC_CALLS = """
async def calls():
    aclient = redis.asyncio.Redis.from_url(REDIS_URL, decode_responses=True)
    try:
        await task.set_new_school(aclient, 'CheckSchool', '7')
        await task.display_school_value(aclient, 'CheckSchool')
    finally:
        await aclient.aclose()
asyncio.run(calls())
"""


def _recorded(code: str) -> str:
    """``code``, then the commands it sent, as a driver record."""
    return (
        "SENT.clear()\ntry:\n"
        + textwrap.indent(code.strip(), "    ")
        + f"\nfinally:\n    print({RECORD!r} + json.dumps(SENT), flush=True)"
    )


def _sent(section: Section) -> list[str]:
    """The commands a section's records list, in the order they were sent."""
    return [str(c) for record in section.records if isinstance(record, list) for c in record]


def grade_redis_op_async(sandbox: Sandbox) -> Iterator[Requirement]:
    yield from _program_lines(sandbox)
    driver, parts = call_sections(
        sandbox,
        {
            "kind": "print([inspect.iscoroutinefunction(f) for f in "
            "(task.set_new_school, task.display_school_value)])",
            "calls": _recorded(ASYNC_CALLS),
            "main": CHANGE_HOLBERTON + _recorded(run_as_main()),
        },
        setup=COUNT_COMMANDS + "client.set('Holberton', 'School')\n",
    )
    yield import_is_quiet(driver)
    yield requirement(
        "set_new_school and display_school_value are `async def`",
        ["[True, True]"],
        parts["kind"].shown,
    )
    yield requirement(
        "awaited with a redis.asyncio client, set_new_school prints `Reply: OK` and display_school_value the value",
        (["Reply: OK", "7"], "7"),
        (parts["calls"].shown, sandbox.client.get("CheckSchool")),
    )
    yield _reads_holberton(parts["main"])
    sent = _sent(parts["main"])
    blocking = [c for c in sent if c.startswith("blocking ")]
    yield Requirement(
        "awaits every command with redis.asyncio: no blocking redis.Redis call in the program",
        bool(sent) and not blocking and {"awaited GET", "awaited SET"} <= set(sent),
        "only awaited commands, GET and SET among them",
        ", ".join(sent) or parts["main"].problem or "no command sent",
    )


# ------------------------------------------------------------------------ task 4


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
    last = first.lines[-1] if first.lines and first.problem() is None else ""
    try:
        parsed = ast.literal_eval(last)
    except (ValueError, SyntaxError):
        parsed = last
    yield Requirement(
        "the hash is printed as a mapping whose values are strings",
        isinstance(parsed, dict) and all(isinstance(v, str) for v in parsed.values()),
        HASH_LINE,
        last or first.problem() or "nothing",
    )
    # The six fields, whatever the first run did, and one more.
    sandbox.client.hset(SCHOOLS_HASH, mapping={**SCHOOLS, ADDED_FIELD[0]: ADDED_FIELD[1]})
    held = repr(sandbox.client.hgetall(SCHOOLS_HASH))  # HSETs add nothing to it, remove nothing
    again = sandbox.run(timeout_s=10)
    problem = again.problem()
    yield requirement(
        "a rerun: `Reply: 0` six times (the fields exist)",
        [CONNECTED, *["Reply: 0"] * 6],
        again.lines[:7] if problem is None else problem,
    )
    yield requirement(
        f"prints the hash as HGETALL returns it, not a fixed dict (the checker added `{ADDED_FIELD[0]}`)",
        held,
        (again.lines[-1] if again.lines else "nothing") if problem is None else problem,
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
The checker's Redis holds Holberton = School, as the original's dump did;
it also runs the file with Holberton changed: print what Redis holds.
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
a program (asyncio.run), it connects to REDIS_URL and prints the same four
lines in the same order (helpers.client.connect_async() connects and prints
the first). Every command is awaited: the checker records them, and a
blocking redis.Redis call fails.
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
The checker runs it twice; before the rerun it adds a field, which the
printed mapping must then show.
""",
        grade_redis_advanced_op,
    ),
]
