"""Stock reservations (the original's task 9): four products, one Redis key each.

Each product's remaining stock lives in the key ``item.<itemId>`` (the
original's implementations disagreed whether that key held the reserved
count or what is left; here it holds what is left, and a missing key means
nothing was reserved yet: the initial quantity).

The task's own code (the products, :func:`get_item_by_id`, the Lua script,
the routes) is the reference solution :mod:`helpers.programs.t9_stock`,
imported here: one copy. Its Redis functions are ``async`` (the service's
routes await them): here they are :func:`reserve_stock_async`,
:func:`current_quantity_async` and :func:`reset_stock_async`, and this module
adds their blocking twins for a notebook's or a widget's ``redis.Redis``
client, and what the lessons show beside them.

Reserving one unit must read the stock and write it back. Done as two
commands, as the original did, two clients can read the same stock and both
confirm the last unit: :func:`reserve_stock_naive` keeps that flaw, only to
show it (with a pause, :data:`NAIVE_GAP_S`, between the two, so that it
always shows). Two ways make the read and the write one step:

- :func:`reserve_stock` (the course's choice): a Lua script that Redis runs
  as one command, so no other command runs between its read and its write.
  One round trip; called by its SHA1 (``EVALSHA``), the script text sent
  again only if the server does not know it yet (``NOSCRIPT``).
- :func:`reserve_stock_watch`: optimistic locking. ``WATCH`` the key, read
  it, then ``MULTI``/``EXEC`` the write; ``EXEC`` fails if another client
  wrote the key in between, and we retry. Three round trips at least, and
  under contention many retries: correct, but slower.

Both ways of calling the script use redis-py's ``register_script``, which
sends ``EVALSHA`` and falls back to loading the script on ``NOSCRIPT``.
"""

from __future__ import annotations

import asyncio
import time

import redis
import redis.asyncio

from helpers.programs.t9_stock import (
    PRODUCTS,
    RESERVE_SCRIPT,
    RESERVE_SHA,
    Product,
    ProductNotFound,
    get_item_by_id,
    initial_quantity,
    item_key,
    parse_item_id,
)
from helpers.programs.t9_stock import current_quantity as current_quantity_async
from helpers.programs.t9_stock import reserve_stock as reserve_stock_async
from helpers.programs.t9_stock import reset_stock as reset_stock_async

__all__ = [
    "NAIVE_GAP_S",
    "PRODUCTS",
    "RESERVE_SCRIPT",
    "RESERVE_SHA",
    "Product",
    "ProductNotFound",
    "TooMuchContention",
    "current_quantity",
    "current_quantity_async",
    "get_current_reserved_stock_by_id",
    "get_item_by_id",
    "initial_quantity",
    "item_key",
    "parse_item_id",
    "reserve_stock",
    "reserve_stock_async",
    "reserve_stock_by_id",
    "reserve_stock_naive",
    "reserve_stock_naive_async",
    "reserve_stock_watch",
    "reset_stock",
    "reset_stock_async",
    "stock_keys",
]


def stock_keys() -> list[str]:
    """Every product's key, for :func:`helpers.client.clear_keys`."""
    return [item_key(p["itemId"]) for p in PRODUCTS]


def reserve_stock(client: redis.Redis, item_id: int) -> bool:
    """The blocking twin of :func:`reserve_stock_async`: one unit reserved in
    one step (the Lua script); True if confirmed. Never oversells."""
    reserve = client.register_script(RESERVE_SCRIPT)
    left = reserve(keys=[item_key(item_id)], args=[initial_quantity(item_id)])
    return int(left) >= 0  # type: ignore[arg-type]


def current_quantity(client: redis.Redis, item_id: int) -> int:
    """The blocking twin of :func:`current_quantity_async`: units left."""
    initial = initial_quantity(item_id)  # an unknown product raises, whatever Redis holds
    stored = client.get(item_key(item_id))
    return int(stored) if stored is not None else initial  # type: ignore[arg-type]


def reset_stock(client: redis.Redis, item_id: int | None = None) -> None:
    """The blocking twin of :func:`reset_stock_async`: initial quantities."""
    ids = [p["itemId"] for p in PRODUCTS] if item_id is None else [item_id]
    client.mset({item_key(i): initial_quantity(i) for i in ids})


class TooMuchContention(RuntimeError):
    """``WATCH``/``MULTI`` gave up: other clients kept writing the key."""


def reserve_stock_watch(client: redis.Redis, item_id: int, max_attempts: int = 1000) -> bool:
    """Reserve one unit with optimistic locking (``WATCH``/``MULTI``/``EXEC``).

    If another client writes the key between our ``WATCH`` and our ``EXEC``,
    the transaction is dropped (``WatchError``) and we read again.
    """
    initial = initial_quantity(item_id)
    key = item_key(item_id)
    with client.pipeline() as pipe:
        for _ in range(max_attempts):
            try:
                pipe.watch(key)  # from here, EXEC fails if anyone else writes the key
                stored = pipe.get(key)  # after WATCH, commands run at once
                left = int(stored) if stored is not None else initial
                if left < 1:
                    pipe.unwatch()
                    return False
                pipe.multi()  # queue the write...
                pipe.set(key, left - 1)
                pipe.execute()  # ...and run it, unless the key changed since WATCH
                return True
            except redis.WatchError:
                continue  # somebody reserved in between: read again
    raise TooMuchContention(f"{key}: gave up after {max_attempts} attempts")


# --- the original's two steps, kept only to show the race -----------------

NAIVE_GAP_S = 0.02
"""The naive versions' pause between their read and their write: it widens the
window the race needs, so overlapping requests always oversell (a real service
has such a gap too: a network hop, other work)."""


def get_current_reserved_stock_by_id(client: redis.Redis, item_id: int) -> int:
    """The original's read: the stock left for ``item_id``."""
    return current_quantity(client, item_id)


def reserve_stock_by_id(client: redis.Redis, item_id: int, stock: int) -> None:
    """The original's write: ``SET item.<itemId> <stock>``."""
    client.set(item_key(item_id), stock)


def reserve_stock_naive(client: redis.Redis, item_id: int) -> bool:
    """The original's reservation: read, then write, in two commands.

    FLAWED on purpose: between the read and the write another client can read
    the same stock, and both confirm the same unit (oversold). Use
    :func:`reserve_stock`.
    """
    left = get_current_reserved_stock_by_id(client, item_id)
    if left < 1:
        return False
    time.sleep(NAIVE_GAP_S)  # widens the window the race needs (a network hop)
    reserve_stock_by_id(client, item_id, left - 1)
    return True


async def reserve_stock_naive_async(client: redis.asyncio.Redis, item_id: int) -> bool:
    """The asyncio twin of :func:`reserve_stock_naive` (as flawed). While it
    awaits, the event loop runs other requests' reads."""
    left = await current_quantity_async(client, item_id)
    if left < 1:
        return False
    await asyncio.sleep(NAIVE_GAP_S)  # widens the window the race needs (a network hop)
    await client.set(item_key(item_id), left - 1)
    return True
