"""For the tests under tests/ only (not the notebooks' kernels): the course's
workers also run two standard-library functions that the tests use as
trivial jobs (``operator.add``, ``time.sleep``...). Lessons and learners get
the plain allow-list (:mod:`helpers.allowlist`)."""

from __future__ import annotations

import pytest

from helpers.allowlist import ENV

TEST_JOBS = "operator.*,time.sleep"


@pytest.fixture(autouse=True)
def _trivial_test_jobs_allowed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENV, TEST_JOBS)
