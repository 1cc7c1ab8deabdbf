"""Draw the course's diagrams as SVG files in ``notebooks/images/``.

Hand-written SVG, made here so that a change is a reviewable diff and the
files never drift from this script: plain shapes and text, no external
references, no fonts to load, dark text on a light background, so that
GitHub and JupyterLab both show them as images.

    python tools/diagrams.py           # write every diagram
    python tools/diagrams.py --check   # exit 1 if a file differs from what it would write
"""

from __future__ import annotations

import argparse
import math
import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from xml.sax.saxutils import escape

ROOT = Path(__file__).resolve().parent.parent
IMAGES = ROOT / "notebooks" / "images"

SANS = "DejaVu Sans, Helvetica, Arial, sans-serif"
MONO = "DejaVu Sans Mono, Menlo, Consolas, monospace"
INK = "#1f2328"  # text and lines
MUTED = "#57606a"  # secondary text
PAPER = "#ffffff"


@dataclass(frozen=True)
class Palette:
    """A box's fill and border."""

    fill: str
    stroke: str


QUEUE = Palette("#ddf4ff", "#0969da")  # where jobs wait to run
WAITING = Palette("#fff8c5", "#9a6700")  # waiting for a time or another job
RUNNING = Palette("#f3e8ff", "#8250df")
DONE = Palette("#dafbe1", "#1a7f37")
FAILED = Palette("#ffebe9", "#cf222e")
PLAIN = Palette("#f6f8fa", "#57606a")
NOTE = Palette("#fffbe6", "#9a6700")
ACKED = Palette("#eaeef2", "#8c959f")

RED, GREEN, BLUE = FAILED.stroke, DONE.stroke, QUEUE.stroke


@dataclass(frozen=True)
class Box:
    """A rectangle's geometry, with the points arrows attach to."""

    x: float
    y: float
    w: float
    h: float

    @property
    def cx(self) -> float:
        return self.x + self.w / 2

    @property
    def cy(self) -> float:
        return self.y + self.h / 2

    @property
    def right(self) -> float:
        return self.x + self.w

    @property
    def bottom(self) -> float:
        return self.y + self.h

    def at(self, fx: float, fy: float) -> tuple[float, float]:
        """The point at fractions ``fx`` of the width and ``fy`` of the height."""
        return (self.x + fx * self.w, self.y + fy * self.h)


def _n(value: float) -> str:
    """A coordinate as short, stable text (no float noise in the files)."""
    return f"{round(value, 1):g}"


def _runs(text: str) -> list[tuple[str, bool]]:
    """Split ``text`` on backticks: (part, is_code) pairs, code set in monospace."""
    return [(part, i % 2 == 1) for i, part in enumerate(text.split("`")) if part]


