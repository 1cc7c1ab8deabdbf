"""The functions of :mod:`helpers.schools` for ``redis.asyncio``: same names,
same output, each Redis call awaited instead of blocking. ``set_new_school``
and ``display_school_value`` are the reference program's
(:mod:`helpers.programs.t2_redis_op_async`)."""

from __future__ import annotations

import redis.asyncio

from helpers.programs.t2_redis_op_async import display_school_value, set_new_school
from helpers.schools import SCHOOLS, SCHOOLS_HASH, format_reply

__all__ = ["create_schools_hash", "display_school_value", "display_schools_hash", "set_new_school"]


async def create_schools_hash(client: redis.asyncio.Redis) -> None:
    """The six ``HSET``s into ``HolbertonSchools``, printing each reply."""
    for city, value in SCHOOLS.items():
        print(format_reply(await client.hset(SCHOOLS_HASH, city, value)))


async def display_schools_hash(client: redis.asyncio.Redis) -> None:
    """``HGETALL HolbertonSchools``, printed as a mapping."""
    print(await client.hgetall(SCHOOLS_HASH))
