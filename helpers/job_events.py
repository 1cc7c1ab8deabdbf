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

**Creator side**, two ways:

- :class:`JobEvents` remembers the stream's position when it is created, then
  :meth:`JobEvents.wait_for` / :meth:`JobEvents.print_until_done` read every
  event after it and call a handler for each (by default, print the
  original's line): the creator reads when it chooses.
- :class:`CreatorListener` does what kue's ``job.on(...)`` handlers did: a
  daemon thread of the creating process reads the stream and prints the lines
  of the jobs it was told about *as their events arrive*.
  :func:`creator_listener` gives a queue's one listener (started on first use),
  :func:`wait_until_done` blocks until given jobs have completed or failed
  with their lines printed, :func:`stop_listeners` stops every listener.
  In a notebook, what a thread prints lands in whichever cell runs at that
  moment (ipykernel), so a lesson waits, in the cell that shows the lines,
  for the events it causes there.

Lines come from templates with a ``prefix``; they print the job's *number*::

    {prefix} created: {job_id}                 Notification job created: 1
    {prefix} {job_id} {progress}% complete     Notification job 3 50% complete
    {prefix} {job_id} completed                Seat reservation job 7 completed
    {prefix} {job_id} failed: {error}          Notification job 1 failed: ...

Typical use::

    q = helpers.workers.queue("push_notification_code_2")
    events = JobEvents(q, prefix="Notification job")      # before enqueueing
    job = enqueue_with_events(q, "helpers.notifications.process_notification", data)
    events.print_until_done([job], timeout=60)             # a worker runs it

Job ids: :func:`next_job_id` draws RQ's job id ``<queue>-<n>`` from a
per-queue Redis counter ``jobs:ids:<queue>`` (INCR), and the lines print
``n`` (:func:`job_number`), as kue printed its job id, a plain counter. RQ's
id adds the queue's name because RQ keeps every job of every queue in one
namespace (``rq:job:<id>``): lessons sharing a server never overwrite each
other's jobs, and a lesson finds (and clears) its own by that prefix.
Clearing a lesson's keys restarts its numbering, so outputs read the same on
every run.
"""

from __future__ import annotations

import re
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import Any

import redis
from rq import Queue
from rq.callbacks import Callback
from rq.job import Job, JobStatus, get_current_job

from helpers.server import redis_url

STREAM_MAXLEN = 10_000  # approximate cap (XADD MAXLEN ~): events are a log, not storage
PROGRESS, COMPLETED, FAILED = "progress", "completed", "failed"
CREATED = "created"  # a line, not an event: the creator prints it when it has enqueued the job
EVENT_KINDS = frozenset({PROGRESS, COMPLETED, FAILED})  # what a worker adds to the stream
TERMINAL_EVENTS = frozenset({COMPLETED, FAILED})  # event kinds after which nothing more happens
#: RQ's final job statuses (a tuple: matches both ``JobStatus`` members and plain strings).
FINAL_STATUSES = (JobStatus.FINISHED, JobStatus.FAILED, JobStatus.STOPPED, JobStatus.CANCELED)

#: The original's lines (lesson 07, and seat reservations with another prefix).
MESSAGES: dict[str, str] = {
    CREATED: "{prefix} created: {job_id}",
    PROGRESS: "{prefix} {job_id} {progress}% complete",
    COMPLETED: "{prefix} {job_id} completed",
    FAILED: "{prefix} {job_id} failed: {error}",
}
#: Lesson 06's creator printed no id and no error after ``created``.
MESSAGES_WITHOUT_IDS: dict[str, str] = {
    CREATED: "{prefix} created: {job_id}",
    PROGRESS: "{prefix} {progress}% complete",
    COMPLETED: "{prefix} completed",
    FAILED: "{prefix} failed",
}


def events_key(queue_name: str) -> str:
    """The Redis stream holding the events of queue ``queue_name``'s jobs."""
    return f"jobs:events:{queue_name}"


def job_ids_key(queue_name: str) -> str:
    """The Redis counter behind :func:`next_job_id` for ``queue_name``."""
    return f"jobs:ids:{queue_name}"


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def counter_job_id(queue_name: str, number: int) -> str:
    """The job id ``<queue>-<n>`` of the ``number``-th job of ``queue_name``
    (what :func:`job_number` reads back)."""
    return f"{queue_name}-{number}"


def next_job_id(connection: redis.Redis, queue_name: str, count: int = 1) -> str:
    """A new job id ``<queue>-<n>`` from the queue's counter (INCR, atomic).
    With ``count`` > 1, reserves that many and returns the first."""
    last = int(connection.incrby(job_ids_key(queue_name), count))
    return counter_job_id(queue_name, last - count + 1)


def job_ids(connection: redis.Redis, queue_name: str, count: int) -> list[str]:
    """``count`` consecutive new job ids for ``queue_name``, reserved in one INCRBY."""
    if count <= 0:
        return []
    last = int(connection.incrby(job_ids_key(queue_name), count))
    return [counter_job_id(queue_name, n) for n in range(last - count + 1, last + 1)]


_COUNTER_ID = re.compile(r"(?:.*-)?([0-9]+)")


def job_number(job: Job | str) -> int:
    """The number ``n`` of a job with a counter id ``<queue>-<n>`` (or just
    ``n``): what the original's lines print, and the creation order.
    ``ValueError`` for any other id."""
    job_id = job if isinstance(job, str) else job.id
    match = _COUNTER_ID.fullmatch(job_id)
    if match is None:
        raise ValueError(f"{job_id!r} is not a counter id <queue>-<n>")
    return int(match[1])


def shown_id(job_id: str) -> str:
    """How a line names a job: its number, or the whole id if it has none."""
    try:
        return str(job_number(job_id))
    except ValueError:
        return job_id


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
    if kind not in EVENT_KINDS:
        raise ValueError(f"unknown event kind {kind!r}: expected one of {sorted(EVENT_KINDS)}")
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
        return self.kind in TERMINAL_EVENTS

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
    """The line the creator prints for ``event`` (the job named by its number,
    :func:`job_number`); ``templates`` override :data:`MESSAGES`."""
    template = {**MESSAGES, **(templates or {})}[event.kind]
    return template.format(
        prefix=prefix, job_id=shown_id(event.job_id), progress=event.progress, error=event.error
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


def _stream_order(event: JobEvent) -> tuple[int, ...]:
    return tuple(int(part) for part in event.entry_id.split("-")) if event.entry_id else (0, 0)


def wait_recorded(
    connection: redis.Redis, job_ids: Iterable[str], deadline: float, timeout: float
) -> None:
    """Wait until RQ has stored a final status for each job (or deleted it),
    until time ``deadline`` (``time.monotonic()``); ``timeout`` is for the message."""
    pending = set(job_ids)
    while pending:
        for job_id in list(pending):
            status = connection.hget(f"{Job.redis_job_namespace_prefix}{job_id}", "status")
            if status is None or _text(status) in FINAL_STATUSES:
                pending.discard(job_id)
        if not pending:
            return
        if time.monotonic() > deadline:
            raise TimeoutError(
                f"RQ did not record the outcome of {sorted(pending)} in {timeout:g}s"
            )
        time.sleep(0.02)


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
            wait_recorded(self.connection, wanted, deadline, timeout)
        return received

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


def print_line(line: str) -> None:
    """Where a listener's lines go by default: this process's output, at once."""
    print(line, flush=True)


class CreatorListener:
    """The creator side as kue had it: the lines of *its* jobs, as they happen.

    A daemon thread reads queue ``queue``'s event stream (from where it stood
    when the listener started) and passes each line of the jobs it was told
    about to their ``echo`` (default :func:`print_line`); events of other jobs
    are skipped (another creator's, or another process's). For each job:

    1. :meth:`expect` it before it is enqueued (its id is known from the
       counter), so no event can be missed, however fast a worker is;
    2. :meth:`announce` it once enqueued: its ``created`` line, then its lines
       as they arrive. A job's lines never come before its ``created`` line:
       events that arrive earlier are held until then.

    :meth:`wait` blocks until given jobs have completed or failed and their
    lines are out. ``kinds`` picks the lines to print (the seat service prints
    only ``completed`` and ``failed``, as the original did). The thread
    survives Redis restarts (it retries every half second); :meth:`stop` ends it.
    """

    def __init__(
        self,
        queue: Queue | str,
        connection: redis.Redis | None = None,
        *,
        prefix: str = "Notification job",
        templates: Mapping[str, str] | None = None,
        kinds: Iterable[str] = (CREATED, *sorted(EVENT_KINDS)),
        keep: int = 10_000,
    ) -> None:
        self.events = JobEvents(queue, connection, prefix=prefix, templates=templates)
        self.queue_name = self.events.queue_name
        self.connection = self.events.connection
        self.kinds = frozenset(kinds)
        self.keep = keep  # finished jobs whose events are kept for wait()
        self._changed = threading.Condition()
        self._echo: dict[str, Callable[[str], object]] = {}  # expected, not finished
        self._announced: set[str] = set()
        self._held: list[JobEvent] = []  # events of expected jobs not announced yet
        self._received: dict[str, list[JobEvent]] = {}
        self._finished: OrderedDict[str, list[JobEvent]] = OrderedDict()
        self._stopping = threading.Event()
        self._thread = threading.Thread(
            target=self._listen, name=f"job-events-{self.queue_name}", daemon=True
        )
        self._thread.start()

    @property
    def running(self) -> bool:
        return self._thread.is_alive() and not self._stopping.is_set()

    def expect(self, jobs: Iterable[Job | str], echo: Callable[[str], object] = print_line) -> None:
        """Listen for the events of ``jobs`` (ids), about to be enqueued."""
        with self._changed:
            for job_id in _ids(jobs):
                self._forget(job_id)  # an id used again (a lesson run again)
                self._echo[job_id] = echo
                self._received[job_id] = []

    def announce(self, jobs: Iterable[Job | str]) -> None:
        """``jobs`` are enqueued: print their ``created`` lines, then the
        events that came before, then the rest as it comes."""
        with self._changed:
            for job_id in [job_id for job_id in _ids(jobs) if job_id in self._echo]:
                self._say(JobEvent(job_id, CREATED))
                self._announced.add(job_id)
            held, self._held = self._held, []
            for event in held:
                self._deliver(event)

    def forget(self, jobs: Iterable[Job | str]) -> None:
        """Stop listening for ``jobs`` (enqueueing them failed)."""
        with self._changed:
            for job_id in _ids(jobs):
                self._forget(job_id)

    def knows(self, job_id: str) -> bool:
        """Was ``job_id`` expected here (and not forgotten)?"""
        with self._changed:
            return job_id in self._echo or job_id in self._finished

    def wait(
        self, jobs: Iterable[Job | str], timeout: float = 60.0, *, until_recorded: bool = True
    ) -> list[JobEvent]:
        """Block until every job of ``jobs`` has completed or failed and its
        lines are out; return their events in arrival order. ``TimeoutError``
        after ``timeout`` seconds (naming the jobs still open: usually no worker
        runs). ``until_recorded``: also wait for RQ's record of each outcome
        (see :meth:`JobEvents.wait_for`); pass False when events are fired by hand."""
        ids = _ids(jobs)
        deadline = time.monotonic() + timeout
        with self._changed:
            unknown = [i for i in ids if i not in self._echo and i not in self._finished]
            if unknown:
                raise ValueError(f"{unknown} were not created with this listener")
            while open_ := [job_id for job_id in ids if job_id not in self._finished]:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(
                        f"no completed/failed event after {timeout:g}s for {open_}: "
                        f"is a worker running on {self.queue_name!r}?"
                    )
                self._changed.wait(min(remaining, 1.0))
            events = [event for job_id in ids for event in self._finished[job_id]]
        if until_recorded:
            wait_recorded(self.connection, ids, deadline, timeout)
        return sorted(events, key=_stream_order)

    def stop(self, timeout: float = 5.0) -> None:
        """Stop the thread (within about a read's block time)."""
        self._stopping.set()
        if self._thread is not threading.current_thread():
            self._thread.join(timeout)

    # --- the thread's side, and helpers called with the lock held -----------

    def _listen(self) -> None:
        while not self._stopping.is_set():
            try:
                batch = self.events.read(block_ms=200)
            except redis.RedisError:
                self._stopping.wait(0.5)  # Redis is down or restarting: try again
                continue
            with self._changed:
                for event in batch:
                    if event.job_id in self._echo:
                        self._deliver(event)

    def _deliver(self, event: JobEvent) -> None:
        if event.job_id not in self._echo:
            return
        if event.job_id not in self._announced:
            self._held.append(event)
            return
        self._received[event.job_id].append(event)
        self._say(event)
        if event.terminal:
            self._finished[event.job_id] = self._received.pop(event.job_id)
            del self._echo[event.job_id]
            self._announced.discard(event.job_id)
            while len(self._finished) > self.keep:
                self._finished.popitem(last=False)
            self._changed.notify_all()

    def _say(self, event: JobEvent) -> None:
        if event.kind not in self.kinds:
            return
        try:
            self._echo[event.job_id](self.events.message(event))
        except Exception:  # noqa: BLE001 - a broken echo must not stop the other jobs' lines
            pass

    def _forget(self, job_id: str) -> None:
        self._echo.pop(job_id, None)
        self._announced.discard(job_id)
        self._received.pop(job_id, None)
        self._finished.pop(job_id, None)
        self._held = [event for event in self._held if event.job_id != job_id]


_listeners: dict[tuple[object, ...], CreatorListener] = {}
_listeners_lock = threading.Lock()


def _server_of(connection: redis.Redis) -> tuple[object, ...]:
    """Which Redis server and database a client talks to."""
    options = connection.connection_pool.connection_kwargs
    return tuple(options.get(key) for key in ("host", "port", "path", "db"))


def creator_listener(
    queue: Queue, *, prefix: str = "Notification job", templates: Mapping[str, str] | None = None
) -> CreatorListener:
    """This process's listener for ``queue`` (one per server, queue and
    prefix), started on first use; the same one on every later call."""
    key = (
        _server_of(queue.connection),
        queue.name,
        prefix,
        tuple(sorted((templates or {}).items())),
    )
    with _listeners_lock:
        listener = _listeners.get(key)
        if listener is None or not listener.running:
            listener = CreatorListener(
                queue.name, queue.connection, prefix=prefix, templates=templates
            )
            _listeners[key] = listener
        return listener


def wait_until_done(
    jobs: Iterable[Job | str], timeout: float = 60.0, *, until_recorded: bool = True
) -> list[JobEvent]:
    """Block until ``jobs`` (created with a :func:`creator_listener`) have
    completed or failed, their lines printed; their events in arrival order.
    See :meth:`CreatorListener.wait`."""
    ids = _ids(jobs)
    deadline = time.monotonic() + timeout
    with _listeners_lock:
        listeners = list(_listeners.values())
    by_listener: dict[int, tuple[CreatorListener, list[str]]] = {}
    for job_id in ids:
        listener = next((each for each in listeners if each.knows(job_id)), None)
        if listener is None:
            raise ValueError(f"{job_id} was not created with a creator listener")
        by_listener.setdefault(id(listener), (listener, []))[1].append(job_id)
    events: list[JobEvent] = []
    for listener, its_ids in by_listener.values():
        remaining = max(0.0, deadline - time.monotonic())
        events += listener.wait(its_ids, remaining, until_recorded=until_recorded)
    return sorted(events, key=_stream_order)


def stop_listeners() -> None:
    """Stop every listener :func:`creator_listener` started (tests, a lesson's end)."""
    with _listeners_lock:
        listeners = list(_listeners.values())
        _listeners.clear()
    for listener in listeners:
        listener.stop()
