"""Security demonstrations (lesson 13): why pickle is dangerous
(:class:`HarmlessPayload`), an ACL user with only what the course's workers
and creators need (:data:`QUEUE_USER_RULES`, :func:`create_acl_user`,
:func:`connecting_as`), and a throwaway server for changing server settings
(passwords, ACLs)."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Sequence
from urllib.parse import quote, urlsplit, urlunsplit

import redis

# Lesson 13 finds it here; it lives in helpers.server (the checker uses it too).
from helpers.server import throwaway_server as throwaway_server

#: What :class:`HarmlessPayload` did when something unpickled it.
UNPICKLING_EFFECTS: list[str] = []


def record_unpickling(note: str) -> str:
    """The function a :class:`HarmlessPayload` makes ``pickle.loads`` call:
    it only appends ``note`` to :data:`UNPICKLING_EFFECTS`."""
    UNPICKLING_EFFECTS.append(note)
    return note


class HarmlessPayload:
    """An object whose pickle says "to rebuild me, call
    ``helpers.reliability.security.record_unpickling(...)``". Unpickling it
    runs that call: an attacker's payload would name ``os.system`` instead."""

    def __init__(self, note: str = "code ran while unpickling") -> None:
        self.note = note

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (record_unpickling, (self.note,))


#: ACL rules for a user that runs the course's job queues (workers and job
#: creators) and nothing else: RQ's keys and the course's job events
#: (``rq:*``, ``jobs:*``), RQ's command channels (``rq:*``), every command
#: except the dangerous ones (``FLUSHALL``, ``CONFIG``, ``KEYS``, ``DEBUG``,
#: ``SHUTDOWN``...), plus ``INFO``, where RQ reads the server's version.
QUEUE_USER_RULES: tuple[str, ...] = (
    "resetkeys", "~rq:*", "~jobs:*",
    "resetchannels", "&rq:*",
    "nocommands", "+@all", "-@dangerous", "+info",
)  # fmt: skip


def create_acl_user(
    admin: redis.Redis,
    url: str,
    name: str,
    password: str,
    rules: Sequence[str] = QUEUE_USER_RULES,
) -> str:
    """``ACL SETUSER name reset on >password <rules>`` through ``admin``;
    returns ``url`` with the user's credentials in it (what ``REDIS_URL``
    would hold for a worker)."""
    admin.execute_command("ACL", "SETUSER", name, "reset", "on", f">{password}", *rules)
    parts = urlsplit(url)
    netloc = f"{quote(name)}:{quote(password)}@{parts.hostname}:{parts.port}"
    return urlunsplit(parts._replace(netloc=netloc))


@contextlib.contextmanager
def connecting_as(url: str) -> Iterator[str]:
    """``REDIS_URL`` set to ``url`` inside the ``with`` block, restored after:
    the workers started there (and :func:`helpers.server.redis_url`) connect
    as ``url``'s user, as they would deployed with that ``REDIS_URL``."""
    before = os.environ.get("REDIS_URL")
    os.environ["REDIS_URL"] = url
    try:
        yield url
    finally:
        if before is None:
            os.environ.pop("REDIS_URL", None)
        else:
            os.environ["REDIS_URL"] = before
