import time


def seconds_until_due(q, job_id):
    # The registry's score is the due time (Unix seconds); no score: not scheduled.
    due = q.connection.zscore(q.scheduled_job_registry.key, job_id)
    return None if due is None else due - time.time()
