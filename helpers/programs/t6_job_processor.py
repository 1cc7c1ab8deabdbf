"""6-job_processor: the worker side of lesson 06's queue.

``process_notification(data)`` is the job function: ``data`` is the job's
only argument, ``{"phoneNumber": ..., "message": ...}``, and
``send_notification`` prints the original's line,
``Sending notification to <phoneNumber>, with message: <message>``.

Run as a program, it is a worker on ``push_notification_code`` (the course's,
:mod:`helpers.workers`: JSON jobs, allow-listed functions) until Ctrl+C. A
worker's output goes to its log file, named on the first line.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping

from helpers import workers

QUEUE = "push_notification_code"


def send_notification(phone_number: str, message: str) -> None:
    """Print the original's line (in a worker, it lands in the worker's log)."""
    print(f"Sending notification to {phone_number}, with message: {message}", flush=True)


def process_notification(data: Mapping[str, str]) -> None:
    """The job function: ``data`` is the job's ``{phoneNumber, message}``."""
    send_notification(data["phoneNumber"], data["message"])


def main() -> int:
    """One worker on the queue: ``python -m helpers.workers push_notification_code``."""
    return workers.main([QUEUE])


if __name__ == "__main__":
    sys.exit(main())
