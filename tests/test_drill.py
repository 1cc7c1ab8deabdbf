"""The fault drill, run as a learner runs it: ``python -m helpers.drill``."""

from __future__ import annotations

import json
import subprocess
import sys

from helpers.drill import BLACKLISTED, guarantees
from helpers.reliability import registry_counts
from helpers.workers import queue


def run_drill(*args: str, timeout: float = 240) -> tuple[int, list[str], dict]:
    result = subprocess.run(
        [sys.executable, "-m", "helpers.drill", *args],
        capture_output=True, text=True, timeout=timeout,
    )  # fmt: skip
    lines = result.stdout.strip().splitlines()
    assert lines, result.stderr
    return result.returncode, lines, json.loads(lines[-1])


def test_drill_with_kills_loses_nothing_and_notifies_once(r) -> None:
    code, lines, summary = run_drill("--jobs", "30", "--kills", "2", "--seed", "7")
    assert code == 0, "\n".join(lines)
    # The contract: these keys first, in this order.
    assert list(summary)[:6] == ["enqueued", "kills", "finished", "failed", "lost", "duplicates"]
    assert summary["enqueued"] == 30 and summary["kills"] == 2
    assert summary["lost"] == 0 and summary["duplicates"] == 0
    assert summary["failed"] == 1  # job 25 targets the blacklisted number
    assert summary["finished"] == 29
    assert summary["failure_reasons"] == {
        f"helpers.notifications.BlacklistedNumber: Phone number {BLACKLISTED} is blacklisted": 1
    }
    # Two kills, each while a job ran: each such job was recovered at once
    # (unless it ended in the very instant of the kill).
    kill_lines = [line for line in lines if line.startswith("drill: kill ")]
    assert len(kill_lines) == 2
    for kill in summary["kill_log"]:
        # The worker and its work-horse: the drill kills only once the horse is forked,
        # the worker frozen (SIGSTOP) from that check to the kill.
        assert len(kill["pids"]) == 2, kill
        assert kill["held"]
        assert sorted(kill["recovered"] + kill["done_before_kill"]) == kill["held"]
    # At-least-once happened (retries of the blacklisted job at least), and the
    # notifications match the finished jobs one for one.
    assert summary["executions"] > 30
    assert summary["notifications"] == 29 and summary["finished_not_notified"] == []
    # RQ's own registries agree, read independently here.
    assert summary["registries_agree"] is True
    counts = registry_counts(queue("drill"))
    assert counts["finished"] + counts["failed"] == 30
    assert counts["queued"] == counts["started"] == counts["intermediate"] == 0
    finished = r.zrange("rq:finished:drill", 0, -1)
    assert len(finished) == 29 and r.ttl(f"rq:results:{finished[0]}") > 60  # kept for audit


def test_drill_exits_non_zero_when_the_queue_is_not_drained(r) -> None:
    code, lines, summary = run_drill("--jobs", "40", "--kills", "0", "--workers", "1",
                                     "--timeout", "1")  # fmt: skip
    assert code == 1
    assert summary["lost"] > 0 and summary["timed_out"] is True
    assert "drill: FAILED: the queue was not drained in time" in lines


def test_guarantees_name_every_broken_promise() -> None:
    ok = {
        "timed_out": False, "lost": 0, "duplicates": 0, "finished_not_notified": [],
        "failed_without_reason": [], "registries_agree": True, "kills": 3, "registries": {},
    }  # fmt: skip
    assert guarantees(ok, 3) == []
    broken = dict(ok, lost=2, duplicates=1, registries_agree=False, kills=1)
    problems = guarantees(broken, 3)
    assert len(problems) == 4
    assert "2 jobs lost (neither finished nor failed)" in problems
    assert "1 duplicate notifications" in problems
    assert "only 1 of 3 kills happened" in problems


def test_drill_rejects_bad_arguments() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "helpers.drill", "--jobs", "0"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode == 2 and "--jobs and --workers must be at least 1" in result.stderr
