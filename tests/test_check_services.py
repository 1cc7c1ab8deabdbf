"""The checker's tasks 9-stock and 100-seat (HTTP apps): the reference passes,
the lesson's skeleton fails, and each plausible wrong version fails on the
requirement it breaks (and, where that says something, only on it).

Wrong versions are the reference with one piece changed (often a function
defined again just before ``main``, which wins: routes and jobs look it up
when they run), so each differs from a passing file by exactly the mistake
it shows."""

from __future__ import annotations

from pathlib import Path

import pytest
from check_files import fails_only, graded, skeleton

from helpers.check import find_task, grade

TASKS = ["9-stock", "100-seat"]

# 9-stock
SERVES = "run as a program, serves HTTP on 127.0.0.1 at the port in `PORT`"
LIST = "`GET /list_products`: the four products, the original's fields in order, byte for byte"
AT_START = "at start, a product's `currentQuantity` is its initial quantity (`/list_products/4`)"
DETAIL = "`GET /list_products/2`: the product and `currentQuantity`, the units left in `item.2`"
DETAIL_UNKNOWN = '`GET /list_products/12` (no such product): `{"status":"Product not found"}`'
MALFORMED = "an id that is not a number (`/list_products/abc`) is not found either, not an error"
RESERVES = "`GET /reserve_product/2`: confirmed, and `item.2` goes from 7 to 6 (the key holds the units left)"
NONE_LEFT = (
    '`GET /reserve_product/1` with none left: `{"status":"Not enough stock available","itemId":1}`,'
    " `item.1` stays 0"
)
RESERVE_UNKNOWN = '`GET /reserve_product/12` (no such product): `{"status":"Product not found"}`'
NO_OVERSELL = (
    "300 reservations at once of the Suitcase 650 (2 in stock): exactly 2 confirmed, "
    "the others refused, `item.3` ends at 0 (no overselling)"
)

# 100-seat
FIRST_LINES = (
    "then each job completes: `Seat reservation job <ID> completed` (3 lines), 47 seats left"
)
RUSH_LINES = (
    "exactly 10 of those jobs complete; each other one prints "
    "`Seat reservation job <ID> failed: Not enough seats available`"
)
NEVER_BELOW = "the seats stop at 0, never below"
SOLD_OUT = (
    'sold out: `reservationEnabled` is false and `/reserve_seat` answers `{"status":"Reservation '
    'are blocked"}`, queueing nothing'
)
TWO_WORKERS = (
    "`process_seat_job` in 2 workers at once: 8 seats, 24 jobs: exactly 8 finish, the others "
    "fail with `Not enough seats available`; seats end at 0 (never below), `reservationEnabled` false"
)
OWN_JOB = (
    'JOB_FUNCTION = "helpers.seats.process_seat_job"',
    'JOB_FUNCTION = "workspace.t100_seat.process_seat_job"',
)


def reference(task: str) -> str:
    return find_task(task).solution.read_text()


def changed(task: str, *replacements: tuple[str, str]) -> str:
    """The reference for ``task`` with each ``(old, new)`` replaced (old must be there)."""
    source = reference(task)
    for old, new in replacements:
        assert old in source, f"the reference no longer has {old!r}"
        source = source.replace(old, new)
    return source


def redefined(task: str, code: str, *replacements: tuple[str, str]) -> str:
    """The reference with ``code`` (new definitions) added just before ``main``."""
    return changed(task, ("\ndef main()", f"\n{code}\n\ndef main()"), *replacements)


@pytest.mark.parametrize("task", TASKS)
def test_the_lessons_skeleton_fails(task: str, tmp_path: Path) -> None:
    report = grade(task, skeleton(task, tmp_path))
    assert not report.passed
    # What a skeleton may meet: it imports quietly, defines its names, and serves.
    assert report.met <= 3, "\n".join(report.lines())
    assert SERVES not in report.failed(), "the skeleton serves: its routes fail, one by one"


def test_an_app_that_never_serves_fails_fast_with_its_crash(tmp_path: Path) -> None:
    report = graded(
        tmp_path, "9-stock", changed("9-stock", ("    main()\n", "    raise SystemExit(3)\n"))
    )
    assert SERVES in report.failed()
    assert "crashed (exit 3)" in next(r.got for r in report.requirements if r.name == SERVES)
    assert NO_OVERSELL in report.failed()


# ------------------------------------------------------------------- 9-stock

NAIVE_RESERVE = '''async def reserve_stock(client: redis.asyncio.Redis, item_id: int) -> bool:
    """The original's two steps: read the stock, then write it back minus one."""
    import asyncio

    left = await current_quantity(client, item_id)
    if left < 1:
        return False
    await asyncio.sleep(0.02)  # a network hop, other work: between the read and the write
    await client.set(item_key(item_id), left - 1)
    return True'''


def test_a_read_then_write_reservation_oversells_and_fails(tmp_path: Path) -> None:
    source = redefined("9-stock", NAIVE_RESERVE)
    fails_only(graded(tmp_path, "9-stock", source), NO_OVERSELL)


