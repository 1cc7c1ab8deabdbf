"""5-subscriber: listen on ``holberton school channel`` and print each message.

Run as a program it connects (printing ``Redis client connected to the
server``), subscribes, and prints every message as it arrives; on
``KILL_SERVER`` it prints it, unsubscribes and quits. A message published
once it has quit reaches nobody: pub/sub keeps nothing.
"""

from __future__ import annotations

from collections.abc import Callable

import redis

from helpers.client import connect

CHANNEL = "holberton school channel"
KILL_SERVER = "KILL_SERVER"


def show_message(text: str) -> None:
    """Print one message at once (flushed, even when the output goes to a file)."""
    print(text, flush=True)


def run_subscriber(
    client: redis.Redis, channel: str = CHANNEL, show: Callable[[str], object] = show_message
) -> list[str]:
    """Print (``show``) each message on ``channel`` until ``KILL_SERVER``, then
    unsubscribe; returns the messages received."""
    received: list[str] = []
    pubsub = client.pubsub(ignore_subscribe_messages=True)  # skip the server's confirmations
    pubsub.subscribe(channel)
    # listen() blocks for each message, and ends by itself once the server has
    # confirmed the UNSUBSCRIBE: no subscription is left.
    for message in pubsub.listen():
        received.append(message["data"])
        show(message["data"])
        if message["data"] == KILL_SERVER:
            pubsub.unsubscribe(channel)
    pubsub.close()
    return received


def main() -> None:
    """The original subscriber: connect, listen, quit on ``KILL_SERVER``."""
    client = connect()
    run_subscriber(client)
    client.close()


if __name__ == "__main__":
    main()
