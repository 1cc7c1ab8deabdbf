"""Task 8: ``create_push_notifications_jobs(jobs, queue)``, graded as the
original's ``8-job.test.js`` tested it, and then some.

A driver imports the file and first plays the original's tests in "test
mode" (no worker: jobs stay queued; the queue cleared after each step): each
non-list raises ``Jobs is not an array``, invalid job data is refused with
nothing enqueued, an empty list creates nothing, two jobs are queued with
their data and print their ``created`` lines, and events fired by hand
(``helpers.job_events.emit``, as the course's tests fire them) print their
lines. Then it creates two of lesson 07's jobs for the course's worker, which
works in another database of the same private Redis (so it never takes the
test-mode jobs): their progress, failed and completed lines print as they
happen, and no job is left behind. The driver prints what it saw as
``@@ {json}`` lines; what the learner's code prints is captured, not mixed in.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

from helpers.check.driver import RECORD, call_driver, import_is_quiet
from helpers.check.report import Requirement, requirement
from helpers.check.sandbox import Run, Sandbox
from helpers.check.task import Task
from helpers.job_events import shown_id
from helpers.programs.t8_job import JOB_FUNCTION, JOB_PREFIX, TESTED_QUEUE

NOT_AN_ARRAY = "Jobs is not an array"
JOBS = [
    {"phoneNumber": "4153518780", "message": "This is the code 1234 to verify your account"},
    {"phoneNumber": "4153518781", "message": "This is the code 4562 to verify your account"},
]
GOOD = {"phoneNumber": "4153518743", "message": "This is the code 4321 to verify your account"}
NON_LISTS: list[tuple[str, str, Any]] = [
    ("dict", "a dict (one job, not in a list)", dict(JOBS[0])),
    ("string", "a string", "Hello"),
    ("none", "None", None),
    ("number", "a number", 42),
]
INVALID: list[tuple[str, str, Any, str]] = [
    ("no_message", "a job without `message`", {"phoneNumber": "4153518743"}, "message"),
    (
        "bad_phone",
        "a phone number that is not all digits",
        {"phoneNumber": "415-351-8743", "message": "Hi"},
        "phoneNumber",
    ),
]
FIRED = "fired"  # the step that fires events by hand
WORKER_JOBS = [JOBS[0], GOOD]  # lesson 07's jobs 1 (blacklisted) and 3 (sent)
WORKER_DB = 1  # the worker's database: never the test mode's
EVENTS_WAIT_S = 3.0  # for lines after events fired by hand
WORKER_WAIT_S = 10.0  # for a worker to start and run two jobs (a loaded machine)

# The driver's tools: capture what the learner's code prints (any thread),
# record findings on the real stdout, describe a queue's jobs.
DRIVER_TOOLS = f"""
import json, sys, threading, time
from rq.job import Job
from helpers.workers import queue as course_queue

class Capture:
    def __init__(self):
        self.text, self.lock = "", threading.Lock()
    def write(self, text):
        with self.lock:
            self.text += text
        return len(text)
    def flush(self):
        pass
    def mark(self):
        with self.lock:
            return len(self.text)
    def since(self, mark):
        with self.lock:
            return self.text[mark:].splitlines()
    def wait_lines(self, mark, count, timeout):
        deadline = time.monotonic() + timeout
        while len(self.since(mark)) < count and time.monotonic() < deadline:
            time.sleep(0.02)
        time.sleep(0.1)  # a line too many would show by now

REAL = sys.stdout
captured = Capture()

def record(step, **found):
    REAL.write({RECORD!r} + json.dumps(dict(step=step, **found), default=repr) + "\\n")
    REAL.flush()

def failure(error):
    return [type(error).__name__, str(error)]

def job_count():
    return sum(1 for _ in client.scan_iter("rq:job:*"))

def describe(q, job_id):
    try:
        job = Job.fetch(job_id, connection=q.connection, serializer=q.serializer)
        return dict(id=job_id, func=job.func_name, args=job.args, kwargs=job.kwargs,
                    origin=job.origin, status=getattr(job.get_status(), 'value', None))
    except Exception as error:
        return dict(id=job_id, error=failure(error))

q = course_queue({TESTED_QUEUE!r})
create = getattr(task, "create_push_notifications_jobs", None)
record("defined", callable=callable(create), module=getattr(create, "__module__", None))
sys.stdout = captured
"""

TEST_MODE = f"""
def attempt(step, jobs):
    mark, before = captured.mark(), job_count()
    try:
        create(jobs, q)
        error = None
    except Exception as exc:
        error = failure(exc)
    record(step, error=error, printed=captured.since(mark), queued=q.count,
           new_jobs=job_count() - before)
    q.empty()  # the original's tests cleared the queue after each test

