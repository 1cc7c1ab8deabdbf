"""Basic Redis operations of the original's tasks 0-4 (synchronous client).

:mod:`helpers.schools_async` has the same functions for ``redis.asyncio``.
"""

from __future__ import annotations

import redis

SCHOOLS_HASH = "HolbertonSchools"
SCHOOLS: dict[str, int] = {
    "Portland": 50,
    "Seattle": 80,
    "New York": 20,
    "Bogota": 20,
    "Cali": 40,
    "Paris": 2,
}


def format_reply(reply: object) -> str:
    """The original's ``redis.print`` line. redis-py turns the server's ``+OK``
    status into ``True``; show it as the server sent it."""
    return f"Reply: {'OK' if reply is True else reply}"


def set_new_school(client: redis.Redis, school_name: str, value: str | int) -> None:
    """``SET school_name value`` and print the reply (``Reply: OK``)."""
    print(format_reply(client.set(school_name, value)))


def display_school_value(client: redis.Redis, school_name: str) -> None:
    """``GET school_name`` and print the value."""
    print(client.get(school_name))


def create_schools_hash(client: redis.Redis) -> None:
    """The six ``HSET``s into ``HolbertonSchools``, printing each reply
    (``Reply: 1`` for a new field, ``Reply: 0`` for an updated one)."""
    for city, value in SCHOOLS.items():
        print(format_reply(client.hset(SCHOOLS_HASH, city, value)))


def display_schools_hash(client: redis.Redis) -> None:
    """``HGETALL HolbertonSchools``, printed as a mapping (values are strings)."""
    print(client.hgetall(SCHOOLS_HASH))
