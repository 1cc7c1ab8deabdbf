"""Dead letters: where work goes that cannot succeed.

- **Jobs.** A job that raises every time runs once, then its retries
  (``Retry(max=2)``), then lands in the queue's ``FailedJobRegistry`` with
  its traceback: RQ's dead-letter queue. Someone fixes the cause and
  requeues it: ``rq requeue --queue <q> -S json <id>`` (or ``--all``), the
  job panel's *Requeue failed* button
  (:meth:`helpers.widgets.jobs.JobPanelModel.requeue_failed`), or
  ``registry.requeue(id)``. Requeued before the fix, it fails again.
- **Stream entries** (lesson 11): a consumer that cannot handle an entry
  does not acknowledge it; ``XAUTOCLAIM`` hands it out again and again, and
  each delivery counts (``XPENDING`` shows the count). A *poison message*
  would come back for ever. :class:`DeadLetterConsumer` moves an entry
  that failed ``max_deliveries`` times to a dead-letter stream
  (``<stream>:dead``), with its id, group and count, in one Lua script
  (``XACK`` and ``XADD`` together: never lost, never in both), and goes on
  with the rest. It uses :mod:`helpers.streams`'s functions.

Command line::

    python -m helpers.patterns.dead_letters --name bob --stream S --group G \\
        [--max-deliveries 3] [--claim-idle-ms 200]
"""

from __future__ import annotations

import argparse
import re
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import redis
from rq.job import get_current_job

from helpers.client import connect
from helpers.patterns.keys import job_connection, key
from helpers.processes import BackgroundProcess
from helpers.pubsub import start_logged
from helpers.server import redis_url
from helpers.streams import (
    Entry,
    acknowledge,
    claim_abandoned,
    create_group,
    dead_letter_stream,
    deliveries,
    move_to_dead_letters,
    read_group,
)

SEND_OR_FAIL = "helpers.patterns.dead_letters.send_or_fail"


# --- jobs -----------------------------------------------------------------------------


class ProviderRejected(Exception):
    """The (pretend) provider refuses every message while it is broken."""


def broken_key() -> str:
    """While this key exists, :func:`send_or_fail` fails."""
    return key("provider", "broken")


def attempts_key() -> str:
    """Hash: job id -> how many times :func:`send_or_fail` ran."""
    return key("attempts")


def dead_outbox_key() -> str:
    """The list of what :func:`send_or_fail` sent."""
    return key("dead", "outbox")


def send_or_fail(phone: str, message: str) -> str:
    """Job: fail while the provider is broken (:func:`broken_key`), else send.
    Counts its runs in :func:`attempts_key`."""
    connection = job_connection()
    job = get_current_job()
    assert job is not None
    connection.hincrby(attempts_key(), job.id, 1)
    if connection.exists(broken_key()):
        raise ProviderRejected(f"provider rejected the message to {phone}")
    connection.rpush(dead_outbox_key(), f"{phone}: {message}")
    return "sent"


def rq_requeue(queue_name: str, job_ids: Sequence[str] = ()) -> str:
    """Run ``rq requeue --queue <queue_name> -S json`` on ``job_ids`` (all
    failed jobs if none) against the course's Redis; returns its output."""
    command = [sys.executable, "-m", "rq.cli", "requeue", "--url", redis_url()]
    command += ["--queue", queue_name, "-S", "json", *(job_ids or ["--all"])]
    done = subprocess.run(command, capture_output=True, text=True, timeout=60, check=True)
    return done.stdout.strip()


# --- stream entries -----------------------------------------------------------------------


class PoisonMessage(ValueError):
    """An entry the handler cannot handle, however often it is delivered."""


STUDENT = re.compile(r"Holberton Student #(\d+) starts course")


def handle_message(text: str | None) -> str:
    """The consumer's work on one of lesson 05's messages: what it announces.
    Anything else (another producer's format, say) is a :class:`PoisonMessage`."""
    found = STUDENT.fullmatch(text or "")
    if found is None:
        raise PoisonMessage(f"cannot read {text!r}")
    return f"student {found.group(1)} has started"


@dataclass
class DeadLetterConsumer:
    """A consumer that handles each entry with :func:`handle_message`, takes
    back entries left unacknowledged for ``claim_idle_ms`` (its own too: a
    failed delivery), and moves one that failed ``max_deliveries`` times to
    the dead-letter stream."""

    client: redis.Redis
    name: str
    stream: str
    group: str
    max_deliveries: int = 3
    claim_idle_ms: int = 200
    out: Callable[[str], None] = field(default=lambda text: print(text, flush=True))
    stop_requested: threading.Event = field(default_factory=threading.Event)

    def process(self, entry: Entry) -> None:
        """Handle one delivery of ``entry``: acknowledge it, or leave it
        pending, or (the last allowed delivery failed) move it."""
        delivered = deliveries(self.client, self.stream, self.group, entry.id)
        try:
            said = handle_message(entry.message)
        except PoisonMessage as error:
            self.out(f"delivery {delivered} of {entry.id} failed: {error}")
            if delivered >= self.max_deliveries and move_to_dead_letters(
                self.client, self.stream, self.group, entry.id, delivered
            ):
                self.out(f"moved {entry.id} to {dead_letter_stream(self.stream)}")
            return
        acknowledge(self.client, [entry.id], stream=self.stream, group=self.group)
        self.out(f"handled {entry.id}: {said}")

    def run(self) -> None:
        """Consume until :meth:`stop` (or SIGTERM, from the command line)."""
        create_group(self.client, self.stream, self.group)
        where = {"stream": self.stream, "group": self.group}
        while not self.stop_requested.is_set():
            claimed = claim_abandoned(self.client, self.name, self.claim_idle_ms, **where)
            for entry in claimed.entries:
                self.process(entry)
            for entry in read_group(self.client, self.name, count=10, block_ms=50, **where):
                self.process(entry)

    def stop(self) -> None:
        """Ask :meth:`run` to return after the entries it is handling."""
        self.stop_requested.set()


def start_dead_letter_consumer(
    name: str, stream: str, group: str, *, max_deliveries: int = 3, claim_idle_ms: int = 200
) -> BackgroundProcess:
    """Run a :class:`DeadLetterConsumer` as a process of its own, logging to a file."""
    args = ["helpers.patterns.dead_letters", "--name", name, "--stream", stream]
    args += ["--group", group, "--max-deliveries", str(max_deliveries)]
    args += ["--claim-idle-ms", str(claim_idle_ms)]
    return start_logged(args, f"dead-letter-consumer-{name}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m helpers.patterns.dead_letters",
        description="A stream consumer that moves poison messages to <stream>:dead.",
    )
    parser.add_argument("--name", required=True)
    parser.add_argument("--stream", required=True)
    parser.add_argument("--group", required=True)
    parser.add_argument("--max-deliveries", type=int, default=3)
    parser.add_argument("--claim-idle-ms", type=int, default=200)
    args = parser.parse_args(argv)
    consumer = DeadLetterConsumer(
        connect(quiet=True),
        args.name,
        args.stream,
        args.group,
        max_deliveries=args.max_deliveries,
        claim_idle_ms=args.claim_idle_ms,
    )
    signal.signal(signal.SIGTERM, lambda _signum, _frame: consumer.stop())  # graceful
    print(f"consumer {args.name} on {args.stream!r}, group {args.group!r}", flush=True)
    consumer.run()
    print(f"consumer {args.name} stopped", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
