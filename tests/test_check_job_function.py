"""The checker's task 8 (``8-job``): the reference passes, the lesson's skeleton
fails, a learner's plain version (lesson 08's hints) passes, and plausible
wrong versions each fail on the requirement they break (an ``8-job`` that
accepts a dict, one that enqueues before checking, one without the event
callbacks, ...)."""

from __future__ import annotations

from pathlib import Path

import pytest
from check_files import skeleton, write

from helpers.check import grade

TASK = "8-job"

NOT_A_DICT = "a dict (one job, not in a list): raises `Jobs is not an array`, enqueues nothing"
NON_LISTS = [
    NOT_A_DICT,
    "a string: raises `Jobs is not an array`, enqueues nothing",
    "None: raises `Jobs is not an array`, enqueues nothing",
    "a number: raises `Jobs is not an array`, enqueues nothing",
]
NO_MESSAGE = (
    "a job without `message`: refused (a ValueError/TypeError naming `message`), nothing enqueued"
)
BAD_PHONE = (
    "a phone number that is not all digits: refused (a ValueError/TypeError naming "
    "`phoneNumber`), nothing enqueued"
)
DEFINED = "the file defines `create_push_notifications_jobs(jobs, queue)` itself"
DATA = "two jobs: each job's only argument is its data, byte for byte"
CREATED = "two jobs: prints `Notification job created: <id>` for each, in order"
FIRED = (
    "events fired by hand print `<id> 25% complete`, `<id> failed: Failed to send`, "
    "`<id> completed`"
)
WORKER = (
    "with the course's worker: each job's lines as it runs "
    "(job 1: 0%, failed: blacklisted; job 2: 0%, 50%, completed)"
)
LEFT_BEHIND = "no job left behind: with the worker, every job finished or failed"

#: What a learner writes from lesson 08's pieces and hints: no transaction, one
#: enqueue per job. It must pass; the wrong versions below are edits of it.
PLAIN = """
import re

from helpers.job_events import creator_listener, enqueue_with_events, job_ids

JOB_FUNCTION = "helpers.notifications.process_notification_with_blacklist"


def create_push_notifications_jobs(jobs, queue):
    if not isinstance(jobs, list):
        raise TypeError("Jobs is not an array")
    for index, data in enumerate(jobs):
        if not isinstance(data, dict):
            raise TypeError(f"job {index} is not a dict")
        for key in ("phoneNumber", "message"):
            if key not in data:
                raise ValueError(f"job {index} has no {key}")
        if not re.fullmatch(r"[0-9]+", data["phoneNumber"]):
            raise ValueError(f"job {index}: phoneNumber must be digits")
        if not data["message"].strip():
            raise ValueError(f"job {index}: message is empty")
    if not jobs:
        return []
    listener = creator_listener(queue, prefix="Notification job")
    ids = job_ids(queue.connection, queue.name, len(jobs))
    listener.expect(ids)
    created = [
        enqueue_with_events(queue, JOB_FUNCTION, data, job_id=job_id)
        for data, job_id in zip(jobs, ids)
    ]
    listener.announce(created)
    return created


if __name__ == "__main__":
    print("run by the checker as a module")
"""


def edited(old: str, new: str) -> str:
    """:data:`PLAIN` with ``old`` replaced by ``new`` (which must be there)."""
    assert old in PLAIN, old
    return PLAIN.replace(old, new)


def graded(tmp_path: Path, source: str):
    return grade(TASK, write(tmp_path, TASK, source))


def test_a_plain_version_from_the_lessons_hints_passes(tmp_path: Path) -> None:
    report = graded(tmp_path, PLAIN)
    assert report.passed, report.lines()


def test_the_lessons_skeleton_fails(tmp_path: Path) -> None:
    report = grade(TASK, skeleton(TASK, tmp_path))
    assert not report.passed
    assert set(NON_LISTS + [NO_MESSAGE, CREATED, FIRED, WORKER, LEFT_BEHIND]) <= set(
        report.failed()
    )


