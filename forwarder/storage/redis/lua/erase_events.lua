local now, closed, items = ARGV[2], 0, 0
for i = 3, #ARGV do
  local ev = K.event(ARGV[i])
  redis.call('HSET', ev, 'payload', '{"erased":true}')
  redis.call('HDEL', ev, 'name')
  for id in string.gmatch(redis.call('HGET', ev, 'items') or '', '[^,]+') do
    items = items + 1
    closed = closed + finish(id, 'dropped', now, '{"reason":"erased"}')
    forget_held_keys(id)
  end
end
redis.call('DECRBY', K.open_total(), closed)
return {items, closed}
