"""helpers.stock: the products, the keys, atomic reservations that never
oversell, and the original's naive version, shown to oversell."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable

import pytest
import redis
import redis.asyncio

from helpers import stock

RUSH = 300  # concurrent reservations per product
CLIENTS = 32


def rush(client: redis.Redis, reserve: Callable[[redis.Redis, int], bool], item_id: int) -> int:
    """``RUSH`` reservations from ``CLIENTS`` threads released together; confirmed count."""
    barrier = threading.Barrier(CLIENTS)
    counts = [0] * CLIENTS
    errors: list[BaseException] = []

    def run(index: int) -> None:
        share = RUSH // CLIENTS + (1 if index < RUSH % CLIENTS else 0)
        try:
            client.ping()  # each thread's connection is open before the start signal
            barrier.wait(timeout=30)
            counts[index] = sum(reserve(client, item_id) for _ in range(share))
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(CLIENTS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not errors, errors
    return sum(counts)


def test_the_four_products_exactly_as_the_original() -> None:
    assert [dict(p) for p in stock.PRODUCTS] == [
        {"itemId": 1, "itemName": "Suitcase 250", "price": 50, "initialAvailableQuantity": 4},
        {"itemId": 2, "itemName": "Suitcase 450", "price": 100, "initialAvailableQuantity": 10},
        {"itemId": 3, "itemName": "Suitcase 650", "price": 350, "initialAvailableQuantity": 2},
        {"itemId": 4, "itemName": "Suitcase 1050", "price": 550, "initialAvailableQuantity": 5},
    ]
    assert [stock.item_key(p["itemId"]) for p in stock.PRODUCTS] == stock.stock_keys()
    assert stock.stock_keys() == ["item.1", "item.2", "item.3", "item.4"]


def test_get_item_by_id_finds_each_product_and_returns_a_copy() -> None:
    for product in stock.PRODUCTS:
        assert stock.get_item_by_id(product["itemId"]) == product
        assert stock.get_item_by_id(str(product["itemId"])) == product
    found = stock.get_item_by_id(1)
    assert found is not None
    found["price"] = 0
    assert stock.get_item_by_id(1)["price"] == 50  # type: ignore[index]


@pytest.mark.parametrize(
    "raw",
    [0, 5, -1, "0", "5", "-1", "+1", " 1", "1 ", "1.0", "1e0", "1abc", "abc", "", "1_0",
     "\u0661", "\uff11", "99999999999999999999", "4" * 10_000, "../1", "1/2", None, True, 1.0],
)  # fmt: skip
def test_anything_malformed_is_simply_not_found(raw: object) -> None:
    assert stock.get_item_by_id(raw) is None


def test_reset_and_current_quantity(r: redis.Redis) -> None:
    # A missing key means nothing was reserved yet.
    assert [stock.current_quantity(r, i) for i in (1, 2, 3, 4)] == [4, 10, 2, 5]
    r.set("item.2", 7)
    assert stock.current_quantity(r, 2) == 7
    stock.reset_stock(r)
    assert r.mget(stock.stock_keys()) == ["4", "10", "2", "5"]
    r.set("item.1", 0)
    r.set("item.3", 0)
    stock.reset_stock(r, 3)
    assert r.mget("item.1", "item.3") == ["0", "2"]


@pytest.mark.parametrize(
    "reserve", [stock.reserve_stock, stock.reserve_stock_watch, stock.reserve_stock_naive]
)
def test_one_at_a_time_every_version_confirms_exactly_the_stock(
    r: redis.Redis, reserve: Callable[[redis.Redis, int], bool]
) -> None:
    stock.reset_stock(r)
    answers = [reserve(r, 3) for _ in range(5)]
    assert answers == [True, True, False, False, False]
    assert r.get("item.3") == "0"
    assert r.get("item.1") == "4"  # other products untouched


def test_unknown_products_raise(r: redis.Redis) -> None:
    for reserve in (stock.reserve_stock, stock.reserve_stock_watch, stock.current_quantity):
        with pytest.raises(stock.ProductNotFound):
            reserve(r, 9)


def test_the_script_is_called_by_sha_and_reloaded_after_a_script_flush(r: redis.Redis) -> None:
    stock.reset_stock(r)
    r.script_flush()
    assert r.script_exists(stock.RESERVE_SHA) == [False]
    assert stock.reserve_stock(r, 1) is True  # NOSCRIPT, then EVAL (which caches it)
    assert r.script_exists(stock.RESERVE_SHA) == [True]
    assert r.evalsha(stock.RESERVE_SHA, 1, "item.1", 4) == 2
    assert r.get("item.1") == "2"


def test_a_stock_that_is_not_a_number_is_an_error_not_a_sale(r: redis.Redis) -> None:
    r.set("item.1", "lots")
    with pytest.raises(redis.ResponseError, match="not a number"):
        stock.reserve_stock(r, 1)
    assert r.get("item.1") == "lots"


@pytest.mark.parametrize("reserve", [stock.reserve_stock, stock.reserve_stock_watch])
@pytest.mark.parametrize("product", stock.PRODUCTS, ids=lambda p: p["itemName"])
def test_concurrent_rush_confirms_exactly_the_stock(
    r: redis.Redis, reserve: Callable[[redis.Redis, int], bool], product: stock.Product
) -> None:
    stock.reset_stock(r)
    confirmed = rush(r, reserve, product["itemId"])
    assert confirmed == product["initialAvailableQuantity"]
    assert stock.current_quantity(r, product["itemId"]) == 0


def test_async_rush_confirms_exactly_the_stock(r: redis.Redis, redis_server) -> None:
    stock.reset_stock(r)

    async def main() -> list[bool]:
        client = redis.asyncio.Redis.from_url(redis_server.url, max_connections=RUSH)
        try:
            return await asyncio.gather(
                *(stock.reserve_stock_async(client, 2) for _ in range(RUSH))
            )
        finally:
            await client.aclose()

    assert sum(asyncio.run(main())) == 10
    assert r.get("item.2") == "0"


def test_the_naive_version_oversells_under_concurrency(r: redis.Redis) -> None:
    """The demonstration of lesson 09 is real: the original's read-then-write
    confirms more units than exist when clients run at once. Every time: 32
    clients released together by a barrier all read before the first one
    writes (:data:`stock.NAIVE_GAP_S` after its read)."""
    stock.reset_stock(r)
    confirmed = rush(r, stock.reserve_stock_naive, 1)
    print(f"naive rush of {RUSH}: confirmed {confirmed} of 4 units")
    assert confirmed > 4


def test_async_naive_version_oversells_too(r: redis.Redis, redis_server) -> None:
    """In one event loop, every coroutine reads before any writes."""
    stock.reset_stock(r)

    async def main() -> list[bool]:
        client = redis.asyncio.Redis.from_url(redis_server.url, max_connections=RUSH)
        try:
            return await asyncio.gather(
                *(stock.reserve_stock_naive_async(client, 1) for _ in range(RUSH))
            )
        finally:
            await client.aclose()

    assert sum(asyncio.run(main())) > 4
