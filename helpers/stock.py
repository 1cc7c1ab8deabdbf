"""Stock reservations (the original's task 9): four products, one Redis key each.

Each product's remaining stock lives in the key ``item.<itemId>`` (the
original's implementations disagreed whether that key held the reserved
count or what is left; here it holds what is left, and a missing key means
nothing was reserved yet: the initial quantity).

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

What the HTTP service (:mod:`helpers.api`) calls has an ``_async`` twin for
``redis.asyncio`` clients.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import Sequence
from typing import TypedDict

import redis
import redis.asyncio


class Product(TypedDict):
    """A product, with the original's field names."""

    itemId: int
    itemName: str
    price: int
    initialAvailableQuantity: int


PRODUCTS: tuple[Product, ...] = (
    {"itemId": 1, "itemName": "Suitcase 250", "price": 50, "initialAvailableQuantity": 4},
    {"itemId": 2, "itemName": "Suitcase 450", "price": 100, "initialAvailableQuantity": 10},
    {"itemId": 3, "itemName": "Suitcase 650", "price": 350, "initialAvailableQuantity": 2},
    {"itemId": 4, "itemName": "Suitcase 1050", "price": 550, "initialAvailableQuantity": 5},
)
"""The four products, in the original's order."""

_BY_ID: dict[int, Product] = {p["itemId"]: p for p in PRODUCTS}
_MAX_ID_DIGITS = 9  # longer ids cannot be ours: refuse them before int() does any work


class ProductNotFound(LookupError):
    """No product has this id."""


def parse_item_id(raw: object) -> int | None:
    """The item id in ``raw`` (an int, or a string of ASCII digits), else None.

    Stricter than the original's ``parseInt`` (which read ``"1abc"`` as 1):
    signs, spaces, underscores, non-ASCII digits and overlong strings are not
    ids. Anything malformed is simply "not found", never an error.
    """
    if isinstance(raw, bool):
        return None
    if isinstance(raw, int):
        return raw
    if isinstance(raw, str) and 0 < len(raw) <= _MAX_ID_DIGITS and raw.isascii() and raw.isdigit():
        return int(raw)
    return None


def get_item_by_id(item_id: object) -> Product | None:
    """The product with this id (a copy), or None: the original's ``getItemById``."""
    parsed = parse_item_id(item_id)
    product = _BY_ID.get(parsed) if parsed is not None else None
    return Product(**product) if product else None


def _product(item_id: int) -> Product:
    try:
        return _BY_ID[item_id]
    except KeyError:
        raise ProductNotFound(f"Product not found: {item_id!r}") from None


def item_key(item_id: int) -> str:
    """The Redis key of a product's stock: ``item.<itemId>``."""
    return f"item.{item_id}"


def stock_keys() -> list[str]:
    """Every product's key, for :func:`helpers.client.clear_keys`."""
    return [item_key(p["itemId"]) for p in PRODUCTS]


# --- the fix: one atomic step on the server -------------------------------

RESERVE_SCRIPT = """
-- KEYS[1]: item.<itemId>   ARGV[1]: the initial quantity (if the key is missing)
-- Redis runs the whole script as one command: nobody writes in between.
local left = tonumber(redis.call('GET', KEYS[1]) or ARGV[1])
if not left then
  return redis.error_reply('stock of ' .. KEYS[1] .. ' is not a number')
end
if left < 1 then
  return -1
end
redis.call('SET', KEYS[1], left - 1)
return left - 1
""".strip()
"""Reserve one unit; return what is left, or -1 when there was none."""

RESERVE_SHA = hashlib.sha1(RESERVE_SCRIPT.encode()).hexdigest()


def run_script(
    client: redis.Redis, script: str, sha: str, keys: Sequence[str], args: Sequence[object]
) -> object:
    """``EVALSHA`` the cached script; on ``NOSCRIPT`` (a server that never saw
    it, or was restarted) send the text once with ``EVAL``, which caches it."""
    try:
        return client.evalsha(sha, len(keys), *keys, *args)
    except redis.exceptions.NoScriptError:
        return client.eval(script, len(keys), *keys, *args)


async def run_script_async(
    client: redis.asyncio.Redis,
    script: str,
    sha: str,
    keys: Sequence[str],
    args: Sequence[object],
) -> object:
    """The asyncio twin of :func:`run_script`."""
    try:
        return await client.evalsha(sha, len(keys), *keys, *args)
    except redis.exceptions.NoScriptError:
        return await client.eval(script, len(keys), *keys, *args)


def reserve_stock(client: redis.Redis, item_id: int) -> bool:
    """Reserve one unit of ``item_id`` atomically (Lua); True if confirmed.
    Never oversells, however many clients call it at once."""
    product = _product(item_id)
    left = run_script(
        client,
        RESERVE_SCRIPT,
        RESERVE_SHA,
        [item_key(item_id)],
        [product["initialAvailableQuantity"]],
    )
    return int(left) >= 0  # type: ignore[arg-type]


async def reserve_stock_async(client: redis.asyncio.Redis, item_id: int) -> bool:
    """The asyncio twin of :func:`reserve_stock`."""
    product = _product(item_id)
    left = await run_script_async(
        client,
        RESERVE_SCRIPT,
        RESERVE_SHA,
        [item_key(item_id)],
        [product["initialAvailableQuantity"]],
    )
    return int(left) >= 0  # type: ignore[arg-type]


class TooMuchContention(RuntimeError):
    """``WATCH``/``MULTI`` gave up: other clients kept writing the key."""


def reserve_stock_watch(client: redis.Redis, item_id: int, max_attempts: int = 1000) -> bool:
    """Reserve one unit with optimistic locking (``WATCH``/``MULTI``/``EXEC``).

    If another client writes the key between our ``WATCH`` and our ``EXEC``,
    the transaction is dropped (``WatchError``) and we read again.
    """
    product = _product(item_id)
    key = item_key(item_id)
    with client.pipeline() as pipe:
        for _ in range(max_attempts):
            try:
                pipe.watch(key)  # from here, EXEC fails if anyone else writes the key
                stored = pipe.get(key)  # after WATCH, commands run at once
                left = int(stored) if stored is not None else product["initialAvailableQuantity"]
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


def current_quantity(client: redis.Redis, item_id: int) -> int:
    """Units of ``item_id`` left (the initial quantity if never reserved)."""
    product = _product(item_id)
    stored = client.get(item_key(item_id))
    return int(stored) if stored is not None else product["initialAvailableQuantity"]


async def current_quantity_async(client: redis.asyncio.Redis, item_id: int) -> int:
    """The asyncio twin of :func:`current_quantity`."""
    product = _product(item_id)
    stored = await client.get(item_key(item_id))
    return int(stored) if stored is not None else product["initialAvailableQuantity"]


def reset_stock(client: redis.Redis, item_id: int | None = None) -> None:
    """Set every product's stock (or one product's) to its initial quantity,
    as the original did when its server started."""
    products = PRODUCTS if item_id is None else (_product(item_id),)
    client.mset({item_key(p["itemId"]): p["initialAvailableQuantity"] for p in products})


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
