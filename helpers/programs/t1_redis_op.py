"""1-redis_op: ``SET`` and ``GET`` from Python, printing what the original printed.

Run as a program: display ``Holberton``, set ``HolbertonSanFrancisco`` to
``100``, display it. Output: ``Redis client connected to the server``,
``School``, ``Reply: OK``, ``100``.
"""

from __future__ import annotations

import redis

from helpers.client import connect


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


def main() -> None:
    """The original's three calls, in its order."""
    client = connect()
    display_school_value(client, "Holberton")
    set_new_school(client, "HolbertonSanFrancisco", "100")
    display_school_value(client, "HolbertonSanFrancisco")


if __name__ == "__main__":
    main()
