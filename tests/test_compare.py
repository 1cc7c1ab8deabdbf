"""helpers.compare: RQ, Celery, Dramatiq and arq on the same work.

One smoke-sized run of ``python -m helpers.compare --json --quick``
(``COURSE_COMPARE_SIZE=smoke``: every measurement, from few jobs) serves
the three checks of the issue: each implementation ran the original's eleven
jobs with the original's lines and outcome; every key is there with a sane
value; and with each library's at-least-once settings, the crash drill lost
nothing. No timing assertions: speed is what the command prints.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any

import pytest
import redis

from helpers.compare import work
from helpers.compare.measure import SIZE_ENV
from helpers.programs.t7_job_creator import NOTIFICATION_JOBS
from helpers.programs.t7_job_processor import BLACKLISTED_NUMBERS

LIBRARIES = ("rq", "celery", "dramatiq", "arq")
FIGURES = ("enqueue_per_s", "latency_p50_ms", "latency_p99_ms", "round_trips_per_job")


def original_lines() -> list[str]:
    """What the original's creator prints for the eleven jobs, job by job."""
    lines = [f"Notification job created: {n}" for n in range(1, 12)]
    for n, data in enumerate(NOTIFICATION_JOBS, start=1):
        lines.append(f"Notification job {n} 0% complete")
        if data["phoneNumber"] in BLACKLISTED_NUMBERS:
            lines.append(
                f"Notification job {n} failed: Phone number {data['phoneNumber']} is blacklisted"
            )
        else:
            lines += [f"Notification job {n} 50% complete", f"Notification job {n} completed"]
    return lines


@pytest.fixture(scope="module")
def results() -> dict[str, Any]:
    """One smoke-sized quick run, as a learner would start it; the learner's
    own keys in database 0 and in the libraries' databases are left alone."""
    url = os.environ["REDIS_URL"]
    mine = redis.Redis.from_url(url)
    mine.set("mine", "untouched")
    theirs = redis.Redis.from_url(work.library_url("celery", url))
    theirs.set("mine", "untouched")
    completed = subprocess.run(
        [sys.executable, "-m", "helpers.compare", "--json", "--quick"],
        capture_output=True,
        text=True,
        timeout=240,
        env=dict(os.environ, **{SIZE_ENV: "smoke"}),
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    assert mine.get("mine") == theirs.get("mine") == b"untouched"
    mine.delete("mine")
    theirs.delete("mine")
    return json.loads(completed.stdout)


def test_original_lines_are_the_originals() -> None:
    lines = original_lines()
    assert len(lines) == 11 + 2 * 2 + 9 * 3
    assert lines[11:13] == [
        "Notification job 1 0% complete",
        "Notification job 1 failed: Phone number 4153518780 is blacklisted",
    ]


def test_library_urls_keep_the_server_and_change_the_database() -> None:
    assert work.library_url("rq", "redis://:pw@127.0.0.1:7000/0") == "redis://:pw@127.0.0.1:7000/11"
    assert work.library_url("arq", "redis://127.0.0.1:7000") == "redis://127.0.0.1:7000/14"
    assert len(set(work.DATABASES.values())) == len(LIBRARIES)


@pytest.mark.parametrize("name", LIBRARIES)
def test_each_library_runs_the_eleven_jobs_with_the_originals_outcome(
    results: dict[str, Any], name: str
) -> None:
    notifications = results["libraries"][name]["notifications"]
    assert (notifications["completed"], notifications["failed"]) == (9, 2)
    assert notifications["lines"] == original_lines()


def test_quick_json_has_every_key_with_sane_values(results: dict[str, Any]) -> None:
    assert set(results) == {"libraries", "machine"}
    assert set(results["libraries"]) == set(LIBRARIES)
    for name, result in results["libraries"].items():
        for key in FIGURES:
            assert result[key] > 0, (name, key)
        assert set(result["jobs_per_s"]) == {"1", "2"}
        assert all(rate > 0 for rate in result["jobs_per_s"].values()), name
        assert result["latency_p99_ms"] >= result["latency_p50_ms"], name
        assert result["round_trips_per_job"] <= result["commands_per_job"], name
        assert result["version"]
        for settings in work.SETTINGS:
            drill = result["drill"][settings]
            # Both kills happen, unless a library stops running the jobs after the first
            # (Celery's defaults: the jobs it had reserved wait for an hour).
            assert drill["kills"] in ((1, 2) if settings == work.DEFAULT else (2,)), (name, drill)
            assert drill["lost"] >= 0 and drill["duplicated"] >= 0
            assert drill["done"] + drill["lost"] + drill["late"] == drill["jobs"], (name, drill)
    machine = results["machine"]
    assert machine["cpus"] >= 1 and machine["redis_version"] and machine["size"] == "smoke"
    # Libraries take turns: each round starts with another library.
    firsts = [order[0] for order in machine["rounds"][0]]
    assert len(set(firsts)) == len(firsts)


@pytest.mark.parametrize("name", LIBRARIES)
def test_at_least_once_settings_lose_nothing_in_the_crash_drill(
    results: dict[str, Any], name: str
) -> None:
    drill = results["libraries"][name]["drill"][work.AT_LEAST_ONCE]
    assert drill["kills"] == 2
    assert (drill["lost"], drill["late"]) == (0, 0), drill
    assert drill["done"] == drill["jobs"]
    # The job killed after its side effect ran again: a duplicate, shown, not hidden.
    after = [kill["job"] for kill in drill["kill_log"] if kill["hold"] == work.HOLD_AFTER]
    assert after and set(after) <= set(drill["duplicated_jobs"]), drill
