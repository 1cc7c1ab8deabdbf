"""A job control panel for a notification queue: a model, and a thin ipywidgets view.

:class:`JobPanelModel` holds the state and does the work (enqueue jobs,
start/stop workers, read counts and progress from Redis, requeue failed
jobs); it needs no browser and is what the tests drive. :class:`JobPanel`
is the view: widgets wired to the model, plus an optional background thread
that refreshes them from Redis every ``refresh_interval`` seconds. It never
prints into a cell; messages go to its status line. ``panel.close()`` stops
the refresh thread and the workers the panel started.

Buttons (their ``description``s are stable: browser tests click by them):

- ``Enqueue``: create ``Count`` jobs ``{phoneNumber: Phone, message: Message}``;
- ``Start workers``: start ``Concurrency`` worker processes (restarting
  running ones with the new concurrency);
- ``Stop workers``: graceful stop (SIGTERM: current jobs finish);
- ``Requeue failed``: put every failed job back on the queue;
- ``Refresh``: read Redis now.

Other widgets: ``panel.phone``, ``panel.message``, ``panel.count``,
``panel.concurrency`` (inputs, with those descriptions), ``panel.counts``
(queued/started/finished/failed), ``panel.jobs_box`` (one progress bar per
recent job), ``panel.failed_html`` (failed jobs and their errors),
``panel.status`` (last action or error).
"""

from __future__ import annotations

import html
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import ipywidgets as widgets
import redis
from rq.job import Job, JobStatus

from helpers.job_events import job_number, shown_id
from helpers.notifications import (
    PROGRESS_QUEUE,
    create_push_notifications_jobs,
    process_notification_with_blacklist,
)
from helpers.widgets.panel import RefreshingPanel, close_tree
from helpers.workers import WorkerProcess, queue, redis_connection, start_worker

STATES = ("queued", "started", "finished", "failed")


@dataclass(frozen=True)
class JobRow:
    """What the panel shows about one job."""

    job_id: str
    status: str
    progress: int
    phone_number: str = ""
    error: str | None = None


@dataclass(frozen=True)
class PanelState:
    """A snapshot of the queue, read from Redis by :meth:`JobPanelModel.refresh`."""

    counts: dict[str, int]
    jobs: list[JobRow]
    failed: list[JobRow]
    workers: int
    concurrency: int
    messages: list[str] = field(default_factory=list)


