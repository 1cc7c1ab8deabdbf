"""Job events on top of RQ: progress, completed, failed, as kue had them.

kue's creator could write ``job.on('complete', ...)``; RQ has no such events.
This module adds them, for any queue, in three parts:

**Worker side** (inside the job and RQ's callbacks):

- :func:`report_progress` (``report_progress(50)``), called by a job function:
  stores ``job.meta["progress"]`` and adds a ``progress`` event;
- :func:`on_success` and :func:`on_failure`, RQ callbacks (``on_success=``,
  ``on_failure=``) that add ``completed`` and ``failed`` (with the error text)
  events. :func:`enqueue_with_events` attaches them for you.

**In Redis**: one *stream* per queue, ``jobs:events:<queue>`` (XADD, capped at
about :data:`STREAM_MAXLEN` entries). A stream, not a pub/sub channel: pub/sub
delivers only to whoever listens at that instant (lesson 05's lost message),
so a creator that starts listening a moment after a fast worker finished
would miss the ``completed`` event. A stream keeps the events; a listener
reads them from the position it chose, however late it starts.

**Creator side**: :class:`JobEvents` remembers the stream's position when it is
created, then :meth:`JobEvents.wait_for` / :meth:`JobEvents.print_until_done`
read every event after it and call a handler for each (by default, print the
original's line). Lines come from templates with a ``prefix``::

    {prefix} {job_id} {progress}% complete     Notification job 3 50% complete
    {prefix} {job_id} completed                Seat reservation job 7 completed
    {prefix} {job_id} failed: {error}          Notification job 1 failed: ...

Typical use::

    q = helpers.workers.queue("push_notification_code_2")
    events = JobEvents(q, prefix="Notification job")      # before enqueueing
    job = enqueue_with_events(q, "helpers.notifications.process_notification", data)
    events.print_until_done([job], timeout=60)             # a worker runs it

Job ids: :func:`next_job_id` draws ``<queue>-<n>`` from a per-queue Redis
counter ``jobs:ids:<queue>`` (INCR). kue's ids were a plain counter too; the
queue name keeps ids unique on a server shared by several queues (RQ keeps
every job in one namespace, ``rq:job:<id>``), and clearing a lesson's keys
restarts its numbering, so outputs read the same on every run.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import Any

import redis
from rq import Queue
from rq.callbacks import Callback
from rq.job import Job, get_current_job

from helpers.server import redis_url

STREAM_MAXLEN = 10_000  # approximate cap (XADD MAXLEN ~): events are a log, not storage
PROGRESS, COMPLETED, FAILED = "progress", "completed", "failed"
TERMINAL = frozenset({COMPLETED, FAILED})
RECORDED = frozenset({"finished", "failed", "stopped", "canceled"})  # RQ's final statuses

#: The original's lines (lesson 07, and seat reservations with another prefix).
MESSAGES: dict[str, str] = {
    PROGRESS: "{prefix} {job_id} {progress}% complete",
    COMPLETED: "{prefix} {job_id} completed",
    FAILED: "{prefix} {job_id} failed: {error}",
}
#: Lesson 06's creator printed no id and no error.
MESSAGES_WITHOUT_IDS: dict[str, str] = {
    PROGRESS: "{prefix} {progress}% complete",
    COMPLETED: "{prefix} completed",
    FAILED: "{prefix} failed",
}


def events_key(queue_name: str) -> str:
    """The Redis stream holding the events of queue ``queue_name``'s jobs."""
    return f"jobs:events:{queue_name}"


def ids_key(queue_name: str) -> str:
    """The Redis counter behind :func:`next_job_id` for ``queue_name``."""
    return f"jobs:ids:{queue_name}"


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def next_job_id(connection: redis.Redis, queue_name: str, count: int = 1) -> str:
    """A new job id ``<queue>-<n>`` from the queue's counter (INCR, atomic).
    With ``count`` > 1, reserves that many and returns the first."""
    last = int(connection.incrby(ids_key(queue_name), count))
    return f"{queue_name}-{last - count + 1}"


def job_ids(connection: redis.Redis, queue_name: str, count: int) -> list[str]:
    """``count`` consecutive new job ids for ``queue_name``, reserved in one INCRBY."""
    if count <= 0:
        return []
    last = int(connection.incrby(ids_key(queue_name), count))
    return [f"{queue_name}-{n}" for n in range(last - count + 1, last + 1)]


def job_number(job_id: str) -> int:
    """The counter value in a ``<queue>-<n>`` id (for sorting in creation order)."""
    return int(job_id.rsplit("-", 1)[1])


