"""Redis's side of security: a password for the default user and an ACL user
that really runs the course's job queues (a real worker, a real creator),
and is refused everything else."""

from __future__ import annotations

import os

import pytest
import redis

from helpers.job_events import JobEvents, enqueue_with_events
from helpers.notifications import FIRST_JOB
from helpers.reliability import (
    QUEUE_USER_RULES,
    connecting_as,
    create_acl_user,
    throwaway_server,
)
from helpers.server import redis_url
from helpers.workers import queue, start_worker


@pytest.fixture
def acl_server(monkeypatch: pytest.MonkeyPatch):
    """A throwaway server with a password on ``default`` and a queue user;
    ``REDIS_URL`` is the queue user's, as a worker's would be."""
    with throwaway_server() as server:
        admin = redis.Redis.from_url(server.url)
        url = create_acl_user(admin, server.url, "queues", "qu3ue-s3cret")
        admin.config_set("requirepass", "adm1n-s3cret")
        admin.close()
        monkeypatch.setenv("REDIS_URL", url)
        yield server, url


def test_the_queue_user_runs_a_notification_job_end_to_end(acl_server) -> None:
    _server, url = acl_server
    client = redis.Redis.from_url(url)
    q = queue("push_notification_code", client)
    events = JobEvents(q)
    job = enqueue_with_events(q, "helpers.notifications.process_notification", FIRST_JOB)
    with start_worker("push_notification_code") as worker:
        received = events.print_until_done([job], timeout=30)
    assert [e.kind for e in received] == ["completed"]
    assert "Sending notification to 4153518780" in worker.output()
    assert "NOPERM" not in worker.output()


@pytest.mark.parametrize(
    "command",
    [("SET", "secrets", "1"), ("FLUSHALL",), ("CONFIG", "GET", "dir"), ("KEYS", "*")],
)
def test_the_queue_user_is_refused_everything_else(acl_server, command: tuple[str, ...]) -> None:
    _server, url = acl_server
    client = redis.Redis.from_url(url)
    with pytest.raises(redis.exceptions.NoPermissionError):
        client.execute_command(*command)


def test_without_credentials_nothing_is_allowed(acl_server) -> None:
    server, _url = acl_server
    anonymous = redis.Redis.from_url(server.url)
    with pytest.raises(redis.AuthenticationError):
        anonymous.set("rq:queue:demo", "1")


def test_the_rules_hold_only_the_queues_keys_and_channels() -> None:
    keys = [rule for rule in QUEUE_USER_RULES if rule.startswith("~")]
    channels = [rule for rule in QUEUE_USER_RULES if rule.startswith("&")]
    assert keys == ["~rq:*", "~jobs:*"] and channels == ["&rq:*"]


def test_connecting_as_sets_redis_url_for_the_block_only(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REDIS_URL", "redis://127.0.0.1:1/0")
    with connecting_as("redis://queues:s3cret@127.0.0.1:2/0") as url:
        assert os.environ["REDIS_URL"] == url == redis_url()
    assert os.environ["REDIS_URL"] == "redis://127.0.0.1:1/0"
    monkeypatch.delenv("REDIS_URL")
    with connecting_as("redis://127.0.0.1:2/0"):
        pass
    assert "REDIS_URL" not in os.environ
