"""7-job_creator: the eleven notification jobs on ``push_notification_code_2``.

It listens for the queue's job events first, enqueues the jobs in the
original's order (:data:`NOTIFICATION_JOBS`; each job's data its only
argument), printing ``Notification job created: <id>`` for each, then prints
each event as a worker causes it, ``Notification job <id> <percent>% complete``,
``Notification job <id> completed`` or ``Notification job <id> failed: <error>``,
and exits once every job has completed or failed.
"""

from __future__ import annotations

from helpers.job_events import JobEvents, enqueue_with_events, job_number
from helpers.workers import queue

QUEUE = "push_notification_code_2"
JOB_FUNCTION = "helpers.notifications.process_notification_with_blacklist"
WAIT_S = 600.0  # how long it waits for workers to run the jobs

#: The eleven jobs, in the original's order.
NOTIFICATION_JOBS: list[dict[str, str]] = [
    {"phoneNumber": "4153518780", "message": "This is the code 1234 to verify your account"},
    {"phoneNumber": "4153518781", "message": "This is the code 4562 to verify your account"},
    {"phoneNumber": "4153518743", "message": "This is the code 4321 to verify your account"},
    {"phoneNumber": "4153538781", "message": "This is the code 4562 to verify your account"},
    {"phoneNumber": "4153118782", "message": "This is the code 4321 to verify your account"},
    {"phoneNumber": "4153718781", "message": "This is the code 4562 to verify your account"},
    {"phoneNumber": "4159518782", "message": "This is the code 4321 to verify your account"},
    {"phoneNumber": "4158718781", "message": "This is the code 4562 to verify your account"},
    {"phoneNumber": "4153818782", "message": "This is the code 4321 to verify your account"},
    {"phoneNumber": "4154318781", "message": "This is the code 4562 to verify your account"},
    {"phoneNumber": "4151218782", "message": "This is the code 4321 to verify your account"},
]


def main() -> None:
    """Create the eleven jobs, print every line, return once all are done."""
    q = queue(QUEUE)
    events = JobEvents(q)  # before the jobs: no event missed, however fast the workers
    jobs = []
    for data in NOTIFICATION_JOBS:
        job = enqueue_with_events(q, JOB_FUNCTION, data)
        print(f"Notification job created: {job_number(job)}", flush=True)
        jobs.append(job)
    events.print_until_done(jobs, timeout=WAIT_S)


if __name__ == "__main__":
    main()
