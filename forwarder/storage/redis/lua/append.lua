-- One ingest request in one call. ARGV: prefix, now, default dedup window, then the identity
-- learning queued beside the events: the epoch of the caller's settled links, the number of
-- learnings, and each learning flat (store._flat_learning): its portal, now, the number of its
-- groups, then per group the number of its keys, '1' if the caller holds it settled (else ''),
-- and its keys. Then each event's fields flat (store._flat): portal, messageId, window ('':
-- the default), source, type, name ('': none, else '=' and the name), received at, test flag,
-- payload, the number of its destinations and each, the number of its drops and each drop's
-- destination and outcome. Replies one msgpack string: items opened, per event its seq
-- (negative: a duplicate of that seq), per learning the replies of the items it released and
-- the indexes of its groups now settled, and the identity epoch after the call.
-- Arguments come flat rather than as msgpack arrays: unpacking one cost Redis ~1,200
-- instructions an element and a table per event or learning, ~15 % of the script.
local A = ARGV
local now, default_window = A[2], tonumber(A[3])
local now_n = tonumber(now)
-- A command costs Redis more than the work it does (17 an event were most of the script's
-- CPU): per event only its hash, per item its stream entry and its hash; the dedup check,
-- sequences, indexes, queue sets and tallies are one command per call. Events need no index:
-- their seqs are dense, and purge walks them from a floor (purge.lua).
-- Pass 1 decides, without writing: duplicates (of the store or of an earlier event of this
-- call), then the seqs and item ids, which are taken before anything is written, so a script
-- failing halfway never hands them out again.
-- Each count is read once (tonumber parses with strtod, ~300 instructions a call): per
-- learning its ARGV index, first group and number of groups; per group its ARGV index and
-- number of keys; per event its ARGV index, dedup field, destinations and drops.
local asked_epoch, a = tonumber(A[4]), 6
local learnings, first_group, groups_n, group_at, keys_n = {}, {}, {}, {}, {}
for l = 1, tonumber(A[5]) do
  learnings[l], first_group[l], groups_n[l] = a, #group_at + 1, tonumber(A[a + 2])
  a = a + 3
  for _ = 1, groups_n[l] do
    local j = #group_at + 1
    group_at[j], keys_n[j] = a, tonumber(A[a])
    a = a + 2 + keys_n[j]
  end
end
local at, fields, dests_n, drops_n, n = {}, {}, {}, {}, #A
while a <= n do
  local i = #at + 1
  local dests = tonumber(A[a + 9])
  local drops = tonumber(A[a + 10 + dests])
  at[i], fields[i], dests_n[i], drops_n[i] = a, A[a] .. SEP .. A[a + 1], dests, drops
  a = a + 11 + dests + 2 * drops
