"""Test session set-up: a private redis-server on a free port.

Started with the same code as the course's embedded default
(:func:`helpers.server.start_server`), in a temporary folder, before any
test or notebook runs. ``REDIS_URL`` points at it, so nbval's kernels, worker
processes and services started by tests all use it, and nothing a learner
keeps in their own Redis is ever touched. ``COURSE_DATA_DIR`` sends logs to
the same temporary folder, and ``IPYTHONDIR`` gives the kernels a profile there
(not the learner's: their startup files, settings and history stay out of it).

Under pytest-xdist (``make test`` runs ``-n N --dist loadgroup``), every
worker process runs :func:`pytest_configure` and so gets a server and a data
folder of its own: no test sees another worker's keys, logs, workers or
server state. The controller process runs no test, so it starts nothing; it
hands out work units (see :func:`work_units`): a notebook's cells stay
together and in order in one worker, and so do the tests that share an
expensive module-scoped fixture, while every other test goes to whichever
worker is free.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from helpers.server import ServerInfo, start_server, stop_server

try:  # nbval is a test extra; a learner's pytest (lesson 08) runs without it
    import nbval  # noqa: F401
except ImportError:
    pytest_plugins: list[str] = []
else:  # under nbval, each exercise is also checked with its solution loaded
    pytest_plugins = ["tools.nbval_exercises"]

_session: dict[str, object] = {}

# Where xdist workers leave {node id: work unit} for the controller's scheduler.
UNITS_ENV = "COURSE_XDIST_UNITS"


def _is_xdist_controller(config: pytest.Config) -> bool:
    """The xdist controller: it hands tests to workers and runs none itself."""
    if hasattr(config, "workerinput"):  # an xdist worker
        return False
    return config.getoption("dist", "no") != "no" and bool(config.getoption("tx", None))


def pytest_configure(config: pytest.Config) -> None:
    if _is_xdist_controller(config):
        if config.getoption("dist") == "loadgroup":
            units = Path(tempfile.mkdtemp(prefix="course-xdist-units-"))
            _session["units"] = units
            os.environ[UNITS_ENV] = str(units)  # the workers, started later, inherit it
        return
    # Before collection: nbval starts kernels later, which inherit this env.
    # The worker's id (gw0, gw1...) in the folder's name, for whoever looks in /tmp.
    worker = getattr(config, "workerinput", {}).get("workerid", "main")
    tmp = Path(tempfile.mkdtemp(prefix=f"course-tests-{worker}-"))
    info = start_server(tmp)
    _session.update(tmp=tmp, info=info, saved=os.environ.get("REDIS_URL"))
    os.environ["REDIS_URL"] = info.url
    os.environ["COURSE_DATA_DIR"] = str(tmp / "data")
    os.environ["COURSE_WORKSPACE"] = str(tmp / "workspace")  # never the learner's task files
    # The kernels' IPython profile: not the learner's, whose startup files and settings
    # would run in every test kernel and whose history would collect the tests' cells.
    os.environ["IPYTHONDIR"] = str(tmp / "ipython")
    os.environ["JUPYTER_RUNTIME_DIR"] = str(tmp / "jupyter-runtime")  # kernels' connection files


def pytest_unconfigure(config: pytest.Config) -> None:
    tmp = _session.get("tmp")
    if isinstance(tmp, Path):
        stop_server(tmp)
        shutil.rmtree(tmp, ignore_errors=True)
    units = _session.get("units")
    if isinstance(units, Path):
        shutil.rmtree(units, ignore_errors=True)


# ------------------------------------------------------------- xdist work units


def _shared_setups(item: pytest.Item) -> list[str]:
    """What ``item`` must share with other tests of its work unit (see
    :func:`work_units`); empty: it can run anywhere."""
    mark = item.get_closest_marker("xdist_group")
    if mark is not None:
        return [f"group:{mark.args[0] if mark.args else mark.kwargs.get('name', 'default')}"]
    module = item.nodeid.split("::", 1)[0]  # tests/test_x.py, notebooks/NN-x.ipynb
    if item.path.suffix == ".ipynb":
        return [f"notebook:{module}"]
    fixtureinfo = getattr(item, "_fixtureinfo", None)
    params = getattr(getattr(item, "callspec", None), "params", {})
    return [
        f"fixture:{module}:{name}" + (f"={params[name]}" if name in params else "")
        for name, defs in sorted(fixtureinfo.name2fixturedefs.items() if fixtureinfo else ())
        if defs and defs[-1].scope in ("module", "class", "package")
    ]


def work_units(items: list[pytest.Item]) -> dict[str, str | None]:
    """Node id -> work unit: the tests that must run in one xdist worker, in
    their order (None: a test that can run anywhere, alone).

    - an explicit ``xdist_group`` mark: its name;
    - a notebook's cells (nbval): one kernel runs them top to bottom;
    - the tests sharing a module- or class-scoped fixture (one JupyterLab, one
      repo2docker plan, one service process, one learner run of a notebook),
      directly or through another test: that fixture is set up once, not once
      per worker. A parametrized one goes by its parameter, so each notebook
      of ``test_exercises.py`` is a unit of its own."""
    parent: dict[str, str] = {}

    def root(key: str) -> str:
        while parent.setdefault(key, key) != key:
            key = parent[key]
        return key

    setups = {item.nodeid: _shared_setups(item) for item in items}
    for keys in setups.values():
        for key in keys[1:]:
            a, b = root(keys[0]), root(key)
            parent[max(a, b)] = min(a, b)
    return {nodeid: root(keys[0]) if keys else None for nodeid, keys in setups.items()}


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Work out the work units; in an xdist worker, hand them to the controller's
    scheduler (:func:`pytest_xdist_make_scheduler`) through a file.

    (xdist's own loadgroup passes groups in the node ids, which pytest 9.2
    no longer lets it change: pytest-xdist issue 1386.)"""
    units = work_units(items)
    _session["units_of"] = units
    folder = os.environ.get(UNITS_ENV)
    if not folder or not hasattr(config, "workerinput"):
        return
    path = Path(folder) / f"{config.workerinput['workerid']}.json"
    partial = path.with_suffix(".partial")
    partial.write_text(json.dumps({nodeid: unit or nodeid for nodeid, unit in units.items()}))
    partial.replace(path)  # whole, before this worker reports its collection


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    """A work unit that shares a set-up (a notebook's kernel, a learner run, a
    service) starts from an empty Redis, as a test using ``r`` does: whichever
    worker runs it, after whatever it ran before (a learner run of lesson 04
    leaves lesson 04's keys, which lesson 04's first cell counts). Only at its
    first test: its shared fixtures may keep state in Redis from then on."""
    units = _session.get("units_of")
    unit = units.get(item.nodeid) if isinstance(units, dict) else None
    started = _session.setdefault("started_units", set())
    assert isinstance(started, set)
    if unit is None or unit in started or "info" not in _session:
        return
    started.add(unit)
    info = _session["info"]
    assert isinstance(info, ServerInfo)
    with redis.Redis.from_url(info.url) as client:
        client.flushall()