def emit(
    connection: redis.Redis,
    queue_name: str,
    job_id: str,
    kind: str,
    *,
    progress: int | None = None,
    error: str | None = None,
) -> str:
    """Add one event to the queue's stream; returns the stream entry id.

    Workers call it through :func:`report_progress`, :func:`on_success` and
    :func:`on_failure`; tests call it directly to fire events by hand."""
    if kind not in MESSAGES:
        raise ValueError(f"unknown event kind {kind!r}: expected one of {sorted(MESSAGES)}")
    fields: dict[str, str | int] = {"job": job_id, "event": kind}
    if progress is not None:
        fields["progress"] = int(progress)
    if error is not None:
        fields["error"] = error
    entry_id = connection.xadd(
        events_key(queue_name), fields, maxlen=STREAM_MAXLEN, approximate=True
    )
    return _text(entry_id)


def report_progress(percent: int, job: Job | None = None) -> None:
    """From inside a job: record ``percent`` in ``job.meta["progress"]`` (what
    a dashboard reads) and add a ``progress`` event (what the creator hears)."""
    job = job or get_current_job()
    if job is None:
        raise RuntimeError(
            "report_progress() runs inside an RQ job (in a worker, or a queue with "
            "is_async=False); pass job= to use it elsewhere"
        )
    job.meta["progress"] = int(percent)
    job.save_meta()
    emit(job.connection, job.origin, job.id, PROGRESS, progress=int(percent))


def error_text(error: BaseException | None) -> str:
    """What a failed event says about ``error``: its message, else its type."""
    if error is None:
        return "unknown error"
    return str(error) or type(error).__name__


def on_success(job: Job, connection: redis.Redis, result: Any, *args: Any, **kwargs: Any) -> None:
    """RQ success callback: add a ``completed`` event for ``job``."""
    emit(connection, job.origin, job.id, COMPLETED)


def on_failure(
    job: Job,
    connection: redis.Redis,
    exc_type: type[BaseException] | None = None,
    exc_value: BaseException | None = None,
    traceback: TracebackType | None = None,
    *args: Any,
    **kwargs: Any,
) -> None:
    """RQ failure callback: keep the error in ``job.meta["error"]`` and add a
    ``failed`` event carrying it."""
    error = error_text(exc_value)
    job.meta["error"] = error
    job.save_meta()
    emit(connection, job.origin, job.id, FAILED, error=error)


#: The callbacks, by name (RQ stores the name and the worker imports it).
SUCCESS_CALLBACK = Callback("helpers.job_events.on_success")
FAILURE_CALLBACK = Callback("helpers.job_events.on_failure")


def enqueue_with_events(
    queue: Queue,
    func: str | Callable[..., Any],
    *args: Any,
    job_id: str | None = None,
    **options: Any,
) -> Job:
    """``queue.enqueue_call(func, args)`` with a counter id and the event callbacks."""
    return queue.enqueue_call(
        func,
        args=args,
        job_id=job_id or next_job_id(queue.connection, queue.name),
        on_success=SUCCESS_CALLBACK,
        on_failure=FAILURE_CALLBACK,
        **options,
    )


@dataclass(frozen=True)
class JobEvent:
    """One event read from a queue's stream."""

    job_id: str
    kind: str
    progress: int | None = None
    error: str | None = None
    entry_id: str = ""

    @property
    def terminal(self) -> bool:
        """Completed or failed: nothing more will happen to the job (unless requeued)."""
        return self.kind in TERMINAL

    @classmethod
    def from_entry(cls, entry_id: bytes | str, fields: Mapping[Any, Any]) -> JobEvent:
        data = {_text(k): _text(v) for k, v in fields.items()}
        progress = data.get("progress")
        return cls(
            job_id=data["job"],
            kind=data["event"],
            progress=int(progress) if progress is not None else None,
            error=data.get("error"),
            entry_id=_text(entry_id),
        )


def format_event(
    event: JobEvent, prefix: str = "Notification job", templates: Mapping[str, str] | None = None
) -> str:
    """The line the creator prints for ``event``; ``templates`` override :data:`MESSAGES`."""
    template = {**MESSAGES, **(templates or {})}[event.kind]
    return template.format(
        prefix=prefix, job_id=event.job_id, progress=event.progress, error=event.error
    )