def test_an_int_path_convertor_answers_404_for_a_malformed_id(tmp_path: Path) -> None:
    source = changed(
        "9-stock",
        (
            'Route("/list_products/{item_id:path}", product_detail)',
            'Route("/list_products/{item_id:int}", product_detail)',
        ),
    )
    fails_only(graded(tmp_path, "9-stock", source), MALFORMED)


def test_not_found_with_status_404_is_not_the_originals_answer(tmp_path: Path) -> None:
    source = changed(
        "9-stock",
        (
            "        return JSONResponse(NOT_FOUND)\n",
            "        return JSONResponse(NOT_FOUND, status_code=404)\n",
        ),
    )
    fails_only(graded(tmp_path, "9-stock", source), DETAIL_UNKNOWN, MALFORMED, RESERVE_UNKNOWN)


RESERVED_COUNT = '''RESERVE_SCRIPT = """
-- KEYS[1]: item.<itemId> holding the units RESERVED   ARGV[1]: the initial quantity
local reserved = tonumber(redis.call('GET', KEYS[1]) or 0)
if reserved >= tonumber(ARGV[1]) then
  return -1
end
return redis.call('INCR', KEYS[1])
""".strip()


async def current_quantity(client: redis.asyncio.Redis, item_id: int) -> int:
    """Units left: the initial quantity minus the units reserved."""
    return initial_quantity(item_id) - int(await client.get(item_key(item_id)) or 0)


async def reset_stock(client: redis.asyncio.Redis, item_id: int | None = None) -> None:
    """Nothing reserved."""
    ids = [p["itemId"] for p in PRODUCTS] if item_id is None else [item_id]
    await client.mset({item_key(i): 0 for i in ids})


RESERVE_SHA = hashlib.sha1(RESERVE_SCRIPT.encode()).hexdigest()'''


def test_a_key_holding_the_units_reserved_is_not_the_courses_meaning(tmp_path: Path) -> None:
    source = redefined("9-stock", RESERVED_COUNT)
    report = graded(tmp_path, "9-stock", source)
    # item.2 = 7 reads as 3 left; a reservation makes it 8; item.1 = 0 has all 4 left...
    for name in (DETAIL, RESERVES, NONE_LEFT):
        assert name in report.failed(), "\n".join(report.lines())
    for name in (LIST, AT_START, DETAIL_UNKNOWN, RESERVE_UNKNOWN):
        assert name not in report.failed(), "\n".join(report.lines())


# ------------------------------------------------------------------ 100-seat

NAIVE_TAKE_SEAT = '''def take_seat(client: redis.Redis) -> int:
    """The original's two steps: read the seats, then write them back minus one."""
    import time

    seats = int(client.get(SEATS_KEY) or INITIAL_SEATS)
    if seats < 1:
        client.set(ENABLED_KEY, "false")
        raise NotEnoughSeats()
    time.sleep(0.02)  # other work between the read and the write
    client.set(SEATS_KEY, seats - 1)
    if seats - 1 == 0:
        client.set(ENABLED_KEY, "false")
    return seats - 1'''

DECR_TAKE_SEAT = '''def take_seat(client: redis.Redis) -> int:
    """DECR is atomic, but it takes the seat before the check: below zero."""
    left = int(client.decr(SEATS_KEY))
    if left <= 0:
        client.set(ENABLED_KEY, "false")
    if left < 0:
        raise NotEnoughSeats()
    return left'''


def test_a_read_then_write_seat_job_fails_with_two_workers(tmp_path: Path) -> None:
    # One worker (the app's) takes one job at a time: the race needs two.
    source = redefined("100-seat", NAIVE_TAKE_SEAT)
    fails_only(graded(tmp_path, "100-seat", source), TWO_WORKERS)


def test_a_decrement_before_the_check_goes_below_zero(tmp_path: Path) -> None:
    source = redefined("100-seat", DECR_TAKE_SEAT, OWN_JOB)
    report = graded(tmp_path, "100-seat", source)
    fails_only(report, NEVER_BELOW, TWO_WORKERS)


def test_reserving_without_checking_the_flag_is_not_blocked(tmp_path: Path) -> None:
    source = changed(
        "100-seat",
        OWN_JOB,  # the file's own job, as a learner's: the checker imports it as workspace.t100_seat
        ("    if not await reservation_enabled(state.redis):\n", "    if False:\n"),
    )
    report = graded(tmp_path, "100-seat", source)
    assert SOLD_OUT in report.failed(), "\n".join(report.lines())
    assert TWO_WORKERS not in report.failed()
    assert NEVER_BELOW not in report.failed()


def test_an_app_that_prints_no_job_lines_fails_them(tmp_path: Path) -> None:
    source = changed("100-seat", ("    state.listener.announce([job_id])\n", ""))
    report = graded(tmp_path, "100-seat", source)
    assert FIRST_LINES in report.failed(), "\n".join(report.lines())
    assert RUSH_LINES in report.failed()
    assert TWO_WORKERS not in report.failed()
