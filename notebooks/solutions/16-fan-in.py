from rq.job import Dependency


def fan_in(q, phones, message):
    sends = [
        q.enqueue("helpers.patterns.workflows.send_notification", phone, message)
        for phone in phones
    ]
    # Runs once every send has ended, finished or failed, and reads their outcomes.
    return q.enqueue(
        "helpers.patterns.workflows.summarize",
        depends_on=Dependency(jobs=sends, allow_failure=True),
    )
