"""The original Node.js stack's figures, in one place, with how they were measured.

The original is one Node process (Node 20, Express 4, kue 0.11, the redis
client 2.8) against Redis 6.2, measured on this course's 2-core CI machine
between 2026-11-28 and 2026-12-01. The HTTP figures are ranges over several
runs of ``wrk -t1`` (one load thread) for 5 s each; the kue figures are
single measurements of 2026-11-28. Lessons print these figures from here
(:func:`format_original`) and set this run's beside them
(:func:`format_comparison`), row by row, the same work on each side.

Every row names the figure of :func:`helpers.bench.run_bench` doing the same
work, and how many processes each side used. Rows the original has no
counterpart for (batched notifications, a service with several processes)
are labelled as such, never set against a figure doing other work.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

MACHINE = "this course's 2-core CI machine"
STACK = "Node 20, Express 4, kue 0.11, redis client 2.8"
HTTP_TOOL = "wrk -t1 (one load thread), 5 s a run"
HTTP_DATES = "2026-11-28 to 2026-12-01"
KUE_DATE = "2026-11-28"


@dataclass(frozen=True)
class OriginalFigure:
    """One figure of the original, and the course's figure doing the same work."""

    what: str  # the work, in words (route, stock, connections)
    low: float
    high: float  # low == high: one measurement
    unit: str
    processes: str  # what ran on the original's side
    how: str  # tool and date
    course_key: str | None  # the bench figure doing the same work (None: a count, not a rate)
    course_processes: str  # what runs on the course's side for that figure
    approximate: bool = True  # a rate ("~1,200"), or an exact count ("200")
    note: str = ""  # printed after the original's value

    def text(self) -> str:
        """The value as printed: ``7,600–10,400``, ``~1,200`` or ``200``."""
        if self.low != self.high:
            return f"{self.low:,.0f}–{self.high:,.0f}"
        return f"{'~' if self.approximate else ''}{self.low:,.0f}"


_HTTP_HOW = f"{HTTP_TOOL}, {HTTP_DATES}"
_KUE_HOW = f"kue 0.11, {KUE_DATE}"
_ONE_NODE = "1 Node process"
_ONE_SERVICE = "1 service process (helpers.api); load: 1 Python process (helpers.loadgen)"
_RESERVE = "GET /reserve_product/2, stock 10"
_HTTP_HOW_2 = f"{HTTP_TOOL}, 2026-12-02"
_REDIS_7 = "Redis 7.0"

