"""tools/pytest_cpu_durations.py: the tests that cost the most CPU, counted
with the processes they start, in one process and under pytest-xdist."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
# Only the plugins a command names (-p): nbval, playwright and the rest cost 2 CPU-s a run.
ONLY_NAMED_PLUGINS = {"PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"}

TESTS = """
import subprocess, sys

def test_burns_in_a_child():
    # Half a CPU-second or so, all of it in a process below the test's.
    subprocess.run([sys.executable, "-c", "sum(range(20_000_000))"], check=True)

def test_idle():
    pass
"""


def run_pytest(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """pytest with this plugin over :data:`TESTS`, in ``tmp_path``."""
    (tmp_path / "test_burn.py").write_text(TESTS)
    command = [
        sys.executable, "-m", "pytest", "-p", "tools.pytest_cpu_durations",
        "-p", "no:cacheprovider", *args, "test_burn.py",
    ]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(ROOT), **ONLY_NAMED_PLUGINS}
    run = subprocess.run(
        command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120
    )
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-2000:]
    return run


@pytest.mark.parametrize("xdist", [[], ["-p", "xdist", "-n", "2"]], ids=["one process", "xdist"])
def test_lists_the_test_whose_child_burns_cpu_first(tmp_path: Path, xdist: list[str]) -> None:
    run = run_pytest(tmp_path, "--cpu-durations=2", *xdist)
    rows = re.findall(r"^ *([0-9.]+) CPU-s  (\S+)$", run.stdout, re.MULTILINE)
    tests = [(float(cpu), name) for cpu, name in rows if "::" in name]
    assert [name.split("::")[1] for _, name in tests] == ["test_burns_in_a_child", "test_idle"]
    assert tests[0][0] >= 0.2 > tests[1][0], tests
    assert re.search(r"^ *[0-9.]+ CPU-s  test_burn\.py$", run.stdout, re.MULTILINE)
    assert re.search(r"so at least \d+ s of wall time", run.stdout)
    if Path("/proc/stat").exists():  # the whole machine: at least the child's burn
        machine = re.search(r"the machine was busy ([0-9.]+) CPU-s meanwhile", run.stdout)
        assert machine and float(machine[1]) >= tests[0][0], run.stdout[-500:]


def test_off_without_the_option(tmp_path: Path) -> None:
    assert "CPU-s" not in run_pytest(tmp_path).stdout
