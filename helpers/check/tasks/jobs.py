"""Tasks 6 and 7: job creators and job processors (RQ), lessons 06 and 07.

A **creator** runs as a program beside the course's reference worker
(``python -m helpers.workers``), which starts *suspended* (RQ's
``rq suspend``): the creator creates its jobs while no job can be taken, so
the checker reads them and sees the creator wait; then the worker is resumed
and the checker reads the creator's lines as the jobs complete or fail.

A **processor** runs as a program that must start workers; the checker
enqueues jobs naming the file's ``process_notification`` (its staged copy,
``workspace.t<N>_job_processor``), and reads their outcomes, their progress
events and the lines they print (in the program's output or its workers'
logs). Two at a time is checked structurally: two workers registered on the
queue, and two jobs held at lesson 07's gate both started.
"""

from __future__ import annotations

import json
import re
import time
import zlib
from collections.abc import Callable, Iterator, Sequence

import redis
from rq.job import Job
from rq.serializers import JSONSerializer
from rq.suspension import WORKERS_SUSPENDED

from helpers.check.driver import after_import, call_driver, import_is_quiet
from helpers.check.observe import names, queued, until
from helpers.check.report import Requirement, requirement
from helpers.check.sandbox import Sandbox, crash_text
from helpers.check.task import Task
from helpers.job_events import FINAL_STATUSES, enqueue_with_events, events_key, shown_id
from helpers.notifications import gate_key
from helpers.processes import BackgroundProcess
from helpers.programs import t6_job_creator, t7_job_creator, t7_job_processor
from helpers.workers import queue

QUEUE_6 = t6_job_creator.QUEUE  # push_notification_code
QUEUE_7 = t7_job_creator.QUEUE  # push_notification_code_2
FIRST_JOB = t6_job_creator.FIRST_JOB
NOTIFICATION_JOBS = t7_job_creator.NOTIFICATION_JOBS
BLACKLISTED = t7_job_processor.BLACKLISTED_NUMBERS
COURSE_FUNCTION_6 = t6_job_creator.JOB_FUNCTION
COURSE_FUNCTION_7 = t7_job_creator.JOB_FUNCTION
GATED_FUNCTION = "helpers.notifications.process_notification_at_gate"
#: Two jobs held at lesson 07's gate, to see two run at once (numbers not blacklisted).
GATE_JOBS = [{"phoneNumber": f"415000000{n}", "message": f"Gate check {n}"} for n in (1, 2)]
#: Lesson 06's processor gets the original's job and one more.
PROCESSOR_6_JOBS = [FIRST_JOB, NOTIFICATION_JOBS[3]]
PREFIX = "Notification job"
CREATED = re.compile(r"Notification job created: (\S+)")

# Bounds for a file that hangs; a working one takes a fraction of them (a
# loaded machine can take seconds to start an interpreter with RQ and the helpers).
START_S = 15.0  # a program's start
DONE_S = 30.0  # a worker's start, the jobs, a creator's exit
WAITS_S = 0.3  # how long a creator must go on waiting while no job can be taken
FOLLOW_S = 3.0  # how long a processor's other workers may register after its first
LINES_S = 1.0  # for a job's line to reach a log after RQ recorded the job


def sending(data: dict[str, str]) -> str:
    """The processor's line for a job's data."""
    return f"Sending notification to {data['phoneNumber']}, with message: {data['message']}"


# --- waiting for, and reading, what the programs did --------------------------


def finish(raw: redis.Redis, *processes: BackgroundProcess) -> None:
    """The checker has what it needs: kill the processes (a graceful stop of a
    worker takes seconds, and nothing is left for them to finish)."""
    for process in processes:
        if process.running:  # an exited one's pid may already be another process's
            process.kill()
    raw.close()


def course_env(sandbox: Sandbox) -> dict[str, str]:
    """Programs started by the checker keep their logs (workers') in the sandbox."""
    return {"COURSE_DATA_DIR": str(sandbox.folder / "data")}


