def drill_counts(job_ids, effects, still_held):
    done = {}
    for job_id in effects:
        done[job_id] = done.get(job_id, 0) + 1
    held = set(still_held)
    missing = [job_id for job_id in job_ids if job_id not in done]
    return {
        "lost": sum(1 for job_id in missing if job_id not in held),
        "late": sum(1 for job_id in missing if job_id in held),
        "duplicated": sum(n - 1 for n in done.values()),
    }
