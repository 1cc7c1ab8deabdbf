"""The checker's tasks 0, 1, 2 and 4: the reference passes, the lesson's
skeleton fails, and each plausible wrong version fails on the requirement it
breaks (and, where that says something, only on it)."""

from __future__ import annotations

from pathlib import Path

import pytest
from check_files import fails_only, graded, skeleton

from helpers.check import grade

CONNECTED = "connected: prints `Redis client connected to the server`"
CONNECTS = "connects to the Redis at `REDIS_URL` (the checker's server saw it connect)"
EACH_ATTEMPT = (
    "Redis down: prints `Redis client not connected to the server: <error>` on each attempt"
)
NAMES_ADDRESS = "Redis down: the error names the address it tried"
NO_TRACEBACK = "Redis down: no traceback and no connected line"

FOUR_LINES = "prints the original's four lines, in order"
STORED_100 = "`HolbertonSanFrancisco` holds 100 in Redis"
QUIET = 'importing the file runs nothing (the program runs under `if __name__ == "__main__":`)'
SETS = "set_new_school(client, name, value) sets the key and prints `Reply: OK`"
DISPLAYS = "display_school_value(client, name) prints the value Redis holds"
READS_HOLBERTON = (
    "prints what Redis holds for `Holberton`, not a fixed `School` "
    "(the checker set it to `Checker School`)"
)
ASYNC_DEF = "set_new_school and display_school_value are `async def`"
AWAITED_CALLS = (
    "awaited with a redis.asyncio client, set_new_school prints `Reply: OK` "
    "and display_school_value the value"
)
NO_BLOCKING = "awaits every command with redis.asyncio: no blocking redis.Redis call in the program"

FIRST_RUN = "first run: the connected line, `Reply: 1` six times, then the hash"
HOLDS_SIX = "`HolbertonSchools` holds the six schools"
STRINGS = "the hash is printed as a mapping whose values are strings"
RERUN = "a rerun: `Reply: 0` six times (the fields exist)"
AS_RETURNED = (
    "prints the hash as HGETALL returns it, not a fixed dict "
    "(the checker added `Added by the checker`)"
)

TASKS = ["0-redis_client", "1-redis_op", "2-redis_op_async", "4-redis_advanced_op"]


@pytest.mark.parametrize("task", TASKS)
def test_the_lessons_skeleton_fails(task: str, tmp_path: Path) -> None:
    report = grade(task, skeleton(task, tmp_path))
    assert not report.passed
    assert report.met <= 2, "\n".join(report.lines())  # at most: import quiet, `async def`


# ---------------------------------------------------------------- 0-redis_client

ONE_ATTEMPT = """
import redis
from helpers.server import redis_url

if __name__ == "__main__":
    client = redis.Redis.from_url(redis_url())
    try:
        client.ping()
        print("Redis client connected to the server")
    except redis.ConnectionError as error:
        print(f"Redis client not connected to the server: {error}")
"""

DEFAULT_ADDRESS = """
import sys, time
import redis

if __name__ == "__main__":
    client = redis.Redis()  # 127.0.0.1:6379, whatever REDIS_URL says
    for attempt in range(3):
        try:
            client.ping()
        except redis.ConnectionError as error:
            print(f"Redis client not connected to the server: {error}")
            time.sleep(0.1)
        else:
            print("Redis client connected to the server")
            sys.exit(0)
    sys.exit(1)
"""

CONNECTED_FIRST = """
import sys, time
import redis
from helpers.server import redis_url

if __name__ == "__main__":
    print("Redis client connected to the server")  # before anything answered
    client = redis.Redis.from_url(redis_url())
    for attempt in range(3):
        try:
            client.ping()
            sys.exit(0)
        except redis.ConnectionError as error:
            print(f"Redis client not connected to the server: {error}")
            time.sleep(0.1)
    sys.exit(1)
"""

