"""No silent skips in CI: a browser test that cannot run fails there, saying why.

Outside CI the same test is skipped with its reason (``make test`` prints it:
``-rs``). Each case runs one browser test in a pytest of its own, with a
``CHROMIUM`` that points at nothing: the ``chromium`` fixture gives up before
JupyterLab would start, so this stays cheap.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tools import pytest_quick_imports as quick_imports

ROOT = Path(__file__).resolve().parent.parent
BROWSER_TEST = "tests/test_browser.py::test_course_map_connects_to_redis"
REASON = "CHROMIUM=/nonexistent is not a Chromium executable"


def _run_browser_test(**env: str) -> subprocess.CompletedProcess[str]:
    # Nothing of this session's own CI or xdist settings leaks into the child.
    base = {
        k: v
        for k, v in os.environ.items()
        if k not in ("CI", "PYTEST_ADDOPTS") and not k.startswith("PYTEST_XDIST")
    }
    command = [
        sys.executable, "-m", "pytest", *quick_imports.ARGS, "-p", "no:cacheprovider", "-rs", BROWSER_TEST,
    ]  # fmt: skip
    return subprocess.run(
        command,
        cwd=ROOT,
        env={**base, "CHROMIUM": "/nonexistent", **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_in_ci_a_browser_test_that_cannot_run_fails_with_its_reason() -> None:
    result = _run_browser_test(CI="true")
    out = result.stdout + result.stderr
    assert result.returncode == 1, out[-3000:]
    assert REASON in out and "CI=true: this test must run in CI" in out, out[-3000:]
    assert "skipped" not in result.stdout.splitlines()[-1], result.stdout[-1000:]


def test_outside_ci_it_is_skipped_with_its_reason() -> None:
    result = _run_browser_test()
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    skipped = [line for line in result.stdout.splitlines() if line.startswith("SKIPPED")]
    assert len(skipped) == 1 and REASON in skipped[0], result.stdout[-3000:]
    assert "1 skipped" in result.stdout.splitlines()[-1], result.stdout[-1000:]
