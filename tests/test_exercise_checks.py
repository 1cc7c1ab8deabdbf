"""The exercise checker's three verdicts, sync and async."""

from __future__ import annotations

import asyncio

from helpers.exercises import acheck, check


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
