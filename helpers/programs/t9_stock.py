"""9-stock: the original's stock service, an HTTP app (FastAPI) on port 1245.

Four products; each one's stock lives in the Redis key ``item.<itemId>``,
which holds **the units left** (the original's implementations disagreed:
some kept the units reserved). A missing key means nothing was reserved yet:
the initial quantity. Starting, the app sets every key to its initial
quantity, as the original did. Routes, with the original's JSON bodies::

    GET /list_products                the four products
    GET /list_products/<itemId>       the product + currentQuantity, or {"status":"Product not found"}
    GET /reserve_product/<itemId>     {"status":"Reservation confirmed","itemId":1},
                                      {"status":"Not enough stock available","itemId":1},
                                      or {"status":"Product not found"}

The original read the stock, then wrote it back: two steps, between which
other requests ran, so it oversold. Here "check and take one" is one Lua
script, which Redis runs as one command: it never oversells.

Run it: ``python helpers/programs/t9_stock.py`` (``PORT``, default 1245;
Redis at ``REDIS_URL``, else the course server).
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import TypedDict

import redis
from fastapi import FastAPI, Request

from helpers.server import redis_url

HOST = "127.0.0.1"
DEFAULT_PORT = 1245


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

MAX_ID_DIGITS = 9  # a longer id cannot be ours: refuse it before int() does any work


class ProductNotFound(LookupError):
    """No product has this id."""


def parse_item_id(raw: object) -> int | None:
    """The item id in ``raw`` (an int, or a string of ASCII digits), else None.

    Stricter than the original's ``parseInt`` (which read ``"1abc"`` as 1):
    signs, spaces, non-ASCII digits and overlong strings are not ids.
    """
    if isinstance(raw, bool):
        return None
    if isinstance(raw, int):
        return raw
    if isinstance(raw, str) and 0 < len(raw) <= MAX_ID_DIGITS and raw.isascii() and raw.isdigit():
        return int(raw)
    return None


def get_item_by_id(item_id: object) -> Product | None:
    """The product with this id (a copy), or None: the original's ``getItemById``."""
    parsed = parse_item_id(item_id)
    for product in PRODUCTS:
        if product["itemId"] == parsed:
            return Product(**product)
    return None


def item_key(item_id: int) -> str:
    """The Redis key of a product's stock: ``item.<itemId>``."""
    return f"item.{item_id}"


def initial_quantity(item_id: int) -> int:
    """The product's ``initialAvailableQuantity``; :class:`ProductNotFound` if none."""
    product = get_item_by_id(item_id)
    if product is None:
        raise ProductNotFound(f"Product not found: {item_id!r}")
    return product["initialAvailableQuantity"]


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


def reserve_stock(client: redis.Redis, item_id: int) -> bool:
    """Reserve one unit of ``item_id`` in one step (the Lua script); True if
    confirmed. Never oversells, however many clients call it at once."""
    left = run_script(
        client, RESERVE_SCRIPT, RESERVE_SHA, [item_key(item_id)], [initial_quantity(item_id)]
    )
    return int(left) >= 0  # type: ignore[call-overload]


def current_quantity(client: redis.Redis, item_id: int) -> int:
    """Units of ``item_id`` left (the initial quantity if never reserved)."""
    initial = initial_quantity(item_id)  # an unknown product raises, whatever Redis holds
    stored = client.get(item_key(item_id))
    return int(stored) if stored is not None else initial


def reset_stock(client: redis.Redis, item_id: int | None = None) -> None:
    """Set every product's stock (or one product's) to its initial quantity."""
    ids = [p["itemId"] for p in PRODUCTS] if item_id is None else [item_id]
    client.mset({item_key(i): initial_quantity(i) for i in ids})


# --- the HTTP app ---------------------------------------------------------

NOT_FOUND = {"status": "Product not found"}


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    """One Redis client for the app's life; the stock reset as it starts."""
    app.state.redis = redis.Redis.from_url(redis_url(), decode_responses=True)
    reset_stock(app.state.redis)
    yield
    app.state.redis.close()


app = FastAPI(title="9-stock", lifespan=lifespan)
# Routes are plain `def`s: FastAPI runs each in a thread, so a blocking
# Redis call holds up no other request. FastAPI writes compact JSON
# (no spaces), byte for byte what Express's res.json() wrote.


@app.get("/list_products")
def list_products() -> list[dict[str, object]]:
    """The four products."""
    return [dict(product) for product in PRODUCTS]


@app.get("/list_products/{item_id}")
def product_detail(item_id: str, request: Request) -> dict[str, object]:
    """One product and the units left, or not found. The id is read as
    text: anything that is not an id is simply not found."""
    product = get_item_by_id(item_id)
    if product is None:
        return NOT_FOUND
    left = current_quantity(request.app.state.redis, product["itemId"])
    return {**product, "currentQuantity": left}


@app.get("/reserve_product/{item_id}")
def reserve_product(item_id: str, request: Request) -> dict[str, object]:
    """Reserve one unit, in one step."""
    product = get_item_by_id(item_id)
    if product is None:
        return NOT_FOUND
    if not reserve_stock(request.app.state.redis, product["itemId"]):
        return {"status": "Not enough stock available", "itemId": product["itemId"]}
    return {"status": "Reservation confirmed", "itemId": product["itemId"]}


def main() -> None:
    """Serve the app on 127.0.0.1, port ``$PORT`` (default 1245)."""
    import uvicorn  # noqa: PLC0415 (only the program needs it, not an import of the app)

    port = int(os.environ.get("PORT", DEFAULT_PORT))
    uvicorn.run(app, host=HOST, port=port, access_log=False)  # no line per request


if __name__ == "__main__":
    main()
