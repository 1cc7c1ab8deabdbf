"""For the tests under tests/ only (not the notebooks' kernels): the course's
workers also run two standard-library functions that the tests use as
trivial jobs (``operator.add``, ``time.sleep``...). Lessons and learners get
the plain allow-list (:mod:`helpers.allowlist`). ``private``: a Redis of a
test's own, for tests that restart or pause it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from helpers.allowlist import ENV
from helpers.server import ServerInfo, start_server, stop_server

TEST_JOBS = "operator.*,time.sleep"


@pytest.fixture(autouse=True)
def _trivial_test_jobs_allowed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENV, TEST_JOBS)


@pytest.fixture
def private(tmp_path: Path) -> Iterator[ServerInfo]:
    """A Redis of this test's own, which it may restart or pause."""
    info = start_server(tmp_path)
    try:
        yield info
    finally:
        stop_server(tmp_path)
