from collections import deque


def run_order(enqueued, queue_order):
    # Each queue is a list: at_front pushes at its head, the rest at its tail.
    queues = {name: deque() for name in queue_order}
    for queue_name, label, at_front in enqueued:
        if at_front:
            queues[queue_name].appendleft(label)
        else:
            queues[queue_name].append(label)
    # One worker, default strategy: always the first queue that has a job.
    order = []
    for name in queue_order:
        order.extend(queues[name])
    return order
