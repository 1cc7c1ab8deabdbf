"""The checker's tasks 6 and 7 (helpers/check/tasks/jobs.py): the reference
solutions pass, the lessons' skeletons fail, and plausible wrong versions
fail with the requirement they break named (the others still met where that
means something). Each wrong version is the reference with one thing changed."""

from __future__ import annotations

from pathlib import Path

import pytest
from check_files import skeleton, write

from helpers import notifications
from helpers.check import find_task, grade
from helpers.programs import t6_job_creator, t6_job_processor, t7_job_creator, t7_job_processor

TASKS = ["6-job_creator", "6-job_processor", "7-job_creator", "7-job_processor"]

# Requirement names, as the reports give them.
ENQUEUES_ONE = "enqueues one job on the queue `push_notification_code`"
ONLY_ARGUMENT = "the job's only argument is exactly {phoneNumber, message} (stored as JSON)"
RUNS_FUNCTION_6 = (
    "the job runs the course's job function `helpers.notifications.process_notification`"
)
CREATED_6 = "prints `Notification job created: <id>` naming the job (its number or RQ id)"
WAITS_6 = (
    "with no worker taking jobs yet, it waits for the job's outcome "
    "(still running, nothing more printed)"
)
FAILS_6 = "a job that fails: prints `Notification job failed`, then exits by itself"
COMPLETES_6 = "a job that completes: prints `Notification job completed`, then exits by itself"

PRINTS_LINE = (
    "`process_notification(data)` prints `Sending notification to <phoneNumber>, "
    "with message: <message>`"
)
WORKER_6 = "run as a program, it runs a worker on the queue `push_notification_code`"
JOBS_PRINT_6 = (
    "each job prints `Sending notification to <phoneNumber>, with message: <message>` "
    "(in the program's output or its worker's log)"
)

ELEVEN_IN_ORDER = (
    "enqueues the eleven jobs on the queue `push_notification_code_2`, in the original's order, "
    "each job's only argument exactly its {phoneNumber, message}"
)
CREATED_7 = "prints `Notification job created: <id>` for each of the eleven jobs, in order"
COMPLETED_LINES = (
    "jobs 3 to 11: `Notification job <id> 0% complete`, then `... 50% complete`, `... completed`"
)
FAILED_LINES = (
    "jobs 1 and 2: `Notification job <id> 0% complete`, then "
    "`... failed: Phone number <n> is blacklisted`"
)

TWO_WORKERS = "two jobs at a time: two workers on `push_notification_code_2`, no more"
TWO_AT_ONCE = "two jobs run at once: two jobs held at a gate are both started"
BLACKLIST = "a blacklisted number fails with `Phone number <n> is blacklisted` (jobs 1 and 2)"
NINE_COMPLETE = "the nine other jobs complete"
PROGRESS = "progress 0% then 50% for each completed job, 0% only for a failed one (report_progress)"
SENDING_7 = (
    "prints `Sending notification to <n>, with message: <m>` for each completed job, "
    "none for a blacklisted number (in any order: two at a time)"
)


def reference_with(task: str, old: str, new: str) -> str:
    """The reference solution's source with ``old`` replaced by ``new`` (once)."""
    source = find_task(task).solution.read_text()
    assert source.count(old) == 1, f"{old!r} is not in {task}'s reference once"
    return source.replace(old, new)


def test_the_course_uses_the_reference_programs_code() -> None:
    """One copy: helpers.notifications takes the data and functions from the programs."""
    assert notifications.FIRST_JOB is t6_job_creator.FIRST_JOB
    assert notifications.NOTIFICATION_JOBS is t7_job_creator.NOTIFICATION_JOBS
    assert notifications.BLACKLISTED_NUMBERS is t7_job_processor.BLACKLISTED_NUMBERS
    assert notifications.send_notification is t6_job_processor.send_notification
    assert notifications.send_notification_with_blacklist is t7_job_processor.send_notification
    # The job functions RQ names keep their names, defined where the allow-list looks.
    assert notifications.process_notification.__module__ == "helpers.notifications"
    assert t6_job_creator.JOB_FUNCTION == "helpers.notifications.process_notification"
    assert t7_job_creator.JOB_FUNCTION == (
        "helpers.notifications.process_notification_with_blacklist"
    )


@pytest.mark.parametrize("task", TASKS)
def test_the_lessons_skeleton_fails(task: str, tmp_path: Path) -> None:
    report = grade(task, skeleton(task, tmp_path))
    assert not report.passed
    # A program that raises NotImplementedError meets none of the run's requirements.
    run_requirements = [r for r in report.requirements if "import" not in r.name]
    assert not any(r.passed for r in run_requirements if "defines" not in r.name), report.lines()


def assert_fails_only(report, broken: set[str], still_met: set[str]) -> None:
    failed = set(report.failed())
    assert broken <= failed, "\n".join(report.lines())
    assert not (still_met & failed), "\n".join(report.lines())


# --- 6-job_creator -------------------------------------------------------------


