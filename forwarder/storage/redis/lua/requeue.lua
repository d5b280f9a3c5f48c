local now, state, moved = ARGV[2], ARGV[3], 0
for i = 4, #ARGV do
  local id = ARGV[i]
  local it = K.item(id)
  local v = redis.call('HMGET', it, 'state', 'portal', 'dest', 'seq')
  if v[1] == state then
    local at = redis.call('HGET', K.event(v[4]), 'at')
    local sid = enqueue(id, v[2], v[3], now, at)
    redis.call('HSET', it, 'state', 'pending', 'att', 0, 'av', now, 'up', now,
               'out', '{"reason":"replayed"}', 'sid', sid)
    redis.call('ZREM', K.in_state(v[2], state), id)
    count(v[2], v[3], state, -1)
    count(v[2], v[3], 'pending', 1)
    moved = moved + 1
  end
end
redis.call('INCRBY', K.open_total(), moved)
return moved