def output_of(sandbox: Sandbox, process: BackgroundProcess) -> str:
    """What ``process`` printed, then the workers' logs (the course's workers
    write to log files in the data folder)."""
    logs = sorted((sandbox.folder / "data" / "logs").glob("*.log"))
    return sandbox.unstaged(process.output() + "".join(log.read_text() for log in logs))


def exit_problem(sandbox: Sandbox, process: BackgroundProcess) -> str | None:
    """``crashed (exit N): <last lines>`` once ``process`` has failed, else None."""
    code = process.returncode
    if code is None or code == 0:
        return None
    return crash_text(code, sandbox.unstaged(process.output()))


def in_short(problem: str) -> str:
    """A problem already shown in full, named again: ``crashed (exit 1)``."""
    return problem.split(":", 1)[0] if problem.startswith("crashed") else problem


def notification_lines(sandbox: Sandbox, process: BackgroundProcess) -> list[str]:
    """The lines of ``process``'s output that start with ``Notification job``."""
    lines = sandbox.unstaged(process.output()).splitlines()
    return [line for line in lines if line.startswith(PREFIX)]


def created_ids(lines: list[str]) -> list[str]:
    """The ids of the ``Notification job created: <id>`` lines, in order."""
    return [m[1] for line in lines if (m := CREATED.fullmatch(line))]


def stored_call(raw: redis.Redis, job_id: str) -> tuple[str, list[object], object] | str:
    """A stored job's function name, arguments and keyword arguments, read as
    RQ wrote them (JSON, compressed); else a string saying why not."""
    data = raw.hget(f"rq:job:{job_id}", "data")
    if data is None:
        return f"no job {job_id} in Redis"
    try:
        data = zlib.decompress(data)
    except zlib.error:
        pass  # RQ compresses it, and reads it either way
    try:
        func, _instance, args, kwargs = json.loads(data)
    except (ValueError, TypeError):
        return (
            f"job {job_id} is not stored as JSON (helpers.workers.queue uses RQ's JSONSerializer)"
        )
    return func, args, kwargs


def only_argument(call: tuple[str, list[object], object] | str) -> str:
    """The job's only argument as JSON text (keys in their order), else what it has."""
    if isinstance(call, str):
        return call
    _func, args, kwargs = call
    if len(args) != 1 or kwargs:
        return f"args {json.dumps(args)}, kwargs {json.dumps(kwargs)}"
    return json.dumps(args[0])


def function_names(calls: list[tuple[str, list[object], object] | str]) -> list[str]:
    """The functions the jobs name (or why they could not be read)."""
    return sorted({call if isinstance(call, str) else call[0] for call in calls})


def statuses(sandbox: Sandbox, job_ids: list[str]) -> list[str | None]:
    """RQ's status of each job (None: no such job)."""
    return [sandbox.client.hget(f"rq:job:{job_id}", "status") for job_id in job_ids]


def all_final(sandbox: Sandbox, job_ids: list[str]) -> bool:
    """Has RQ recorded an outcome for every one of ``job_ids``?"""
    return all(status in FINAL_STATUSES for status in statuses(sandbox, job_ids))


def started_count(sandbox: Sandbox, name: str) -> int:
    """How many jobs of queue ``name`` are running (RQ's started registry)."""
    return sandbox.client.zcard(f"rq:wip:{name}")


def left_behind(sandbox: Sandbox, name: str, outcomes: bool = False) -> dict[str, int]:
    """What is still waiting or running in queue ``name`` (a job stuck in the
    started registry was abandoned); with ``outcomes``, the finished and failed."""
    found = {
        "queued": sandbox.client.llen(f"rq:queue:{name}"),
        "started": started_count(sandbox, name),
    }
    if outcomes:
        found["finished"] = sandbox.client.zcard(f"rq:finished:{name}")
        found["failed"] = sandbox.client.zcard(f"rq:failed:{name}")
    return found


def error_message(raw: redis.Redis, job_id: str) -> str:
    """A failed job's error message: the last line of its traceback,
    ``<Type>: <message>``, without the type."""
    job = Job.fetch(job_id, connection=raw, serializer=JSONSerializer)
    result = job.latest_result()
    text = (result.exc_string if result is not None else None) or job.exc_info or ""
    last = (text.strip().splitlines() or [""])[-1]
    return last.split(": ", 1)[1] if ": " in last else last


