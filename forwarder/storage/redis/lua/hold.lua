local now, until_, nkeys = ARGV[2], ARGV[3], tonumber(ARGV[6])
local first = 7 + nkeys
for i = first, #ARGV do
  local id = ARGV[i]
  local it = K.item(id)
  local v = redis.call('HMGET', it, 'state', 'portal', 'dest')
  if v[1] == 'leased' then
    unqueue(id, it, v[2], v[3], 'leased')
    redis.call('HSET', it, 'state', 'held', 'av', until_, 'up', now)
    if ARGV[4] == '1' then redis.call('HSET', it, 'out', ARGV[5]) end
    redis.call('ZADD', K.in_state(v[2], 'held'), until_, id)
    count(v[2], v[3], 'leased', -1)
    count(v[2], v[3], 'held', 1)
  end
end
if nkeys > 0 and first <= #ARGV then
  local portal = redis.call('HGET', K.item(ARGV[first]), 'portal')
  if portal then
    for i = first, #ARGV do
      for k = 7, first - 1 do
        local key = K.held_by(portal, ARGV[k])
        redis.call('SADD', key, ARGV[i])
        redis.call('SADD', K.held_keys_of(ARGV[i]), key)
      end
    end
  end
end
return 0
