from helpers.notifications import create_push_notifications_jobs
from helpers.workers import queue


def run_synchronously(jobs):
    # is_async=False: each job runs inside enqueue, in this process.
    sync_queue = queue("push_notification_code_3", is_async=False)
    created = create_push_notifications_jobs(jobs, sync_queue)
    return [job.get_status().value for job in created]