def first_difference(
    name: str, expected: Sequence[object], got: Sequence[object], label: Callable[[int], str]
) -> Requirement:
    """The requirement ``name``, met when ``got == expected``; a failure shows
    only the first item that differs (``label(i)`` names it), not two long lists."""
    for index in range(max(len(expected), len(got))):
        want = expected[index] if index < len(expected) else "nothing"
        came = got[index] if index < len(got) else "nothing"
        if want != came:
            return Requirement(name, False, f"{label(index)}: {want}", f"{label(index)}: {came}")
    return Requirement(name, True)


# --- the course's worker, for the creators ------------------------------------


def start_course_worker(sandbox: Sandbox, name: str, concurrency: int = 1) -> BackgroundProcess:
    """The course's reference worker on queue ``name``, started *suspended*:
    it takes no job until :func:`resume`, so it can start while a creator
    creates its jobs, and cannot take them before the checker has read them."""
    sandbox.client.set(WORKERS_SUSPENDED, 1)
    args = ["helpers.workers", name, "--name", f"check-{name}"]
    if concurrency > 1:
        args += ["--concurrency", str(concurrency)]
    return sandbox.start_module(args, name=f"worker-{name}", **course_env(sandbox))


def resume(sandbox: Sandbox) -> None:
    """Let the suspended workers take jobs (RQ looks once a second)."""
    sandbox.client.delete(WORKERS_SUSPENDED)


# --- 6-job_creator ------------------------------------------------------------


def job_named(printed: list[str], jobs: list[str]) -> str | None:
    """The job that a run's one ``created`` line names, if it printed exactly one."""
    if len(printed) != 1:
        return None
    return next((job_id for job_id in jobs if names(printed[0], job_id)), None)


def break_job(raw: redis.Redis, job_id: str) -> None:
    """Rewrite a queued job's data without its ``message``: the course's
    processor reads ``data["message"]``, so the job fails for real in the worker."""
    call = stored_call(raw, job_id)
    if not isinstance(call, str):
        broken = [call[0], None, [{"phoneNumber": FIRST_JOB["phoneNumber"]}], {}]
        raw.hset(f"rq:job:{job_id}", "data", zlib.compress(json.dumps(broken).encode()))