@dataclass
class Canvas:
    """One SVG drawing, built element by element."""

    width: int
    height: int
    title: str
    description: str
    parts: list[str] = field(default_factory=list)

    def text(
        self,
        x: float,
        y: float,
        text: str,
        *,
        size: float = 13,
        anchor: str = "middle",
        bold: bool = False,
        italic: bool = False,
        color: str = INK,
        halo: bool = False,
    ) -> None:
        """One line of text at baseline ``y``; parts between backticks in monospace."""
        attrs = [f'x="{_n(x)}"', f'y="{_n(y)}"', f'font-size="{_n(size)}"']
        if anchor != "start":
            attrs.append(f'text-anchor="{anchor}"')
        if bold:
            attrs.append('font-weight="bold"')
        if italic:
            attrs.append('font-style="italic"')
        if color != INK:
            attrs.append(f'fill="{color}"')
        if halo:  # a white outline under the letters, so a line behind stays readable
            attrs.append(
                f'stroke="{PAPER}" stroke-width="4" stroke-linejoin="round" paint-order="stroke"'
            )
        runs = _runs(text)
        if len(runs) == 1 and not runs[0][1]:
            body = escape(runs[0][0])
        else:
            body = "".join(
                f'<tspan font-family="{MONO}">{escape(part)}</tspan>' if code else escape(part)
                for part, code in runs
            )
        self.parts.append(f"<text {' '.join(attrs)}>{body}</text>")

    def rect(
        self,
        box: Box,
        palette: Palette,
        *,
        radius: float = 6,
        dashed: bool = False,
        width: float = 1.5,
    ) -> None:
        dash = ' stroke-dasharray="6 4"' if dashed else ""
        self.parts.append(
            f'<rect x="{_n(box.x)}" y="{_n(box.y)}" width="{_n(box.w)}" height="{_n(box.h)}" '
            f'rx="{_n(radius)}" fill="{palette.fill}" stroke="{palette.stroke}" '
            f'stroke-width="{_n(width)}"{dash}/>'
        )

    def box(
        self,
        x: float,
        y: float,
        w: float,
        h: float,
        lines: Sequence[str],
        palette: Palette = PLAIN,
        *,
        bold_first: bool = True,
        size: float = 12,
        radius: float = 6,
        dashed: bool = False,
        align: str = "middle",
    ) -> Box:
        """A rectangle with lines of text centred in it (the first in bold)."""
        box = Box(x, y, w, h)
        self.rect(box, palette, radius=radius, dashed=dashed)
        self.lines_at(box, lines, bold_first=bold_first, size=size, align=align)
        return box

    def lines_at(
        self,
        box: Box,
        lines: Sequence[str],
        *,
        bold_first: bool = True,
        size: float = 12,
        align: str = "middle",
    ) -> None:
        step = size * 1.35
        first_size = size + 1.5 if bold_first else size
        total = step * (len(lines) - 1)
        y = box.cy - total / 2 + size * 0.35
        x = {"middle": box.cx, "start": box.x + 10}[align]
        for i, line in enumerate(lines):
            head = i == 0 and bold_first
            self.text(
                x, y + i * step, line, size=first_size if head else size, bold=head, anchor=align
            )

    def diamond(self, cx: float, cy: float, hw: float, hh: float, palette: Palette) -> None:
        points = [(cx, cy - hh), (cx + hw, cy), (cx, cy + hh), (cx - hw, cy)]
        self.parts.append(
            f'<polygon points="{" ".join(f"{_n(a)},{_n(b)}" for a, b in points)}" '
            f'fill="{palette.fill}" stroke="{palette.stroke}" stroke-width="1.5"/>'
        )

    def line(
        self,
        points: Sequence[tuple[float, float]],
        *,
        color: str = INK,
        dashed: bool = False,
        width: float = 1.5,
    ) -> None:
        dash = ' stroke-dasharray="5 4"' if dashed else ""
        path = " ".join(f"{_n(x)},{_n(y)}" for x, y in points)
        self.parts.append(
            f'<polyline points="{path}" fill="none" stroke="{color}" '
            f'stroke-width="{_n(width)}" stroke-linejoin="round"{dash}/>'
        )

    def arrow(
        self,
        points: Sequence[tuple[float, float]],
        *,
        color: str = INK,
        dashed: bool = False,
        width: float = 1.5,
    ) -> None:
        """A polyline ending in an arrowhead (drawn as a triangle: no markers to resolve)."""
        (x0, y0), (x1, y1) = points[-2], points[-1]
        angle = math.atan2(y1 - y0, x1 - x0)
        length, half = 10.0, 4.5
        bx, by = x1 - length * math.cos(angle), y1 - length * math.sin(angle)
        self.line([*points[:-1], (bx, by)], color=color, dashed=dashed, width=width)
        left = (bx + half * math.sin(angle), by - half * math.cos(angle))
        right = (bx - half * math.sin(angle), by + half * math.cos(angle))
        head = " ".join(f"{_n(a)},{_n(b)}" for a, b in [(x1, y1), left, right])
        self.parts.append(f'<polygon points="{head}" fill="{color}"/>')

    def badge(self, cx: float, cy: float, label: str, color: str = BLUE) -> None:
        """A numbered circle, for steps the caption explains."""
        self.parts.append(f'<circle cx="{_n(cx)}" cy="{_n(cy)}" r="9" fill="{color}"/>')
        self.text(cx, cy + 4, label, size=11, bold=True, color=PAPER)

    def svg(self, name: str) -> str:
        """The whole file: an accessible title and description, a white page, the drawing."""
        title_id, desc_id = f"{name}-title", f"{name}-desc"
        head = (
            f'<svg xmlns="http://www.w3.org/2000/svg" width="{self.width}" '
            f'height="{self.height}" viewBox="0 0 {self.width} {self.height}" '
            f'role="img" aria-labelledby="{title_id} {desc_id}">'
        )
        body = "\n  ".join(self.parts)
        return (
            f"{head}\n"
            f'  <title id="{title_id}">{escape(self.title)}</title>\n'
            f'  <desc id="{desc_id}">{escape(self.description)}</desc>\n'
            f'  <rect width="100%" height="100%" fill="{PAPER}"/>\n'
            f'  <g font-family="{SANS}" fill="{INK}">\n  {body}\n  </g>\n'
            "</svg>\n"
        )


