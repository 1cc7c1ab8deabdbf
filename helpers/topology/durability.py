"""The durability drill: SIGKILL redis-server while RQ enqueues, restart it,
count the acknowledged enqueues it lost, for each persistence mode.

For each mode of :data:`helpers.topology.sets.PERSISTENCE` (no persistence,
RDB snapshots every second, AOF ``everysec``, AOF ``always``): one primary;
a producer thread enqueues trivial RQ jobs (job ids ``d-<n>``) as fast as it
can; after ``load_s`` seconds the server is SIGKILLed (no shutdown, no last
save) and started again on the same folder, and the producer goes on once it
answers. An enqueue is *acknowledged* when ``Queue.enqueue`` returned; it is
*lost* if its job hash is gone after the restart. The rate is the
acknowledged enqueues per second of the load phase, one producer connection.

A SIGKILL kills the process, not the machine: what Redis wrote to the AOF
file is in the kernel's page cache and survives it, fsynced or not. Only a
power cut or a kernel crash loses the unsynced second of ``everysec``, and
this drill cannot cause one.

From a shell: ``python -m helpers.topology durability [--repeats 3] [--json]``.
"""

from __future__ import annotations

import statistics
import threading
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import redis

from helpers.topology.jobs import record
from helpers.topology.sets import PERSISTENCE, persistent
from helpers.workers import queue

QUEUE = "lesson17-durability"
MODES = tuple(PERSISTENCE)


@dataclass
class DurabilityRun:
    """One mode, one run."""

    mode: str
    acknowledged: int  # enqueues that returned, before the kill
    lost: int  # of those, jobs gone after the restart
    enqueues_per_s: float  # acknowledged enqueues per second, before the kill
    unacknowledged: int  # enqueues that raised (the server was down)
    restart_s: float  # from the new start to the first PONG (loading included)
    after_restart: int  # acknowledged after the restart (the producer carried on)


class _Producer(threading.Thread):
    """Enqueues job after job until told to stop; notes which were acknowledged."""

    def __init__(self, port: int) -> None:
        super().__init__(name="durability-producer", daemon=True)
        self.port = port
        self.acknowledged: list[str] = []
        self.failed = 0
        self.halt = threading.Event()

    def run(self) -> None:
        client = redis.Redis(
            port=self.port, socket_timeout=2, socket_connect_timeout=0.5, retry=None
        )
        q = queue(QUEUE, client)
        n = 0
        while not self.halt.is_set():
            n += 1
            job_id = f"d-{n}"
            try:
                q.enqueue(record, n, job_id=job_id, result_ttl=600)
            except redis.RedisError:
                self.failed += 1
                time.sleep(0.01)
                continue
            self.acknowledged.append(job_id)
        client.close()


def run_once(mode: str, *, load_s: float = 2.2, after_s: float = 0.2) -> DurabilityRun:
    """One drill with persistence ``mode`` (see the module doc)."""
    with persistent(mode) as server_set:
        node = server_set.primary
        producer = _Producer(node.port)
        producer.start()
        time.sleep(load_s)
        node.crash()
        before = list(producer.acknowledged)  # the producer cannot add one while it is down
        restarted = time.perf_counter()
        node.start()
        restart_s = time.perf_counter() - restarted
        time.sleep(after_s)
        producer.halt.set()
        producer.join(10)
        client = node.client()
        with client.pipeline(transaction=False) as pipe:
            for job_id in before:
                pipe.exists(f"rq:job:{job_id}")
            kept = sum(pipe.execute())
        client.close()
        return DurabilityRun(
            mode=mode,
            acknowledged=len(before),
            lost=len(before) - kept,
            enqueues_per_s=len(before) / load_s,
            unacknowledged=producer.failed,
            restart_s=restart_s,
            after_restart=len(producer.acknowledged) - len(before),
        )


def run_drill(
    modes: Sequence[str] = MODES, *, repeats: int = 1, load_s: float = 2.2
) -> dict[str, object]:
    """Every mode ``repeats`` times, alternating (mode 1, 2, 3, 4, then again),
    and the median of each figure per mode."""
    runs = [run_once(mode, load_s=load_s) for _ in range(repeats) for mode in modes]
    summary = {}
    for mode in modes:
        mine = [r for r in runs if r.mode == mode]
        summary[mode] = {
            "acknowledged": statistics.median(r.acknowledged for r in mine),
            "lost": statistics.median(r.lost for r in mine),
            "lost_max": max(r.lost for r in mine),
            "enqueues_per_s": statistics.median(r.enqueues_per_s for r in mine),
            "restart_s": statistics.median(r.restart_s for r in mine),
            "after_restart_min": min(r.after_restart for r in mine),
        }
    return {
        "repeats": repeats,
        "load_s": load_s,
        "summary": summary,
        "runs": [asdict(r) for r in runs],
    }


def format_table(result: dict[str, object]) -> str:
    """The summary as a fixed-width table."""
    summary = result["summary"]
    assert isinstance(summary, dict)
    lines = [
        f"{'persistence':<14}{'enqueues/s':>11}{'acknowledged':>14}{'lost':>7}{'restart s':>11}",
    ]
    for mode, row in summary.items():
        lines.append(
            f"{mode:<14}{row['enqueues_per_s']:>11,.0f}{row['acknowledged']:>14,.0f}"
            f"{row['lost']:>7,.0f}{row['restart_s']:>11.2f}"
        )
    lines.append(f"(median of {result['repeats']} run(s) each, {result['load_s']:g} s of load)")
    return "\n".join(lines)
