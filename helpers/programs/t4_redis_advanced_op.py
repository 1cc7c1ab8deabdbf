"""4-redis_advanced_op: a hash. Six ``HSET``s into ``HolbertonSchools``,
printing each reply (``Reply: 1`` for a new field, ``Reply: 0`` on a rerun),
then ``HGETALL`` printed as a mapping (values come back as strings)."""

from __future__ import annotations

import redis

from helpers.client import connect

SCHOOLS_HASH = "HolbertonSchools"
SCHOOLS: dict[str, int] = {
    "Portland": 50,
    "Seattle": 80,
    "New York": 20,
    "Bogota": 20,
    "Cali": 40,
    "Paris": 2,
}


def create_schools_hash(client: redis.Redis) -> None:
    """The six ``HSET``s, in the original's order, printing each reply."""
    for city, value in SCHOOLS.items():
        print(f"Reply: {client.hset(SCHOOLS_HASH, city, value)}")


def display_schools_hash(client: redis.Redis) -> None:
    """``HGETALL HolbertonSchools``, printed as a mapping."""
    print(client.hgetall(SCHOOLS_HASH))


def main() -> None:
    """Create the hash, then display it."""
    client = connect()
    create_schools_hash(client)
    display_schools_hash(client)


if __name__ == "__main__":
    main()
