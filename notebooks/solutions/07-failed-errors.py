from rq.job import Job


def failed_errors(q):
    errors = {}
    for job_id in q.failed_job_registry.get_job_ids():
        job = Job.fetch(job_id, connection=q.connection, serializer=q.serializer)
        errors[job_id] = job.meta.get("error")
    return errors
