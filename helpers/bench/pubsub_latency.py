"""Publish-to-receive latency of pub/sub, the listener in another process
(:mod:`helpers.bench.listener`)."""

from __future__ import annotations

import json
import os
import time

from helpers.bench.harness import CHANNEL, Run, _thin, percentile
from helpers.processes import BackgroundProcess
from helpers.server import logs_dir


def measure_pubsub(run: Run) -> None:
    """Publish timestamps at a steady pace (about 2,000 a second) to a
    listener in another process; its receive time minus the send time is the
    latency (one machine: both read the same monotonic clock)."""
    s = run.settings
    limit = s.max_s * 5 + 5
    listener = BackgroundProcess.start(
        ["helpers.bench.listener", run.url, CHANNEL, str(s.pubsub_messages), str(limit)],
        log_file=logs_dir() / f"bench-listener-{os.getpid()}.log",
    )
    try:
        with run.client() as client:
            deadline = time.monotonic() + 15
            while time.monotonic() < deadline and not client.pubsub_numsub(CHANNEL)[0][1]:
                time.sleep(0.01)
            for _ in range(s.pubsub_messages):
                client.publish(CHANNEL, str(time.monotonic_ns()))
                time.sleep(0.0005)
            client.publish(CHANNEL, "stop")
        listener.wait(timeout=limit + 5)
        printed = listener.lines()
    finally:
        listener.stop()
        listener.log_file.unlink(missing_ok=True)
    output = printed[-1] if printed else "[]"
    latencies_ms = [ns / 1e6 for ns in json.loads(output or "[]")]
    run.checks["pubsub_lost"] = s.pubsub_messages - len(latencies_ms)
    run.record("pubsub_p50_ms", percentile(latencies_ms, 50))
    run.record("pubsub_p99_ms", percentile(latencies_ms, 99))
    run.samples["pubsub_latency_ms"] = _thin(latencies_ms)
