from helpers import stock

RESERVE_MANY = """
local left = tonumber(redis.call('GET', KEYS[1]))
local wanted = tonumber(ARGV[1])
if left < wanted then
  return 0
end
redis.call('SET', KEYS[1], left - wanted)
return 1
"""


def reserve_many(client, item_id, count):
    # Check and take in one script: no other command runs in between.
    return client.eval(RESERVE_MANY, 1, stock.item_key(item_id), count) == 1