# --- the diagrams ----------------------------------------------------------


def job_lifecycle() -> Canvas:
    """Lesson 06/07/12/13: where an RQ 3 job is, from enqueue to a final registry."""
    c = Canvas(
        900,
        610,
        "A job's path through RQ 3's queue and registries",
        "A job enqueued goes to the queue rq:queue:<name> (or, with depends_on, to the "
        "DeferredJobRegistry until its dependency finishes; with enqueue_in or enqueue_at, to "
        "the ScheduledJobRegistry until due). A worker takes it into the StartedJobRegistry and "
        "runs it in a work-horse. If it returns, it goes to the FinishedJobRegistry. If it raises "
        "with retries left, it is retried (through the ScheduledJobRegistry when the retry has an "
        "interval); with none left it goes to the FailedJobRegistry, from which requeue() puts it "
        "back on the queue. If the worker is killed, the job stays started until its entry "
        "expires and a maintenance pass marks it abandoned: retried, or failed.",
    )
    c.text(
        20,
        30,
        "A job's path through RQ 3 (a queue named <name>)",
        size=17,
        bold=True,
        anchor="start",
    )
    left, centre, right = 30.0, 330.0, 630.0
    w = 240.0

    # Ways in.
    pills = [
        (left, "`q.enqueue_in(…)` / `enqueue_at(…)`"),
        (centre, "`q.enqueue(f, …)`"),
        (right, "`q.enqueue(…, depends_on=job)`"),
    ]
    for x, label in pills:
        c.box(x, 52, w, 36, [label], PLAIN, bold_first=False, radius=18)
        c.arrow([(x + w / 2, 88), (x + w / 2, 128)])

    scheduled = c.box(
        left,
        130,
        w,
        84,
        [
            "ScheduledJobRegistry",
            "`rq:scheduled:<name>`",
            "until due; a worker started with",
            "the scheduler then moves it on",
        ],
        WAITING,
    )
    queued = c.box(
        centre,
        130,
        w,
        84,
        ["Queue", "`rq:queue:<name>`", "a list of job ids, oldest first"],
        QUEUE,
    )
    deferred = c.box(
        right,
        130,
        w,
        84,
        [
            "DeferredJobRegistry",
            "`rq:deferred:<name>`",
            "until the job it depends on",
            "has finished",
        ],
        WAITING,
    )
    c.arrow([(scheduled.right, queued.cy), (queued.x, queued.cy)])
    c.arrow([(deferred.x, deferred.cy), (queued.right, deferred.cy)])

    started = c.box(
        centre,
        296,
        w,
        76,
        ["StartedJobRegistry", "`rq:wip:<name>`", "running, in a work-horse process"],
        RUNNING,
    )
    c.arrow([(started.cx - 30, queued.bottom), (started.cx - 30, started.y)])
    c.text(started.cx - 40, 262, "a worker takes it", anchor="end", halo=True)
    c.text(started.cx - 40, 278, "(`BLMOVE`)", anchor="end", size=12, halo=True)

    finished = c.box(
        centre,
        456,
        w,
        76,
        ["FinishedJobRegistry", "`rq:finished:<name>`", "returned; result kept 500 s"],
        DONE,
    )
    failed = c.box(
        right,
        456,
        w,
        76,
        ["FailedJobRegistry", "`rq:failed:<name>`", "traceback kept (a year)"],
        FAILED,
    )
    c.arrow([(finished.cx, started.bottom), (finished.cx, finished.y)], color=GREEN)
    c.text(finished.cx + 10, 419, "returned", anchor="start", color=GREEN, halo=True)

    # Raised (or abandoned): retry while retries are left, else failed.
    c.arrow(
        [(started.x, started.cy), (scheduled.cx, started.cy), (scheduled.cx, scheduled.bottom)],
        color=RED,
    )
    c.text(
        started.x - 14, started.cy - 8, "raised, retries left", anchor="end", color=RED, halo=True
    )
    c.text(
        started.x - 14,
        started.cy + 24,
        "(no interval: straight",
        anchor="end",
        size=11.5,
        color=MUTED,
        halo=True,
    )
    c.text(
        started.x - 14,
        started.cy + 39,
        "back to the queue)",
        anchor="end",
        size=11.5,
        color=MUTED,
        halo=True,
    )
    c.arrow(
        [(started.right, started.cy), (failed.cx, started.cy), (failed.cx, failed.y)], color=RED
    )
    c.text(
        started.right + 14,
        started.cy - 8,
        "raised, no retries left",
        anchor="start",
        color=RED,
        halo=True,
    )

    # requeue(): from the failed registry back to the queue, round the right side.
    c.arrow(
        [
            (failed.right, failed.cy),
            (884, failed.cy),
            (884, 252),
            (queued.cx + 50, 252),
            (queued.cx + 50, queued.bottom),
        ],
        color=BLUE,
        dashed=True,
    )
    c.text(760, 246, "`requeue()` once the cause is fixed", color=BLUE, halo=True)

    # A worker killed mid-job.
    note = c.box(
        left,
        416,
        w,
        140,
        [
            "Worker killed (SIGKILL)",
            "its job stays `started` until",
            "its entry expires (about 90 s)",
            "and a worker's maintenance",
            "pass marks it abandoned: then",
            "retried, or failed with",
            "`AbandonedJobError`",
        ],
        NOTE,
        dashed=True,
    )
    c.line(
        [(started.x + 20, started.bottom), (note.right - 30, note.y)],
        color=NOTE.stroke,
        dashed=True,
    )

    c.text(
        20,
        590,
        "Every registry is a sorted set of job ids (scored by time); the queue is a list. "
        "The job itself is the hash rq:job:<id>.",
        size=12,
        anchor="start",
        color=MUTED,
    )
    return c


