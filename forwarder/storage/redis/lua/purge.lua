local dedup_before, events_before = ARGV[2], ARGV[3]
local offset, batch, gone = tonumber(ARGV[4]), tonumber(ARGV[5]), 0
local old = redis.call('ZRANGEBYSCORE', K.dedup_at(), '-inf', '(' .. dedup_before,
                      'LIMIT', 0, batch)
for _, field in ipairs(old) do
  redis.call('HDEL', K.dedup(), field)
  redis.call('ZREM', K.dedup_at(), field)
end
gone = #old
local seqs = redis.call('ZRANGEBYSCORE', K.events_at(), '-inf', '(' .. events_before,
                        'LIMIT', offset, batch)
local skipped = 0
for _, seq in ipairs(seqs) do
  local ev = K.event(seq)
  local ids = {}
  for id in string.gmatch(redis.call('HGET', ev, 'items') or '', '[^,]+') do ids[#ids + 1] = id end
  local open = false
  for _, id in ipairs(ids) do
    if OPEN[redis.call('HGET', K.item(id), 'state')] then open = true end
  end
  if open then
    skipped = skipped + 1
  else
    for _, id in ipairs(ids) do
      local v = redis.call('HMGET', K.item(id), 'portal', 'state')
      if v[1] then redis.call('ZREM', K.in_state(v[1], v[2]), id) end
      for _, aid in ipairs(redis.call('SMEMBERS', K.attempts_of(id))) do
        redis.call('DEL', K.attempt(aid))
      end
      redis.call('DEL', K.attempts_of(id), K.item(id))
    end
    local portal = redis.call('HGET', ev, 'portal')
    if portal then redis.call('ZREM', K.portal_events(portal), seq) end
    redis.call('DEL', ev)
    redis.call('ZREM', K.events(), seq)
    redis.call('ZREM', K.events_at(), seq)
    gone = gone + 1
  end
end
return {gone, #old, #seqs, skipped}
