"""The checker's command line: --list, TASK --help, --json, --all, exit status.
Each task's own requirements are tested in tests/test_check_<group>.py."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from check_files import ROOT

from helpers.check import TASKS, find_task, grade

ORIGINAL_NAMES = [
    "0-redis_client",
    "1-redis_op",
    "2-redis_op_async",
    "4-redis_advanced_op",
    "5-subscriber",
    "5-publisher",
    "6-job_creator",
    "6-job_processor",
    "7-job_creator",
    "7-job_processor",
    "8-job",
    "9-stock",
    "100-seat",
]


def check(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "helpers.check", *args],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=cwd,
    )


def test_list_names_the_thirteen_tasks_in_the_original_order() -> None:
    done = check("--list")
    assert done.returncode == 0, done.stderr
    assert [line.split()[0] for line in done.stdout.splitlines()] == ORIGINAL_NAMES
    assert [task.name for task in TASKS] == ORIGINAL_NAMES


@pytest.mark.parametrize("task", ORIGINAL_NAMES)
def test_task_help_states_the_file_contract(task: str) -> None:
    done = check(task, "--help")
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f"{task} (lesson ")
    assert "REDIS_URL" in done.stdout, "every contract says how the file finds Redis"
    assert str(find_task(task).solution) in done.stdout


@pytest.mark.parametrize("task", ORIGINAL_NAMES)
def test_the_reference_solution_passes(task: str) -> None:
    report = grade(task, solution=True)
    assert report.passed, "\n".join(report.lines())


@pytest.mark.parametrize("task", ORIGINAL_NAMES)
def test_the_lesson_states_the_contract_and_has_the_task_cells(task: str) -> None:
    """The task's lesson quotes its contract and has the workspace cell, the
    check cell and the reference solution's %load line."""
    found = find_task(task)
    (lesson,) = (ROOT / "notebooks").glob(f"{found.lesson}-*.ipynb")
    sources = ["".join(cell["source"]) for cell in json.loads(lesson.read_text())["cells"]]
    turn = [s for s in sources if s.startswith(f"## Your turn: `{task}`")]
    assert len(turn) == 1, f"{lesson.name}: one 'Your turn: `{task}`' cell"
    assert " ".join(found.contract.split()) in " ".join(turn[0].split()), "the contract, quoted"
    assert any(s.startswith(f"%%writefile {{WORKSPACE}}/{task}.py\n") for s in sources)
    assert f"!{{sys.executable}} -m helpers.check {task}" in sources
    assert f"# %load ../helpers/programs/{found.module}.py" in sources


def test_unknown_task_is_refused_naming_the_known_ones() -> None:
    done = check("3-nope")
    assert done.returncode == 2
    assert "unknown task '3-nope'" in done.stderr and "7-job_processor" in done.stderr


def test_json_reports_each_requirement_and_exit_status_follows(tmp_path: Path) -> None:
    good = check("1-redis_op", "--solution", "--json")
    assert good.returncode == 0, good.stdout + good.stderr
    report = json.loads(good.stdout)
    assert report["task"] == "1-redis_op" and report["passed"] is True and report["score"] == 1.0
    assert report["met"] == report["total"] == len(report["requirements"]) >= 3
    assert set(report["requirements"][0]) == {"name", "passed", "expected", "got"}

    broken = tmp_path / "1-redis_op.py"
    broken.write_text("raise NotImplementedError\n")
    bad = check("1-redis_op", str(broken), "--json")
    assert bad.returncode == 1
    report = json.loads(bad.stdout)
    assert report["passed"] is False and report["score"] == 0.0
    assert "NotImplementedError" in report["requirements"][0]["got"]


def test_missing_file_fails_clearly(tmp_path: Path) -> None:
    report = grade("1-redis_op", tmp_path / "nothing.py")
    assert not report.passed and report.failed() == ["the file exists"]


def test_all_grades_every_task_file_in_a_folder(tmp_path: Path) -> None:
    (tmp_path / "1-redis_op.py").write_text(find_task("1-redis_op").solution.read_text())
    (tmp_path / "4-redis_advanced_op.py").write_text("print('hello')\n")
    (tmp_path / "notes.py").write_text("raise SystemExit(3)\n")  # not a task file: ignored
    table = check("--all", str(tmp_path))
    assert table.returncode == 1, table.stdout
    rows = table.stdout.splitlines()
    assert rows[0].split() == ["task", "score", "result"]
    task, score, result = rows[1].split()[:3]
    met, total = score.split("/")
    assert (task, result) == ("1-redis_op", "all") and met == total
    assert rows[2].startswith("4-redis_advanced_op") and "failed: first run" in rows[2]
    assert rows[-1] == "1/2 tasks passed"
    as_json = check("--all", str(tmp_path), "--json")
    assert [json.loads(line)["task"] for line in as_json.stdout.splitlines()] == [
        "1-redis_op",
        "4-redis_advanced_op",
    ]


def test_a_hanging_file_fails_with_no_answer(tmp_path: Path) -> None:
    hanging = tmp_path / "1-redis_op.py"
    hanging.write_text(
        "import time\nprint('Redis client connected to the server', flush=True)\ntime.sleep(60)\n"
    )
    report = grade("1-redis_op", hanging)
    assert not report.passed
    assert "no answer in 10 s" in report.requirements[0].got


def test_a_crash_is_quoted_as_plain_text_even_when_colour_is_forced(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A notebook kernel sets FORCE_COLOR for what it starts; Python 3.13 then
    # colours tracebacks, and the quote of the learner's crash must stay text.
    monkeypatch.setenv("FORCE_COLOR", "1")
    crashing = tmp_path / "0-redis_client.py"
    crashing.write_text("raise NotImplementedError  # your code here\n")
    report = grade("0-redis_client", crashing)
    assert not report.passed
    quoted = " ".join(requirement.got for requirement in report.requirements)
    assert "NotImplementedError" in quoted and "\x1b[" not in quoted, quoted
