"""2-redis_op_async: the operations of ``1-redis_op`` with ``redis.asyncio``:
each call is awaited instead of blocking. Same output, same order."""

from __future__ import annotations

import asyncio

import redis.asyncio

from helpers.client import connect_async
from helpers.programs.t1_redis_op import format_reply


async def set_new_school(client: redis.asyncio.Redis, school_name: str, value: str | int) -> None:
    """``SET school_name value`` and print the reply (``Reply: OK``)."""
    print(format_reply(await client.set(school_name, value)))


async def display_school_value(client: redis.asyncio.Redis, school_name: str) -> None:
    """``GET school_name`` and print the value."""
    print(await client.get(school_name))


async def main() -> None:
    """The original's three calls, each awaited before the next."""
    client = await connect_async()
    try:
        await display_school_value(client, "Holberton")
        await set_new_school(client, "HolbertonSanFrancisco", "100")
        await display_school_value(client, "HolbertonSanFrancisco")
    finally:
        await client.aclose()


if __name__ == "__main__":
    asyncio.run(main())
