def queued_phone_numbers(q):
    # q.jobs fetches the waiting jobs in queue order; args[0] is each job's data.
    return [job.args[0]["phoneNumber"] for job in q.jobs]
