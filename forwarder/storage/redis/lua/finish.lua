-- ARGV: prefix, now, state, has outcome, outcome, the item ids as one msgpack array.
-- Per item its read and its write; what the items share (acks and deletions per queue, the
-- lease and state indexes, the tallies) once per call. What prelude.finish does, batched.
local now, state, outcome = ARGV[2], ARGV[3], false
if ARGV[4] == '1' then outcome = ARGV[5] end
local closed, queues, held, indexed, tallies, own, ids = 0, {}, {}, {}, {}, {}, {}
local function group(t, key, make)
  local g = t[key]
  if not g then g = make(); t[key] = g end
  return g
end
for _, n in ipairs(cmsgpack.unpack(ARGV[6])) do
  local id = tostring(n)  -- once: a number is formatted again wherever it is used
  local it = K.item(id)
  local v = redis.call('HMGET', it, 'state', 'portal', 'dest', 'av', 'sid', 'out')
  local was, portal, dest = v[1], v[2], v[3]
  if OPEN[was] then
    if was == 'held' then
      local waiting = group(held, portal, function() return {} end)
      waiting[#waiting + 1] = id
    else
      local qu = group(queues, f(portal, dest), function()
        return {q = K.queue(portal, dest), lz = K.leases(portal, dest), sids = {}, ids = {}}
      end)
      if v[5] then qu.sids[#qu.sids + 1] = v[5] end
      qu.ids[#qu.ids + 1] = id
    end
    if outcome then
      redis.call('HSET', it, 'state', state, 'up', now, 'out', outcome)
    else
      redis.call('HSET', it, 'state', state, 'up', now)
      if v[6] then redis.call('HDEL', it, 'out') end
    end
    local scored = group(indexed, portal, function() return {} end)
    scored[#scored + 1] = v[4]
    scored[#scored + 1] = id
    for _, t in ipairs({{was, -1}, {state, 1}}) do
      local c = group(tallies, f(portal, dest, t[1]), function() return {portal, dest, t[1], 0} end)
      c[4] = c[4] + t[2]
    end
    own[#own + 1] = K.held_keys_of(id)
    ids[#ids + 1] = id
    closed = closed + 1
  end
end
for _, qu in pairs(queues) do
  for s = 1, #qu.sids, 1000 do
    local part = {unpack(qu.sids, s, math.min(s + 999, #qu.sids))}
    redis.call('XACK', qu.q, GROUP, unpack(part))
    redis.call('XDEL', qu.q, unpack(part))
  end
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
