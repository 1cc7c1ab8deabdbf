"""Basic Redis operations of the original's tasks 1 and 4 (synchronous client).

The functions are the reference programs' own (:mod:`helpers.programs.t1_redis_op`,
:mod:`helpers.programs.t4_redis_advanced_op`), gathered here for the lessons;
:mod:`helpers.schools_async` has the same for ``redis.asyncio``.
"""

from __future__ import annotations

from helpers.programs.t1_redis_op import display_school_value, format_reply, set_new_school
from helpers.programs.t4_redis_advanced_op import (
    SCHOOLS,
    SCHOOLS_HASH,
    create_schools_hash,
    display_schools_hash,
)

__all__ = [
    "SCHOOLS",
    "SCHOOLS_HASH",
    "create_schools_hash",
    "display_school_value",
    "display_schools_hash",
    "format_reply",
    "set_new_school",
]
