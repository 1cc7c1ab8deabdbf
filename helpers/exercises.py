"""Self-checking exercises.

An exercise cell defines a function whose body is ``raise NotImplementedError``
and carries a commented ``# %load solutions/<name>.py`` line; the next cell
calls :func:`check`, which prints one line: not attempted, not yet (and why),
or correct. A check never raises, so a notebook always runs top to bottom.
"""

from __future__ import annotations

from collections.abc import Callable

CORRECT = "✓"


def check(name: str, test: Callable[[], object]) -> bool:
    """Run ``test`` (which calls the learner's code and asserts) and print the
    verdict for exercise ``name``; True when correct."""
    try:
        test()
    except NotImplementedError:
        print(
            f"◻ {name}: not attempted yet. Write your answer in the cell above, or load "
            f"the solution: uncomment `# %load solutions/{name}.py` and run that cell twice."
        )
        return False
    except AssertionError as error:
        print(f"✗ {name}: not yet: {error}")
        return False
    except Exception as error:  # the learner's code may raise anything
        print(f"✗ {name}: your code raised {type(error).__name__}: {error}")
        return False
    print(f"{CORRECT} {name}: correct")
    return True
