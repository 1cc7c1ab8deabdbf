"""Throughput of every pattern the course teaches, measured in one run.

Command line::

    python -m helpers.bench [--json] [--quick] [--only GROUP ...] [--http-workers N] [--original]

Runs against the course server (or ``REDIS_URL``) and prints a table, or with
``--json`` one JSON object. Its numeric top-level keys are the figures:

==================================  =================================================
``redis_ping_per_s``                PING, one round trip each (``_pipelined``: 100 a trip)
``redis_cpu_us_per_ping``, ...      Redis's CPU time per PING, per RQ job, per notification:
                                    the server's CPU over a loop of many (``INFO cpu``),
                                    divided by the items done
``raw_queue_per_s``                 a Redis list as a queue: LPUSH then BRPOP, one
                                    round trip each (``_reliable``: BLMOVE + LREM ack;
                                    ``_pipelined``: 100 commands a trip)
``rq_enqueue_per_s``                RQ ``enqueue`` one by one (``_many``: ``enqueue_many``,
                                    100 jobs a pipeline)
``rq_process_per_s``                trivial jobs through RQ's default forking Worker,
                                    enqueue to finish (``_fork_import``: the job's
                                    module imported by every work-horse;
                                    ``_simple``: SimpleWorker; ``_simple_xN``: N
                                    SimpleWorker processes)
``notifications_per_s``             notifications actually sent (recorded in Redis) by
                                    the fast path of :mod:`helpers.fastpath`: 100 a job,
                                    2 SimpleWorker processes (other work than one job
                                    per notification: never set against a job rate)
``pubsub_p50_ms``, ``pubsub_p99_ms``  publish-to-receive latency, another process listening
``http_<route>_per_s_16``, ``_64``  every route of the service (:data:`~helpers.bench.http.ROUTES`:
                                    ``products``, ``list``, ``reserve`` from a stock of 10,
                                    ``naive``, ``seats``, ``reserve_seat``, ``process``), 16
                                    and 64 keep-alive connections (:mod:`helpers.loadgen`),
                                    1 service process (``http_reserve_xN_per_s_64``,
                                    ``http_list_xN_per_s_64``: N service processes;
                                    ``http_*_cpu_us_per_request``: CPU per request of the
                                    service, Redis and the load generator)
``rq_commands_per_job``, ...        Redis commands and round trips per job, per
                                    notification, counted with MONITOR
==================================  =================================================

The original's figures, measured on this course's CI machine, are in
:mod:`~helpers.bench.original` (``ORIGINAL_FIGURES``; ``--original`` prints
them); the table ends with this run beside them, like for like.

Beside them: ``meta`` (machine, load, versions, seconds per group),
``checks`` (counts that must be 0: oversold units, lost or repeated
notifications, failed jobs), ``samples`` (latencies, for plots) and
``details`` (the MONITOR counts by command; ``http``: processes, each load's
confirmed and refused answers, the race).

Every loop is bounded in count and in time; everything stays on loopback.
A run does :data:`FULL` by default, :data:`QUICK` with ``--quick`` (under a minute).
With ``COURSE_BENCH_SIZE=smoke`` in the environment, a quick run runs
:data:`SMOKE` instead: every figure, check and detail of a quick run, each
from far fewer items (a few seconds of measuring; ``meta["size"]`` says
``"smoke"``). Its figures mean little: the course's tests set it where they
check that a run measures everything and cleans up, not how fast it goes.
The bench's keys and queues start with ``bench:`` (jobs ``bench-...``); they
are cleared at the start and at the end. The HTTP measurement starts the
service, which sets the stock and seat keys (``item.<id>``,
``available_seats``, ``reservationEnabled``): the bench saves them first and
restores them afterwards.

The package, by part (everything re-exported here, as ``bench.X``):

- :mod:`~helpers.bench.harness`: the bench's keys, :class:`Settings`, :class:`Run`,
  timing helpers;
- :mod:`~helpers.bench.throughput`: Redis, RQ and fast-path rates;
- :mod:`~helpers.bench.tracing`: commands and round trips counted with MONITOR,
  and :func:`counting_client` (round trips counted on the client);
- :mod:`~helpers.bench.pubsub_latency` and its :mod:`~helpers.bench.listener`
  process: pub/sub latency;
- :mod:`~helpers.bench.http`: the HTTP service under load;
- :mod:`~helpers.bench.original`: the original's figures, and this run beside them;
- :mod:`~helpers.bench.runner`: :func:`run_bench`, :func:`format_table`;
- ``__main__``: the command line.
"""