def pubsub_vs_consumer_group() -> Canvas:
    """Lesson 11: pub/sub forgets; a stream with a consumer group keeps and tracks."""
    c = Canvas(
        900,
        664,
        "Pub/sub versus a stream with a consumer group",
        "Pub/sub: a publisher's message goes through the channel to the subscribers listening at "
        "that moment; a subscriber that starts later never sees it, and Redis keeps nothing. "
        "Stream with a consumer group: XADD appends entries that Redis keeps; XREADGROUP hands "
        "each new entry to one consumer of the group and records it in the pending entries list "
        "(PEL); XACK removes it from the PEL; XAUTOCLAIM gives a crashed consumer's pending entry "
        "to a live consumer, whose delivery count goes up by one.",
    )
    # --- pub/sub -------------------------------------------------------------
    c.text(
        20,
        30,
        "Pub/sub: delivered to whoever listens now (at most once)",
        size=17,
        bold=True,
        anchor="start",
    )
    publisher = c.box(20, 100, 150, 64, ["publisher", "`PUBLISH`"], PLAIN)
    channel = c.box(
        270, 92, 260, 80, ["channel", "`holberton school channel`", "keeps nothing"], QUEUE
    )
    c.arrow([(publisher.right, publisher.cy), (channel.x, publisher.cy)])
    c.text((publisher.right + channel.x) / 2, publisher.cy - 8, "message #3", size=12, halo=True)
    subs = [
        ("subscriber A, listening", "gets #3", DONE, False),
        ("subscriber B, listening", "gets #3", DONE, False),
        ("subscriber C, starts later", "never sees #3", FAILED, True),
    ]
    for i, (name, outcome, palette, late) in enumerate(subs):
        y = 56 + i * 54
        sub = c.box(650, y, 230, 44, [name, outcome], palette, size=11.5, dashed=late)
        start = (channel.right, channel.cy)
        if late:
            c.arrow([start, (sub.x, sub.cy)], color=RED, dashed=True)
            c.text(600, sub.cy + 2, "✗", size=18, bold=True, color=RED, halo=True)
        else:
            c.arrow([start, (sub.x, sub.cy)], color=GREEN)
    c.text(
        20,
        232,
        "A message reaches only the subscribers connected at that moment; one that was down, "
        "or dies before handling it, has lost it.",
        size=12,
        anchor="start",
        color=MUTED,
    )
    c.line([(20, 256), (880, 256)], color="#d0d7de", width=1)

    # --- stream + consumer group ------------------------------------------------
    top = 256
    c.text(
        20,
        top + 34,
        "Stream + consumer group: kept until acknowledged (at least once)",
        size=17,
        bold=True,
        anchor="start",
    )
    c.text(20, top + 100, "stream `holberton school stream`", size=13, anchor="start")
    cells = [
        ("1-0", ACKED, "acked"),
        ("2-0", ACKED, "acked"),
        ("3-0", NOTE, "alice"),
        ("4-0", NOTE, "bob"),
        ("5-0", Palette(PAPER, INK), "new"),
    ]
    cell_w, cell_y, x0 = 70.0, top + 110, 20.0
    for i, (entry_id, palette, state) in enumerate(cells):
        cell = Box(x0 + i * cell_w, cell_y, cell_w, 50)
        c.rect(cell, palette, radius=0, width=1.2)
        c.text(cell.cx, cell.y + 21, f"`{entry_id}`", size=13)
        c.text(cell.cx, cell.y + 39, state, size=11, color=MUTED)
    end = x0 + len(cells) * cell_w
    producer = c.box(end - 60, top + 50, 120, 32, ["producer: `XADD`"], PLAIN, bold_first=False)
    c.arrow([(end, producer.bottom), (end, cell_y - 2)])
    c.badge(end + 16, producer.bottom + 13, "1")
    # last-delivered-id: a pointer under entry 4-0
    pointer_x = x0 + 3.5 * cell_w
    c.arrow([(pointer_x, cell_y + 86), (pointer_x, cell_y + 54)], color=MUTED)
    c.text(pointer_x, cell_y + 102, "the group's last-delivered-id", size=11.5, color=MUTED)

    group = c.box(560, top + 56, 320, 266, [], Palette("#fbfcfd", BLUE), radius=8)
    c.text(group.cx, group.y + 22, "consumer group", size=13.5, bold=True)
    c.text(group.cx, group.y + 40, "`holberton school subscribers`", size=12)
    alice = c.box(580, cell_y, 110, 50, ["alice", "handles 3-0"], DONE, size=11.5)
    bob = c.box(740, cell_y, 124, 50, ["bob ✗ crashed", "held 4-0"], FAILED, size=11.5, dashed=True)
    pel = Box(580, cell_y + 86, 280, 108)
    c.rect(pel, NOTE, radius=4)
    c.text(pel.cx, pel.y + 20, "pending entries list (PEL)", size=12.5, bold=True)
    header = ["entry", "consumer", "deliveries"]
    cols = [pel.x + 14, pel.x + 84, pel.x + 194]
    for x, label in zip(cols, header, strict=True):
        c.text(x, pel.y + 42, label, size=11, anchor="start", color=MUTED)
    rows = [("3-0", "alice", "1"), ("4-0", "bob → alice", "1 → 2")]
    for j, row in enumerate(rows):
        for x, value in zip(cols, row, strict=True):
            c.text(x, pel.y + 64 + j * 22, value, size=12, anchor="start")

    # 2: XREADGROUP hands each new entry to one consumer
    c.arrow([(end + 2, alice.cy), (alice.x, alice.cy)], color=GREEN)
    c.badge((end + alice.x) / 2, alice.cy - 16, "2", GREEN)
    # 3: XACK removes it from the PEL
    c.arrow([(alice.x + 30, alice.bottom), (alice.x + 30, pel.y)], color=GREEN)
    c.badge(alice.x + 48, alice.bottom + 18, "3", GREEN)
    # 4: XAUTOCLAIM moves bob's idle entry to alice
    c.arrow([(bob.x, bob.cy + 8), (alice.right, bob.cy + 8)], color=BLUE, dashed=True)
    c.badge((alice.right + bob.x) / 2, alice.cy - 10, "4")

    steps = [
        ("1", BLUE, "`XADD` appends an entry; Redis keeps it until trimmed."),
        ("2", GREEN, "`XREADGROUP … >` gives each new entry to one consumer"),
        ("", GREEN, "of the group, and records it in the group's PEL."),
        ("3", GREEN, "`XACK` marks it handled: it leaves the PEL (1-0, 2-0)."),
        ("4", BLUE, "`XAUTOCLAIM` gives entries idle over min-idle-ms to a live"),
        ("", BLUE, "consumer (bob's 4-0 to alice): its delivery count goes 1 → 2."),
    ]
    y = top + 250
    for number, color, line in steps:
        if number:
            y += 2
            c.badge(30, y - 4, number, color)
        c.text(48, y, line, size=12.5, anchor="start")
        y += 20
    c.text(
        20,
        top + 386,
        "A consumer that was down reads what it missed when it is back: nothing is lost, "
        "but an entry may be handled twice.",
        size=12,
        anchor="start",
        color=MUTED,
    )
    return c