class JobPanelModel:
    """State and actions of the job control panel, for queue ``queue_name``.

    Jobs are created with :func:`helpers.notifications.create_push_notifications_jobs`
    (counter ids ``<queue>-<n>``, progress and events) and run by ``func``.
    """

    def __init__(
        self,
        queue_name: str = PROGRESS_QUEUE,
        *,
        connection: redis.Redis | None = None,
        func: str | Callable[..., Any] = process_notification_with_blacklist,
        max_jobs: int = 20,
        worker_class: str = "fork",
    ) -> None:
        self.queue = queue(queue_name, connection or redis_connection())
        self.func = func
        self.max_jobs = max_jobs
        self.worker_class = worker_class
        self.workers: WorkerProcess | None = None
        self.concurrency = 0
        self.messages: list[str] = []  # what the creator printed, newest last
        self._lock = threading.RLock()

    @property
    def queue_name(self) -> str:
        return self.queue.name

    def _note(self, line: str) -> None:
        self.messages.append(line)
        del self.messages[:-50]

    def enqueue(self, phone_number: str, message: str, count: int = 1) -> list[Job]:
        """Create ``count`` notification jobs; invalid data raises before any is enqueued."""
        if count < 1:
            raise ValueError(f"count must be at least 1, not {count}")
        data = [{"phoneNumber": phone_number, "message": message} for _ in range(count)]
        with self._lock:
            return create_push_notifications_jobs(data, self.queue, func=self.func, echo=self._note)

    def start_workers(self, concurrency: int = 2) -> WorkerProcess:
        """Start ``concurrency`` worker processes on the queue (graceful restart
        if some are already running)."""
        if concurrency < 1:
            raise ValueError(f"concurrency must be at least 1, not {concurrency}")
        with self._lock:
            self.stop_workers()
            self.workers = start_worker(
                self.queue_name, concurrency=concurrency, worker_class=self.worker_class
            )
            self.concurrency = concurrency
            self._note(f"Started {concurrency} worker(s) on {self.queue_name}")
            return self.workers

    def stop_workers(self, timeout: float = 60.0) -> None:
        """Stop the workers this panel started: SIGTERM, current jobs finish."""
        with self._lock:
            if self.workers is not None:
                self.workers.stop(timeout)
                self._note(f"Stopped {len(self.workers.names)} worker(s)")
            self.workers = None
            self.concurrency = 0

    @property
    def workers_running(self) -> int:
        """How many worker processes this panel has running."""
        if self.workers is None or not self.workers.running:
            return 0
        return len(self.workers.names)

    def requeue_failed(self) -> list[str]:
        """Put every failed job back on the queue (progress and error reset);
        returns their ids."""
        requeued = []
        with self._lock:
            registry = self.queue.failed_job_registry
            for job_id in registry.get_job_ids():
                job = Job.fetch(
                    job_id, connection=self.queue.connection, serializer=self.queue.serializer
                )
                job.meta.pop("error", None)
                job.meta.pop("progress", None)
                job.save_meta()
                registry.requeue(job)
                requeued.append(job_id)
            self._note(f"Requeued {len(requeued)} failed job(s)")
        return requeued

    def counts(self) -> dict[str, int]:
        """Jobs per state: queued, started, finished, failed."""
        q = self.queue
        return {
            "queued": q.count,
            "started": q.started_job_registry.get_job_count(),
            "finished": q.finished_job_registry.get_job_count(),
            "failed": q.failed_job_registry.get_job_count(),
        }

    def _recent_ids(self) -> list[str]:
        q = self.queue
        ids = {
            *q.get_job_ids(),
            *q.started_job_registry.get_job_ids(),
            *q.finished_job_registry.get_job_ids(),
            *q.failed_job_registry.get_job_ids(),
        }
        ours = [i for i in ids if i.startswith(f"{self.queue_name}-")]
        return sorted(ours, key=job_number)[-self.max_jobs :]

    def job_rows(self) -> list[JobRow]:
        """The most recent ``max_jobs`` jobs, oldest first, with status and progress."""
        ids = self._recent_ids()
        rows = []
        for job in Job.fetch_many(ids, self.queue.connection, serializer=self.queue.serializer):
            if job is None:  # expired between the two reads
                continue
            status = job.get_status(refresh=False) or JobStatus.QUEUED
            progress = job.meta.get("progress")
            if status == JobStatus.FINISHED:
                progress = 100
            data = job.args[0] if job.args and isinstance(job.args[0], dict) else {}
            rows.append(
                JobRow(
                    job_id=job.id,
                    status=str(status.value if hasattr(status, "value") else status),
                    progress=int(progress or 0),
                    phone_number=str(data.get("phoneNumber", "")),
                    error=job.meta.get("error"),
                )
            )
        return rows

    def refresh(self) -> PanelState:
        """Read the queue's state from Redis."""
        with self._lock:
            rows = self.job_rows()
            return PanelState(
                counts=self.counts(),
                jobs=rows,
                failed=[row for row in rows if row.status == "failed"],
                workers=self.workers_running,
                concurrency=self.concurrency,
                messages=list(self.messages),
            )

    def close(self) -> None:
        """Stop the workers this panel started."""
        self.stop_workers()


