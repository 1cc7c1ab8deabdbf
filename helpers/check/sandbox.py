"""Where a file is graded: a :class:`Sandbox` has a private Redis of its own on
a free port (never the learner's data), a temporary folder holding a copy of
the file as an importable module (``workspace.<module>``), and runs the file
the way the original would be run: to the end as a program (:meth:`~Sandbox.run`),
in the background as a worker, a subscriber or an HTTP server
(:meth:`~Sandbox.start`), or imported by a short driver (:meth:`~Sandbox.run_python`).
Every run is bounded in time; everything it started stops when it closes."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import redis

from helpers.processes import BackgroundProcess
from helpers.server import throwaway_server

LAST_LINES = 3  # what a crash report shows of the output
CARETS = re.compile(r"[\^~]+")


@dataclass
class Run:
    """A program that ran to its end, or was stopped at its time limit."""

    output: str
    returncode: int | None  # None: stopped at the time limit
    timeout_s: float

    @property
    def lines(self) -> list[str]:
        """Its output's lines."""
        return self.output.splitlines()

    @property
    def timed_out(self) -> bool:
        """True if it was still running at its time limit."""
        return self.returncode is None

    def problem(self, must_exit: bool = True) -> str | None:
        """Why this run cannot be graded further, or None: ``no answer in N s``
        (only if ``must_exit``), or a crash with its last lines."""
        if self.timed_out:
            return f"no answer in {self.timeout_s:g} s" if must_exit else None
        if self.returncode != 0:
            return crash_text(self.returncode, self.output)
        return None


def crash_text(returncode: int | None, output: str) -> str:
    """``crashed (exit N): <its last lines>``, without the lines of carets
    (``^^^^``) that only some Python versions print under a traceback's code."""
    lines = [line.strip() for line in output.strip().splitlines()]
    kept = [line for line in lines if line and not CARETS.fullmatch(line)]
    last = " | ".join(kept[-LAST_LINES:])
    return f"crashed (exit {returncode}): {last or 'no output'}"


class Sandbox:
    """A grading run's private Redis, folder and processes (a context manager)."""

    def __init__(self, file: Path, module: str, shown: str | None = None) -> None:
        self.file = Path(file)
        self.module_name = module
        self.shown = shown or str(file)  # how outputs name the file (not the copy)
        self._stack = ExitStack()
        self.folder = Path()  # made on entering
        self.url = ""
        self.client: redis.Redis

    def __enter__(self) -> Sandbox:
        self.folder = Path(tempfile.mkdtemp(prefix="course-check-"))
        try:
            info = self._stack.enter_context(throwaway_server())
            self.url = info.url
            self.client = redis.Redis.from_url(self.url, decode_responses=True)
            self._stack.callback(self.client.close)
            package = self.folder / "workspace"
            package.mkdir()
            (package / "__init__.py").write_text("")
            shutil.copyfile(self.file, self.staged)
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self._stack.close()
        shutil.rmtree(self.folder, ignore_errors=True)

    @property
    def staged(self) -> Path:
        """The copy that runs: ``<folder>/workspace/<module>.py``."""
        return self.folder / "workspace" / f"{self.module_name}.py"

    @property
    def module(self) -> str:
        """The copy's importable name, e.g. ``workspace.t7_job_processor``."""
        return f"workspace.{self.module_name}"

    def env(self, **extra: str) -> dict[str, str]:
        """The environment of every run: ``REDIS_URL`` is the private Redis, and
        the copy is importable as :attr:`module`. Tracebacks stay plain text
        (the checker quotes them): Python 3.13 colours them when ``FORCE_COLOR``
        is set, and a notebook kernel sets it for everything it starts."""
        path = os.pathsep.join(p for p in (str(self.folder), os.environ.get("PYTHONPATH")) if p)
        env = dict(os.environ, REDIS_URL=self.url, PYTHONPATH=path, PYTHONUNBUFFERED="1")
        env["PYTHON_COLORS"] = "0"
        env.update(extra)  # a run may point REDIS_URL elsewhere (at nothing, say)
        return env

    def run(self, args: list[str] | None = None, timeout_s: float = 10.0, **env: str) -> Run:
        """Run the file as a program (``python FILE ARGS``) to its end, at most
        ``timeout_s`` seconds."""
        return self._run([str(self.staged), *(args or [])], timeout_s, env)

    def run_python(self, code: str, timeout_s: float = 10.0, **env: str) -> Run:
        """Run ``code`` (a driver that imports :attr:`module`) in a new interpreter."""
        return self._run(["-c", code], timeout_s, env)

    def _run(self, args: list[str], timeout_s: float, env: dict[str, str]) -> Run:
        try:
            done = subprocess.run(
                [sys.executable, *args],
                capture_output=True,
                text=True,
                timeout=timeout_s,
                env=self.env(**env),
                cwd=self.folder,
                stdin=subprocess.DEVNULL,
            )
        except subprocess.TimeoutExpired as expired:
            output = _decoded(expired.stdout) + _decoded(expired.stderr)
            return Run(self.unstaged(output), None, timeout_s)
        return Run(self.unstaged(done.stdout + done.stderr), done.returncode, timeout_s)

    def unstaged(self, output: str) -> str:
        """``output`` naming the learner's file where it names the copy that ran."""
        return output.replace(str(self.staged), self.shown)

    def start(
        self, args: list[str] | None = None, name: str = "program", **env: str
    ) -> BackgroundProcess:
        """Start the file in the background (``python FILE ARGS``: a worker, a
        subscriber, a server), its output in a log; stopped when the sandbox closes."""
        log = self.folder / f"{name}.log"
        process = BackgroundProcess.start(
            [str(self.staged), *(args or [])], log_file=log, env=self.env(**env), cwd=self.folder
        )
        self._stack.callback(_stop_quietly, process)
        return process

    def start_module(self, module_args: list[str], name: str, **env: str) -> BackgroundProcess:
        """Start one of the course's own programs (``python -m ...``) against the
        private Redis: the reference worker a creator's jobs need, say."""
        log = self.folder / f"{name}.log"
        process = BackgroundProcess.start(
            module_args, log_file=log, env=self.env(**env), cwd=self.folder
        )
        self._stack.callback(_stop_quietly, process)
        return process


def _stop_quietly(process: BackgroundProcess) -> None:
    process.stop(timeout=3)


def _decoded(data: bytes | str | None) -> str:
    if data is None:
        return ""
    return data.decode(errors="replace") if isinstance(data, bytes) else data
