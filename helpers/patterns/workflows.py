"""Workflows: jobs that wait for other jobs.

- ``depends_on=job`` (or a list: several parents) keeps a job *deferred* (in
  the ``DeferredJobRegistry``) until every parent has finished;
- if a parent fails, its children stay deferred, for ever, unless they were
  enqueued with ``Dependency(jobs=[...], allow_failure=True)``: then they run
  once every parent has *ended*, finished or failed;
- a ``Group`` (RQ 3) gives a set of jobs one name, to fetch them together;
- a **fan-out/fan-in**: one job per phone number, then a summary that depends
  on all of them with ``allow_failure=True`` and reads their outcomes.

Celery's words for the same: a *chain* runs tasks one after another, each
getting the previous one's result; a *group* runs tasks in parallel and
collects their results; a *chord* is a group plus a callback that runs with
all their results once every task of the group has finished.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from rq import Queue
from rq.group import Group
from rq.job import Dependency, Job, get_current_job

from helpers.notifications import BLACKLISTED_NUMBERS, BlacklistedNumber
from helpers.patterns.keys import job_connection, key

SEND = "helpers.patterns.workflows.send_notification"
SUMMARIZE = "helpers.patterns.workflows.summarize"


def outbox_key() -> str:
    """The list of notifications sent by :func:`send_notification`."""
    return key("outbox")


def summary_key() -> str:
    """The hash :func:`summarize` writes its counts to."""
    return key("summary")


def send_notification(phone: str, message: str) -> str:
    """Job: send ``message`` to ``phone`` (append it to :func:`outbox_key`);
    fail for lesson 07's blacklisted numbers. Returns the phone number."""
    if phone in BLACKLISTED_NUMBERS:
        raise BlacklistedNumber(f"Phone number {phone} is blacklisted")
    job_connection().rpush(outbox_key(), f"{phone}: {message}")
    return phone


def summarize() -> dict[str, object]:
    """Job, the fan-in: read the outcome of every job this one depends on
    and count them; the counts go to :func:`summary_key` too."""
    job = get_current_job()
    assert job is not None
    parent_ids = job.dependency_ids
    parents = Job.fetch_many(parent_ids, connection=job.connection, serializer=job.serializer)
    sent = [p.return_value() for p in parents if p is not None and p.is_finished]
    failed = [p.id for p in parents if p is not None and p.is_failed]
    summary = {"parents": len(parent_ids), "sent": len(sent), "failed": sorted(failed)}
    job.connection.hset(summary_key(), mapping={"parents": len(parent_ids), "sent": len(sent)})
    return summary


def fan_out_fan_in(
    q: Queue,
    notifications: Sequence[Mapping[str, str]],
    job_ids: Sequence[str],
    summary_id: str,
    group_name: str,
) -> tuple[Group, list[Job], Job]:
    """Fan out: one :func:`send_notification` job per notification (lesson
    07's ``{phoneNumber, message}``), all in RQ group ``group_name``; fan in:
    a :func:`summarize` job that depends on all of them and runs even if some
    fail (``allow_failure=True``). Returns the group, the jobs and the summary."""
    group = Group.create(connection=q.connection, name=group_name)
    jobs = group.enqueue_many(
        q,
        [
            Queue.prepare_data(SEND, (n["phoneNumber"], n["message"]), job_id=job_id)
            for n, job_id in zip(notifications, job_ids, strict=True)
        ],
    )
    summary = q.enqueue(
        SUMMARIZE, depends_on=Dependency(jobs=jobs, allow_failure=True), job_id=summary_id
    )
    return group, jobs, summary


def statuses(jobs: Sequence[Job]) -> dict[str, str]:
    """Job id -> its status now."""
    return {job.id: job.get_status(refresh=True).value for job in jobs}