def grade_job_creator_6(sandbox: Sandbox) -> Iterator[Requirement]:
    """Two runs at once, the worker suspended: the first run's job is made to
    fail, the second's completes."""
    raw = redis.Redis.from_url(sandbox.url)
    worker = start_course_worker(sandbox, QUEUE_6)
    runs = [sandbox.start(name=f"creator-{n}", **course_env(sandbox)) for n in (1, 2)]

    def created() -> bool:
        printed = all(created_ids(notification_lines(sandbox, run)) for run in runs)
        return printed and len(queued(sandbox.client, QUEUE_6)) >= len(runs)

    until(created, START_S, *runs)
    problem = next(filter(None, (exit_problem(sandbox, run) for run in runs)), None)
    jobs = queued(sandbox.client, QUEUE_6)
    yield Requirement(
        f"enqueues one job on the queue `{QUEUE_6}`",
        len(jobs) == len(runs),
        f"one job per run (two runs): 2 ids in rq:queue:{QUEUE_6}",
        problem or f"{len(jobs)}; queues in Redis: {sorted(sandbox.client.smembers('rq:queues'))}",
    )
    problem = in_short(problem) if problem else None
    calls = [stored_call(raw, job_id) for job_id in jobs]
    yield requirement(
        "the job's only argument is exactly {phoneNumber, message} (stored as JSON)",
        [json.dumps(FIRST_JOB)] * len(runs),
        problem or [only_argument(call) for call in calls],
    )
    yield requirement(
        f"the job runs the course's job function `{COURSE_FUNCTION_6}`",
        [COURSE_FUNCTION_6],
        problem or function_names(calls),
    )
    lines = [notification_lines(sandbox, run) for run in runs]
    ids = [job_named(created_ids(run_lines), jobs) for run_lines in lines]
    yield Requirement(
        "prints `Notification job created: <id>` naming the job (its number or RQ id)",
        None not in ids and len(set(ids)) == len(runs),
        " / ".join(f"{PREFIX} created: {shown_id(job_id)}" for job_id in jobs) or "that line",
        problem or " / ".join(" ⏎ ".join(run_lines) or "nothing" for run_lines in lines),
    )
    time.sleep(WAITS_S)
    now = [notification_lines(sandbox, run) for run in runs]
    yield Requirement(
        "with no worker taking jobs yet, it waits for the job's outcome "
        "(still running, nothing more printed)",
        all(run.running for run in runs) and [len(n) for n in now] == [1] * len(runs),
        "running, one line so far",
        problem
        or " / ".join(
            ("running" if run.running else "exited") + f": {' ⏎ '.join(run_lines)}"
            for run, run_lines in zip(runs, now, strict=True)
        ),
    )
    if ids[0] is not None:
        break_job(raw, ids[0])  # the first run's job fails in the worker
    resume(sandbox)
    until(lambda: not any(run.running for run in runs), DONE_S, *runs)
    for run, job_id, outcome in zip(runs, ids, ("failed", "completed"), strict=True):
        run_lines = notification_lines(sandbox, run)
        expected = [*run_lines[:1], f"{PREFIX} {outcome}"]
        yield Requirement(
            f"a job that {'fails' if outcome == 'failed' else 'completes'}: "
            f"prints `Notification job {outcome}`, then exits by itself",
            run.returncode == 0 and job_id is not None and run_lines == expected,
            " ⏎ ".join(expected) + ", exit status 0",
            problem
            or (f"no answer in {DONE_S:g} s: " if run.running else "")
            + (" ⏎ ".join(run_lines) or "nothing"),
        )
    yield requirement(
        "no job left behind (nothing queued or started; one finished, one failed)",
        {"queued": 0, "started": 0, "finished": 1, "failed": 1},
        left_behind(sandbox, QUEUE_6, outcomes=True),
    )
    finish(raw, worker, *runs)


# --- 7-job_creator ------------------------------------------------------------


def job_lines(lines: list[str], printed: str) -> list[str]:
    """One job's lines after its ``created`` line, in order."""
    return [line for line in lines if line.startswith(f"{PREFIX} {printed} ")]


def expected_lines(printed: str, data: dict[str, str]) -> list[str]:
    """The original's lines for one of the eleven jobs, after ``created``."""
    if data["phoneNumber"] in BLACKLISTED:
        error = f"Phone number {data['phoneNumber']} is blacklisted"
        return [f"{PREFIX} {printed} 0% complete", f"{PREFIX} {printed} failed: {error}"]
    return [
        f"{PREFIX} {printed} 0% complete",
        f"{PREFIX} {printed} 50% complete",
        f"{PREFIX} {printed} completed",
    ]