for step, jobs in {[(step, value) for step, _, value in NON_LISTS]!r}:
    attempt(step, jobs)
attempt("empty", [])
for step, bad in {[(step, value) for step, _, value, _ in INVALID]!r}:
    attempt(step, [{GOOD!r}, bad])

mark, before = captured.mark(), job_count()
try:
    create({JOBS!r}, q)
    error = None
except Exception as exc:
    error = failure(exc)
ids = q.job_ids
record("two", error=error, printed=captured.since(mark), new_jobs=job_count() - before,
       jobs=[describe(q, job_id) for job_id in ids])
if error is None and len(ids) == 2:
    from helpers.job_events import emit
    mark = captured.mark()
    emit(q.connection, q.name, ids[0], "progress", progress=25)
    emit(q.connection, q.name, ids[0], "failed", error="Failed to send")
    emit(q.connection, q.name, ids[1], "completed")
    captured.wait_lines(mark, 3, {EVENTS_WAIT_S!r})
    record({FIRED!r}, ids=ids, printed=captured.since(mark))
"""

WITH_WORKER = f"""
# The worker's database from here on (WORKER_URL: set by the grader).
client = redis.Redis.from_url(WORKER_URL, decode_responses=True)
q = course_queue({TESTED_QUEUE!r}, connection=redis.Redis.from_url(WORKER_URL))
FINAL = {{"finished", "failed", "stopped", "canceled"}}

def job_ids():
    return sorted(key.removeprefix("rq:job:") for key in client.scan_iter("rq:job:*"))

def all_final():
    statuses = [client.hget("rq:job:" + job_id, "status") for job_id in job_ids()]
    return bool(statuses) and all(status in FINAL for status in statuses)

mark = captured.mark()
try:
    create({WORKER_JOBS!r}, q)
    error = None
except Exception as exc:
    error = failure(exc)
# Until the 7 lines are out (2 created, 2 + 3 events), or the worker is done
# with every job and a moment has passed for the lines, or time is up.
deadline, done_at = time.monotonic() + {WORKER_WAIT_S!r}, None
while error is None and len(captured.since(mark)) < 7 and time.monotonic() < deadline:
    if done_at is None and all_final():
        done_at = time.monotonic()
    if done_at is not None and time.monotonic() > done_at + 0.5:
        break
    time.sleep(0.05)
time.sleep(0.1)  # a line too many would show by now
ids = job_ids()
end = time.monotonic() + 1.0
while ids and not all_final() and time.monotonic() < end:
    time.sleep(0.02)
record("worker", error=error, printed=captured.since(mark),
       jobs=[describe(q, job_id) for job_id in ids], queued=q.count,
       running=q.started_job_registry.get_job_ids())
"""


def _records(run: Run) -> dict[str, dict[str, Any]]:
    """A driver's findings by step."""
    found: dict[str, dict[str, Any]] = {}
    for line in run.lines:
        if line.startswith(RECORD):
            try:
                entry = json.loads(line[len(RECORD) :])
            except ValueError:
                continue
            found[entry.pop("step")] = entry
    return found


def _missing(run: Run) -> str:
    """Why a driver's step left no record."""
    return run.problem() or "the driver stopped before this step"


def _shown(lines: list[str], ids: list[str]) -> list[str]:
    """``lines`` naming each job by its number, as the original's lines do
    (a line naming the whole RQ id ``push_notification_code_3-1`` reads ``1``)."""
    for job_id in sorted(ids, key=len, reverse=True):
        lines = [line.replace(f" {job_id}", f" {shown_id(job_id)}") for line in lines]
    return lines


def _raised(entry: dict[str, Any]) -> str:
    """``raised TypeError: <message>`` (the type alone if the message is empty), or ``no error``."""
    error = entry.get("error")
    if not error:
        return "no error"
    return f"raised {error[0]}: {error[1]}" if error[1] else f"raised {error[0]}"


def _outcome(entry: dict[str, Any]) -> str:
    jobs = entry["new_jobs"]
    return f"{_raised(entry)}; {jobs} job{'' if jobs == 1 else 's'} created"


def _refuses_non_list(label: str, entry: dict[str, Any] | None, run: Run) -> Requirement:
    name = f"{label}: raises `{NOT_AN_ARRAY}`, enqueues nothing"
    expected = f"{NOT_AN_ARRAY!r}, exactly; no job"
    if entry is None:
        return Requirement(name, False, expected, _missing(run))
    error = entry.get("error")
    ok = bool(error) and error[1] == NOT_AN_ARRAY and entry["new_jobs"] == 0
    return Requirement(name, ok, expected, _outcome(entry))