def reservation_race() -> Canvas:
    """Lesson 09: the original's read-then-write oversells; the Lua script cannot."""
    c = Canvas(
        900,
        540,
        "The reservation race, and the one-step fix",
        "Two steps, as in the original: requests A and B both GET item.1 and read 1, both decide "
        "there is enough, both SET item.1 to 0, and both answer Reservation confirmed: two "
        "confirmed for one suitcase. One step: each request runs the Lua script with EVALSHA; "
        "Redis runs one script at a time, so A's script reads 1 and writes 0, then B's reads 0 "
        "and refuses: one confirmed, one Not enough stock available.",
    )
    c.text(
        20,
        30,
        "Two requests for the last suitcase (`item.1` = 1)",
        size=17,
        bold=True,
        anchor="start",
    )

    def lifelines(xs: Sequence[float], names: Sequence[str], palettes: Sequence[Palette]) -> None:
        for x, name, palette in zip(xs, names, palettes, strict=True):
            c.line([(x, 102), (x, 452)], color=MUTED, dashed=True, width=1)
            c.box(x - 56, 66, 112, 36, [name], palette, size=12)

    def message(
        x0: float, x1: float, y: float, label: str, *, reply: bool = False, color: str = INK
    ) -> None:
        c.arrow([(x0, y), (x1, y)], dashed=reply, color=color, width=1.3)
        c.text((x0 + x1) / 2, y - 6, label, size=12, color=color, halo=True)

    # Left: the original's two steps.
    c.text(235, 56, "Two steps: `GET`, decide, `SET` (the original)", size=13, bold=True, color=RED)
    a, redis_x, b = 70.0, 235.0, 400.0
    lifelines([a, redis_x, b], ["request A", "Redis", "request B"], [PLAIN, QUEUE, PLAIN])
    message(a, redis_x, 134, "`GET item.1`")
    message(redis_x, a, 158, "1", reply=True)
    message(b, redis_x, 186, "`GET item.1`")
    message(redis_x, b, 210, "1", reply=True)
    for x in (a, b):
        c.box(x - 58, 228, 116, 40, ["1 ≥ 1:", "enough!"], NOTE, bold_first=False, size=11.5)
    message(a, redis_x, 296, "`SET item.1 0`")
    message(redis_x, a, 320, "OK", reply=True)
    message(b, redis_x, 348, "`SET item.1 0`")
    message(redis_x, b, 372, "OK", reply=True)
    c.text(redis_x + 8, 314, "item.1 = 0", size=11, anchor="start", color=MUTED)
    c.text(redis_x - 8, 366, "still 0", size=11, anchor="end", color=MUTED)
    c.box(
        20,
        400,
        430,
        52,
        [
            "A: Reservation confirmed · B: Reservation confirmed",
            "two confirmed, one suitcase: oversold",
        ],
        FAILED,
        bold_first=False,
        size=12.5,
    )

    c.line([(470, 48), (470, 462)], color="#d0d7de", width=1)

    # Right: one script, one step.
    c.text(685, 56, "One step: a Lua script (`EVALSHA`)", size=13, bold=True, color=GREEN)
    a, redis_x, b = 545.0, 695.0, 835.0
    lifelines([a, redis_x, b], ["request A", "Redis", "request B"], [PLAIN, QUEUE, PLAIN])
    message(a, redis_x - 50, 134, "`EVALSHA`")
    c.box(
        redis_x - 50, 118, 100, 46, ["`GET`: 1 ≥ 1", "`SET` 0"], DONE, bold_first=False, size=11.5
    )
    message(redis_x, a, 186, "0 left", reply=True)
    message(b, redis_x + 50, 150, "`EVALSHA`")
    c.text(b - 8, 168, "waits its turn", size=11, anchor="end", color=MUTED)
    c.box(
        redis_x - 50,
        200,
        100,
        46,
        ["`GET`: 0 < 1", "refuse: -1"],
        DONE,
        bold_first=False,
        size=11.5,
    )
    message(redis_x, b, 268, "-1", reply=True)
    c.box(
        redis_x - 92,
        296,
        184,
        64,
        ["Redis runs one command", "at a time: nothing runs", "between `GET` and `SET`"],
        NOTE,
        bold_first=False,
        size=11.5,
    )
    c.box(
        490,
        400,
        390,
        52,
        ["A: Reservation confirmed", "B: Not enough stock available"],
        DONE,
        bold_first=False,
        size=12.5,
    )
    c.text(
        20,
        500,
        "The gap between GET and SET is where the original oversold; in lesson 09 a few hundred "
        "concurrent requests show it.",
        size=12,
        anchor="start",
        color=MUTED,
    )
    c.text(
        20,
        520,
        "The script does the read, the check and the write as one command (`helpers.stock.RESERVE_SCRIPT`).",
        size=12,
        anchor="start",
        color=MUTED,
    )
    return c


