"""0-redis_client: connect to Redis and say so, in the original's words.

Run as a program it connects to ``REDIS_URL`` (else the course server),
printing ``Redis client connected to the server``; if no Redis answers it
prints ``Redis client not connected to the server: <error>`` on each of its
attempts and exits with status 1.
"""

from __future__ import annotations

import sys
import time

import redis

from helpers.server import redis_url

CONNECTED = "Redis client connected to the server"
NOT_CONNECTED = "Redis client not connected to the server: {error}"


def connect(
    url: str,
    *,
    attempts: int = 3,
    delay_s: float = 0.2,
    quiet: bool = False,
    decode_responses: bool = True,
) -> redis.Redis:
    """A client that has answered ``PING``: prints the connected line (unless
    ``quiet``), or the error line for each failed attempt, then raises
    ``redis.ConnectionError``. Waits a little longer after each failure."""
    client = redis.Redis.from_url(
        url, decode_responses=decode_responses, socket_connect_timeout=2, health_check_interval=30
    )
    for attempt in range(1, attempts + 1):
        try:
            client.ping()
        except redis.ConnectionError as error:
            print(NOT_CONNECTED.format(error=str(error) or type(error).__name__), flush=True)
            if attempt == attempts:
                client.close()
                raise
            time.sleep(delay_s * attempt)
        else:
            if not quiet:
                print(CONNECTED, flush=True)
            return client
    raise AssertionError("unreachable")


def main() -> int:
    """Connect to ``REDIS_URL`` (else the course server); 1 if it cannot."""
    try:
        connect(redis_url())
    except redis.ConnectionError:
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
