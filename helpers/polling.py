"""One bounded wait: poll a condition until it holds, or fail saying what did not happen."""

from __future__ import annotations

import time
from collections.abc import Callable


def wait_until(
    condition: Callable[[], object],
    timeout_s: float,
    what: str,
    *,
    interval_s: float = 0.02,
    ignore: tuple[type[BaseException], ...] = (),
) -> float:
    """Poll ``condition`` every ``interval_s`` until it is true; return the
    seconds it took. After ``timeout_s``, raise :class:`TimeoutError` naming
    ``what``. An exception of a type in ``ignore`` (a server still starting)
    counts as "not yet"."""
    start = time.monotonic()
    while True:
        try:
            if condition():
                return time.monotonic() - start
        except ignore:
            pass
        if time.monotonic() - start > timeout_s:
            raise TimeoutError(f"{what}: not done within {timeout_s:g} s")
        time.sleep(interval_s)
