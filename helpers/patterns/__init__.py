"""Patterns every production queue needs (lesson 16), one module each:

- :mod:`~helpers.patterns.rate_limits`: a provider's "N per second": RQ 3's
  concurrency limit (``RateLimit``) against a sliding-window limiter (one Lua
  script on a sorted set);
- :mod:`~helpers.patterns.priorities`: queues in priority order, ``at_front``,
  starvation and a worker that avoids it;
- :mod:`~helpers.patterns.backpressure`: a bounded queue: the HTTP service's
  ``429``, queue length and age under a flood;
- :mod:`~helpers.patterns.workflows`: dependencies, several parents,
  ``allow_failure``, groups, a fan-out/fan-in;
- :mod:`~helpers.patterns.schedules`: delayed and repeated jobs, RQ's cron
  scheduler, and one that survives a SIGKILL without losing or repeating a tick;
- :mod:`~helpers.patterns.dead_letters`: the failed registry as a dead-letter
  queue, and poison messages on a stream moved to a dead-letter stream.

Job functions are named where they are defined
(``"helpers.patterns.rate_limits.send_within_rate"``), as the workers'
allow-list (:mod:`helpers.allowlist`) expects. Every key this lesson uses
starts with ``patterns:`` or belongs to a queue ``patterns-*``
(:func:`~helpers.patterns.keys.lesson_keys`).
"""
