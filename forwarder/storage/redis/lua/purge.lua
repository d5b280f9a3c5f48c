-- One step of purge: at most ARGV[5] expired dedup fields and old events. Replies the fields
-- and events deleted, then whether more may wait (1 or 0) for each, then the events skipped
-- (some item still open: kept, and the next step starts past them, at ARGV[4]).
local dedup_before, events_before = tonumber(ARGV[2]), tonumber(ARGV[3])
local offset, batch, gone = tonumber(ARGV[4]), tonumber(ARGV[5]), 0
-- Dedup: the log's entries (one an append, in seq order) whose now is past the window. A
-- field a later append took again holds that append's seq and time (and is in its entry):
-- only a field still as this entry left it, or older, is deleted. Entries are read one at a
-- time: one holds up to 1,000 messages, and reading a step's worth to look at the first one's
-- time held Redis 10-20 ms every purge with nothing to forget (100,000 messages logged).
local fields_seen, dedup_more = 0, 0
while true do
  local entry = redis.call('XRANGE', K.dedup_log(), '-', '+', 'COUNT', 1)[1]
  if not entry then break end
  local kv = entry[2]
  if tonumber(kv[2]) >= dedup_before then break end
  if fields_seen >= batch then
    dedup_more = 1
    break
  end
  local fields = {}
  for j = 3, #kv, 2 do fields[#fields + 1] = kv[j] .. SEP .. kv[j + 1] end
  local values = redis.call('HMGET', K.dedup(), unpack(fields))
  for j = 1, #fields do
    local seen = values[j] and string.match(values[j], ' (.+)$')
    if values[j] and (not seen or tonumber(seen) < dedup_before) then
      redis.call('HDEL', K.dedup(), fields[j])
      gone = gone + 1
    end
  end
  redis.call('XDEL', K.dedup_log(), entry[1])  -- the next read finds the next entry first
  fields_seen = fields_seen + #fields
end
-- Events, oldest first: first those an earlier step passed but kept (an item was open), from
-- ARGV[4] on; then seqs up from the floor, up to the first received at or after events_before
-- (seqs grow with time: one replica's clock running behind another's only delays a purge). A
-- seq with no event (a failed script took it) is passed.
-- 'young': received at or after events_before, kept; 'open': an item still open, kept;
-- 'gone': deleted with its items; 'none': no such event.
local function old_event(seq)
  local ev = K.event(seq)
  local v = redis.call('HMGET', ev, 'at', 'items')
  if not v[1] then return 'none' end
  if tonumber(v[1]) >= events_before then return 'young' end
  local ids = {}
  for id in string.gmatch(v[2] or '', '[^,]+') do ids[#ids + 1] = id end
  for _, id in ipairs(ids) do
    if OPEN[redis.call('HGET', K.item(id), 'state')] then return 'open' end
  end
  for _, id in ipairs(ids) do
    local it = redis.call('HMGET', K.item(id), 'portal', 'state')
    if it[1] then redis.call('ZREM', K.in_state(it[1], it[2]), id) end
    for _, aid in ipairs(redis.call('SMEMBERS', K.attempts_of(id))) do
      redis.call('DEL', K.attempt(aid))
    end
    redis.call('DEL', K.attempts_of(id), K.item(id))
  end
  redis.call('DEL', ev)
  return 'gone'
end
local skipped, events_more = 0, 0
local kept = redis.call('ZRANGE', K.events_kept(), offset, offset + batch - 1)
if #kept == batch then events_more = 1 end
for _, seq in ipairs(kept) do
  local was = old_event(seq)
  if was == 'open' or was == 'young' then
    skipped = skipped + 1
  else
    if was == 'gone' then gone = gone + 1 end
    redis.call('ZREM', K.events_kept(), seq)
  end
end
local seq = tonumber(redis.call('GET', K.events_floor()) or 1)
local last = tonumber(redis.call('GET', K.seq()) or 0)
local budget = batch - #kept
while budget > 0 and seq <= last do
  local s = int(seq)
  local was = old_event(s)
  if was == 'young' then break end
  if was == 'gone' then gone = gone + 1 end
  if was == 'open' then redis.call('ZADD', K.events_kept(), s, s) end
  seq, budget = seq + 1, budget - 1
end
redis.call('SET', K.events_floor(), int(seq))
if budget == 0 and seq <= last then events_more = 1 end
return {gone, dedup_more, events_more, skipped}
