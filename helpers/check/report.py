"""What a grading run found: one :class:`Requirement` per thing the original
asks for, gathered in a :class:`Report` that prints as ``✓``/``✗`` lines or
as one JSON object."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field

PASS = "✓"
FAIL = "✗"
SHOWN_CHARS = 160  # what a line shows of an expected or received value (JSON has it all)


@dataclass
class Requirement:
    """One requirement of a task and whether the file met it."""

    name: str
    passed: bool
    expected: str = ""
    got: str = ""

    def line(self) -> str:
        """``✓ name`` or ``✗ name: expected ..., got ...``."""
        if self.passed:
            return f"{PASS} {self.name}"
        return f"{FAIL} {self.name}: expected {_short(self.expected)}; got {_short(self.got)}"


def _short(text: str) -> str:
    text = " ⏎ ".join(text.strip().splitlines()) or "nothing"
    return text if len(text) <= SHOWN_CHARS else text[: SHOWN_CHARS - 1] + "…"


def requirement(name: str, expected: object, got: object) -> Requirement:
    """A requirement met when ``got == expected``; both shown with ``repr``
    for anything that is not already a string."""
    return Requirement(name, got == expected, _text(expected), _text(got))


def _text(value: object) -> str:
    return value if isinstance(value, str) else repr(value)


@dataclass
class Report:
    """The outcome of grading one file for one task."""

    task: str
    file: str
    requirements: list[Requirement] = field(default_factory=list)

    @property
    def met(self) -> int:
        """How many requirements passed."""
        return sum(r.passed for r in self.requirements)

    @property
    def passed(self) -> bool:
        """True only if every requirement passed (and there was at least one)."""
        return bool(self.requirements) and self.met == len(self.requirements)

    @property
    def score(self) -> float:
        """The fraction of requirements met, 0.0 to 1.0."""
        return self.met / len(self.requirements) if self.requirements else 0.0

    def failed(self) -> list[str]:
        """The names of the requirements not met."""
        return [r.name for r in self.requirements if not r.passed]

    def lines(self) -> list[str]:
        """The report as a learner reads it: a header, one line per requirement, a summary."""
        verdict = "all passed" if self.passed else "not yet"
        return [
            f"{self.task}: {self.file}",
            *(f"  {r.line()}" for r in self.requirements),
            f"{self.met}/{len(self.requirements)} requirements met: {verdict}",
        ]

    def print(self) -> None:
        """Print :meth:`lines`."""
        print("\n".join(self.lines()), flush=True)

    def to_json(self) -> str:
        """One JSON object: task, file, passed, score, met, total, requirements."""
        return json.dumps(
            {
                "task": self.task,
                "file": self.file,
                "passed": self.passed,
                "score": round(self.score, 4),
                "met": self.met,
                "total": len(self.requirements),
                "requirements": [asdict(r) for r in self.requirements],
            }
        )