def test_an_8_job_that_accepts_a_dict_fails(tmp_path: Path) -> None:
    report = graded(
        tmp_path,
        edited(
            """    if not isinstance(jobs, list):
        raise TypeError("Jobs is not an array")""",
            """    if isinstance(jobs, dict):  # one job: as if it were a list of one
        jobs = [jobs]
    if not isinstance(jobs, list):
        raise TypeError("Jobs is not an array")""",
        ),
    )
    assert report.failed() == [NOT_A_DICT], report.lines()


def test_a_loop_over_anything_iterable_fails_each_non_list(tmp_path: Path) -> None:
    report = graded(
        tmp_path,
        edited(
            """    if not isinstance(jobs, list):
        raise TypeError("Jobs is not an array")""",
            """    jobs = list(jobs)  # anything iterable""",
        ),
    )
    assert set(NON_LISTS) <= set(report.failed()), report.lines()
    assert CREATED not in report.failed() and WORKER not in report.failed()


def test_another_message_fails_each_non_list(tmp_path: Path) -> None:
    report = graded(tmp_path, edited('"Jobs is not an array"', '"jobs must be a list"'))
    assert report.failed() == NON_LISTS, report.lines()


def test_checking_while_enqueuing_fails_the_invalid_data(tmp_path: Path) -> None:
    """A check inside the enqueue loop: the valid job before the bad one is queued."""
    checks_late = edited(
        """    created = [
        enqueue_with_events(queue, JOB_FUNCTION, data, job_id=job_id)
        for data, job_id in zip(jobs, ids)
    ]""",
        """    created = []
    for data, job_id in zip(jobs, ids):
        data["phoneNumber"], data["message"]  # a KeyError for a missing field
        created.append(enqueue_with_events(queue, JOB_FUNCTION, data, job_id=job_id))""",
    ).replace(
        """    for index, data in enumerate(jobs):
        if not isinstance""",
        """    for index, data in enumerate([]):
        if not isinstance""",
    )
    report = graded(tmp_path, checks_late)
    assert report.failed() == [NO_MESSAGE, BAD_PHONE], report.lines()


def test_jobs_without_the_event_callbacks_fail_with_the_worker(tmp_path: Path) -> None:
    """Plain enqueue: the worker runs the jobs (progress events come from the
    job itself), but RQ adds no completed or failed event."""
    report = graded(
        tmp_path,
        edited(
            "enqueue_with_events(queue, JOB_FUNCTION, data, job_id=job_id)",
            "queue.enqueue_call(JOB_FUNCTION, args=(data,), job_id=job_id)",
        ),
    )
    assert report.failed() == [WORKER], report.lines()


def test_printing_only_the_created_lines_fails_the_events(tmp_path: Path) -> None:
    report = graded(
        tmp_path,
        edited("    listener.announce(created)\n", "").replace(
            "    return created\n",
            '    for job in created:\n        print(f"Notification job created: {job.id}")\n'
            "    return created\n",
        ),
    )
    assert report.failed() == [FIRED, WORKER], report.lines()


def test_data_passed_as_keyword_arguments_fails(tmp_path: Path) -> None:
    report = graded(
        tmp_path,
        edited(
            "enqueue_with_events(queue, JOB_FUNCTION, data, job_id=job_id)",
            "enqueue_with_events(queue, JOB_FUNCTION, job_id=job_id, kwargs=data)",
        ),
    )
    assert DATA in report.failed() and WORKER in report.failed(), report.lines()
    assert CREATED not in report.failed() and NOT_A_DICT not in report.failed()


@pytest.mark.parametrize(
    "source",
    [
        "from helpers.notifications import create_push_notifications_jobs\n",
        "from helpers.programs.t8_job import create_push_notifications_jobs\n",
    ],
)
def test_importing_the_courses_function_is_not_writing_it(tmp_path: Path, source: str) -> None:
    report = graded(tmp_path, source)
    assert report.failed() == [DEFINED], report.lines()