end
-- The dedup hash's value for a message: its seq and when it was first seen ('seq now').
local known = {}
for s = 1, #fields, 1000 do
  local part = redis.call('HMGET', K.dedup(), unpack(fields, s, math.min(s + 999, #fields)))
  for j = 1, #part do known[s + j - 1] = part[j] end
end
local out, opened, fresh = {}, 0, {}
local kept, kept_seq, kept_id = {}, {}, {}
local last = redis.call('MGET', K.seq(), K.item_seq())
local seq, item_id = tonumber(last[1] or 0), tonumber(last[2] or 0)
for i, e in ipairs(at) do
  local window = default_window
  if A[e + 2] ~= '' then window = tonumber(A[e + 2]) end
  local field = fields[i]
  local first, dup = fresh[field], nil
  if first then
    dup = first
  elseif known[i] then
    local seq_of, seen = string.match(known[i], '^(%d+) (.+)$')
    if not seq_of then
      dup = tonumber(known[i])  -- a bare seq, as key spaces before version 4 held: kept
    elseif tonumber(seen) > now_n - window then
      dup = tonumber(seq_of)
    end
  end
  if dup then
    out[i] = -dup
  else
    seq = seq + 1
    fresh[field] = seq
    out[i] = seq
    local k = #kept + 1
    kept[k], kept_seq[k], kept_id[k] = i, seq, item_id
    item_id = item_id + dests_n[i] + drops_n[i]
  end
end
if #kept > 0 then
  -- The dedup log: one stream entry per call, its id the call's first seq (ids grow as seqs
  -- do, so the XADD cannot fail, and it goes first: a script failing writes nothing before
  -- it), holding now and each new message's portal and id, for purge to find expired fields
  -- by. A sorted set scored by time cost Redis a node and a hash entry per event.
  -- In entries of at most 1,000 messages (unpack has a stack limit), ids first seq-1, -2...
  local first_seq, part = int(kept_seq[1]), 0
  for s = 1, #kept, 1000 do
    part = part + 1
    local log = {'now', now}
    for k = s, math.min(s + 999, #kept) do
      local e = at[kept[k]]
      log[#log + 1] = A[e]
      log[#log + 1] = A[e + 1]
    end
    redis.call('XADD', K.dedup_log(), first_seq .. '-' .. part, unpack(log))
  end
  redis.call('MSET', K.seq(), int(seq), K.item_seq(), int(item_id))
  -- Pass 2 writes. Seqs and ids go as strings formatted once each (int): Redis formats a
  -- number argument with '%.17g' and Lua a number it concatenates with '%.14g', both far
  -- dearer than '%d', and an event's seq was formatted a dozen times.
  local dedup, portals, dropped = {}, {}, {}
  -- per portal SEP destination: {portal, destination, items queued, items dropped, the key}
  local tallies = {}
  local function tally(portal, dest, where)
    local pd = portal .. SEP .. dest
    local t = tallies[pd]
    if not t then
      t = {portal, dest, 0, 0, pd}
      tallies[pd] = t
    end
    t[where] = t[where] + 1
    return t
  end
  local function push(list, x, y) list[#list + 1] = x; list[#list + 1] = y end
  for k, i in ipairs(kept) do
    local e, seq, id = at[i], int(kept_seq[k]), kept_id[k]
    local portal, received = A[e], A[e + 6]
    local items
    local last_dest = e + 9 + dests_n[i]
    for d = e + 10, last_dest do
      local dest = A[d]
      id = id + 1
      local item = int(id)
      local q = K.queue(portal, dest)
      local t = tally(portal, dest, 3)
      if t[3] == 1 and redis.call('SADD', K.queues(), t[5]) == 1 then
        redis.call('XGROUP', 'CREATE', q, GROUP, '0', 'MKSTREAM')
      end
      local sid = redis.call('XADD', q, '*', 'i', item, 'a', now, 'r', received)
      redis.call('HSET', K.item(item), 'seq', seq, 'portal', portal, 'dest', dest,
                 'state', 'pending', 'att', '0', 'av', now, 'up', now, 'sid', sid)
      items = items and items .. ',' .. item or item
      opened = opened + 1
    end
    for x = last_dest + 2, last_dest + 1 + 2 * drops_n[i], 2 do
      local dest = A[x]
      id = id + 1
      local item = int(id)
      redis.call('HSET', K.item(item), 'seq', seq, 'portal', portal, 'dest', dest,
                 'state', 'dropped', 'att', '0', 'av', now, 'up', now, 'out', A[x + 1])
      dropped[portal] = dropped[portal] or {}
      push(dropped[portal], now, item)
      tally(portal, dest, 4)
      items = items and items .. ',' .. item or item
    end
    local name = A[e + 5]
    if name ~= '' then
      redis.call('HSET', K.event(seq), 'portal', portal, 'mid', A[e + 1], 'src', A[e + 3],
                 'type', A[e + 4], 'at', received, 'test', A[e + 7], 'payload', A[e + 8],
                 'items', items or '', 'name', string.sub(name, 2))
    else
      redis.call('HSET', K.event(seq), 'portal', portal, 'mid', A[e + 1], 'src', A[e + 3],
                 'type', A[e + 4], 'at', received, 'test', A[e + 7], 'payload', A[e + 8],
                 'items', items or '')
    end
    push(dedup, fields[i], seq .. ' ' .. now)
    portals[portal] = true
  end
  many('HSET', K.dedup(), dedup)
  for portal in pairs(portals) do redis.call('SADD', K.portals(), portal) end
  for portal, members in pairs(dropped) do many('ZADD', K.in_state(portal, 'dropped'), members) end
  for _, t in pairs(tallies) do
    if t[3] > 0 then count(t[1], t[2], 'pending', int(t[3])) end
    count(t[1], t[2], 'accepted', int(t[3] + t[4]))
    if t[4] > 0 then count(t[1], t[2], 'dropped', int(t[4])) end
  end
end
redis.call('INCRBY', K.open_total(), int(opened))
-- The learning: learning l as learn() takes it.
local function learning(l)
  local groups, flags = {}, {}
  for i = 1, groups_n[l] do
    local j = first_group[l] + i - 1
    local g = group_at[j]
    flags[i] = A[g + 1] == '1'
    groups[i] = {unpack(A, g + 2, g + 1 + keys_n[j])}
  end
  return A[learnings[l]], A[learnings[l] + 1], groups, flags
end
-- Whether every group of every learning is one the caller holds settled as of the store's
-- epoch (current), with nothing held on any: none would change the graph or release anything,
-- so none need be learned one by one (a request of returning users).
local function all_settled(current)
  if #learnings == 0 or asked_epoch ~= current then return false end
  local names = {}
  for l, b in ipairs(learnings) do
    local portal = A[b]
    for j = first_group[l], first_group[l] + groups_n[l] - 1 do
      local g = group_at[j]
      if A[g + 1] ~= '1' then return false end
      for k = g + 2, g + 1 + keys_n[j] do names[#names + 1] = K.held_by(portal, A[k]) end
    end
  end
  return not any_exists(names)
end
local released, settled, epoch = {}, {}, 0
-- The store's epoch, read once: only a learning that changed the graph moves it (unsettle).
if #learnings > 0 then epoch = tonumber(redis.call('GET', K.identity_epoch()) or 0) end
if all_settled(epoch) then
  for i = 1, #learnings do released[i], settled[i] = {}, {} end
  return cmsgpack.pack({opened, out, released, settled, epoch})
end
for i = 1, #learnings do
  local portal, at_now, groups, flags = learning(i)
  local changed
  released[i], settled[i], changed =
    learn(portal, at_now, groups, skippable(portal, asked_epoch, epoch, groups, flags))
  if changed then
    epoch = tonumber(redis.call('GET', K.identity_epoch()) or 0)
    -- what an earlier learning found settled may be no more
    for j = 1, i - 1 do settled[j] = {} end
  end
end
return cmsgpack.pack({opened, out, released, settled, epoch})
