-- ARGV: prefix, now, state, has outcome, outcome, the item ids as one msgpack array.
-- Per item its read and its write; what the items share (acks and deletions per queue, the
-- lease and state indexes, the tallies) once per call. What prelude.finish does, batched.
local now, state, outcome = ARGV[2], ARGV[3], false
if ARGV[4] == '1' then outcome = ARGV[5] end
local closed, queues, held, indexed, tallies, own, ids = 0, {}, {}, {}, {}, {}, {}
local function tally(portal, dest, st, n)
  local field = f(portal, dest, st)
  local c = tallies[field]
  if c then c[4] = c[4] + n else tallies[field] = {portal, dest, st, n} end
end
for _, n in ipairs(cmsgpack.unpack(ARGV[6])) do
  local id = tostring(n)  -- once: a number is formatted again wherever it is used
  local it = K.item(id)
  local v = redis.call('HMGET', it, 'state', 'portal', 'dest', 'av', 'sid', 'out')
  local was, portal, dest = v[1], v[2], v[3]
  if OPEN[was] then
    if was == 'held' then
      local waiting = held[portal]
      if not waiting then waiting = {}; held[portal] = waiting end
      waiting[#waiting + 1] = id
    else
      local key = portal .. SEP .. dest
      local qu = queues[key]
      if not qu then
        qu = {q = K.queue(portal, dest), lz = K.leases(portal, dest), sids = {}, ids = {}}
        queues[key] = qu
      end
      if v[5] then qu.sids[#qu.sids + 1] = v[5] end
      qu.ids[#qu.ids + 1] = id
    end
    if outcome then
      redis.call('HSET', it, 'state', state, 'up', now, 'out', outcome)
    else
      redis.call('HSET', it, 'state', state, 'up', now)
      if v[6] then redis.call('HDEL', it, 'out') end
    end
    local scored = indexed[portal]
    if not scored then scored = {}; indexed[portal] = scored end
    scored[#scored + 1] = v[4]
    scored[#scored + 1] = id
    tally(portal, dest, was, -1)
    tally(portal, dest, state, 1)
    own[#own + 1] = K.held_keys_of(id)
    ids[#ids + 1] = id
    closed = closed + 1
  end
end
-- The entries of the items finished leave their stream. Those at its head (delivery takes the
-- oldest first) go with one XTRIM: an XDEL walks its entry's stream node from the node's start
-- (a quarter of this script's CPU); the rest with XDEL.
local function unqueue_entries(q, sids)
  if #sids == 0 then return end
  local mine, at = {}, 0
  for _, sid in ipairs(sids) do mine[sid] = true end
  local head = redis.call('XRANGE', q, '-', '+', 'COUNT', #sids)
  while at < #head and mine[head[at + 1][1]] do
    mine[head[at + 1][1]] = nil
    at = at + 1
  end
  if at > 0 then
    -- MINID keeps ids from the one after the last entry of the head (ms-seq: seq + 1)
    local last = head[at][1]
    local dash = string.find(last, '-', 1, true)
    local next_id = string.sub(last, 1, dash) .. string.format('%.0f', string.sub(last, dash + 1) + 1)
    redis.call('XTRIM', q, 'MINID', next_id)
  end
  local rest = {}
  for _, sid in ipairs(sids) do if mine[sid] then rest[#rest + 1] = sid end end
  for s = 1, #rest, 1000 do redis.call('XDEL', q, unpack(rest, s, math.min(s + 999, #rest))) end
end
for _, qu in pairs(queues) do
  -- acknowledged for a release before this one, which read entries into the pending list
  for s = 1, #qu.sids, 1000 do
    redis.call('XACK', qu.q, GROUP, unpack(qu.sids, s, math.min(s + 999, #qu.sids)))
  end
  unqueue_entries(qu.q, qu.sids)
  many('ZREM', qu.lz, qu.ids)
end
for portal, ids in pairs(held) do many('ZREM', K.in_state(portal, 'held'), ids) end
-- Items held on identifiers are few: look them up only when one of these is.
for s = 1, #own, 1000 do
  if redis.call('EXISTS', unpack(own, s, math.min(s + 999, #own))) > 0 then
    for j = s, math.min(s + 999, #own) do forget_held_keys(ids[j]) end
  end
end
for portal, scored in pairs(indexed) do many('ZADD', K.in_state(portal, state), scored) end
for _, c in pairs(tallies) do count(c[1], c[2], c[3], c[4]) end
redis.call('DECRBY', K.open_total(), closed)
return closed