def grade_job_creator_7(sandbox: Sandbox) -> Iterator[Requirement]:
    raw = redis.Redis.from_url(sandbox.url)
    count = len(NOTIFICATION_JOBS)
    worker = start_course_worker(sandbox, QUEUE_7, concurrency=2)
    creator = sandbox.start(name="creator", **course_env(sandbox))
    until(
        lambda: (
            len(created_ids(notification_lines(sandbox, creator))) >= count
            and len(queued(sandbox.client, QUEUE_7)) >= count
        ),
        START_S,
        creator,
    )
    problem = exit_problem(sandbox, creator)
    jobs = queued(sandbox.client, QUEUE_7)
    calls = [stored_call(raw, job_id) for job_id in jobs]
    name = (
        f"enqueues the eleven jobs on the queue `{QUEUE_7}`, in the original's order, "
        "each job's only argument exactly its {phoneNumber, message}"
    )
    if problem:
        yield Requirement(name, False, "11 jobs", problem)
        problem = in_short(problem)
    else:
        yield first_difference(
            name,
            [json.dumps(data) for data in NOTIFICATION_JOBS],
            [only_argument(call) for call in calls],
            lambda i: f"job {i + 1}",
        )
    yield requirement(
        f"each job runs the course's job function `{COURSE_FUNCTION_7}`",
        [COURSE_FUNCTION_7],
        problem or function_names(calls),
    )
    lines = notification_lines(sandbox, creator)
    ids = created_ids(lines)
    name = "prints `Notification job created: <id>` for each of the eleven jobs, in order"
    if problem:
        yield Requirement(name, False, "11 lines", problem)
    else:
        yield first_difference(
            name,
            [f"{PREFIX} created: {shown_id(job_id)}" for job_id in jobs],
            [f"{PREFIX} created: {printed}" for printed in ids],
            lambda i: f"job {i + 1}",
        )
    time.sleep(WAITS_S)
    more = len(notification_lines(sandbox, creator)) - len(lines)
    yield Requirement(
        "with no worker taking jobs yet, it waits for the jobs (still running, nothing more printed)",
        creator.running and more == 0,
        "running, only the created lines so far",
        problem or ("running" if creator.running else "it exited") + f"; {more} more line(s)",
    )
    resume(sandbox)
    until(lambda: not creator.running, DONE_S, creator)
    lines = notification_lines(sandbox, creator)
    shown = ids if len(ids) == count else [str(n) for n in range(1, count + 1)]
    for which, blacklisted in (("jobs 3 to 11", False), ("jobs 1 and 2", True)):
        picked = [
            (n, printed, data)
            for n, (printed, data) in enumerate(zip(shown, NOTIFICATION_JOBS, strict=True), 1)
            if (data["phoneNumber"] in BLACKLISTED) == blacklisted
        ]
        name = f"{which}: `Notification job <id> 0% complete`, then " + (
            "`... failed: Phone number <n> is blacklisted`"
            if blacklisted
            else "`... 50% complete`, `... completed`"
        )
        if problem:
            yield Requirement(name, False, "their lines", problem)
            continue
        yield first_difference(
            name,
            [" ⏎ ".join(expected_lines(printed, data)) for _, printed, data in picked],
            [" ⏎ ".join(job_lines(lines, printed)) or "nothing" for _, printed, _ in picked],
            lambda i, picked=picked: f"job {picked[i][0]}",
        )
    yield Requirement(
        "exits by itself once every job has completed or failed",
        creator.returncode == 0,
        "exit status 0",
        problem
        or exit_problem(sandbox, creator)
        or (f"no answer in {DONE_S:g} s" if creator.running else ""),
    )
    yield requirement(
        "no job left behind (nothing queued or started; 9 finished, 2 failed)",
        {"queued": 0, "started": 0, "finished": 9, "failed": 2},
        left_behind(sandbox, QUEUE_7, outcomes=True),
    )
    finish(raw, worker, creator)


# --- the processors -----------------------------------------------------------


def workers_on(sandbox: Sandbox, name: str) -> list[str]:
    """The workers registered on queue ``name``."""
    return sorted(sandbox.client.smembers(f"rq:workers:{name}"))


def queues_listened(sandbox: Sandbox) -> str:
    """Which queues the registered workers listen on, for a report."""
    found = [
        f"{key.rsplit(':', 1)[-1]} on {sandbox.client.hget(key, 'queues')}"
        for key in sorted(sandbox.client.smembers("rq:workers"))
    ]
    return "workers: " + "; ".join(found) if found else "no worker registered in Redis"


def start_processor(sandbox: Sandbox) -> BackgroundProcess:
    """Start the file as a program (its workers start in the background)."""
    return sandbox.start(name="processor", **course_env(sandbox))


