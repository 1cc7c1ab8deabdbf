"""5-publisher: four messages on ``holberton school channel``, at 100, 200,
300 and 400 ms.

Run as a program it connects (printing ``Redis client connected to the
server``), then for each message waits its time, prints ``About to send
<message>`` and publishes it. The third is ``KILL_SERVER``: the subscriber
quits on it, so the fourth reaches nobody.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

import redis

from helpers.client import connect
from helpers.programs.t5_subscriber import CHANNEL, KILL_SERVER

ABOUT_TO_SEND = "About to send {message}"

#: The original's calls: (message, time in ms from the start).
MESSAGES: list[tuple[str, int]] = [
    ("Holberton Student #1 starts course", 100),
    ("Holberton Student #2 starts course", 200),
    (KILL_SERVER, 300),
    ("Holberton Student #3 starts course", 400),
]


def publish_message(
    client: redis.Redis,
    message: str,
    time_ms: float,
    *,
    start: float | None = None,
    channel: str = CHANNEL,
) -> int:
    """Wait until ``time_ms`` after ``start`` (a ``time.monotonic()``; default
    now), print ``About to send <message>``, publish it; returns how many
    subscribers got it. One ``start`` for several calls counts every time from
    the same moment, as the original's ``setTimeout`` timers did."""
    start = time.monotonic() if start is None else start
    time.sleep(max(0.0, start + time_ms / 1000 - time.monotonic()))
    print(ABOUT_TO_SEND.format(message=message), flush=True)
    return int(client.publish(channel, message))


def run_publisher(
    client: redis.Redis,
    messages: Sequence[tuple[str, int]] = MESSAGES,
    channel: str = CHANNEL,
) -> list[int]:
    """Every message at its time from one common start; returns each
    ``PUBLISH`` reply (how many subscribers got it)."""
    start = time.monotonic()
    return [
        publish_message(client, message, time_ms, start=start, channel=channel)
        for message, time_ms in messages
    ]


def main() -> None:
    """The original publisher's four calls."""
    client = connect()
    run_publisher(client)
    client.close()


if __name__ == "__main__":
    main()
