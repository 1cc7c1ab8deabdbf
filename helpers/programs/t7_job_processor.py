"""7-job_processor: progress, a blacklist, two jobs at a time.

For each job, ``send_notification`` reports progress 0%; for a number of
:data:`BLACKLISTED_NUMBERS` it fails (raises) with
``Phone number <phoneNumber> is blacklisted``; otherwise it reports 50%,
prints ``Sending notification to <phoneNumber>, with message: <message>``
and completes. Progress goes through :func:`helpers.job_events.report_progress`
(the job's meta and an event the creator hears); a failure is an exception,
which RQ records and the creator hears as ``failed: <its message>``.

Run as a program, it runs two workers on ``push_notification_code_2``
(:mod:`helpers.workers` with ``--concurrency 2``): two jobs at a time, each
worker running one job at a time. Their logs hold what the jobs print.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping

from helpers import workers
from helpers.job_events import report_progress

QUEUE = "push_notification_code_2"
WORKERS = 2  # two jobs at a time
BLACKLISTED_NUMBERS: tuple[str, ...] = ("4153518780", "4153518781")


def send_notification(
    phone_number: str, message: str, progress: Callable[[int], object] = report_progress
) -> None:
    """Report 0%, refuse a blacklisted number, report 50%, send. ``progress``
    receives each percentage (in a job: :func:`report_progress`; in a test: a list's append)."""
    progress(0)
    if phone_number in BLACKLISTED_NUMBERS:
        raise ValueError(f"Phone number {phone_number} is blacklisted")
    progress(50)
    print(f"Sending notification to {phone_number}, with message: {message}", flush=True)


def process_notification(data: Mapping[str, str]) -> None:
    """The job function: ``data`` is the job's ``{phoneNumber, message}``."""
    send_notification(data["phoneNumber"], data["message"])


def main() -> int:
    """Two workers on the queue: ``python -m helpers.workers push_notification_code_2 --concurrency 2``."""
    return workers.main([QUEUE, "--concurrency", str(WORKERS)])


if __name__ == "__main__":
    sys.exit(main())
