-- One ingest request in one call. ARGV: prefix, now, default dedup window, the events (a
-- msgpack array, see store._pack), the identity learning queued beside them (a msgpack array
-- of [portal, now, groups]), then the events' payloads (Redis's cmsgpack has no bin type).
-- Replies one msgpack string: items opened, per event its seq (negative: a duplicate of that
-- seq), per learning the replies of the items it released.
local now, default_window = ARGV[2], tonumber(ARGV[3])
local events = cmsgpack.unpack(ARGV[4])
local out, opened = {}, 0
for _, e in ipairs(events) do
  local portal, mid, window = e[1], e[2], default_window
  if e[3] ~= '' then window = tonumber(e[3]) end
  local field = f(portal, mid)
  local seen = redis.call('ZSCORE', K.dedup_at(), field)
  if seen and tonumber(seen) > tonumber(now) - window then
    out[#out + 1] = -tonumber(redis.call('HGET', K.dedup(), field))
  else
    local seq = redis.call('INCR', K.seq())
    local ev = K.event(seq)
    redis.call('HSET', ev, 'portal', portal, 'mid', mid, 'src', e[4], 'type', e[5], 'at', e[7],
               'test', e[8], 'payload', ARGV[5 + e[9]])
    if e[6] ~= '' then redis.call('HSET', ev, 'name', string.sub(e[6], 2)) end
    redis.call('ZADD', K.events(), seq, seq)
    redis.call('ZADD', K.events_at(), e[7], seq)
    redis.call('ZADD', K.portal_events(portal), seq, seq)
    redis.call('HSET', K.dedup(), field, seq)
    redis.call('ZADD', K.dedup_at(), now, field)
    redis.call('SADD', K.portals(), portal)
    local ids = {}
    for _, dest in ipairs(e[10]) do
      local id = redis.call('INCR', K.item_seq())
      local sid = enqueue(id, portal, dest, now, e[7])
      redis.call('HSET', K.item(id), 'seq', seq, 'portal', portal, 'dest', dest,
                 'state', 'pending', 'att', 0, 'av', now, 'up', now, 'sid', sid)
      count(portal, dest, 'pending', 1)
      count(portal, dest, 'accepted', 1)
      ids[#ids + 1] = id
      opened = opened + 1
    end
    for _, drop in ipairs(e[11]) do
      local id = redis.call('INCR', K.item_seq())
      redis.call('HSET', K.item(id), 'seq', seq, 'portal', portal, 'dest', drop[1],
                 'state', 'dropped', 'att', 0, 'av', now, 'up', now, 'out', drop[2])
      redis.call('ZADD', K.in_state(portal, 'dropped'), now, id)
      count(portal, drop[1], 'accepted', 1)
      count(portal, drop[1], 'dropped', 1)
      ids[#ids + 1] = id
    end
    redis.call('HSET', ev, 'items', table.concat(ids, ','))
    out[#out + 1] = seq
  end
end
redis.call('INCRBY', K.open_total(), opened)
local released = {}
for i, l in ipairs(cmsgpack.unpack(ARGV[5])) do released[i] = learn(l[1], l[2], l[3]) end
return cmsgpack.pack({opened, out, released})
