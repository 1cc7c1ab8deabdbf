CANCEL_SEAT = """
local seats = tonumber(redis.call('GET', KEYS[1]) or '50')
seats = math.min(seats + 1, 50)
redis.call('SET', KEYS[1], seats)
redis.call('SET', KEYS[2], 'true')
return seats
"""


def cancel_seat(client):
    # Read, add and write in one script: concurrent cancellations never lose a seat.
    return client.eval(CANCEL_SEAT, 2, "available_seats", "reservationEnabled")
