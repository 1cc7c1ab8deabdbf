"""Waiting in tests for something that happens in another process."""

from __future__ import annotations

import time
from collections.abc import Callable


def wait_for(predicate: Callable[[], object], timeout: float = 60.0, step: float = 0.05) -> None:
    """Return once ``predicate()`` is true; fail the test after ``timeout`` s.
    Generous by default: a slow, loaded CI machine is not a failure."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout} s")
        time.sleep(step)