def listening(
    sandbox: Sandbox, processor: BackgroundProcess, name: str, workers: int
) -> Requirement:
    """Wait for the processor's workers on queue ``name``: the requirement
    that one listens there. Once a first worker has registered (on any
    queue), the others get :data:`FOLLOW_S` to follow."""
    first_seen: list[float] = []

    def ready() -> bool:
        if not first_seen and sandbox.client.scard("rq:workers"):
            first_seen.append(time.monotonic())
        if len(workers_on(sandbox, name)) >= workers:
            return True
        return bool(first_seen and time.monotonic() - first_seen[0] > FOLLOW_S)

    until(ready, START_S, processor)
    on_queue = workers_on(sandbox, name)
    problem = exit_problem(sandbox, processor)
    if not on_queue and problem is None:
        state = "it exited" if not processor.running else f"none after {START_S:g} s"
        problem = f"{state}; {queues_listened(sandbox)}"
    return Requirement(
        f"run as a program, it runs a worker on the queue `{name}`",
        bool(on_queue),
        f"a worker registered on {name}",
        problem or ", ".join(on_queue),
    )


def enqueue_for(raw: redis.Redis, name: str, func: str, jobs: list[dict[str, str]]) -> list[str]:
    """Enqueue ``jobs`` on queue ``name`` naming ``func``, with counter ids and
    the event callbacks, as the course's creators do; their ids."""
    q = queue(name, raw)
    return [enqueue_with_events(q, func, data).id for data in jobs]


def sending_lines(sandbox: Sandbox, processor: BackgroundProcess, wanted: list[str]) -> list[str]:
    """The ``Sending notification`` lines printed so far (waiting a moment for
    ``wanted``: a worker's log may lag behind RQ's record of the job)."""
    until(lambda: all(line in output_of(sandbox, processor) for line in wanted), LINES_S, processor)
    lines = output_of(sandbox, processor).splitlines()
    return [line for line in lines if line.startswith("Sending notification")]


def grade_job_processor_6(sandbox: Sandbox) -> Iterator[Requirement]:
    raw = redis.Redis.from_url(sandbox.url)
    processor = start_processor(sandbox)
    data = {"phoneNumber": "4153518743", "message": "Hello"}
    driver = call_driver(sandbox, f"task.process_notification({data!r})\n")  # while it starts
    yield import_is_quiet(driver)
    yield requirement(
        "`process_notification(data)` prints `Sending notification to <phoneNumber>, "
        "with message: <message>`",
        [sending(data)],
        driver.problem() or after_import(driver)[1],
    )
    worker = listening(sandbox, processor, QUEUE_6, workers=1)
    yield worker
    problem = None if worker.passed else f"no worker ran: {in_short(worker.got)}"
    ids: list[str] = []
    if not problem:
        ids = enqueue_for(raw, QUEUE_6, f"{sandbox.module}.process_notification", PROCESSOR_6_JOBS)
        until(lambda: all_final(sandbox, ids), DONE_S, processor)
        problem = exit_problem(sandbox, processor)
    yield requirement(
        f"its worker runs the jobs of `{QUEUE_6}` naming the file's `process_notification`: both finish",
        ["finished"] * len(PROCESSOR_6_JOBS),
        problem or statuses(sandbox, ids),
    )
    wanted = [sending(data) for data in PROCESSOR_6_JOBS]
    yield requirement(
        "each job prints `Sending notification to <phoneNumber>, with message: <message>` "
        "(in the program's output or its worker's log)",
        wanted,
        problem or sending_lines(sandbox, processor, wanted),
    )
    yield requirement(
        "no job left behind (nothing queued or started)",
        {"queued": 0, "started": 0},
        problem or left_behind(sandbox, QUEUE_6),
    )
    finish(raw, processor)


def two_at_once(sandbox: Sandbox, raw: redis.Redis, processor: BackgroundProcess) -> Requirement:
    """Two jobs held at lesson 07's gate are both started: two run at once,
    for certain (neither can finish while the gate is closed: no race)."""
    name = "two jobs run at once: two jobs held at a gate are both started"
    workers = workers_on(sandbox, QUEUE_7)
    if len(workers) < 2:
        return Requirement(name, False, "2 started", f"{len(workers)} worker(s) on {QUEUE_7}")
    sandbox.client.set(gate_key(QUEUE_7), "closed")
    try:
        ids = enqueue_for(raw, QUEUE_7, GATED_FUNCTION, GATE_JOBS)
        both = until(lambda: started_count(sandbox, QUEUE_7) >= 2, DONE_S / 2, processor)
        running = started_count(sandbox, QUEUE_7)
    finally:
        sandbox.client.delete(gate_key(QUEUE_7))  # never leave the workers held
    until(lambda: all_final(sandbox, ids), DONE_S, processor)
    return Requirement(name, both, "2 started", f"{running} started")