def group_by_job(events: Iterable[JobEvent], job_ids: Iterable[str]) -> dict[str, list[JobEvent]]:
    """Events per job, jobs in the order of ``job_ids``, events in stream order
    (concurrent jobs interleave; each job's own events stay in order)."""
    grouped: dict[str, list[JobEvent]] = {job_id: [] for job_id in job_ids}
    for event in events:
        if event.job_id in grouped:
            grouped[event.job_id].append(event)
    return grouped


def _ids(jobs: Iterable[Job | str]) -> list[str]:
    return [job if isinstance(job, str) else job.id for job in jobs]


class JobEvents:
    """The creator side: read a queue's job events from where it stood at creation.

    Create it *before* enqueueing, so no event of your jobs can be missed, then
    call :meth:`wait_for` or :meth:`print_until_done`. ``from_start=True``
    reads the whole stream instead.
    """

    def __init__(
        self,
        queue: Queue | str,
        connection: redis.Redis | None = None,
        *,
        prefix: str = "Notification job",
        templates: Mapping[str, str] | None = None,
        from_start: bool = False,
    ) -> None:
        self.queue_name = queue if isinstance(queue, str) else queue.name
        self.connection = connection or redis.Redis.from_url(redis_url())
        self.key = events_key(self.queue_name)
        self.prefix = prefix
        self.templates = dict(templates or {})
        self.position = "0-0" if from_start else self.last_entry_id()

    def last_entry_id(self) -> str:
        """Id of the stream's newest entry ("0-0" when empty)."""
        newest = self.connection.xrevrange(self.key, count=1)
        return _text(newest[0][0]) if newest else "0-0"

    def message(self, event: JobEvent) -> str:
        """The line for ``event`` with this listener's prefix and templates."""
        return format_event(event, self.prefix, self.templates)

    def read(self, block_ms: int | None = None, count: int = 500) -> list[JobEvent]:
        """The events after the current position (waiting up to ``block_ms``
        for the first one if there are none), and move past them."""
        reply = self.connection.xread({self.key: self.position}, count=count, block=block_ms)
        events: list[JobEvent] = []
        for _key, entries in reply or []:
            for entry_id, fields in entries:
                events.append(JobEvent.from_entry(entry_id, fields))
        if events:
            self.position = events[-1].entry_id
        return events

    def wait_for(
        self,
        jobs: Iterable[Job | str],
        timeout: float = 60.0,
        on_event: Callable[[JobEvent], object] | None = None,
        *,
        until_recorded: bool = True,
    ) -> list[JobEvent]:
        """Read events until every job in ``jobs`` has completed or failed;
        call ``on_event`` for each event of theirs, in arrival order, and return
        them. Raises :class:`TimeoutError` (naming the jobs still open) after
        ``timeout`` seconds: usually no worker is running.

        RQ runs callbacks just *before* it records the job's outcome, so an
        event can arrive a moment before ``job.get_status()`` says so. With
        ``until_recorded`` (the default) this also waits for RQ's record;
        pass False when events are fired by hand and nothing runs the jobs."""
        wanted = set(_ids(jobs))
        waiting = set(wanted)
        received: list[JobEvent] = []
        deadline = time.monotonic() + timeout
        while waiting:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(
                    f"no completed/failed event after {timeout:g}s for {sorted(waiting)}: "
                    f"is a worker running on {self.queue_name!r}?"
                )
            for event in self.read(block_ms=max(1, int(min(remaining, 1.0) * 1000))):
                if event.job_id not in wanted:
                    continue
                received.append(event)
                if on_event is not None:
                    on_event(event)
                if event.terminal:
                    waiting.discard(event.job_id)
        if until_recorded:
            self._wait_recorded(wanted, deadline, timeout)
        return received

    def _wait_recorded(self, job_ids: set[str], deadline: float, timeout: float) -> None:
        """Wait until RQ has stored a final status for each job (or deleted it)."""
        pending = set(job_ids)
        while pending:
            for job_id in list(pending):
                status = self.connection.hget(f"{Job.redis_job_namespace_prefix}{job_id}", "status")
                if status is None or _text(status) in RECORDED:
                    pending.discard(job_id)
            if not pending:
                return
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"RQ did not record the outcome of {sorted(pending)} in {timeout:g}s"
                )
            time.sleep(0.02)

    def print_until_done(
        self, jobs: Iterable[Job | str], timeout: float = 60.0, *, until_recorded: bool = True
    ) -> list[JobEvent]:
        """:meth:`wait_for`, printing each event's line as it arrives."""
        return self.wait_for(
            jobs,
            timeout,
            on_event=lambda event: print(self.message(event)),
            until_recorded=until_recorded,
        )
