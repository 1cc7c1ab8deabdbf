"""The fast notification path: many notifications per RQ job, each sent exactly once.

Lessons 06-08 enqueue one RQ job per notification. RQ spends about twenty
Redis commands on each job (enqueue, dequeue, registries, status, result,
heartbeats), and its default worker forks a fresh process per job: under a
hundred notifications a second on a small machine. When the work allows
many notifications per job, this module is the course's recommended
configuration, with the same guarantee as lesson 12 (a worker crash loses
nothing). It is other work than one job per notification: lesson 14 reports
it on a row of its own, never against kue's per-job figure.

1. **Batches.** :func:`enqueue_notification_batches` puts ``batch_size``
   notifications into each job, so RQ's per-job cost is shared by all of them.
   The jobs go in with ``enqueue_many`` in one pipeline: one round trip.
2. **No fork per job.** Run the jobs with ``SimpleWorker`` processes
   (``start_worker(QUEUE_NAME, worker_class="simple", concurrency=2)``):
   the job runs inside the worker process. A job that crashes the process
   takes the worker with it, which is why step 4 exists.
3. **Exactly once per notification.** A batch can run twice: a worker dies
   mid-batch and the batch is requeued. Each notification therefore carries
   an id, and :func:`send_notification_batch` sends it through one Lua
   script that, atomically, sets ``<ns>:done:<id>`` with ``SET NX`` and, only
   if that key was new, appends the notification to the outbox ``<ns>:sent``.
   A retried batch skips what was already sent and sends the rest.
4. **Recovery.** Batches are enqueued with ``Retry(max=3)``. After a crash,
   :func:`helpers.reliability.recover_abandoned_jobs` (lesson 12) finds the
   batches that dead workers had started and RQ runs them again.

What is traded away, honestly:

- Per-notification job events (progress, completed, failed lines of lesson
  07) become per-batch results (``{"sent": .., "already_sent": .., "failed":
  ..}``); a blacklisted number fails only its own notification, recorded in
  ``<ns>:failed``, not the whole batch.
- Latency: a notification waits for its batch; batch as the creator already
  holds many notifications, not by waiting for more.
- "Sent" here means "appended to the outbox in Redis, atomically with its
  done mark". A real SMS gateway is outside Redis: the outbox is drained by a
  sender that passes the notification id to the provider as an idempotency
  key. Without that, a crash between the provider call and the mark can
  always send twice (mark after sending) or never (mark before sending).
- The ``done`` keys cost memory: they expire after :data:`DONE_TTL_S`, which
  must outlast any retry.
- SimpleWorker runs jobs in the worker process: a job that leaks memory or
  crashes the interpreter affects the worker (and RQ cannot kill a job that
  exceeds its timeout as cleanly as with a work-horse).
"""

from __future__ import annotations

import hashlib
import json
import sys
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

import redis
from rq import Queue, Retry
from rq.job import Job, get_current_job

from helpers.notifications import BLACKLISTED_NUMBERS, validate_job
from helpers.workers import redis_connection

QUEUE_NAME = "push_notification_batch"
NAMESPACE = "notifications:fast"
BATCH_SIZE = 100  # notifications per RQ job
CHUNK_SIZE = 100  # notifications per Lua call inside a job (one round trip each)
DONE_TTL_S = 7 * 24 * 3600  # how long a "sent" mark is kept: longer than any retry
MAX_RETRIES = 3  # a batch that raised, or was abandoned by a dead worker, runs again
JOB_FUNCTION = "helpers.fastpath.send_notification_batch"

SEND_SCRIPT = """
-- KEYS[1]: the list to append to (<ns>:sent, or <ns>:failed)
-- KEYS[2..]: one done key per notification (<ns>:done:<id>)
-- ARGV[1]: TTL of the done keys (s); ARGV[2..]: the notifications (JSON), in KEYS order
-- One script is one atomic step: a notification is marked done if and only if
-- it is appended, so a retried batch never appends it twice.
local fresh = {}
for i = 2, #KEYS do
  if redis.call('SET', KEYS[i], '1', 'NX', 'EX', ARGV[1]) then
    redis.call('RPUSH', KEYS[1], ARGV[i])
    fresh[#fresh + 1] = i - 1
  end
end
return fresh
""".strip()
"""Append the notifications not yet done; return their 1-based positions."""


def sent_key(ns: str = NAMESPACE) -> str:
    """The outbox: every notification sent, once each, in order (a list)."""
    return f"{ns}:sent"


def failed_key(ns: str = NAMESPACE) -> str:
    """Notifications refused (blacklisted numbers), with their error."""
    return f"{ns}:failed"


def done_key(notification_id: str, ns: str = NAMESPACE) -> str:
    """The mark set, once, when notification ``notification_id`` is handled."""
    return f"{ns}:done:{notification_id}"


def notification_ids_key(ns: str = NAMESPACE) -> str:
    """The counter that numbers notifications."""
    return f"{ns}:ids"


SEND_SHA = hashlib.sha1(SEND_SCRIPT.encode()).hexdigest()


def _record(
    connection: redis.Redis, ns: str, target: str, items: Sequence[Mapping[str, Any]]
) -> list[int]:
    """Run :data:`SEND_SCRIPT` for ``items``; the 0-based indexes newly recorded."""
    if not items:
        return []
    keys = [target, *(done_key(str(item["id"]), ns) for item in items)]
    args = [DONE_TTL_S, *(json.dumps(item, separators=(",", ":")) for item in items)]
    try:  # by its SHA1: the script text crosses the network once per server start
        fresh = connection.evalsha(SEND_SHA, len(keys), *keys, *args)
    except redis.exceptions.NoScriptError:
        fresh = connection.eval(SEND_SCRIPT, len(keys), *keys, *args)
    return [int(position) - 1 for position in fresh]


