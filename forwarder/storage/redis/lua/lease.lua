local now, until_, limit, consumer = ARGV[2], ARGV[3], tonumber(ARGV[4]), ARGV[5]
local portal, dest = ARGV[6], ARGV[7]
if redis.call('SISMEMBER', K.queues(), f(portal, dest)) == 0 then return {} end
local q, lz = K.queue(portal, dest), K.leases(portal, dest)
local ids = {}
-- expired leases (a dead replica's) and retries now due: the lease index holds them, not the
-- group's pending list (NOACK below), so there is nothing to XCLAIM
for _, id in ipairs(redis.call('ZRANGEBYSCORE', lz, '-inf', now, 'LIMIT', 0, limit)) do
  ids[#ids + 1] = id
end
if #ids < limit then
  -- NOACK: an entry read goes in no pending list (which cost Redis an XCLAIM propagated per
  -- item, and its XACK at finish); it stays in the stream until its item is final (finish,
  -- hold: XDEL), so the stream still holds what waits, read or not (queue_depth)
  local read = redis.call('XREADGROUP', 'GROUP', GROUP, consumer, 'COUNT', limit - #ids,
                          'NOACK', 'STREAMS', q, '>')
  if read then
    local last = nil
    for _, entry in ipairs(read[1][2]) do
      ids[#ids + 1] = entry[2][2]
      last = entry[1]
    end
    if last then redis.call('HSET', K.last_read(), f(portal, dest), last) end
  end
end
-- Per item its read and its state; the lease index and the tallies once per call.
local buf, pieces, packed, queue = {''}, 1, 0, queue_packed(portal, dest)
local due, gone, moved = {}, {}, 0
for _, id in ipairs(ids) do
  local it = K.item(id)
  local v = redis.call('HMGET', it, 'state', 'att', 'seq')
  if v[1] == 'pending' or v[1] == 'leased' then
    if v[1] == 'pending' then moved = moved + 1 end
    redis.call('HSET', it, 'state', 'leased', 'av', until_, 'up', now)
    due[#due + 1] = until_
    due[#due + 1] = id
    pieces = item_packed(buf, pieces, queue, id, v[2], v[3])
    packed = packed + 1
  else
    gone[#gone + 1] = id  -- no longer open: nothing to deliver
  end
end
many('ZADD', lz, due)
many('ZREM', lz, gone)
if moved > 0 then
  count(portal, dest, 'pending', -moved)
  count(portal, dest, 'leased', moved)
end
-- One msgpack string for the whole batch, decoded by msgspec straight into Items.
buf[1] = mp_array(packed)
return table.concat(buf)