ORIGINAL_FIGURES: dict[str, OriginalFigure] = {
    "http_reserve_16": OriginalFigure(
        f"{_RESERVE}, 16 conns", 7_600, 10_400, "requests/s", _ONE_NODE, _HTTP_HOW,
        "http_reserve_per_s_16", _ONE_SERVICE,
    ),
    "http_reserve_64": OriginalFigure(
        f"{_RESERVE}, 64 conns", 9_200, 10_300, "requests/s", _ONE_NODE, _HTTP_HOW,
        "http_reserve_per_s_64", _ONE_SERVICE,
    ),
    "http_list_16": OriginalFigure(
        "GET /list_products/1, 16 conns", 8_700, 9_100, "requests/s", _ONE_NODE, _HTTP_HOW,
        "http_list_per_s_16", _ONE_SERVICE,
    ),
    "http_list_64": OriginalFigure(
        "GET /list_products/1, 64 conns", 7_800, 8_400, "requests/s", _ONE_NODE, _HTTP_HOW,
        "http_list_per_s_64", _ONE_SERVICE,
    ),
    # Every other route, measured side by side with the course's service on 2026-12-02
    # (9-stock.js and 100-seat.js, one Node process each, Redis 7.0.15; the range over
    # 3 alternations of wrk -t1 5 s; /reserve_seat and /process on a fresh Redis each run).
    "http_products_16": OriginalFigure(
        "GET /list_products, 16 conns", 7_600, 10_700, "requests/s", _ONE_NODE, _HTTP_HOW_2,
        "http_products_per_s_16", _ONE_SERVICE, note=_REDIS_7,
    ),
    "http_products_64": OriginalFigure(
        "GET /list_products, 64 conns", 8_500, 11_500, "requests/s", _ONE_NODE, _HTTP_HOW_2,
        "http_products_per_s_64", _ONE_SERVICE, note=_REDIS_7,
    ),
    "http_seats_16": OriginalFigure(
        "GET /available_seats, 16 conns", 5_200, 10_700, "requests/s", _ONE_NODE, _HTTP_HOW_2,
        "http_seats_per_s_16", _ONE_SERVICE, note=_REDIS_7,
    ),
    "http_seats_64": OriginalFigure(
        "GET /available_seats, 64 conns", 6_900, 7_800, "requests/s", _ONE_NODE, _HTTP_HOW_2,
        "http_seats_per_s_64", _ONE_SERVICE, note=_REDIS_7,
    ),
    "http_reserve_seat_16": OriginalFigure(
        "GET /reserve_seat (a job each), 16 conns", 2_200, 2_600, "requests/s", _ONE_NODE,
        _HTTP_HOW_2, "http_reserve_seat_per_s_16", _ONE_SERVICE,
        note="Redis 7.0; kue's save not awaited",
    ),
    "http_reserve_seat_64": OriginalFigure(
        "GET /reserve_seat (a job each), 64 conns", 4_000, 5_000, "requests/s", _ONE_NODE,
        _HTTP_HOW_2, "http_reserve_seat_per_s_64", _ONE_SERVICE,
        note="Redis 7.0; kue's save not awaited",
    ),
    "http_process_16": OriginalFigure(
        "GET /process, 16 conns", 2_100, 9_000, "requests/s", _ONE_NODE, _HTTP_HOW_2,
        "http_process_per_s_16", _ONE_SERVICE, note="Redis 7.0; a kue worker added each time",
    ),
    "http_process_64": OriginalFigure(
        "GET /process, 64 conns", 7_100, 8_200, "requests/s", _ONE_NODE, _HTTP_HOW_2,
        "http_process_per_s_64", _ONE_SERVICE, note="Redis 7.0; a kue worker added each time",
    ),
    "kue_jobs_c1": OriginalFigure(
        "trivial jobs done, 1 at a time", 1_200, 1_200, "jobs/s",
        f"{_ONE_NODE}, kue concurrency 1", _KUE_HOW,
        "rq_process_simple_per_s", "1 RQ SimpleWorker process",
    ),
    "kue_jobs_c2": OriginalFigure(
        "trivial jobs done, 2 at a time", 2_300, 2_300, "jobs/s",
        f"{_ONE_NODE}, kue concurrency 2", _KUE_HOW,
        "rq_process_simple_x2_per_s", "2 RQ SimpleWorker processes (RQ runs 1 job a process)",
    ),
    "kue_enqueue": OriginalFigure(
        "jobs enqueued", 5_900, 5_900, "jobs/s", _ONE_NODE, _KUE_HOW,
        "rq_enqueue_per_s", "1 Python process, RQ enqueue, one job at a time",
    ),
    "reserve_race": OriginalFigure(
        "200 reservations at once, stock 10: confirmed", 200, 200, "of 200",
        _ONE_NODE, HTTP_DATES, None, _ONE_SERVICE, approximate=False,
        note="in every run: 190 oversold",
    ),
}  # fmt: skip

#: Figures of this run with no counterpart in the original: other work, or more processes.
COURSE_ONLY: dict[str, tuple[str, str]] = {
    "rq_process_per_s": ("trivial jobs, RQ's default forking Worker, 1 process", "jobs/s"),
    "rq_enqueue_many_per_s": ("RQ enqueue_many, 100 jobs a pipeline, 1 process", "jobs/s"),
    "notifications_per_s": (
        "fast path, 100 notifications a job, 2 SimpleWorker processes",
        "notifications/s",
    ),
    "http_naive_per_s_64": (
        "GET /reserve_product_naive/2 (lesson 09's race: a 20 ms gap), 64 conns, 1 process",
        "requests/s",
    ),
}

_WIDTH = 48  # of the "what" column


def _multi_process(results: Mapping[str, Any]) -> dict[str, tuple[str, str]]:
    n = results.get("details", {}).get("http", {}).get("multi_processes")
    if not n:
        return {}
    return {
        f"http_reserve_x{n}_per_s_64": (
            f"/reserve_product/2, stock 10, 64 conns, {n} service processes",
            "requests/s",
        ),
        f"http_list_x{n}_per_s_64": (
            f"/list_products/1, 64 conns, {n} service processes",
            "requests/s",
        ),
    }