def send_notification_batch(
    batch: Mapping[str, Any], connection: redis.Redis | None = None
) -> dict[str, int]:
    """Job function: send every notification of ``batch`` not sent before.

    ``batch`` is ``{"ns": <namespace>, "items": [{"id", "phoneNumber",
    "message"}, ...]}``, and for crash drills maybe ``"hang_after": N``: a
    first run stops for ever after its N-th notification, as if the provider
    stopped answering. Items are sent in chunks of :data:`CHUNK_SIZE`, one
    Lua call each; the original's line ``Sending notification to <n>, with
    message: <m>`` is printed (to the worker's log) for each notification
    actually sent. Blacklisted numbers are recorded in ``<ns>:failed``
    instead. Returns the counts ``sent``, ``already_sent`` (done by an
    earlier run of this batch) and ``failed``.
    """
    if connection is None:
        job = get_current_job()
        connection = job.connection if job is not None else redis_connection()
    ns = str(batch.get("ns", NAMESPACE))
    items: list[Mapping[str, Any]] = list(batch["items"])
    hang_after = batch.get("hang_after")
    counts = {"sent": 0, "already_sent": 0, "failed": 0}
    start = 0
    while start < len(items):
        end = start + CHUNK_SIZE
        if hang_after is not None and start < hang_after < end:
            end = hang_after  # a chunk ends there
        chunk = items[start:end]
        start = end
        allowed = [item for item in chunk if item["phoneNumber"] not in BLACKLISTED_NUMBERS]
        refused = [
            {**item, "error": f"Phone number {item['phoneNumber']} is blacklisted"}
            for item in chunk
            if item["phoneNumber"] in BLACKLISTED_NUMBERS
        ]
        fresh = _record(connection, ns, sent_key(ns), allowed)
        counts["failed"] += len(_record(connection, ns, failed_key(ns), refused))
        counts["sent"] += len(fresh)
        counts["already_sent"] += len(allowed) - len(fresh)
        if fresh:  # one write for the chunk's lines
            sys.stdout.write(
                "".join(
                    f"Sending notification to {allowed[i]['phoneNumber']}, "
                    f"with message: {allowed[i]['message']}\n"
                    for i in fresh
                )
            )
            sys.stdout.flush()
        if start == hang_after and not counts["already_sent"]:  # a first run: hang
            while True:  # until killed (or the job's timeout)
                time.sleep(1)
    return counts


def _job_id_prefix(queue_name: str) -> str:
    """RQ job ids allow only letters, digits, ``_`` and ``-``."""
    return "".join(c if c.isalnum() or c in "_-" else "-" for c in queue_name)


def enqueue_notification_batches(
    queue: Queue,
    notifications: Any,
    *,
    batch_size: int = BATCH_SIZE,
    ns: str = NAMESPACE,
    hang_after: int | None = None,
) -> list[Job]:
    """Number ``notifications`` and enqueue them in batches, in one round trip.

    ``notifications`` must be a list (else ``TypeError("Jobs is not an
    array")``, the original's message) of ``{phoneNumber, message}`` dicts,
    all validated before anything is enqueued. Each gets an id from the
    counter ``<ns>:ids`` (one INCRBY for all); every ``batch_size`` of them
    become one job of :func:`send_notification_batch` with id
    ``<queue>-<first notification id>``, retried up to :data:`MAX_RETRIES`
    times (safe: a batch is idempotent). Returns the jobs. ``hang_after``
    (crash drills): the first batch hangs once that many are sent.
    """
    if not isinstance(notifications, list):
        raise TypeError("Jobs is not an array")
    if batch_size < 1:
        raise ValueError("batch_size must be at least 1")
    for index, data in enumerate(notifications):
        validate_job(data, index)
    if not notifications:
        return []
    connection = queue.connection
    last = int(connection.incrby(notification_ids_key(ns), len(notifications)))
    first = last - len(notifications) + 1
    items = [
        {"id": str(first + i), "phoneNumber": n["phoneNumber"], "message": n["message"]}
        for i, n in enumerate(notifications)
    ]
    prefix = _job_id_prefix(queue.name)
    datas = []
    for start in range(0, len(items), batch_size):
        batch: dict[str, Any] = {"ns": ns, "items": items[start : start + batch_size]}
        if hang_after is not None and start == 0:
            batch["hang_after"] = hang_after
        datas.append(
            Queue.prepare_data(
                JOB_FUNCTION,
                args=(batch,),
                job_id=f"{prefix}-{batch['items'][0]['id']}",
                retry=Retry(max=MAX_RETRIES),
            )
        )
    with connection.pipeline() as pipe:
        jobs = queue.enqueue_many(datas, pipeline=pipe)
        pipe.execute()
    return jobs


def sent_count(connection: redis.Redis, ns: str = NAMESPACE) -> int:
    """How many notifications were sent (the outbox's length)."""
    return int(connection.llen(sent_key(ns)))


def sent_ids(connection: redis.Redis, ns: str = NAMESPACE) -> Counter[str]:
    """How many times each notification id appears in the outbox (1 is right)."""
    return Counter(str(json.loads(entry)["id"]) for entry in connection.lrange(sent_key(ns), 0, -1))
