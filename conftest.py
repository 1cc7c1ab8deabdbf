"""Test session set-up: a private redis-server on a free port.

Started with the same code as the course's embedded default
(:func:`helpers.server.start_server`), in a temporary folder, before any
test or notebook runs. ``REDIS_URL`` points at it, so nbval's kernels, worker
processes and services started by tests all use it, and nothing a learner
keeps in their own Redis is ever touched. ``COURSE_DATA_DIR`` sends logs to
the same temporary folder.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from helpers.server import ServerInfo, start_server, stop_server

_session: dict[str, object] = {}


def pytest_configure(config: pytest.Config) -> None:
    # Before collection: nbval starts kernels later, which inherit this env.
    tmp = Path(tempfile.mkdtemp(prefix="course-tests-"))
    info = start_server(tmp)
    _session.update(tmp=tmp, info=info, saved=os.environ.get("REDIS_URL"))
    os.environ["REDIS_URL"] = info.url
    os.environ["COURSE_DATA_DIR"] = str(tmp / "data")


def pytest_unconfigure(config: pytest.Config) -> None:
    tmp = _session.get("tmp")
    if isinstance(tmp, Path):
        stop_server(tmp)
        shutil.rmtree(tmp, ignore_errors=True)


@pytest.fixture(scope="session")
def redis_server() -> ServerInfo:
    """The session's private server."""
    info = _session["info"]
    assert isinstance(info, ServerInfo)
    return info


@pytest.fixture
def r(redis_server: ServerInfo) -> Iterator[redis.Redis]:
    """A client of the private server, emptied before the test (it is ours)."""
    client = redis.Redis.from_url(redis_server.url, decode_responses=True)
    client.flushdb()
    yield client
    client.close()


@pytest.fixture
def artifacts_dir() -> Path:
    """Where tests leave files for people to look at (screenshots, logs)."""
    path = Path(__file__).resolve().parent / "test-artifacts"  # conftest.py is at the root
    path.mkdir(exist_ok=True)
    return path
