"""The functions of :mod:`helpers.schools` for ``redis.asyncio``: same names,
same output, each Redis call awaited instead of blocking."""

from __future__ import annotations

import redis.asyncio

from helpers.schools import SCHOOLS, SCHOOLS_HASH, format_reply


async def set_new_school(client: redis.asyncio.Redis, school_name: str, value: str | int) -> None:
    """``SET school_name value`` and print the reply (``Reply: OK``)."""
    print(format_reply(await client.set(school_name, value)))


async def display_school_value(client: redis.asyncio.Redis, school_name: str) -> None:
    """``GET school_name`` and print the value."""
    print(await client.get(school_name))


async def create_schools_hash(client: redis.asyncio.Redis) -> None:
    """The six ``HSET``s into ``HolbertonSchools``, printing each reply."""
    for city, value in SCHOOLS.items():
        print(format_reply(await client.hset(SCHOOLS_HASH, city, value)))


async def display_schools_hash(client: redis.asyncio.Redis) -> None:
    """``HGETALL HolbertonSchools``, printed as a mapping."""
    print(await client.hgetall(SCHOOLS_HASH))
