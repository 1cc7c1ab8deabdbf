"""Queuing Systems in Python: the code behind the course's notebooks.

One module per noun, in teaching order:

- ``server`` (the course's Redis: find or start it), ``client`` (connecting,
  with the original's messages), ``schools`` / ``schools_async`` (basic
  operations, sync and async twins), ``exercises`` (self-checks);
- ``pubsub`` (publish/subscribe), ``streams`` (at-least-once messaging with
  consumer groups);
- ``workers`` (RQ queues with JSON, worker processes), ``allowlist`` (the job
  functions workers run), ``processes`` (the one way to run a background
  process, and asking what runs), ``job_events`` (progress/completed/failed
  events for the creator side), ``notifications`` (the notification jobs);
- ``stock``, ``seats``, ``api`` (the HTTP service), ``loadgen`` (a loopback
  HTTP load generator), ``widgets`` (job and stock control panels, the message log);
- ``reliability`` and ``drill`` (retries, crashes, recovery, idempotency),
  ``fastpath`` (batched notifications sent exactly once), ``bench``
  (throughput measurements).
"""

__all__: list[str] = []