def seat_flow() -> Canvas:
    """Lesson 10: seat reservations queued as jobs, processed by a worker, blocked at 0."""
    c = Canvas(
        900,
        680,
        "Seat reservations: queued, processed, blocked when sold out",
        "GET /reserve_seat: the service reads reservationEnabled; while it is true it queues a job "
        "in the queue reserve_seat and answers Reservation in process. GET /process answers Queue "
        "processing and starts a worker, which takes each job and runs a Lua script that "
        "decrements available_seats and, at 0, sets reservationEnabled to false. From then on, "
        "GET /reserve_seat answers Reservation are blocked; a job that finds no seat fails with "
        "Not enough seats available.",
    )
    c.text(
        20, 30, "Seat reservations (the original's `100-seat`)", size=17, bold=True, anchor="start"
    )
    client, service, redis_x, worker = 70.0, 370.0, 600.0, 820.0
    names = [
        (client, "client", PLAIN),
        (service, "HTTP service", PLAIN),
        (redis_x, "Redis", QUEUE),
        (worker, "worker", RUNNING),
    ]
    for x, name, palette in names:
        c.line([(x, 86), (x, 632)], color=MUTED, dashed=True, width=1)
        c.box(x - 60, 50, 120, 36, [name], palette, size=12)

    def message(
        x0: float, x1: float, y: float, label: str, *, reply: bool = False, color: str = INK
    ) -> None:
        c.arrow([(x0, y), (x1, y)], dashed=reply, color=color, width=1.3)
        c.text((x0 + x1) / 2, y - 6, label, size=12, color=color, halo=True)

    def frame(y0: float, y1: float, label: str) -> None:
        box = Box(14, y0, 872, y1 - y0)
        c.rect(box, Palette("none", "#8c959f"), radius=4, width=1)
        c.text(22, y0 + 15, label, size=11.5, anchor="start", color=MUTED, italic=True, halo=True)

    frame(98, 262, "each GET /reserve_seat while seats remain")
    message(client, service, 140, "`GET /reserve_seat`")
    message(service, redis_x, 162, "`GET reservationEnabled`")
    message(redis_x, service, 184, "true", reply=True)
    message(service, redis_x, 212, "enqueue a job in `reserve_seat`")
    c.text(redis_x + 8, 230, "`rq:queue:reserve_seat`", size=11.5, anchor="start", color=MUTED)
    message(service, client, 250, '`{"status":"Reservation in process"}`', reply=True, color=GREEN)

    message(client, service, 296, "`GET /process`")
    message(service, client, 320, '`{"status":"Queue processing"}`', reply=True)
    message(service, worker, 346, "starts a worker (once)")

    frame(362, 510, "for each job in `reserve_seat`")
    message(worker, redis_x, 404, "take the next job")
    message(worker, redis_x, 430, "`EVALSHA` take_seat")
    c.box(
        redis_x - 150,
        442,
        300,
        58,
        [
            "`available_seats` − 1, never below 0",
            "at 0: `reservationEnabled` = false",
            "none left: the job fails",
        ],
        DONE,
        bold_first=False,
        size=11.5,
    )

    frame(522, 632, "once sold out")
    message(client, service, 564, "`GET /reserve_seat`")
    message(service, redis_x, 584, "`GET reservationEnabled`")
    message(redis_x, service, 604, "false", reply=True)
    message(service, client, 624, '`{"status":"Reservation are blocked"}`', reply=True, color=RED)
    c.text(
        20,
        660,
        "The service prints Seat reservation job <n> completed (or failed: Not enough seats "
        "available) from each job's events.",
        size=12,
        anchor="start",
        color=MUTED,
    )
    return c