def progress_by_job(sandbox: Sandbox, ids: list[str]) -> list[list[int]]:
    """The progress each job reported, in order (the queue's event stream)."""
    found: dict[str, list[int]] = {job_id: [] for job_id in ids}
    for _entry, fields in sandbox.client.xrange(events_key(QUEUE_7)):
        if fields.get("event") == "progress" and fields.get("job") in found:
            found[fields["job"]].append(int(fields.get("progress", -1)))
    return list(found.values())


def grade_job_processor_7(sandbox: Sandbox) -> Iterator[Requirement]:
    raw = redis.Redis.from_url(sandbox.url)
    processor = start_processor(sandbox)
    # While it starts:
    driver = call_driver(sandbox, "print(callable(getattr(task, 'process_notification', None)))\n")
    yield import_is_quiet(driver)
    yield requirement(
        "defines `process_notification(data)`",
        ["True"],
        driver.problem() or after_import(driver)[1],
    )
    worker = listening(sandbox, processor, QUEUE_7, workers=2)
    yield worker
    problem = None if worker.passed else f"no worker ran: {in_short(worker.got)}"
    yield requirement(
        f"two jobs at a time: two workers on `{QUEUE_7}`, no more",
        2,
        problem or len(workers_on(sandbox, QUEUE_7)),
    )
    yield (
        two_at_once(sandbox, raw, processor)
        if not problem
        else Requirement(
            "two jobs run at once: two jobs held at a gate are both started",
            False,
            "2 started",
            problem,
        )
    )
    ids: list[str] = []
    if not problem:
        ids = enqueue_for(raw, QUEUE_7, f"{sandbox.module}.process_notification", NOTIFICATION_JOBS)
        until(lambda: all_final(sandbox, ids), DONE_S, processor)
        problem = exit_problem(sandbox, processor)
    outcomes = statuses(sandbox, ids)
    jobs = list(zip(ids, outcomes, NOTIFICATION_JOBS, strict=False))
    yield requirement(
        "a blacklisted number fails with `Phone number <n> is blacklisted` (jobs 1 and 2)",
        [f"failed: Phone number {n} is blacklisted" for n in BLACKLISTED],
        problem
        or [
            f"failed: {error_message(raw, job_id)}" if outcome == "failed" else str(outcome)
            for job_id, outcome, data in jobs
            if data["phoneNumber"] in BLACKLISTED
        ],
    )
    yield requirement(
        "the nine other jobs complete",
        ["finished"] * 9,
        problem or [outcome for _, outcome, data in jobs if data["phoneNumber"] not in BLACKLISTED],
    )
    name = "progress 0% then 50% for each completed job, 0% only for a failed one (report_progress)"
    if problem:
        yield Requirement(name, False, "[0, 50] per completed job", problem)
    else:
        yield first_difference(
            name,
            [[0] if d["phoneNumber"] in BLACKLISTED else [0, 50] for d in NOTIFICATION_JOBS],
            progress_by_job(sandbox, ids),
            lambda i: f"job {i + 1}",
        )
    wanted = sorted(sending(d) for d in NOTIFICATION_JOBS if d["phoneNumber"] not in BLACKLISTED)
    yield requirement(
        "prints `Sending notification to <n>, with message: <m>` for each completed job, "
        "none for a blacklisted number (in any order: two at a time)",
        wanted,
        problem
        or sorted(
            line for line in sending_lines(sandbox, processor, wanted) if "Gate check" not in line
        ),
    )
    yield requirement(
        "no job left behind (nothing queued or started)",
        {"queued": 0, "started": 0},
        problem or left_behind(sandbox, QUEUE_7),
    )
    finish(raw, processor)


