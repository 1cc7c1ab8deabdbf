"""Self-checking exercises.

An exercise cell defines a function whose body is ``raise NotImplementedError``
and carries a commented ``# %load solutions/<name>.py`` line; the next cell
calls :func:`check` (or ``await acheck(...)`` for async code), which prints
one line: not attempted, not yet (and why), or correct. A check never
raises and returns nothing (so a cell shows only the verdict), and a
notebook always runs top to bottom.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

CORRECT = "✓"


def check(name: str, test: Callable[[], object]) -> None:
    """Run ``test`` (which calls the learner's code and asserts) and print the
    verdict for exercise ``name``."""
    try:
        test()
    except Exception as error:  # the learner's code may raise anything
        _verdict(name, error)
    else:
        _verdict(name, None)


async def acheck(name: str, test: Callable[[], Awaitable[object]]) -> None:
    """:func:`check` for exercises with ``async`` code: ``await acheck(...)``."""
    try:
        await test()
    except Exception as error:  # the learner's code may raise anything
        _verdict(name, error)
    else:
        _verdict(name, None)


def _verdict(name: str, error: Exception | None) -> bool:
    """Print the one-line verdict for ``error`` (None: passed); True when correct."""
    if error is None:
        print(f"{CORRECT} {name}: correct")
        return True
    if isinstance(error, NotImplementedError):
        print(
            f"◻ {name}: not attempted yet. Write your answer in the cell above, or load "
            f"the solution: uncomment `# %load solutions/{name}.py` and run that cell twice."
        )
    elif isinstance(error, AssertionError):
        print(f"✗ {name}: not yet: {error}")
    else:
        print(f"✗ {name}: your code raised {type(error).__name__}: {error}")
    return False
