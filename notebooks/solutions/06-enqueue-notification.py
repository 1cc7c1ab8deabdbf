from helpers.job_events import enqueue_with_events


def enqueue_notification(q, phone_number, message):
    # The job's only argument is its data, as kue's job.data was.
    data = {"phoneNumber": phone_number, "message": message}
    return enqueue_with_events(q, "helpers.notifications.process_notification", data)
