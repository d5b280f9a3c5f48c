local now, available_at, counted = ARGV[2], ARGV[3], tonumber(ARGV[6])
for i = 7, #ARGV do
  local id = ARGV[i]
  local it = K.item(id)
  local v = redis.call('HMGET', it, 'state', 'portal', 'dest')
  if v[1] == 'leased' then
    redis.call('HSET', it, 'state', 'pending', 'av', available_at, 'up', now)
    if counted > 0 then redis.call('HINCRBY', it, 'att', counted) end
    if ARGV[4] == '1' then redis.call('HSET', it, 'out', ARGV[5])
    else redis.call('HDEL', it, 'out') end
    redis.call('ZADD', K.leases(v[2], v[3]), available_at, id)
    count(v[2], v[3], 'leased', -1)
    count(v[2], v[3], 'pending', 1)
  end
end
return 0