DIAGRAMS: dict[str, Callable[[], Canvas]] = {
    "job-lifecycle": job_lifecycle,
    "pubsub-vs-consumer-group": pubsub_vs_consumer_group,
    "reservation-race": reservation_race,
    "seat-flow": seat_flow,
}


def rendered() -> dict[Path, str]:
    """Every diagram's file and the text this script writes into it."""
    return {IMAGES / f"{name}.svg": draw().svg(name) for name, draw in DIAGRAMS.items()}


def stale() -> list[Path]:
    """The diagram files that are missing or differ from what this script writes."""
    return [
        path
        for path, text in rendered().items()
        if not path.exists() or path.read_text(encoding="utf-8") != text
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--check", action="store_true", help="report, change nothing")
    args = parser.parse_args(argv)
    out_of_date = stale()
    names = ", ".join(os.path.relpath(path, ROOT) for path in out_of_date)
    if args.check:
        if out_of_date:
            print(f"Diagrams out of date: {names}")
            print("Run: python tools/diagrams.py")
            return 1
        print("Diagrams up to date.")
        return 0
    IMAGES.mkdir(parents=True, exist_ok=True)
    for path, text in rendered().items():
        if path in out_of_date:
            path.write_text(text, encoding="utf-8")
    print(f"Wrote: {names}" if out_of_date else "Diagrams up to date.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