from __future__ import annotations

from helpers.bench.harness import (
    CHANNEL,
    DESCRIPTIONS,
    FULL,
    GROUPS,
    JOB_ID_PREFIX,
    JOBS_QUEUE,
    KEY_PREFIX,
    LOCK_KEY,
    MODULE_JOB,
    NOTIFY_NS,
    NOTIFY_QUEUE,
    PIPELINE_SIZE,
    QUICK,
    RAW_LIST,
    RAW_PROCESSING,
    SAMPLES_KEPT,
    SIZE_ENV,
    SMOKE,
    TRIVIAL_JOB,
    Run,
    Settings,
    _thin,
    bench_key_patterns,
    bench_notifications,
    clear_bench_keys,
    describe,
    noop,
    percentile,
    quick_settings,
    redis_cpu_s,
    redis_url_set,
    timed_loop,
)
from helpers.bench.http import measure_http
from helpers.bench.original import (
    COURSE_ONLY,
    ORIGINAL_FIGURES,
    OriginalFigure,
    comparison_rows,
    format_comparison,
    format_original,
)
from helpers.bench.pubsub_latency import measure_pubsub
from helpers.bench.runner import MEASURES, format_table, run_bench
from helpers.bench.throughput import (
    fork_cost_ms,
    measure_notifications,
    measure_ping,
    measure_raw_queue,
    measure_rq_enqueue,
    measure_rq_process,
    process_rate,
)
from helpers.bench.tracing import (
    ENQUEUER,
    FRAMING,
    POLLER,
    WORKER,
    Trace,
    Writes,
    counting_client,
    measure_trace,
    named_url,
    trace_commands,
    trace_fastpath,
    trace_rq_jobs,
)

__all__ = [
    "CHANNEL",
    "COURSE_ONLY",
    "DESCRIPTIONS",
    "ENQUEUER",
    "FRAMING",
    "FULL",
    "GROUPS",
    "JOB_ID_PREFIX",
    "JOBS_QUEUE",
    "KEY_PREFIX",
    "LOCK_KEY",
    "MEASURES",
    "MODULE_JOB",
    "NOTIFY_NS",
    "NOTIFY_QUEUE",
    "ORIGINAL_FIGURES",
    "OriginalFigure",
    "PIPELINE_SIZE",
    "POLLER",
    "QUICK",
    "RAW_LIST",
    "RAW_PROCESSING",
    "SAMPLES_KEPT",
    "SIZE_ENV",
    "SMOKE",
    "TRIVIAL_JOB",
    "WORKER",
    "_thin",
    "bench_key_patterns",
    "bench_notifications",
    "clear_bench_keys",
    "comparison_rows",
    "counting_client",
    "describe",
    "fork_cost_ms",
    "format_comparison",
    "format_original",
    "format_table",
    "measure_http",
    "measure_notifications",
    "measure_ping",
    "measure_pubsub",
    "measure_raw_queue",
    "measure_rq_enqueue",
    "measure_rq_process",
    "measure_trace",
    "named_url",
    "noop",
    "percentile",
    "process_rate",
    "quick_settings",
    "redis_cpu_s",
    "redis_url_set",
    "Run",
    "run_bench",
    "Settings",
    "timed_loop",
    "Trace",
    "trace_commands",
    "trace_fastpath",
    "trace_rq_jobs",
    "Writes",
]
