"""Generate the course's navigation: previous · map · next links at the top and
bottom of every lesson, the lesson list in the course map, and the course map
in the README. Derived from the notebooks themselves (their first heading and
the line after it), never kept by hand; only each lesson's time and
prerequisites are kept here, in :data:`PACE`, one line a lesson, checked
against the lessons that exist.

    python tools/navigation.py           # rewrite what is out of date
    python tools/navigation.py --check   # exit 1 if anything is out of date (CI)
"""

from __future__ import annotations

import argparse
import re
import sys
from dataclasses import dataclass
from pathlib import Path

# Before nbformat: its jsonschema would build rfc3987_syntax's parser, 2 CPU-s of
# this script's 2.1, for formats no notebook uses (tools/pytest_quick_imports.py).
sys.modules.setdefault("rfc3987_syntax", None)

import nbformat  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = ROOT / "notebooks"
README = ROOT / "README.md"
MAP_NAME = "00-course-map.ipynb"
NAV_TAG = "navigation"
MAP_TAG = "course-map"
MAP_START, MAP_END = "<!-- course-map:start -->", "<!-- course-map:end -->"
GLOSSARY = "glossary.md"

# Each lesson's time in minutes (reading, running and its tasks or exercises)
# and the earlier lessons it builds on. A new lesson needs its line here.
PACE: dict[str, tuple[int, tuple[str, ...]]] = {
    "01": (30, ()),
    "02": (30, ("01",)),
    "03": (35, ("02",)),
    "04": (45, ("02",)),
    "05": (50, ("01",)),
    "06": (50, ("04",)),
    "07": (60, ("06",)),
    "08": (40, ("07",)),
    "09": (60, ("03", "04")),
    "10": (50, ("06", "09")),
    "11": (45, ("05",)),
    "12": (60, ("07",)),
    "13": (50, ("12",)),
    "14": (75, ("09", "12")),
    "15": (45, ("07", "12", "14")),
    "16": (75, ("10", "11", "13")),
    "17": (45, ("06", "09", "12")),
}


@dataclass(frozen=True)
class Lesson:
    path: Path
    title: str
    summary: str

    @property
    def number(self) -> str:
        return self.path.name[:2]

    @property
    def label(self) -> str:
        return f"{self.number} · {self.title}"


def _tags(cell: nbformat.NotebookNode) -> list[str]:
    return cell.get("metadata", {}).get("tags", [])


def read_lesson(path: Path) -> Lesson:
    """Title and one-line summary from the notebook's first heading cell."""
    nb = nbformat.read(path, as_version=4)
    for cell in nb.cells:
        if cell.cell_type != "markdown" or NAV_TAG in _tags(cell):
            continue
        lines = [line.strip() for line in cell.source.splitlines()]
        for i, line in enumerate(lines):
            if line.startswith("# "):
                title = re.sub(r"^\d+\s*[·.:-]\s*", "", line[2:].strip())
                summary = next((x for x in lines[i + 1 :] if x and not x.startswith("#")), "")
                return Lesson(path, title, summary)
    raise ValueError(f"{path.name}: no '# Title' heading in its first markdown cells")


def lessons() -> list[Lesson]:
    """Every notebook ``NN-topic.ipynb``, in order; two with one number are an error
    (after a split, renumber the lessons that follow)."""
    found = [read_lesson(p) for p in sorted(NOTEBOOKS.glob("[0-9][0-9]-*.ipynb"))]
    numbers = [lesson.number for lesson in found]
    twins = sorted({n for n in numbers if numbers.count(n) > 1})
    if twins:
        names = [lesson.path.name for lesson in found if lesson.number in twins]
        raise ValueError(f"two lessons share a number: {', '.join(names)}; renumber one")
    return found


def check_pace(all_lessons: list[Lesson]) -> None:
    """Every lesson but the map has a line in :data:`PACE`, naming only earlier
    lessons; and PACE names no lesson that does not exist."""
    numbers = [lesson.number for lesson in all_lessons[1:]]
    missing = [n for n in numbers if n not in PACE]
    unknown = [n for n in PACE if n not in numbers]
    if missing or unknown:
        raise ValueError(
            f"tools/navigation.py PACE: no line for lesson(s) {missing or 'none'}; "
            f"lines for lessons that do not exist: {unknown or 'none'}"
        )
    for number, (_minutes, after) in PACE.items():
        later = [n for n in after if n not in numbers or n >= number]
        if later:
            raise ValueError(f"PACE[{number!r}]: prerequisites must be earlier lessons: {later}")


