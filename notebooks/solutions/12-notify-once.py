NOTIFY_ONCE = """
if redis.call('SET', KEYS[1], '1', 'NX', 'EX', ARGV[1]) then
  redis.call('RPUSH', KEYS[2], ARGV[2])
  return 1
end
return 0
"""


def notify_once_simple(client, notification_id, text):
    # One Lua script: the mark and the append happen together or not at all.
    script = client.register_script(NOTIFY_ONCE)
    mark = f"reliability:exercise:sent:{notification_id}"
    return bool(script(keys=[mark, "reliability:exercise:outbox"], args=[24 * 3600, text]))
