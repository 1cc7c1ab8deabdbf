"""The workers' allow-list: a forged JSON job names a function, and the
course's workers refuse every function that is not theirs to run."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from rq.job import JobStatus
from waiting import wait_for

from helpers.allowlist import COURSE_JOBS, ENV, JobNotAllowed, resolve_allowed
from helpers.workers import queue, start_worker


@pytest.fixture
def plain_allow_list(monkeypatch: pytest.MonkeyPatch) -> None:
    """The allow-list a learner's worker has (without the tests' extras)."""
    monkeypatch.delenv(ENV, raising=False)


def test_every_course_job_is_allowed_under_both_of_its_names(plain_allow_list) -> None:
    for name in COURSE_JOBS:
        assert callable(resolve_allowed(name))
    # The reliability package re-exports its jobs: the name lessons use works too.
    assert resolve_allowed("helpers.reliability.flaky_send").__name__ == "flaky_send"


@pytest.mark.parametrize(
    "name",
    [
        "os.system",
        "subprocess.check_output",
        "builtins.eval",
        "helpers.server.stop_server",  # the course's code, but not a job
        "helpers.reliability.start_dashboard",  # re-exported next to the jobs
    ],
)
def test_other_functions_are_refused_with_the_reason(plain_allow_list, name: str) -> None:
    with pytest.raises(JobNotAllowed, match=f"{name} is not on this worker's allow-list"):
        resolve_allowed(name)


def test_a_refused_name_is_never_imported(plain_allow_list) -> None:
    """Importing alone runs a module's code: an unknown module stays unloaded."""
    code = (
        "import sys\nfrom helpers.allowlist import JobNotAllowed, resolve_allowed\n"
        "try:\n    resolve_allowed('antigravity.geohash')\nexcept JobNotAllowed:\n    pass\n"
        "print('antigravity' in sys.modules)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "False"


def test_extra_entries_allow_a_function_or_a_module(plain_allow_list) -> None:
    with pytest.raises(JobNotAllowed):
        resolve_allowed("operator.add", extra=[])
    assert resolve_allowed("operator.add", extra=["operator.add"])(2, 3) == 5
    assert resolve_allowed("operator.mul", extra=["operator.*"])(2, 3) == 6
    with pytest.raises(JobNotAllowed):
        resolve_allowed("operator.mul", extra=["operator.add", "oper.*"])


def test_functions_of_the_learners_workspace_are_allowed(
    plain_allow_list, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    package = tmp_path / "workspace"
    package.mkdir()
    (package / "jobs.py").write_text("def greet(name):\n    return f'hello {name}'\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    assert resolve_allowed("workspace.jobs.greet")("you") == "hello you"


def test_a_forged_json_job_fails_on_a_course_worker_and_runs_nothing(
    plain_allow_list, r, tmp_path: Path
) -> None:
    """Anyone who can write to Redis can enqueue a JSON job naming
    ``os.system``: JSON loads no code, but the job names what to call."""
    proof = tmp_path / "forged-job-ran"
    q = queue("test_allowlist")
    forged = q.enqueue("os.system", f"touch {proof}")
    allowed = q.enqueue("helpers.reliability.hold_until", str(tmp_path), 1)  # exists: returns
    with start_worker("test_allowlist") as worker:
        wait_for(lambda: allowed.get_status(refresh=True) == JobStatus.FINISHED)
        wait_for(lambda: forged.get_status(refresh=True) == JobStatus.FAILED)
        assert worker.running  # the worker carries on
    assert not proof.exists()
    error = forged.latest_result().exc_string
    assert "JobNotAllowed: os.system is not on this worker's allow-list" in error


def test_a_forged_callback_is_refused_too(plain_allow_list, r) -> None:
    from rq import Callback

    q = queue("test_allowlist")
    job = q.enqueue("helpers.reliability.hold_until", "/", 1, on_success=Callback("os.system"))
    with start_worker("test_allowlist"):
        wait_for(lambda: job.get_status(refresh=True) == JobStatus.FAILED)
    assert (
        "JobNotAllowed: os.system is not on this worker's allow-list"
        in job.latest_result().exc_string
    )


def test_allow_on_the_command_line_lets_a_trusted_function_run(plain_allow_list, r) -> None:
    q = queue("test_allowlist")
    job = q.enqueue("operator.mul", 6, 7)
    with start_worker("test_allowlist", allow=["operator.mul"]):
        wait_for(lambda: job.get_status(refresh=True) == JobStatus.FINISHED)
    assert job.return_value(refresh=True) == 42
