"""A pytest plugin for the course's test command: ``--cpu-durations=N`` lists
the N tests that cost the most CPU, where ``--durations=N`` lists wall time.

The suite is CPU-bound on a 2-core machine: a test that waits 50 s for a
browser costs little, one that starts thirty worker processes costs much,
and only CPU says which is which. A test's CPU is that of the pytest process
running it and of every process below it (kernels, workers, services, their
children), from its set-up to its tear-down, measured with psutil; a daemon
that leaves the tree (a daemonized redis-server) is not counted. Under
pytest-xdist each worker measures its own tests and the figures travel to the
controller in the reports, which prints them at the end, with the run's total:
the CPU of the whole run divided by the cores is the least wall time it can take.
That total misses what left the tree (the daemonized redis-servers, a process
whose parent exited first), so on Linux it also prints what the whole machine
was busy with during the run (``/proc/stat``): on a machine that runs nothing
else, the honest lower bound.

    make test PYTEST_ARGS=--cpu-durations=30
"""

from __future__ import annotations

import os
import resource
from collections import defaultdict
from collections.abc import Iterator

import psutil
import pytest

PROPERTY = "cpu_s"  # the user property that carries a test's CPU seconds
_started: dict[str, float] = {}
_measured: dict[str, float] = {}


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.getgroup("terminal reporting").addoption(
        "--cpu-durations",
        type=int,
        default=0,
        metavar="N",
        help="show the N tests that used the most CPU (with every process below them)",
    )


def tree_cpu_s() -> float:
    """CPU seconds of this process, its waited-for children and every live
    process below it (with what each of them waited for)."""
    me = psutil.Process()
    total = sum(me.cpu_times()[:4])  # user, system, children_user, children_system
    for child in me.children(recursive=True):
        try:
            total += sum(child.cpu_times()[:4])
        except psutil.Error:  # gone meanwhile: its CPU moves to whoever waited for it
            pass
    return total


def machine_busy_s() -> float | None:
    """CPU seconds the whole machine has been busy since it booted (every
    process, every core: ``/proc/stat``), or None where there is no such file."""
    try:
        with open("/proc/stat") as stat:
            fields = stat.readline().split()[1:]
    except OSError:
        return None
    # user nice system idle iowait irq softirq (steal: what the hypervisor took)
    user, nice, system, _idle, _iowait, irq, softirq = (int(f) for f in fields[:7])
    return (user + nice + system + irq + softirq) / os.sysconf("SC_CLK_TCK")


_MACHINE_AT_START = machine_busy_s()  # as this plugin loads, before any test starts


def _on(config: pytest.Config) -> bool:
    return config.getoption("cpu_durations", 0) > 0


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    if _on(item.config):
        _started[item.nodeid] = tree_cpu_s()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_teardown(item: pytest.Item) -> Iterator[None]:
    yield
    start = _started.pop(item.nodeid, None)
    if start is not None:  # before the teardown report is made, which carries it
        item.user_properties.append((PROPERTY, tree_cpu_s() - start))


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if report.when == "teardown":
        for name, value in report.user_properties:
            if name == PROPERTY:
                _measured[report.nodeid] = float(value)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    count = terminalreporter.config.getoption("cpu_durations", 0)
    if count <= 0 or not _measured:
        return
    write = terminalreporter.write_line
    terminalreporter.write_sep("=", f"most CPU: {count} tests, then {count} files")
    for nodeid, seconds in sorted(_measured.items(), key=lambda kv: -kv[1])[:count]:
        write(f"{seconds:7.1f} CPU-s  {nodeid}")
    by_file: dict[str, float] = defaultdict(float)
    for nodeid, seconds in _measured.items():
        by_file[nodeid.split("::", 1)[0]] += seconds
    write("")
    for path, seconds in sorted(by_file.items(), key=lambda kv: -kv[1])[:count]:
        write(f"{seconds:7.1f} CPU-s  {path}")
    # This process and everything it waited for (xdist's workers, once they are done).
    run = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    total = sum(usage.ru_utime + usage.ru_stime for usage in run)
    cores = os.cpu_count() or 1
    write(
        f"\nthe tests: {sum(_measured.values()):.1f} CPU-s; this run so far: {total:.1f} CPU-s "
        f"on {cores} cores, so at least {total / cores:.0f} s of wall time"
    )
    busy = machine_busy_s()
    if busy is not None and _MACHINE_AT_START is not None:
        machine = busy - _MACHINE_AT_START
        write(
            f"the machine was busy {machine:.1f} CPU-s meanwhile (every process, daemons "
            f"included: /proc/stat), so at least {machine / cores:.0f} s"
        )