UNCAUGHT = """
import time
import redis
from helpers.server import redis_url

if __name__ == "__main__":
    client = redis.Redis.from_url(redis_url())
    client.ping()  # a refused connection escapes as a traceback
    print("Redis client connected to the server")
"""

KEEPS_TRYING_FOREVER = """
import time
import redis
from helpers.server import redis_url

if __name__ == "__main__":
    client = redis.Redis.from_url(redis_url())
    while True:  # like the original: never gives up, never exits
        try:
            client.ping()
        except redis.ConnectionError as error:
            print(f"Redis client not connected to the server: {error}", flush=True)
            time.sleep(0.2)
        else:
            print("Redis client connected to the server", flush=True)
            time.sleep(3600)
"""


def test_0_one_attempt_only_fails_on_each_attempt(tmp_path: Path) -> None:
    fails_only(graded(tmp_path, "0-redis_client", ONE_ATTEMPT), EACH_ATTEMPT)


def test_0_ignoring_redis_url_fails_on_connecting_there(tmp_path: Path) -> None:
    report = graded(tmp_path, "0-redis_client", DEFAULT_ADDRESS)
    # Whether something answers on 6379 here decides the rest; never the checker's Redis.
    assert CONNECTS in report.failed(), "\n".join(report.lines())


def test_0_connected_line_before_connecting_fails_when_down(tmp_path: Path) -> None:
    report = graded(tmp_path, "0-redis_client", CONNECTED_FIRST)
    # CONNECTS may fail too: the checker stops the run at its first line, maybe before the PING.
    assert set(report.failed()) - {CONNECTS} == {NO_TRACEBACK}, "\n".join(report.lines())


def test_0_an_uncaught_connection_error_fails(tmp_path: Path) -> None:
    report = graded(tmp_path, "0-redis_client", UNCAUGHT)
    fails_only(report, EACH_ATTEMPT, NAMES_ADDRESS, NO_TRACEBACK)


def test_0_a_program_that_keeps_trying_like_the_original_passes(tmp_path: Path) -> None:
    report = graded(tmp_path, "0-redis_client", KEEPS_TRYING_FOREVER)
    assert report.passed, "\n".join(report.lines())


# -------------------------------------------------------------------- 1-redis_op

PRINTS_ONLY = """
print("Redis client connected to the server")
print("School")
print("Reply: OK")
print("100")
"""

REPLY_TRUE = """
from helpers.client import connect


def set_new_school(client, school_name, value):
    print(f"Reply: {client.set(school_name, value)}")  # redis-py's True, not the server's OK


def display_school_value(client, school_name):
    print(client.get(school_name))


if __name__ == "__main__":
    client = connect()
    display_school_value(client, "Holberton")
    set_new_school(client, "HolbertonSanFrancisco", "100")
    display_school_value(client, "HolbertonSanFrancisco")
"""

FIXED_SCHOOL = """
from helpers.client import connect


def set_new_school(client, school_name, value):
    print("Reply: OK" if client.set(school_name, value) else "Reply: ?")


def display_school_value(client, school_name):
    print(client.get(school_name))


if __name__ == "__main__":
    client = connect()
    print("School")  # what the dump holds, surely
    set_new_school(client, "HolbertonSanFrancisco", "100")
    display_school_value(client, "HolbertonSanFrancisco")
"""


def test_1_printing_the_lines_without_redis_fails(tmp_path: Path) -> None:
    report = graded(tmp_path, "1-redis_op", PRINTS_ONLY)
    fails_only(report, STORED_100, QUIET, SETS, DISPLAYS, READS_HOLBERTON)


def test_1_printing_redis_pys_true_fails(tmp_path: Path) -> None:
    fails_only(graded(tmp_path, "1-redis_op", REPLY_TRUE), FOUR_LINES, SETS, READS_HOLBERTON)


def test_1_a_fixed_school_line_fails(tmp_path: Path) -> None:
    fails_only(graded(tmp_path, "1-redis_op", FIXED_SCHOOL), READS_HOLBERTON)


# -------------------------------------------------------------- 2-redis_op_async