def _refuses_invalid(label: str, field: str, entry: dict[str, Any] | None, run: Run) -> Requirement:
    name = f"{label}: refused (a ValueError/TypeError naming `{field}`), nothing enqueued"
    expected = f"ValueError or TypeError mentioning {field!r}; no job, not even the valid one"
    if entry is None:
        return Requirement(name, False, expected, _missing(run))
    error = entry.get("error")
    ok = (
        bool(error)
        and error[0] in ("ValueError", "TypeError")
        and field in error[1]
        and entry["new_jobs"] == 0
    )
    return Requirement(name, ok, expected, _outcome(entry))


def _test_mode(run: Run) -> Iterator[Requirement]:
    found = _records(run)
    defined = found.get("defined")
    yield Requirement(
        "the file defines `create_push_notifications_jobs(jobs, queue)` itself",
        bool(defined and defined["callable"] and str(defined["module"]).startswith("workspace.")),
        "a function defined in the file (not imported from helpers)",
        json.dumps(defined) if defined else _missing(run),
    )
    for step, label, _value in NON_LISTS:
        yield _refuses_non_list(label, found.get(step), run)
    empty = found.get("empty")
    yield Requirement(
        "an empty list: creates nothing, prints nothing",
        bool(empty and not empty["error"] and empty["new_jobs"] == 0 and not empty["printed"]),
        "no error, no job, no line",
        f"{_outcome(empty)}; printed {empty['printed']}" if empty else _missing(run),
    )
    for step, label, _value, field in INVALID:
        yield _refuses_invalid(label, field, found.get(step), run)
    yield from _two_jobs(found.get("two"), found.get(FIRED), run)


def _two_jobs(
    two: dict[str, Any] | None, fired: dict[str, Any] | None, run: Run
) -> Iterator[Requirement]:
    jobs = two["jobs"] if two else []
    ids = [job["id"] for job in jobs]
    created = two["new_jobs"] if two else 0
    printed = two["printed"] if two else []
    ran = bool(two and not two["error"])  # the call returned
    got = _missing(run) if two is None else _outcome(two) if two["error"] else ""
    yield Requirement(
        f"two jobs: two jobs waiting in `{TESTED_QUEUE}`, nothing else",
        ran and created == 2 and len(jobs) == 2 and all(j.get("status") == "queued" for j in jobs),
        f"2 queued jobs on {TESTED_QUEUE}",
        got or f"{created} job(s) created; waiting in the queue: {ids}",
    )
    data = [(job["args"], job["kwargs"]) if "args" in job else job["error"] for job in jobs]
    yield Requirement(
        "two jobs: each job's only argument is its data, byte for byte",
        ran and [json.dumps(each) for each in data] == [json.dumps([[job], {}]) for job in JOBS],
        "args [<the input dict>], no kwargs, for each job in order",
        got or json.dumps(data),
    )
    yield Requirement(
        f"two jobs: each job runs `{JOB_FUNCTION}`",
        ran and [job.get("func") for job in jobs] == [JOB_FUNCTION] * 2,
        JOB_FUNCTION,
        got or repr([job.get("func") for job in jobs]),
    )
    shown = [shown_id(job_id) for job_id in ids] if len(ids) == 2 else ["1", "2"]
    yield requirement(
        f"two jobs: prints `{JOB_PREFIX} created: <id>` for each, in order",
        [f"{JOB_PREFIX} created: {number}" for number in shown],
        got or _shown(printed, ids),
    )
    yield requirement(
        "events fired by hand print `<id> 25% complete`, `<id> failed: Failed to send`, "
        "`<id> completed`",
        [
            f"{JOB_PREFIX} {shown[0]} 25% complete",
            f"{JOB_PREFIX} {shown[0]} failed: Failed to send",
            f"{JOB_PREFIX} {shown[1]} completed",
        ],
        _shown(fired["printed"], ids) if fired else got or "(not fired: not two jobs)",
    )


def _phone(job: dict[str, Any]) -> str | None:
    args = job.get("args") or [{}]
    return args[0].get("phoneNumber") if isinstance(args[0], dict) else None


