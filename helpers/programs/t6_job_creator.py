"""6-job_creator: one notification job on ``push_notification_code``, and its lines.

It listens for the queue's job events first (:class:`helpers.job_events.JobEvents`),
then enqueues one job naming the processor's function, its data the job's
only argument, and prints ``Notification job created: <id>``. Once a worker
has run it (``python -m helpers.workers push_notification_code``) it prints
``Notification job completed``, or ``Notification job failed``, and exits.
"""

from __future__ import annotations

from helpers.job_events import MESSAGES_WITHOUT_IDS, JobEvents, enqueue_with_events, job_number
from helpers.workers import queue

QUEUE = "push_notification_code"
JOB_FUNCTION = "helpers.notifications.process_notification"  # the worker imports it by name
FIRST_JOB: dict[str, str] = {
    "phoneNumber": "4153518780",
    "message": "This is the code to verify your account",
}
WAIT_S = 600.0  # how long it waits for a worker to run the job


def main() -> None:
    """Create the job, print its lines, return once it has completed or failed."""
    q = queue(QUEUE)
    events = JobEvents(q, templates=MESSAGES_WITHOUT_IDS)  # before the job: no event missed
    job = enqueue_with_events(q, JOB_FUNCTION, FIRST_JOB)
    print(f"Notification job created: {job_number(job)}", flush=True)
    events.print_until_done([job], timeout=WAIT_S)


if __name__ == "__main__":
    main()