BLOCKING_INSIDE_ASYNC = """
import asyncio
from helpers.client import connect


async def set_new_school(client, school_name, value):
    print("Reply: OK" if client.set(school_name, value) else "Reply: ?")


async def display_school_value(client, school_name):
    print(client.get(school_name))


async def main():
    client = connect()  # the blocking client, inside async code
    await display_school_value(client, "Holberton")
    await set_new_school(client, "HolbertonSanFrancisco", "100")
    await display_school_value(client, "HolbertonSanFrancisco")


if __name__ == "__main__":
    asyncio.run(main())
"""

COPY_OF_1 = """
from helpers.client import connect


def set_new_school(client, school_name, value):
    print("Reply: OK" if client.set(school_name, value) else "Reply: ?")


def display_school_value(client, school_name):
    print(client.get(school_name))


if __name__ == "__main__":
    client = connect()
    display_school_value(client, "Holberton")
    set_new_school(client, "HolbertonSanFrancisco", "100")
    display_school_value(client, "HolbertonSanFrancisco")
"""


def test_2_a_blocking_client_inside_async_def_fails(tmp_path: Path) -> None:
    report = graded(tmp_path, "2-redis_op_async", BLOCKING_INSIDE_ASYNC)
    fails_only(report, AWAITED_CALLS, NO_BLOCKING)


def test_2_the_blocking_program_of_task_1_fails(tmp_path: Path) -> None:
    report = graded(tmp_path, "2-redis_op_async", COPY_OF_1)
    fails_only(report, ASYNC_DEF, AWAITED_CALLS, NO_BLOCKING)


# ----------------------------------------------------------- 4-redis_advanced_op

HASH_PROGRAM = """
from helpers.client import connect

SCHOOLS = {{"Portland": 50, "Seattle": 80, "New York": 20, "Bogota": 20, "Cali": 40, "Paris": 2}}

if __name__ == "__main__":
    client = connect()
    {before}
    for city, value in SCHOOLS.items():
        {hset}
    {display}
"""
HSET = "print(f\"Reply: {client.hset('HolbertonSchools', city, value)}\")"
HGETALL = 'print(client.hgetall("HolbertonSchools"))'


def hash_program(before: str = "pass", hset: str = HSET, display: str = HGETALL) -> str:
    return HASH_PROGRAM.format(before=before, hset=hset, display=display)


def test_4_a_hand_written_dict_fails(tmp_path: Path) -> None:
    source = hash_program(display="print({city: str(value) for city, value in SCHOOLS.items()})")
    fails_only(graded(tmp_path, "4-redis_advanced_op", source), AS_RETURNED)


def test_4_a_fixed_reply_fails_on_the_rerun(tmp_path: Path) -> None:
    source = hash_program(
        hset="client.hset('HolbertonSchools', city, value)\n        print('Reply: 1')"
    )
    fails_only(graded(tmp_path, "4-redis_advanced_op", source), RERUN)


def test_4_clearing_the_hash_first_fails_on_the_rerun(tmp_path: Path) -> None:
    source = hash_program(before="client.delete('HolbertonSchools')")
    fails_only(
        graded(tmp_path, "4-redis_advanced_op", source), RERUN, AS_RETURNED
    )  # no added field


def test_4_numbers_instead_of_strings_fail(tmp_path: Path) -> None:
    source = hash_program(
        display="print({k: int(v) for k, v in client.hgetall('HolbertonSchools').items()})"
    )
    report = graded(tmp_path, "4-redis_advanced_op", source)
    fails_only(report, FIRST_RUN, STRINGS, AS_RETURNED)


def test_4_one_hset_with_a_mapping_fails(tmp_path: Path) -> None:
    source = hash_program(
        before="print(f\"Reply: {client.hset('HolbertonSchools', mapping=SCHOOLS)}\")",
        hset="pass",
    )
    report = graded(tmp_path, "4-redis_advanced_op", source)
    fails_only(report, FIRST_RUN, RERUN)