def format_original() -> str:
    """The original's figures, with where and how they were measured."""
    lines = [
        f"The original: 1 Node process ({STACK}) and Redis 6.2,",
        f"on {MACHINE}. HTTP: {HTTP_TOOL}, the range over runs,",
        f"{HTTP_DATES}; /reserve_product/2 starts from a stock of 10: 10 confirmed,",
        f"then refusals. kue: one measurement each, {KUE_DATE}; concurrency 2 is 2 jobs at a",
        "time in the one process.",
    ]
    for figure in ORIGINAL_FIGURES.values():
        note = f" ({figure.note})" if figure.note else ""
        lines.append(f"  {figure.what:<{_WIDTH}} {figure.text():>12}  {figure.unit}{note}")
    return "\n".join(lines)


def comparison_rows(results: Mapping[str, Any]) -> list[dict[str, Any]]:
    """This run beside the original, one dict a row: ``what``, ``original``
    (text; None when the original has no such row), ``this_run`` (a number;
    None if not measured), ``unit``, ``original_processes``,
    ``course_processes`` and ``like_for_like`` (the same work on both sides)."""
    rows = []
    for figure in ORIGINAL_FIGURES.values():
        if figure.course_key is None:  # the race: counted, not a rate
            race = results.get("details", {}).get("http", {}).get("race")
            value = race["confirmed"] if race else None
        else:
            value = results.get(figure.course_key)
        rows.append(
            {
                "what": figure.what,
                "original": figure.text(),
                "this_run": value,
                "unit": figure.unit,
                "original_processes": figure.processes,
                "course_processes": figure.course_processes,
                "like_for_like": True,
            }
        )
    for key, (what, unit) in {**COURSE_ONLY, **_multi_process(results)}.items():
        if key in results:
            rows.append(
                {
                    "what": what,
                    "original": None,
                    "this_run": results[key],
                    "unit": unit,
                    "original_processes": None,
                    "course_processes": what.rsplit(", ", 1)[-1],
                    "like_for_like": False,
                }
            )
    return rows


def format_comparison(results: Mapping[str, Any]) -> str:
    """This run beside the original, like for like, then this run's other rows."""
    meta = results.get("meta", {})
    load = " ".join(f"{x:.2f}" for x in meta.get("load_average", []))
    seconds = results.get("details", {}).get("http", {}).get("seconds")
    lines = [
        f"original: {MACHINE}, 1 Node process; HTTP {HTTP_TOOL}.",
        f"this run: {meta.get('cpus')} CPUs, load average {load} at the start, one "
        f"{'quick' if meta.get('quick') else 'full'} run"
        + (f", {seconds:g} s a load, no warm-up" if seconds else "")
        + ".",
    ]
    cpus, loads = meta.get("cpus"), meta.get("load_average")
    if cpus and loads and loads[0] > cpus:
        lines.append(
            "The machine was busy (load average above its CPU count): expect this run's"
            " figures lower than on an idle machine."
        )
    lines.append(f"  {'same work on both sides':<{_WIDTH}} {'original':>12} {'this run':>9}")
    rows = comparison_rows(results)
    for row in (r for r in rows if r["like_for_like"]):
        value = "-" if row["this_run"] is None else f"{row['this_run']:,.0f}"
        lines.append(f"  {row['what']:<{_WIDTH}} {row['original']:>12} {value:>9}  {row['unit']}")
    lines += [
        "processes: the original, 1 Node process in every row. This run: HTTP, 1 service",
        "process (helpers.api) and 1 load generator (helpers.loadgen: Python, where wrk is C);",
        "jobs, 1 SimpleWorker process a job at a time (RQ runs one job a process: 2 at a time",
        "takes 2 processes); enqueue and the race, 1 Python process.",
    ]
    others = [r for r in rows if not r["like_for_like"]]
    if others:
        lines.append("  this run only (no counterpart: other work, or more processes)")
        for row in others:
            what = f"{row['what']:<{_WIDTH + 13}}"
            lines.append(f"  {what} {row['this_run']:>9,.0f}  {row['unit']}")
    return "\n".join(lines)
