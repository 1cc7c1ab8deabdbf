"""The job lesson 17's drills enqueue: trivial, so the drills measure Redis."""

from __future__ import annotations


def record(n: int) -> int:
    """Return ``n``: the drills only count what RQ kept of each job."""
    return n
