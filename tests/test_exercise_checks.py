"""The exercise checker's three verdicts, sync and async; and the throughput lesson's
round-trip check, which must accept both pipeline forms and nothing else."""

from __future__ import annotations

import asyncio
import contextlib
import io
from pathlib import Path

import nbformat

from helpers import bench
from helpers.exercises import acheck, check
from helpers.server import redis_url


def _unsolved() -> None:
    raise NotImplementedError


def _wrong() -> None:
    raise AssertionError("expected 6, got 5")


def _broken() -> None:
    raise KeyError("x")


def test_verdicts(capsys) -> None:
    for test in (lambda: None, _unsolved, _wrong, _broken):
        check("ex", test)
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "✓ ex: correct"
    assert lines[1].startswith("◻ ex: not attempted yet") and "solutions/ex.py" in lines[1]
    assert lines[2] == "✗ ex: not yet: expected 6, got 5"
    assert lines[3] == "✗ ex: your code raised KeyError: 'x'"


def test_async_verdicts(capsys) -> None:
    async def good() -> None:
        await asyncio.sleep(0)

    async def unsolved() -> None:
        raise NotImplementedError

    asyncio.run(acheck("aex", good))
    asyncio.run(acheck("aex", unsolved))
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "✓ aex: correct" and lines[1].startswith("◻ aex")


# ------------------------------- the throughput lesson (14), exercise 2: round trips


def _throughput_push_check(r, push_all) -> str:
    """Run the throughput lesson's own check cell for exercise 2 against ``push_all``; its verdict."""
    # Found by topic, not number: the lesson may be renumbered.
    path = next((Path(__file__).resolve().parent.parent / "notebooks").glob("*-throughput.ipynb"))
    nb = nbformat.read(path, as_version=4)
    source = next(c.source for c in nb.cells if '-pipelined-push", test_push_all)' in c.source)
    namespace = {"r": r, "bench": bench, "redis_url": redis_url, "check": check}
    namespace["push_all"] = push_all
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(source, str(path), "exec"), namespace)
    verdict = out.getvalue().strip()
    return verdict.replace(f"{path.name[:2]}-pipelined-push", "NN-pipelined-push")


def _pipelined(transaction: bool):
    def push_all(client, key, items, per_trip):
        for start in range(0, len(items), per_trip):
            with client.pipeline(transaction=transaction) as pipe:
                for item in items[start : start + per_trip]:
                    pipe.rpush(key, item)
                pipe.execute()

    return push_all


def _one_by_one(client, key, items, per_trip):
    for item in items:
        client.rpush(key, item)


def _one_pipeline(client, key, items, per_trip):
    with client.pipeline(transaction=False) as pipe:
        for item in items:
            pipe.rpush(key, item)
        pipe.execute()


def test_round_trip_check_passes_both_pipeline_forms(r) -> None:
    # With a transaction (MULTI ... EXEC), and without (lesson 04's form): both correct.
    assert _throughput_push_check(r, _pipelined(True)) == "✓ NN-pipelined-push: correct"
    assert _throughput_push_check(r, _pipelined(False)) == "✓ NN-pipelined-push: correct"


def test_round_trip_check_fails_unpipelined_or_oversized_answers(r) -> None:
    verdict = _throughput_push_check(r, _one_by_one)
    assert verdict == "✗ NN-pipelined-push: not yet: expected 3 round trips, counted 25"
    verdict = _throughput_push_check(r, _one_pipeline)
    assert verdict == "✗ NN-pipelined-push: not yet: expected 3 round trips, counted 1"
