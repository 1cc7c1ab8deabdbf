import redis

from helpers import stock


def restock(client, item_id, units):
    key = stock.item_key(item_id)
    shelf = stock.get_item_by_id(item_id)["initialAvailableQuantity"]
    with client.pipeline() as pipe:
        while True:
            try:
                pipe.watch(key)  # EXEC fails if anyone writes the key from now on
                new = min(shelf, int(pipe.get(key)) + units)
                pipe.multi()
                pipe.set(key, new)
                pipe.execute()
                return new
            except redis.WatchError:
                continue  # somebody changed the stock in between: read again
