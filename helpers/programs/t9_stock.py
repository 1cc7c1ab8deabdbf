"""9-stock: the original's stock service, an HTTP app (Starlette) on port 1245.

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

The routes are ``async``: while one waits for Redis, the event loop serves
the others. They share one asyncio Redis client (:func:`connect`) whose
commands all go down one connection, pipelined: the commands of every
request waiting at that moment leave in one write. :mod:`helpers.api`
serves these same :data:`routes` (and those of ``100-seat``) as the
course's service.

Run it: ``python helpers/programs/t9_stock.py`` (``PORT``, default 1245;
Redis at ``REDIS_URL``, else the course server).
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TypedDict

import redis.asyncio
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from helpers.autopipeline import AutoPipelinedRedis
from helpers.server import redis_url

HOST = "127.0.0.1"
DEFAULT_PORT = 1245
REDIS_TIMEOUT_S = 2.0  # wait this long for a connect or a reply; then 503


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

RESERVE_SHA = hashlib.sha1(RESERVE_SCRIPT.encode()).hexdigest()  # its name in Redis's cache


def connect(url: str) -> AutoPipelinedRedis:
    """An asyncio client (text replies) for the whole app: every request's
    commands share **one** connection, pipelined, as Node's Redis client
    does (:mod:`helpers.autopipeline`). A reply that takes longer than
    :data:`REDIS_TIMEOUT_S` fails the request (a 503); a connection found
    broken (Redis restarted) is opened again by the next command."""
    return AutoPipelinedRedis(url, timeout_s=REDIS_TIMEOUT_S)


async def reserve_stock(client: redis.asyncio.Redis, item_id: int) -> bool:
    """Reserve one unit of ``item_id`` in one step (the Lua script); True if
    confirmed. Never oversells, however many clients call it at once.
    ``register_script`` sends ``EVALSHA`` (the script's SHA1), and the text
    only if Redis does not know the script yet (``NOSCRIPT``)."""
    reserve = client.register_script(RESERVE_SCRIPT)
    left = await reserve(keys=[item_key(item_id)], args=[initial_quantity(item_id)])
    return int(left) >= 0


async def current_quantity(client: redis.asyncio.Redis, item_id: int) -> int:
    """Units of ``item_id`` left (the initial quantity if never reserved)."""
    initial = initial_quantity(item_id)  # an unknown product raises, whatever Redis holds
    stored = await client.get(item_key(item_id))
    return int(stored) if stored is not None else initial


async def reset_stock(client: redis.asyncio.Redis, item_id: int | None = None) -> None:
    """Set every product's stock (or one product's) to its initial quantity."""
    ids = [p["itemId"] for p in PRODUCTS] if item_id is None else [item_id]
    await client.mset({item_key(i): initial_quantity(i) for i in ids})


# --- the HTTP app ---------------------------------------------------------

NOT_FOUND = {"status": "Product not found"}
# JSONResponse writes compact JSON (no spaces): byte for byte what Express's res.json() wrote.


async def list_products(request: Request) -> JSONResponse:
    """The four products."""
    return JSONResponse(PRODUCTS)


async def product_detail(request: Request) -> JSONResponse:
    """One product and the units left, or not found. The id is read as
    text: anything that is not an id is simply not found."""
    product = get_item_by_id(request.path_params["item_id"])
    if product is None:
        return JSONResponse(NOT_FOUND)
    left = await current_quantity(request.app.state.redis, product["itemId"])
    return JSONResponse({**product, "currentQuantity": left})


async def reserve_product(request: Request) -> JSONResponse:
    """Reserve one unit, in one step."""
    product = get_item_by_id(request.path_params["item_id"])
    if product is None:
        return JSONResponse(NOT_FOUND)
    if not await reserve_stock(request.app.state.redis, product["itemId"]):
        return JSONResponse({"status": "Not enough stock available", "itemId": product["itemId"]})
    return JSONResponse({"status": "Reservation confirmed", "itemId": product["itemId"]})


# `:path` takes the rest of the path, slashes included: "/list_products/1/2" is
# a product id that does not exist (not found), not an unknown route.
routes = [
    Route("/list_products", list_products),
    Route("/list_products/{item_id:path}", product_detail),
    Route("/reserve_product/{item_id:path}", reserve_product),
]


@asynccontextmanager
async def lifespan(app: Starlette) -> AsyncIterator[None]:
    """One Redis client for the app's life; the stock reset as it starts."""
    app.state.redis = connect(redis_url())
    await reset_stock(app.state.redis)
    yield
    await app.state.redis.aclose()


app = Starlette(routes=routes, lifespan=lifespan)


def main() -> None:
    """Serve the app on 127.0.0.1, port ``$PORT`` (default 1245)."""
    import uvicorn  # noqa: PLC0415 (only the program needs it, not an import of the app)

    port = int(os.environ.get("PORT", DEFAULT_PORT))
    uvicorn.run(app, host=HOST, port=port, access_log=False)  # no line per request


if __name__ == "__main__":
    main()
