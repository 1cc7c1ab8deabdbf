"""The bench's pub/sub listener, a process of its own: it subscribes, reads
timestamps published by :func:`helpers.bench.pubsub_latency.measure_pubsub` and prints the
latencies (receive time minus send time, ns) as one JSON list.

    python -m helpers.bench.listener URL CHANNEL COUNT LIMIT_S
"""

from __future__ import annotations

import json
import sys
import time

import redis


def listen(url: str, channel: str, count: int, limit_s: float) -> list[int]:
    """Latencies of up to ``count`` messages on ``channel``, for at most
    ``limit_s`` seconds or until a ``stop`` message."""
    pubsub = redis.Redis.from_url(url).pubsub(ignore_subscribe_messages=True)
    pubsub.subscribe(channel)
    latencies: list[int] = []
    deadline = time.monotonic() + limit_s
    while len(latencies) < count and time.monotonic() < deadline:
        message = pubsub.get_message(timeout=0.2)
        if message is None:
            continue
        if message["data"] == b"stop":
            break
        latencies.append(time.monotonic_ns() - int(message["data"]))
    return latencies


if __name__ == "__main__":
    url, channel, count, limit = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
    print(json.dumps(listen(url, channel, count, limit)))
