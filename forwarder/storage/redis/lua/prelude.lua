-- Shared by every script (after the generated key functions K.*): helpers for items and queues.
local function f(...) return table.concat({...}, SEP) end
-- A whole number as a string: Redis formats a number argument with '%.17g', and Lua one it
-- concatenates with '%.14g', several times dearer; a number used more than once is formatted
-- once this way.
local function int(n) return string.format('%d', n) end
local OPEN = {pending = true, leased = true, held = true}
local function count(portal, dest, state, n)
  local field = f(portal, dest, state)
  if OPEN[state] then redis.call('HINCRBY', K.open(), field, n)
  else redis.call('HINCRBY', K.tally(), field, n) end
end
local function enqueue(id, portal, dest, available_at, received_at)
  local q = K.queue(portal, dest)
  if redis.call('SADD', K.queues(), f(portal, dest)) == 1 then
    redis.call('XGROUP', 'CREATE', q, GROUP, '0', 'MKSTREAM')
  end
  return redis.call('XADD', q, '*', 'i', id, 'a', available_at, 'r', received_at)
end
local function unqueue(id, it, portal, dest, state)
  if state == 'held' then
    redis.call('ZREM', K.in_state(portal, 'held'), id)
    return
  end
  local q = K.queue(portal, dest)
  local sid = redis.call('HGET', it, 'sid')
  if sid then
    redis.call('XACK', q, GROUP, sid)
    redis.call('XDEL', q, sid)
  end
  redis.call('ZREM', K.leases(portal, dest), id)
end
local function forget_held_keys(id)
  local own = K.held_keys_of(id)
  for _, key in ipairs(redis.call('SMEMBERS', own)) do redis.call('SREM', key, id) end
  redis.call('DEL', own)
end
local function finish(id, state, now, outcome)
  local it = K.item(id)
  local v = redis.call('HMGET', it, 'state', 'portal', 'dest', 'av')
  if not OPEN[v[1]] then return 0 end
  unqueue(id, it, v[2], v[3], v[1])
  forget_held_keys(id)
  redis.call('HSET', it, 'state', state, 'up', now)
  if outcome then redis.call('HSET', it, 'out', outcome) else redis.call('HDEL', it, 'out') end
  redis.call('ZADD', K.in_state(v[2], state), v[4], id)
  count(v[2], v[3], v[1], -1)
  count(v[2], v[3], state, 1)
  return 1
end
local function release(id, now)
  local it = K.item(id)
  local v = redis.call('HMGET', it, 'state', 'portal', 'dest', 'seq')
  if v[1] ~= 'held' then return false end
  redis.call('ZREM', K.in_state(v[2], 'held'), id)
  local at = redis.call('HGET', K.event(v[4]), 'at')
  local sid = enqueue(id, v[2], v[3], now, at)
  redis.call('HSET', it, 'state', 'pending', 'av', now, 'up', now, 'sid', sid)
  count(v[2], v[3], 'held', -1)
  count(v[2], v[3], 'pending', 1)
  return true
end
local function item_reply(id)
  local it = redis.call('HMGET', K.item(id), 'att', 'dest', 'seq')
  local ev = redis.call('HMGET', K.event(it[3]), 'portal', 'mid', 'src', 'type', 'name', 'at',
                        'test', 'payload')
  return {id, it[1], it[2], it[3], ev[1], ev[2], ev[3], ev[4], ev[5], ev[6], ev[7], ev[8]}
end
-- Release every item held on any of the identifiers kvs; returns their replies, oldest first.
-- SUNION in parts: unpack has a stack limit.
local function release_held_by(portal, kvs, now)
  local ids, seen = {}, {}
  for s = 1, #kvs, 500 do
    local part = {}
    for j = s, math.min(s + 499, #kvs) do part[#part + 1] = K.held_by(portal, kvs[j]) end
    for _, id in ipairs(redis.call('SUNION', unpack(part))) do
      if not seen[id] then
        seen[id] = true
        ids[#ids + 1] = id
      end
    end
  end
  table.sort(ids, function(a, b) return tonumber(a) < tonumber(b) end)
  local out = {}
  for _, id in ipairs(ids) do
    forget_held_keys(id)
    if release(id, now) then out[#out + 1] = item_reply(id) end
  end
  return out
end
local function link(portal, kvs, now)
  local idn = K.identities(portal)
  local people, winner = {}, nil
  for _, kv in ipairs(kvs) do
    local p = redis.call('HGET', idn, kv)
    if p then
      p = tonumber(p)
      people[p] = true
      if winner == nil or p < winner then winner = p end
    end
  end
  if winner == nil then winner = redis.call('INCR', K.people()) end
  local into = K.person(portal, winner)
  for p, _ in pairs(people) do
    if p ~= winner then
      local members = redis.call('ZRANGE', K.person(portal, p), 0, -1, 'WITHSCORES')
      for j = 1, #members, 2 do
        redis.call('ZADD', into, members[j + 1], members[j])
        redis.call('HSET', idn, members[j], winner)
      end
      redis.call('DEL', K.person(portal, p))
    end
  end
  for _, kv in ipairs(kvs) do
    redis.call('HSET', idn, kv, winner)
    redis.call('ZADD', into, now, kv)
  end
end
-- One command over a long flat list of arguments (score member ... or field value ...), in
-- parts of whole pairs: unpack has a stack limit.
local function many(command, key, args)
  for s = 1, #args, 1000 do
    redis.call(command, key, unpack(args, s, math.min(s + 999, #args)))
  end
end
-- A change of the identity graph that may unsettle a link some replica holds settled
-- (store/settled.py): its cache is not trusted past it.
local function unsettle() redis.call('INCR', K.identity_epoch()) end
