"""A comparison's results as tables for people."""

from __future__ import annotations

from typing import Any

from helpers.compare import work

ROWS = (
    ("enqueue_per_s", "enqueued / s, one by one", "{:,.0f}"),
    ("jobs_per_s.1", "jobs / s, 1 worker process", "{:,.0f}"),
    ("jobs_per_s.2", "jobs / s, 2 worker processes", "{:,.0f}"),
    ("latency_p50_ms", "latency p50, ms (enqueue to done)", "{:,.1f}"),
    ("latency_p99_ms", "latency p99, ms", "{:,.1f}"),
    ("round_trips_per_job", "round trips / job (MONITOR)", "{:,.1f}"),
    ("commands_per_job", "commands / job", "{:,.1f}"),
    ("lua_commands_per_job", "  + commands inside Lua / job", "{:,.1f}"),
)


def figure(result: dict[str, Any], key: str) -> float:
    """``result[key]``, where ``"a.b"`` is ``result["a"]["b"]``."""
    value: Any = result
    for part in key.split("."):
        value = value[part]
    return float(value)


def format_table(results: dict[str, Any]) -> str:
    """The figures, a library per column, then the crash drill's counts."""
    libraries = results["libraries"]
    names = list(libraries)
    width = 36
    lines = [f"{'':<{width}}" + "".join(f"{n:>11}" for n in names)]
    lines.append(f"{'version':<{width}}" + "".join(f"{libraries[n]['version']:>11}" for n in names))
    for key, label, fmt in ROWS:
        lines.append(
            f"{label:<{width}}"
            + "".join(f"{fmt.format(figure(libraries[n], key)):>11}" for n in names)
        )
    lines.append("")
    lines.append(format_drill(results))
    machine = results["machine"]
    lines.append("")
    lines.append(
        f"{machine['cpus']} CPUs, load {machine['load_average']} before and "
        f"{machine['load_average_after']} after; Redis {machine['redis_version']}; "
        f"{machine['size']} size, {machine['runs']} run(s), {machine['elapsed_s']} s"
    )
    return "\n".join(lines)


def format_drill(results: dict[str, Any]) -> str:
    """The crash drill: lost, late and duplicated jobs per library and settings."""
    lines = [
        f"{'crash drill':<14}{'settings':<15}{'jobs':>6}{'kills':>7}{'lost':>6}{'late':>6}"
        f"{'duplicated':>12}{'wait s':>8}"
    ]
    for name, result in results["libraries"].items():
        for settings in work.SETTINGS:
            d = result["drill"][settings]
            lines.append(
                f"{name:<14}{settings:<15}{d['jobs']:>6}{d['kills']:>7}{d['lost']:>6}"
                f"{d['late']:>6}{d['duplicated']:>12}{d['wait_s']:>8}"
            )
    return "\n".join(lines)