def test_a_creator_that_prints_completed_without_waiting_fails(tmp_path: Path) -> None:
    """It prints the original's lines, but never heard of the job's outcome."""
    source = reference_with(
        "6-job_creator",
        "    events.print_until_done([job], timeout=WAIT_S)\n",
        '    print("Notification job completed")\n',
    )
    report = grade("6-job_creator", write(tmp_path, "6-job_creator", source))
    assert_fails_only(
        report,
        broken={WAITS_6, FAILS_6},
        still_met={ENQUEUES_ONE, ONLY_ARGUMENT, RUNS_FUNCTION_6, CREATED_6},
    )


def test_a_creator_passing_two_arguments_fails(tmp_path: Path) -> None:
    """``enqueue(f, phone, message)``: kue's data was one object, and so is the job's."""
    source = reference_with(
        "6-job_creator",
        "enqueue_with_events(q, JOB_FUNCTION, FIRST_JOB)",
        'enqueue_with_events(q, JOB_FUNCTION, FIRST_JOB["phoneNumber"], FIRST_JOB["message"])',
    )
    report = grade("6-job_creator", write(tmp_path, "6-job_creator", source))
    assert_fails_only(
        report,
        broken={ONLY_ARGUMENT, COMPLETES_6},
        still_met={ENQUEUES_ONE, RUNS_FUNCTION_6, CREATED_6, WAITS_6},
    )


# --- 6-job_processor -----------------------------------------------------------


def test_a_processor_printing_another_line_fails(tmp_path: Path) -> None:
    source = reference_with(
        "6-job_processor",
        'f"Sending notification to {phone_number}, with message: {message}"',
        'f"Sending notification to {phone_number}: {message}"',
    )
    report = grade("6-job_processor", write(tmp_path, "6-job_processor", source))
    assert_fails_only(report, broken={PRINTS_LINE, JOBS_PRINT_6}, still_met={WORKER_6})


def test_a_processor_on_another_queue_fails(tmp_path: Path) -> None:
    source = reference_with(
        "6-job_processor", 'QUEUE = "push_notification_code"', 'QUEUE = "push_notification"'
    )
    report = grade("6-job_processor", write(tmp_path, "6-job_processor", source))
    assert_fails_only(report, broken={WORKER_6, JOBS_PRINT_6}, still_met={PRINTS_LINE})
    assert "push_notification" in report.requirements[2].got  # where its worker listens


# --- 7-job_creator -------------------------------------------------------------


def test_a_creator_printing_lesson_06s_lines_fails(tmp_path: Path) -> None:
    """Without the job's id in its lines (lesson 06's templates), whose is which?"""
    source = reference_with(
        "7-job_creator",
        "events = JobEvents(q)",
        "events = JobEvents(q, templates=MESSAGES_WITHOUT_IDS)",
    ).replace("import JobEvents,", "import MESSAGES_WITHOUT_IDS, JobEvents,")
    report = grade("7-job_creator", write(tmp_path, "7-job_creator", source))
    assert_fails_only(
        report, broken={COMPLETED_LINES, FAILED_LINES}, still_met={ELEVEN_IN_ORDER, CREATED_7}
    )


def test_a_creator_enqueueing_in_another_order_fails(tmp_path: Path) -> None:
    source = reference_with(
        "7-job_creator",
        "for data in NOTIFICATION_JOBS:",
        "for data in reversed(NOTIFICATION_JOBS):",
    )
    report = grade("7-job_creator", write(tmp_path, "7-job_creator", source))
    assert_fails_only(report, broken={ELEVEN_IN_ORDER, FAILED_LINES}, still_met={CREATED_7})


# --- 7-job_processor -----------------------------------------------------------


def test_a_processor_without_the_blacklist_fails(tmp_path: Path) -> None:
    source = reference_with(
        "7-job_processor",
        "    if phone_number in BLACKLISTED_NUMBERS:\n"
        '        raise ValueError(f"Phone number {phone_number} is blacklisted")\n',
        "",
    )
    report = grade("7-job_processor", write(tmp_path, "7-job_processor", source))
    assert_fails_only(
        report,
        broken={BLACKLIST, PROGRESS, SENDING_7},
        still_met={NINE_COMPLETE, TWO_WORKERS, TWO_AT_ONCE},
    )


def test_a_processor_with_one_worker_fails(tmp_path: Path) -> None:
    """One job at a time: the original's processor ran two."""
    source = reference_with("7-job_processor", "WORKERS = 2", "WORKERS = 1")
    report = grade("7-job_processor", write(tmp_path, "7-job_processor", source))
    assert_fails_only(
        report, broken={TWO_WORKERS, TWO_AT_ONCE}, still_met={BLACKLIST, NINE_COMPLETE, PROGRESS}
    )


def test_a_processor_reporting_50_before_the_blacklist_check_fails(tmp_path: Path) -> None:
    source = reference_with(
        "7-job_processor", "    progress(0)\n", "    progress(0)\n    progress(50)\n"
    )
    report = grade("7-job_processor", write(tmp_path, "7-job_processor", source))
    assert_fails_only(report, broken={PROGRESS}, still_met={BLACKLIST, NINE_COMPLETE, SENDING_7})