def pace_text(lesson: Lesson) -> str:
    """``≈30 min · after 05``, or ``≈30 min · start here``."""
    minutes, after = PACE[lesson.number]
    return f"≈{minutes} min · " + (f"after {', '.join(after)}" if after else "start here")


def nav_markdown(all_lessons: list[Lesson], index: int) -> str:
    parts = []
    if index > 0:
        prev = all_lessons[index - 1]
        parts.append(f"[← {prev.label}]({prev.path.name})")
    parts.append(f"[Course map]({MAP_NAME})")
    if index + 1 < len(all_lessons):
        nxt = all_lessons[index + 1]
        parts.append(f"[{nxt.label} →]({nxt.path.name})")
    return " · ".join(parts)


def map_markdown(all_lessons: list[Lesson], link_prefix: str) -> str:
    check_pace(all_lessons)
    rows = ["| Lesson | Time · after | What you learn |", "|---|---|---|"]
    for lesson in all_lessons[1:]:
        link = f"[{lesson.label}]({link_prefix}{lesson.path.name})"
        rows.append(f"| {link} | {pace_text(lesson)} | {lesson.summary} |")
    total = sum(minutes for minutes, _ in PACE.values())
    rows += [
        "",
        f"Times include each lesson's tasks and exercises (about {round(total / 60)} hours in all); "
        "*after* names the lessons it builds on. Words the course uses are explained in the "
        f"[glossary]({link_prefix}{GLOSSARY}).",
    ]
    return "\n".join(rows)


def _nav_cell(source: str) -> nbformat.NotebookNode:
    return nbformat.v4.new_markdown_cell(source, metadata={"tags": [NAV_TAG]})


def update_notebook(path: Path, nav: str, course_map: str | None, *, write: bool = True) -> bool:
    """Put ``nav`` first and last, and the map into the map cell; True if that
    changes the notebook (written only with ``write``)."""
    nb = nbformat.read(path, as_version=4)
    before = nbformat.writes(nb)
    body = [c for c in nb.cells if NAV_TAG not in _tags(c)]
    for cell in body:
        if course_map is not None and MAP_TAG in _tags(cell):
            cell.source = course_map
    top, bottom = _nav_cell(nav), _nav_cell(nav)
    old = [c for c in nb.cells if NAV_TAG in _tags(c)]
    if len(old) == 2:  # keep cell ids stable so the diff shows only real changes
        top.id, bottom.id = old[0].id, old[1].id
    nb.cells = [top, *body, bottom]
    after = nbformat.writes(nb)
    if after == before:
        return False
    if write:
        path.write_text(after + "\n" if not after.endswith("\n") else after)
    return True


def update_readme(course_map: str, *, write: bool = True) -> bool:
    """Put ``course_map`` between the README's markers; True if that changes it."""
    text = README.read_text()
    if MAP_START not in text:
        return False
    head, rest = text.split(MAP_START, 1)
    _, tail = rest.split(MAP_END, 1)
    new = f"{head}{MAP_START}\n{course_map}\n{MAP_END}{tail}"
    if new == text:
        return False
    if write:
        README.write_text(new)
    return True


def update_navigation(check: bool) -> list[str]:
    """Bring every generated part up to date (or, with ``check``, only report:
    then nothing is written, so a check never races with an edit)."""
    all_lessons = lessons()
    stale: list[str] = []
    for i, lesson in enumerate(all_lessons):
        course_map = map_markdown(all_lessons, "") if lesson.path.name == MAP_NAME else None
        nav = nav_markdown(all_lessons, i)
        if update_notebook(lesson.path, nav, course_map, write=not check):
            stale.append(lesson.path.name)
    if README.exists() and update_readme(map_markdown(all_lessons, "notebooks/"), write=not check):
        stale.append("README.md")
    return stale


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--check", action="store_true", help="report, change nothing")
    args = parser.parse_args(argv)
    stale = update_navigation(check=args.check)
    if args.check and stale:
        print("Navigation out of date in: " + ", ".join(stale))
        print("Run: python tools/navigation.py (or tools/regenerate_notebooks.py)")
        return 1
    print("Navigation up to date." if not stale else "Updated: " + ", ".join(stale))
    return 0


if __name__ == "__main__":
    sys.exit(main())
