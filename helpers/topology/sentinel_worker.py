"""An RQ worker that finds its Redis through Sentinel.

:mod:`helpers.workers` takes one Redis URL; a worker behind Sentinel needs
the Sentinels' addresses and the primary's name instead. This is RQ's own
Sentinel support (``rq worker`` with ``SENTINEL`` settings builds the same
connection): redis-py's ``Sentinel(...).master_for(name)``, a client whose
every new connection asks the Sentinels where the primary is now. So a
worker waiting for a job (RQ retries a lost connection there, with backoff)
reconnects to the new primary after a failover by itself.

RQ does not retry everywhere: when Redis goes away (or refuses writes:
``NOREPLICAS``) during a job's bookkeeping, its work loop logs "found an
unhandled exception, quitting", and its teardown may raise.
Then this module waits until the primary the Sentinels name takes writes and
starts the loop again in the same process (as :mod:`helpers.workers` does
for a URL), at most ``MAX_RESTARTS`` times a minute, and prints a line
starting with ``RESTART`` so a drill can count them. Jobs run only if
allow-listed (:mod:`helpers.allowlist`); the JSON serializer, as everywhere.

Started by :func:`helpers.topology.failover.start_sentinel_workers` (a
:class:`helpers.processes.BackgroundProcess`); by hand::

    python -m helpers.topology.sentinel_worker QUEUE --sentinel 127.0.0.1:PORT ... --name NAME
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import time

import redis
from redis.sentinel import Sentinel, SentinelManagedConnection
from rq import SimpleWorker
from rq.serializers import JSONSerializer

from helpers.allowlist import AllowListJob
from helpers.workers import queue

MAX_RESTARTS = 10  # in WINDOW_S seconds; more, and the worker exits with 1
WINDOW_S = 60.0
WAIT_S = 60.0  # for a primary to answer again, before the loop starts again
MASTER_NAME = "course"


class _Connection(SentinelManagedConnection):
    """redis-py's Sentinel connection, but closed when a read is interrupted,
    as a plain connection is: RQ's warm shutdown raises out of a blocking
    ``BLMOVE``, and redis-py 8's Sentinel connection (``disconnect_on_error``
    False) would go back to the pool with that reply still to come, so the
    next command (RQ's ``register_death``) would wait for it."""

    def read_response(self, *args: object, **kwargs: object) -> object:  # noqa: D102
        kwargs.setdefault("disconnect_on_error", True)
        return super().read_response(*args, **kwargs)  # type: ignore[arg-type]


def connection(sentinels: list[tuple[str, int]], master: str = MASTER_NAME) -> redis.Redis:
    """A client of the current primary, through the Sentinels (bytes replies, for RQ)."""
    watchers = Sentinel(
        sentinels,
        sentinel_kwargs={"socket_timeout": 0.5, "socket_connect_timeout": 0.5},
        socket_timeout=2,
        socket_connect_timeout=0.5,
    )
    return watchers.master_for(master, connection_class=_Connection)


def _address(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    return host or "127.0.0.1", int(port)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m helpers.topology.sentinel_worker")
    parser.add_argument("queues", nargs="+")
    parser.add_argument("--sentinel", action="append", type=_address, required=True)
    parser.add_argument("--master", default=MASTER_NAME)
    parser.add_argument("--name", required=True)
    args = parser.parse_args(argv)
    restarts: list[float] = []  # when the loop was started again
    while True:
        client = connection(args.sentinel, args.master)
        worker: SimpleWorker | None = None
        try:
            worker = SimpleWorker(
                [queue(q, client, job_class=AllowListJob) for q in args.queues],
                name=args.name,
                connection=client,
                serializer=JSONSerializer,
                job_class=AllowListJob,
            )
            if restarts:  # the previous loop's registration, if its teardown could not end it
                worker.register_death()
            worker.work(logging_level="INFO")
            if worker._shutdown_requested_date is not None:  # a graceful stop (SIGTERM)
                return 0
            reason = "RQ's work loop quit"
        except redis.RedisError as error:  # also NOREPLICAS, READONLY: a write refused
            if worker is not None and worker._shutdown_requested_date is not None:
                return 0
            reason = f"{type(error).__name__}: {error}"
        if not _primary_answers(client, args.name, WAIT_S):
            print(f"GIVING UP: no primary answered within {WAIT_S:.0f} s ({reason})", flush=True)
            return 1
        restarts = [t for t in restarts if time.monotonic() - t < WINDOW_S] + [time.monotonic()]
        if len(restarts) > MAX_RESTARTS:
            print(f"GIVING UP: {MAX_RESTARTS} restarts in {WINDOW_S:.0f} s ({reason})", flush=True)
            return 1
        print(f"RESTART of the work loop in the same process ({reason})", flush=True)
        if worker is not None:  # its old registration, so the same name can register again
            with contextlib.suppress(redis.RedisError):
                worker.register_death()
        client.close()


def _primary_answers(client: redis.Redis, name: str, timeout_s: float) -> bool:
    """Wait (up to ``timeout_s``) until the primary the Sentinels name takes
    writes (a primary without its replica refuses them: NOREPLICAS)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        with contextlib.suppress(redis.RedisError):
            if client.set(f"rq:probe:{name}", 1, ex=10):
                return True
        time.sleep(0.1)
    return False


if __name__ == "__main__":
    sys.exit(main())
