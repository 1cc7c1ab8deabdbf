"""Connecting to Redis with the original exercise's messages.

``connect()`` prints ``Redis client connected to the server`` once connected.
When Redis cannot be reached it prints the original's line for each attempt,
``Redis client not connected to the server: <error>``, then raises
:class:`RedisUnavailable`, whose message is one sentence saying how to fix
it. In a notebook that sentence is all the learner sees: no traceback storm.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterable

import redis
import redis.asyncio

from helpers.programs import t0_redis_client as redis_client
from helpers.programs.t0_redis_client import CONNECTED, NOT_CONNECTED
from helpers.server import redis_url


class RedisUnavailable(redis.ConnectionError):
    """Redis could not be reached. The message says how to fix it."""

    def _render_traceback_(self) -> list[str]:
        # IPython calls this instead of printing a traceback.
        return [f"{type(self).__name__}: {self}"]


def fix_hint(url: str, explicit: bool = False) -> str:
    """One sentence telling the learner how to get a reachable Redis at ``url``.
    ``explicit``: the URL was passed in by the caller, not resolved."""
    if explicit:
        return (
            f"No Redis answers at {url}: start a server there, or call connect() "
            "without a URL to use the course server."
        )
    if os.environ.get("REDIS_URL"):
        return (
            f"REDIS_URL is set to {url}: start that server, or unset REDIS_URL "
            "to let the course start its own."
        )
    return (
        f"No Redis answers at {url}: start the course server with "
        "`python -m helpers.server start` (or set REDIS_URL to a Redis you run)."
    )


def _error_text(error: Exception) -> str:
    return str(error) or type(error).__name__


def connect(
    url: str | None = None,
    *,
    attempts: int = 3,
    delay_s: float = 0.2,
    quiet: bool = False,
    decode_responses: bool = True,
) -> redis.Redis:
    """A connected client for ``url`` (default: the course server).

    Task 0's :func:`~helpers.programs.t0_redis_client.connect`: prints the
    original's connected line unless ``quiet``, and its error line for each of
    ``attempts`` failed attempts; then raises :class:`RedisUnavailable`, whose
    message says how to fix it.
    """
    explicit = url is not None
    url = url or redis_url()
    try:
        return redis_client.connect(
            url, attempts=attempts, delay_s=delay_s, quiet=quiet, decode_responses=decode_responses
        )
    except redis.ConnectionError:
        raise RedisUnavailable(fix_hint(url, explicit)) from None


def require_redis(url: str | None = None) -> None:
    """For the course's command lines: return if Redis answers; else print,
    on stderr, the original's error line per attempt and how to fix it, and
    exit with status 1 (no traceback, and stdout stays clean for ``--json``)."""
    with contextlib.redirect_stdout(sys.stderr):
        try:
            connect(url, quiet=True).close()
        except RedisUnavailable as error:
            print(error)
            raise SystemExit(1) from None


async def connect_async(
    url: str | None = None,
    *,
    attempts: int = 3,
    delay_s: float = 0.2,
    quiet: bool = False,
    decode_responses: bool = True,
) -> redis.asyncio.Redis:
    """The asyncio twin of :func:`connect`: same messages, same errors."""
    import asyncio  # noqa: PLC0415

    explicit = url is not None
    url = url or redis_url()
    client = redis.asyncio.Redis.from_url(
        url, decode_responses=decode_responses, socket_connect_timeout=2
    )
    for attempt in range(1, attempts + 1):
        try:
            await client.ping()
        except redis.ConnectionError as error:
            print(NOT_CONNECTED.format(error=_error_text(error)))
            if attempt == attempts:
                await client.aclose()
                raise RedisUnavailable(fix_hint(url, explicit)) from None
            await asyncio.sleep(delay_s * attempt)
        else:
            if not quiet:
                print(CONNECTED)
            return client
    raise AssertionError("unreachable")


def clear_keys(client: redis.Redis, *patterns: str) -> int:
    """Delete the keys matching ``patterns`` (glob style) and return how many.

    Lessons call this first with their own keys only, so a re-run starts
    clean without touching anything else on the server (never FLUSHDB).
    """
    deleted = 0
    for pattern in patterns:
        keys: Iterable[str] = (
            client.scan_iter(match=pattern, count=500)
            if any(c in pattern for c in "*?[")
            else [pattern]
        )
        batch = list(keys)
        if batch:
            deleted += client.delete(*batch)
    return deleted