TASKS = [
    Task(
        "6-job_creator",
        "06",
        "program",
        "enqueue one notification job, print its created and completed/failed lines",
        f"""
Run as a program (`python 6-job_creator.py`), with the Redis at REDIS_URL
(the checker sets it; helpers.workers.queue() finds it), it enqueues on the
queue `{QUEUE_6}` one job naming the course's job function
`{COURSE_FUNCTION_6}`, whose only argument is exactly
    {json.dumps(FIRST_JOB)}
stored as JSON (helpers.workers.queue does), and prints
    Notification job created: <id>   (the job's number, job_number(job), or its id)
then, once a worker has run the job, `Notification job completed` (or
`Notification job failed`), and exits. helpers.job_events has the pieces:
JobEvents (made before the job, templates=MESSAGES_WITHOUT_IDS for these
lines), enqueue_with_events, print_until_done. The checker runs it twice
beside the course's worker (python -m helpers.workers {QUEUE_6})
and makes one run's job fail.
""",
        grade_job_creator_6,
    ),
    Task(
        "6-job_processor",
        "06",
        "worker",
        "process_notification(data) prints the original's line; run as a program, a worker",
        f"""
Define process_notification(data): `data` is a job's only argument, the dict
{{"phoneNumber": ..., "message": ...}}; it prints
    Sending notification to <phoneNumber>, with message: <message>
(the original's sendNotification(phoneNumber, message) did). Importing the
file runs nothing. Run as a program (under `if __name__ == "__main__":`), it
runs a worker on the queue `{QUEUE_6}`, with the Redis at REDIS_URL,
until stopped: helpers.workers.main(["{QUEUE_6}"]) runs the course's
worker (JSON jobs; it runs your workspace's functions). The checker enqueues
jobs naming the file's process_notification and reads the lines in the
program's output or its workers' logs.
""",
        grade_job_processor_6,
    ),
    Task(
        "7-job_creator",
        "07",
        "program",
        "the eleven jobs, and each job's created, progress, completed/failed lines",
        f"""
Run as a program, with the Redis at REDIS_URL, it enqueues on the queue
`{QUEUE_7}` the eleven jobs, in the original's order
(helpers.notifications.NOTIFICATION_JOBS), each naming the course's job
function `{COURSE_FUNCTION_7}`,
its only argument exactly its {{"phoneNumber": ..., "message": ...}}, stored as
JSON (helpers.workers.queue). It prints `Notification job created: <id>` for
each job, in order, then, as workers run them, for each job
    Notification job <id> <percent>% complete
    Notification job <id> completed     (or: Notification job <id> failed: <error>)
and exits once every job has completed or failed. The course's job events do
it: JobEvents (made before the jobs), enqueue_with_events, print_until_done.
The checker runs it beside the course's two workers: jobs 1 and 2 fail
(`Phone number <n> is blacklisted`), jobs 3-11 report 0%, 50%, complete.
""",
        grade_job_creator_7,
    ),
    Task(
        "7-job_processor",
        "07",
        "worker",
        "progress 0% and 50%, the blacklist, two jobs at a time",
        f"""
Define process_notification(data) (data: {{"phoneNumber": ..., "message": ...}}):
it reports progress 0 (helpers.job_events.report_progress(0)); for a
blacklisted number ({", ".join(BLACKLISTED)}) it fails, raising an exception
whose message is `Phone number <phoneNumber> is blacklisted`; otherwise it
reports progress 50, prints `Sending notification to <phoneNumber>, with
message: <message>` and returns. Importing the file runs nothing. Run as a
program, it runs two workers on the queue `{QUEUE_7}`, with the
Redis at REDIS_URL: two jobs at a time. helpers.workers.main([QUEUE,
"--concurrency", "2"]) runs two of the course's workers. The checker enqueues
the eleven jobs naming the file's process_notification, and two jobs held at
a gate to see two run at once.
""",
        grade_job_processor_7,
    ),
]