class JobPanel(RefreshingPanel):
    """The job control panel's view. ``JobPanel()`` shows queue
    ``push_notification_code_2``; pass ``model=`` for another queue."""

    refresh_thread_name = "job-panel-refresh"

    def __init__(
        self,
        model: JobPanelModel | None = None,
        *,
        refresh_interval: float | None = 1.0,
        phone_number: str = "4153518743",
        message: str = "This is the code 4321 to verify your account",
    ) -> None:
        self.model = model or JobPanelModel()
        style = {"description_width": "90px"}
        self.phone = widgets.Text(value=phone_number, description="Phone", style=style)
        self.message = widgets.Text(
            value=message, description="Message", style=style, layout={"width": "460px"}
        )
        self.count = widgets.BoundedIntText(
            value=1, min=1, max=100, description="Count", style=style, layout={"width": "170px"}
        )
        self.concurrency = widgets.BoundedIntText(
            value=2, min=1, max=8, description="Concurrency", style=style, layout={"width": "170px"}
        )
        self.enqueue_button = widgets.Button(description="Enqueue", button_style="primary")
        self.start_button = widgets.Button(description="Start workers", button_style="success")
        self.stop_button = widgets.Button(description="Stop workers", button_style="warning")
        self.requeue_button = widgets.Button(description="Requeue failed")
        self.refresh_button = widgets.Button(description="Refresh")
        self.counts = widgets.HTML()
        self.workers_label = widgets.Label()
        self.status = widgets.Label()
        self.jobs_box = widgets.VBox()
        self.failed_html = widgets.HTML()
        self._bars: dict[str, widgets.IntProgress] = {}
        self._labels: dict[str, widgets.Label] = {}
        self._view_lock = threading.Lock()

        self.enqueue_button.on_click(self._guard(self._on_enqueue))
        self.start_button.on_click(self._guard(self._on_start))
        self.stop_button.on_click(self._guard(self._on_stop))
        self.requeue_button.on_click(self._guard(self._on_requeue))
        self.refresh_button.on_click(self._guard(lambda _b: self.update()))

        super().__init__(
            [
                widgets.HTML(f"<b>Queue</b> <code>{html.escape(self.model.queue_name)}</code>"),
                widgets.HBox([self.phone, self.count]),
                widgets.HBox([self.message, self.enqueue_button]),
                widgets.HBox([self.concurrency, self.start_button, self.stop_button]),
                widgets.HBox([self.counts, self.workers_label]),
                widgets.HBox([self.requeue_button, self.refresh_button]),
                self.jobs_box,
                self.failed_html,
                self.status,
            ]
        )
        self.update()
        if refresh_interval:
            self.start_auto_refresh(refresh_interval)

    # --- actions -----------------------------------------------------------

    def _on_enqueue(self, _button: widgets.Button) -> None:
        jobs = self.model.enqueue(self.phone.value, self.message.value, self.count.value)
        self.update()
        numbers = ", ".join(shown_id(j.id) for j in jobs)
        self.status.value = f"Enqueued {len(jobs)} job(s): {numbers}"

    def _on_start(self, _button: widgets.Button) -> None:
        self.model.start_workers(self.concurrency.value)
        self.update()
        self.status.value = f"Started {self.concurrency.value} worker(s)"

    def _on_stop(self, _button: widgets.Button) -> None:
        self.model.stop_workers()
        self.update()
        self.status.value = "Workers stopped"

    def _on_requeue(self, _button: widgets.Button) -> None:
        ids = self.model.requeue_failed()
        self.update()
        self.status.value = f"Requeued {len(ids)} failed job(s)"

    # --- view --------------------------------------------------------------
    def update(self) -> PanelState:
        """Read the model's state from Redis and show it."""
        state = self.model.refresh()
        with self._view_lock:
            self.counts.value = " · ".join(f"{name} <b>{state.counts[name]}</b>" for name in STATES)
            self.workers_label.value = f"   workers running: {state.workers}"
            rows = []
            for row in state.jobs:
                bar = self._bars.get(row.job_id)
                if bar is None:
                    bar = widgets.IntProgress(min=0, max=100, layout={"width": "240px"})
                    self._bars[row.job_id] = bar
                    self._labels[row.job_id] = widgets.Label()
                bar.value = row.progress
                bar.bar_style = {"finished": "success", "failed": "danger"}.get(row.status, "info")
                label = self._labels[row.job_id]
                label.value = (
                    f"Job {shown_id(row.job_id)} {row.phone_number}: {row.status} {row.progress}%"
                )
                rows.append(widgets.HBox([bar, label]))
            shown = {row.job_id for row in state.jobs}
            for gone in set(self._bars) - shown:
                self._bars.pop(gone).close()
                self._labels.pop(gone).close()
            self.jobs_box.children = rows
            if state.failed:
                items = "".join(
                    f"<tr><td>{html.escape(shown_id(r.job_id))}</td><td>{html.escape(r.phone_number)}</td>"
                    f"<td>{html.escape(r.error or '')}</td></tr>"
                    for r in state.failed
                )
                self.failed_html.value = (
                    "<b>Failed jobs</b><table><tr><th>job</th><th>phone</th><th>error</th></tr>"
                    f"{items}</table>"
                )
            else:
                self.failed_html.value = ""
        return state

    def close(self) -> None:
        """Stop refreshing, stop the panel's workers, close the widgets."""
        self.stop_auto_refresh()
        self.model.close()
        close_tree(self)