def _with_worker(run: Run) -> Iterator[Requirement]:
    entry = _records(run).get("worker")
    lines_name = (
        "with the course's worker: each job's lines as it runs "
        "(job 1: 0%, failed: blacklisted; job 2: 0%, 50%, completed)"
    )
    left_name = "no job left behind: with the worker, every job finished or failed"
    if entry is None or entry["error"]:
        got = _missing(run) if entry is None else _raised(entry)
        yield Requirement(lines_name, False, "the created lines, then each job's events", got)
        yield Requirement(left_name, False, "every job finished or failed", got)
        return
    jobs = entry["jobs"]
    ids = [job["id"] for job in jobs]
    printed = _shown(entry["printed"], ids)
    blacklisted = next(
        (job["id"] for job in jobs if _phone(job) == WORKER_JOBS[0]["phoneNumber"]), "?"
    )
    sent = next((job["id"] for job in jobs if _phone(job) == GOOD["phoneNumber"]), "?")
    one, two = shown_id(blacklisted), shown_id(sent)
    expected = {
        one: [
            f"{JOB_PREFIX} created: {one}",
            f"{JOB_PREFIX} {one} 0% complete",
            f"{JOB_PREFIX} {one} failed: Phone number {WORKER_JOBS[0]['phoneNumber']} is blacklisted",
        ],
        two: [
            f"{JOB_PREFIX} created: {two}",
            f"{JOB_PREFIX} {two} 0% complete",
            f"{JOB_PREFIX} {two} 50% complete",
            f"{JOB_PREFIX} {two} completed",
        ],
    }
    per_job = {
        number: [line for line in printed if line in lines] for number, lines in expected.items()
    }
    created = [line for line in printed if " created: " in line]
    mine = {line for lines in expected.values() for line in lines}
    extra = [line for line in printed if line not in mine]
    ok = (
        per_job == expected
        and created == [expected[one][0], expected[two][0]]
        and not extra
        and len(printed) == 7
    )
    yield Requirement(
        lines_name, ok, " | ".join(expected[one] + expected[two]), " | ".join(printed)
    )
    statuses = {job["id"]: job.get("status") for job in jobs}
    yield Requirement(
        left_name,
        len(jobs) == 2
        and set(statuses.values()) <= {"finished", "failed"}
        and entry["queued"] == 0
        and not entry["running"],
        "2 jobs, each finished or failed; the queue empty",
        f"statuses {statuses}; {entry['queued']} waiting; running {entry['running']}",
    )


def grade_job(sandbox: Sandbox) -> Iterator[Requirement]:
    # The worker starts first (it takes a moment), on its own database.
    worker_url = f"{sandbox.url.rsplit('/', 1)[0]}/{WORKER_DB}"
    sandbox.start_module(
        ["helpers.workers", TESTED_QUEUE, "--name", f"check-8-job-{uuid.uuid4().hex[:6]}"],
        "worker",
        REDIS_URL=worker_url,
        COURSE_DATA_DIR=str(sandbox.folder / "data"),
    )
    code = DRIVER_TOOLS + TEST_MODE + f"WORKER_URL = {worker_url!r}\n" + WITH_WORKER
    run = call_driver(sandbox, code, timeout_s=25)
    yield import_is_quiet(run)
    yield from _test_mode(run)
    yield from _with_worker(run)


TASKS = [
    Task(
        "8-job",
        "08",
        "function",
        "create_push_notifications_jobs(jobs, queue): Jobs is not an array, one job per item",
        f"""
Define create_push_notifications_jobs(jobs, queue); importing the file runs
nothing (a demonstration goes under `if __name__ == "__main__":`). `queue` is
an rq.Queue (JSON serializer) named `{TESTED_QUEUE}`; reach Redis
through queue.connection (the checker's, from REDIS_URL).
- `jobs` not a list (a dict, a string, None, a number): raise TypeError with
  the message exactly `{NOT_AN_ARRAY}`; enqueue nothing.
- Check every job before enqueuing any: a dict with `phoneNumber` (digits
  only) and `message` (a non-empty string); else raise a ValueError or
  TypeError whose message names the field, and enqueue nothing.
- One job per item on `queue`: the item its only argument, the job function
  named "{JOB_FUNCTION}", the
  event callbacks of helpers.job_events (enqueue_with_events attaches them).
- Print `{JOB_PREFIX} created: <id>` for each job, in order, before
  returning; then, as each job's events arrive (a worker's, or fired by hand
  with helpers.job_events.emit), `{JOB_PREFIX} <id> <p>% complete`,
  `... completed`, `... failed: <error>`: helpers.job_events.creator_listener
  prints them. <id> is the job's number (ids from helpers.job_events.job_ids)
  or its RQ id.
- An empty list creates nothing.
""",
        grade_job,
    ),
]