@pytest.hookimpl(optionalhook=True)  # a hook of pytest-xdist, which learners may not have
def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    if config.getoption("dist") != "loadgroup" or UNITS_ENV not in os.environ:
        return None
    from xdist.scheduler import LoadScopeScheduling  # noqa: PLC0415

    class CourseScheduling(LoadScopeScheduling):
        """Work units as the workers computed them (:func:`work_units`); the
        units that share a set-up (a JupyterLab, a kernel) go out first, the
        largest first, and single tests fill the gaps at the end."""

        _units: dict[str, str] | None = None

        def _split_scope(self, nodeid: str) -> str:
            if self._units is None:
                files = sorted(Path(os.environ[UNITS_ENV]).glob("*.json"))
                # Every worker collected the same tests (xdist checks): any file will do.
                self._units = json.loads(files[0].read_text()) if files else {}
            # Unknown: the module, as --dist loadfile would (never splits a shared fixture).
            return self._units.get(nodeid) or nodeid.split("::", 1)[0]

        def _assign_work_unit(self, node: Any) -> None:
            def priority(scope: str) -> tuple[int, int]:
                shared = scope.startswith(("fixture:", "group:"))
                tier = 0 if shared else 1 if scope.startswith("notebook:") else 2
                return tier, -len(self.workqueue[scope])

            first = min(self.workqueue, key=priority)
            self.workqueue.move_to_end(first, last=False)
            super()._assign_work_unit(node)

    return CourseScheduling(config, log)


# ------------------------------------------------------------------- fixtures


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
