-- One ingest request in one call. ARGV: prefix, now, default dedup window, the events (a
-- msgpack array, see store._pack), the identity learning queued beside them (a msgpack array
-- [epoch, [[portal, now, groups, settled flags]...]]), then the events' payloads (Redis's
-- cmsgpack has no bin type). Replies one msgpack string: items opened, per event its seq
-- (negative: a duplicate of that seq), per learning the replies of the items it released and
-- the indexes of its groups now settled, and the identity epoch after the call.
local now, default_window = ARGV[2], tonumber(ARGV[3])
local events = cmsgpack.unpack(ARGV[4])
-- A command costs Redis more than the work it does (17 an event were most of the script's
-- CPU): per event only its dedup check and its hash, per item its stream entry and its hash;
-- sequences, indexes, queue sets and tallies are written once per call.
-- Pass 1 decides, without writing: duplicates (of the store or of an earlier event of this
-- call), then the seqs and item ids, which are taken before anything is written, so a script
-- failing halfway never hands them out again.
local out, opened, fresh, kept = {}, 0, {}, {}
local last = redis.call('MGET', K.seq(), K.item_seq())
local seq, item_id = tonumber(last[1] or 0), tonumber(last[2] or 0)
for i, e in ipairs(events) do
  local window = default_window
  if e[3] ~= '' then window = tonumber(e[3]) end
  local field = f(e[1], e[2])
  local first, seen = fresh[field], now
  if not first then seen = redis.call('ZSCORE', K.dedup_at(), field) end
  if seen and tonumber(seen) > tonumber(now) - window then
    out[i] = -(first or tonumber(redis.call('HGET', K.dedup(), field)))
  else
    seq = seq + 1
    fresh[field] = seq
    out[i] = seq
    kept[#kept + 1] = {e, seq, field, item_id}
    item_id = item_id + #e[10] + #e[11]
  end
end
if #kept > 0 then
  redis.call('MSET', K.seq(), int(seq), K.item_seq(), int(item_id))
  -- Pass 2 writes. Seqs and ids go as strings formatted once each (int): Redis formats a
  -- number argument with '%.17g' and Lua a number it concatenates with '%.14g', both far
  -- dearer than '%d', and an event's seq was formatted a dozen times.
  local by_seq, at_of, dedup, dedup_at, pev, dropped, tallies = {}, {}, {}, {}, {}, {}, {}
  local function push(list, a, b) list[#list + 1] = a; list[#list + 1] = b end
  local function tally(portal, dest, state)
    local field = f(portal, dest, state)
    local t = tallies[field]
    if t then t[4] = t[4] + 1 else tallies[field] = {portal, dest, state, 1} end
  end
  local queued = {}
  for _, k in ipairs(kept) do
    local e, seq, id = k[1], int(k[2]), k[4]
    local portal = e[1]
    local ids = {}
    for _, dest in ipairs(e[10]) do
      id = id + 1
      local item = int(id)
      local q = K.queue(portal, dest)
      if not queued[q] then
        queued[q] = true
        if redis.call('SADD', K.queues(), f(portal, dest)) == 1 then
          redis.call('XGROUP', 'CREATE', q, GROUP, '0', 'MKSTREAM')
        end
      end
      local sid = redis.call('XADD', q, '*', 'i', item, 'a', now, 'r', e[7])
      redis.call('HSET', K.item(item), 'seq', seq, 'portal', portal, 'dest', dest,
                 'state', 'pending', 'att', '0', 'av', now, 'up', now, 'sid', sid)
      tally(portal, dest, 'pending')
      tally(portal, dest, 'accepted')
      ids[#ids + 1] = item
      opened = opened + 1
    end
    for _, drop in ipairs(e[11]) do
      id = id + 1
      local item = int(id)
      redis.call('HSET', K.item(item), 'seq', seq, 'portal', portal, 'dest', drop[1],
                 'state', 'dropped', 'att', '0', 'av', now, 'up', now, 'out', drop[2])
      dropped[portal] = dropped[portal] or {}
      push(dropped[portal], now, item)
      tally(portal, drop[1], 'accepted')
      tally(portal, drop[1], 'dropped')
      ids[#ids + 1] = item
    end
    local ev = {'portal', portal, 'mid', e[2], 'src', e[4], 'type', e[5], 'at', e[7],
                'test', e[8], 'payload', ARGV[5 + e[9]], 'items', table.concat(ids, ',')}
    if e[6] ~= '' then push(ev, 'name', string.sub(e[6], 2)) end
    redis.call('HSET', K.event(seq), unpack(ev))
    push(by_seq, seq, seq)
    push(at_of, e[7], seq)
    pev[portal] = pev[portal] or {}
    push(pev[portal], seq, seq)
    push(dedup, k[3], seq)
    push(dedup_at, now, k[3])
  end
  many('ZADD', K.events(), by_seq)
  many('ZADD', K.events_at(), at_of)
  many('HSET', K.dedup(), dedup)
  many('ZADD', K.dedup_at(), dedup_at)
  for portal, members in pairs(pev) do
    many('ZADD', K.portal_events(portal), members)
    redis.call('SADD', K.portals(), portal)
  end
  for portal, members in pairs(dropped) do many('ZADD', K.in_state(portal, 'dropped'), members) end
  for _, t in pairs(tallies) do count(t[1], t[2], t[3], int(t[4])) end
end
redis.call('INCRBY', K.open_total(), int(opened))
-- The learning: the epoch of the caller's settled links, then per learning its portal, now,
-- groups and a flag per group it holds settled.
local riders = cmsgpack.unpack(ARGV[5])
local released, settled, epoch = {}, {}, 0
-- The store's epoch, read once: only a learning that changed the graph moves it (unsettle).
if #riders[2] > 0 then epoch = tonumber(redis.call('GET', K.identity_epoch()) or 0) end
for i, l in ipairs(riders[2]) do
  local changed
  released[i], settled[i], changed =
    learn(l[1], l[2], l[3], skippable(l[1], riders[1], epoch, l[3], l[4]))
  if changed then
    epoch = tonumber(redis.call('GET', K.identity_epoch()) or 0)
    -- what an earlier learning found settled may be no more
    for j = 1, i - 1 do settled[j] = {} end
  end
end
return cmsgpack.pack({opened, out, released, settled, epoch})
