"""The Lua scripts of the Redis backend: every state change is one script, so it is atomic.

``ARGV[1]`` is always the key prefix. Scripts touch keys they build themselves (``K.*``, from
``redis_keys``), which a single Redis or Valkey allows; Redis Cluster is not supported.
Floats travel as Python ``repr`` strings and are stored as given, so no precision is lost.
"""

from __future__ import annotations

from forwarder.storage.redis_keys import GROUP, SEP, lua_key_functions

_PRELUDE = (
    "local P = ARGV[1]\n"
    f"local GROUP = '{GROUP}'\n"
    f"local SEP = '\\{ord(SEP)}'\n"
    + lua_key_functions()
    + r"""
local function f(...) return table.concat({...}, SEP) end
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
local function finish(id, state, now, detail)
  local it = K.item(id)
  local v = redis.call('HMGET', it, 'state', 'portal', 'dest', 'av')
  if not OPEN[v[1]] then return 0 end
  unqueue(id, it, v[2], v[3], v[1])
  forget_held_keys(id)
  redis.call('HSET', it, 'state', state, 'up', now)
  if detail then redis.call('HSET', it, 'det', detail) else redis.call('HDEL', it, 'det') end
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
"""
)

APPEND = r"""
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
               'test', e[8], 'payload', ARGV[4 + e[9]])
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
                 'state', 'dropped', 'att', 0, 'av', now, 'up', now, 'det', drop[2])
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
return {opened, out}
"""

LEASE = r"""
local now, until_, limit, consumer = ARGV[2], ARGV[3], tonumber(ARGV[4]), ARGV[5]
local portal, dest = ARGV[6], ARGV[7]
if redis.call('SISMEMBER', K.queues(), f(portal, dest)) == 0 then return {} end
local q, lz = K.queue(portal, dest), K.leases(portal, dest)
local ids = {}
-- expired leases (a dead replica's) and retries now due: still in the PEL, claimed over
for _, id in ipairs(redis.call('ZRANGEBYSCORE', lz, '-inf', now, 'LIMIT', 0, limit)) do
  local sid = redis.call('HGET', K.item(id), 'sid')
  if sid then redis.call('XCLAIM', q, GROUP, consumer, 0, sid, 'JUSTID') end
  ids[#ids + 1] = id
end
if #ids < limit then
  local read = redis.call('XREADGROUP', 'GROUP', GROUP, consumer, 'COUNT', limit - #ids,
                          'STREAMS', q, '>')
  if read then
    local last = nil
    for _, entry in ipairs(read[1][2]) do
      ids[#ids + 1] = entry[2][2]
      last = entry[1]
    end
    if last then redis.call('HSET', K.last_read(), f(portal, dest), last) end
  end
end
local out = {}
for _, id in ipairs(ids) do
  local it = K.item(id)
  local state = redis.call('HGET', it, 'state')
  if state == 'pending' or state == 'leased' then
    if state == 'pending' then
      count(portal, dest, 'pending', -1)
      count(portal, dest, 'leased', 1)
    end
    redis.call('HSET', it, 'state', 'leased', 'av', until_, 'up', now)
    redis.call('ZADD', lz, until_, id)
    out[#out + 1] = item_reply(id)
  else
    redis.call('ZREM', lz, id)  -- no longer open: nothing to deliver
  end
end
return out
"""

RENEW = r"""
local until_, renewed = ARGV[2], 0
for i = 3, #ARGV, 3 do
  local id, portal, dest = ARGV[i], ARGV[i + 1], ARGV[i + 2]
  renewed = renewed + redis.call('ZADD', K.leases(portal, dest), 'XX', 'GT', 'CH', until_, id)
end
return renewed
"""

FINISH = r"""
local now, state, detail, closed = ARGV[2], ARGV[3], false, 0
if ARGV[4] == '1' then detail = ARGV[5] end
for i = 6, #ARGV do closed = closed + finish(ARGV[i], state, now, detail) end
redis.call('DECRBY', K.open_total(), closed)
return closed
"""

RETRY = r"""
local now, available_at, counted = ARGV[2], ARGV[3], tonumber(ARGV[6])
for i = 7, #ARGV do
  local id = ARGV[i]
  local it = K.item(id)
  local v = redis.call('HMGET', it, 'state', 'portal', 'dest')
  if v[1] == 'leased' then
    redis.call('HSET', it, 'state', 'pending', 'av', available_at, 'up', now)
    if counted > 0 then redis.call('HINCRBY', it, 'att', counted) end
    if ARGV[4] == '1' then redis.call('HSET', it, 'det', ARGV[5])
    else redis.call('HDEL', it, 'det') end
    redis.call('ZADD', K.leases(v[2], v[3]), available_at, id)
    count(v[2], v[3], 'leased', -1)
    count(v[2], v[3], 'pending', 1)
  end
end
return 0
"""

EXPEDITE = r"""
local portal, dest, now = ARGV[2], ARGV[3], ARGV[4]
local zset = K.leases(portal, dest)
local moved = 0
for _, id in ipairs(redis.call('ZRANGEBYSCORE', zset, '(' .. now, '+inf')) do
  local it = K.item(id)
  if redis.call('HGET', it, 'state') == 'pending' then
    redis.call('HSET', it, 'av', now)
    redis.call('ZADD', zset, now, id)
    moved = moved + 1
  end
end
return moved
"""

REQUEUE = r"""
local now, state, moved = ARGV[2], ARGV[3], 0
for i = 4, #ARGV do
  local id = ARGV[i]
  local it = K.item(id)
  local v = redis.call('HMGET', it, 'state', 'portal', 'dest', 'seq')
  if v[1] == state then
    local at = redis.call('HGET', K.event(v[4]), 'at')
    local sid = enqueue(id, v[2], v[3], now, at)
    redis.call('HSET', it, 'state', 'pending', 'att', 0, 'av', now, 'up', now,
               'det', 'replayed', 'sid', sid)
    redis.call('ZREM', K.in_state(v[2], state), id)
    count(v[2], v[3], state, -1)
    count(v[2], v[3], 'pending', 1)
    moved = moved + 1
  end
end
redis.call('INCRBY', K.open_total(), moved)
return moved
"""

HOLD = r"""
local now, until_, nkeys = ARGV[2], ARGV[3], tonumber(ARGV[6])
local first = 7 + nkeys
for i = first, #ARGV do
  local id = ARGV[i]
  local it = K.item(id)
  local v = redis.call('HMGET', it, 'state', 'portal', 'dest')
  if v[1] == 'leased' then
    unqueue(id, it, v[2], v[3], 'leased')
    redis.call('HSET', it, 'state', 'held', 'av', until_, 'up', now)
    if ARGV[4] == '1' then redis.call('HSET', it, 'det', ARGV[5]) end
    redis.call('ZADD', K.in_state(v[2], 'held'), until_, id)
    count(v[2], v[3], 'leased', -1)
    count(v[2], v[3], 'held', 1)
  end
end
if nkeys > 0 and first <= #ARGV then
  local portal = redis.call('HGET', K.item(ARGV[first]), 'portal')
  if portal then
    for i = first, #ARGV do
      for k = 7, first - 1 do
        local key = K.held_by(portal, ARGV[k])
        redis.call('SADD', key, ARGV[i])
        redis.call('SADD', K.held_keys_of(ARGV[i]), key)
      end
    end
  end
end
return 0
"""

RELEASE_HELD = r"""
for i = 3, #ARGV do release(ARGV[i], ARGV[2]) end
return 0
"""

RELEASE_FOR = r"""
local now, portal = ARGV[2], ARGV[3]
local keys = {}
for i = 4, #ARGV do keys[#keys + 1] = K.held_by(portal, ARGV[i]) end
local ids = redis.call('SUNION', unpack(keys))
table.sort(ids, function(a, b) return tonumber(a) < tonumber(b) end)
local out = {}
for _, id in ipairs(ids) do
  forget_held_keys(id)
  if release(id, now) then out[#out + 1] = item_reply(id) end
end
return out
"""

READY_AT = r"""
local portal, dest = ARGV[2], ARGV[3]
local best = nil
local first = redis.call('ZRANGE', K.leases(portal, dest), 0, 0, 'WITHSCORES')
if #first > 0 then best = first[2] end
local last = redis.call('HGET', K.last_read(), f(portal, dest))
local start = '-'
if last then start = '(' .. last end
local unread = redis.call('XRANGE', K.queue(portal, dest), start, '+', 'COUNT', 1)
if #unread > 0 then
  local at = unread[1][2][4]
  if best == nil or tonumber(at) < tonumber(best) then best = at end
end
return best or false
"""

PURGE = r"""
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
"""

LINK = r"""
local kvs = {}
for i = 4, #ARGV do kvs[#kvs + 1] = ARGV[i] end
link(ARGV[2], kvs, ARGV[3])
return 0
"""

PEOPLE_OF = r"""
local portal, out = ARGV[2], {}
for i = 3, #ARGV do
  local person = redis.call('HGET', K.identities(portal), ARGV[i])
  if person then
    out[#out + 1] = {ARGV[i], redis.call('ZRANGE', K.person(portal, person), 0, -1)}
  end
end
return out
"""

REMAP_CONTACT = r"""
local portal, now, new_id, changed = ARGV[2], ARGV[3], ARGV[4], 0
local idn = K.identities(portal)
for i = 5, #ARGV do
  local kv = f('contactId', ARGV[i])
  local person = redis.call('HGET', idn, kv)
  if person then
    redis.call('HDEL', idn, kv)
    redis.call('ZREM', K.person(portal, person), kv)
    local kvs = {f('contactId', new_id)}
    local survivor = redis.call('ZRANGE', K.person(portal, person), 0, 0)
    if #survivor > 0 then kvs[2] = survivor[1] end
    link(portal, kvs, now)
    changed = changed + 1
  end
end
return changed
"""

FORGET_PEOPLE = r"""
local portal, found = ARGV[2], {}
local idn = K.identities(portal)
for i = 3, #ARGV do
  found[ARGV[i]] = true
  local person = redis.call('HGET', idn, ARGV[i])
  if person then
    for _, kv in ipairs(redis.call('ZRANGE', K.person(portal, person), 0, -1)) do
      found[kv] = true
      redis.call('HDEL', idn, kv)
    end
    redis.call('DEL', K.person(portal, person))
  end
end
local out, touches = {}, K.touches(portal)
for kv, _ in pairs(found) do
  out[#out + 1] = kv
  redis.call('HDEL', touches, f(kv, 'f'), f(kv, 'l'))
end
return out
"""

# Per identifier (ARGV: portal, then kv, at, touch JSON triples): keep the earliest touch as
# its first and the latest as its last (of equal times: the first and the last to arrive);
# a value is "at json", compared on "at".
REMEMBER_TOUCHES = r"""
local h = K.touches(ARGV[2])
local function at_of(value) return tonumber(string.match(value, '^(%S+)')) end
for i = 3, #ARGV, 3 do
  local kv, at = ARGV[i], tonumber(ARGV[i + 1])
  local packed = ARGV[i + 1] .. ' ' .. ARGV[i + 2]
  local first_field, last_field = f(kv, 'f'), f(kv, 'l')
  local first = redis.call('HGET', h, first_field)
  if not first or at < at_of(first) then redis.call('HSET', h, first_field, packed) end
  local last = redis.call('HGET', h, last_field)
  if not last or at >= at_of(last) then redis.call('HSET', h, last_field, packed) end
end
return 0
"""

ERASE_EVENTS = r"""
local now, closed, items = ARGV[2], 0, 0
for i = 3, #ARGV do
  local ev = K.event(ARGV[i])
  redis.call('HSET', ev, 'payload', '{"erased":true}')
  redis.call('HDEL', ev, 'name')
  for id in string.gmatch(redis.call('HGET', ev, 'items') or '', '[^,]+') do
    items = items + 1
    closed = closed + finish(id, 'dropped', now, 'erased on request')
    forget_held_keys(id)
  end
end
redis.call('DECRBY', K.open_total(), closed)
return {items, closed}
"""

WINDOW_SUM = r"""
local function window_now() local t = redis.call('TIME') return t[1] + t[2] / 1e6 end
local function window_sums(z, now, window)
  redis.call('ZREMRANGEBYSCORE', z, '-inf', now - window + 1e-6)
  local entries = redis.call('ZRANGE', z, 0, -1, 'WITHSCORES')
  local ours, phantoms, log = 0, 0, {}
  for j = 1, #entries, 2 do
    local n, kind = string.match(entries[j], ':(%d+):(%a)$')
    n = tonumber(n)
    if kind == 'p' then phantoms = phantoms + n else ours = ours + n end
    log[#log + 1] = {tonumber(entries[j + 1]), n}
  end
  return ours, phantoms, log
end
local function window_add(z, now, n, kind, window)
  local id = redis.call('INCR', K.window_seq())
  redis.call('ZADD', z, now, id .. ':' .. n .. ':' .. kind)
  redis.call('PEXPIRE', z, math.ceil(window * 1000) + 1000)
end
"""

WINDOW_ACQUIRE = (
    WINDOW_SUM
    + r"""
local portal, envelope = ARGV[2], ARGV[3]
local n, limit, window = tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6])
local interval, burst = tonumber(ARGV[7]), tonumber(ARGV[8])
local z, now = K.window(portal, envelope), window_now()
local blocked = tonumber(redis.call('GET', K.window_block(portal, envelope)) or '0') - now
if blocked > 0 then return tostring(blocked) end
-- Pacing (GCRA): the theoretical arrival time may run at most burst - 1 intervals ahead.
local pace = K.window_pace(portal, envelope)
local tat = math.max(tonumber(redis.call('GET', pace) or '0'), now)
local early = tat - (burst - 1) * interval - now
if interval > 0 and early > 1e-9 then return tostring(early) end
local ours, phantoms, log = window_sums(z, now, window)
local excess = ours + phantoms + n - limit
if excess <= 0 then
  window_add(z, now, n, 'o', window)
  if interval > 0 then
    redis.call('SET', pace, tostring(tat + n * interval), 'PX', math.ceil(window * 1000) + 1000)
  end
  return '0'
end
local freed = 0
for _, entry in ipairs(log) do
  freed = freed + entry[2]
  if freed >= excess then return tostring(entry[1] + window - now) end
end
return tostring(window)
"""
)

WINDOW_OBSERVE = (
    WINDOW_SUM
    + r"""
local portal, envelope = ARGV[2], ARGV[3]
local spent, limit, window = tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6])
local z, now = K.window(portal, envelope), window_now()
local ours, phantoms = window_sums(z, now, window)
local missing = math.min(spent - ours, limit) - phantoms
if missing > 0 then window_add(z, now, missing, 'p', window) end
return {ours, phantoms}
"""
)

WINDOW_COUNTS = (
    WINDOW_SUM
    + r"""
local z, now = K.window(ARGV[2], ARGV[3]), window_now()
local ours, phantoms = window_sums(z, now, tonumber(ARGV[4]))
return {ours, phantoms}
"""
)

WINDOW_BLOCK = r"""
local t = redis.call('TIME')
local until_ = t[1] + t[2] / 1e6 + tonumber(ARGV[4])
local key = K.window_block(ARGV[2], ARGV[3])
if until_ > tonumber(redis.call('GET', key) or '0') then
  redis.call('SET', key, tostring(until_), 'PX', math.ceil(tonumber(ARGV[4]) * 1000) + 1000)
end
return 0
"""

UNLOCK = r"""
if redis.call('GET', K.lock(ARGV[2])) == ARGV[3] then return redis.call('DEL', K.lock(ARGV[2])) end
return 0
"""

FORGET_OAUTH = r"""
if redis.call('HGET', K.oauth(ARGV[2]), 'access') == ARGV[3] then
  return redis.call('DEL', K.oauth(ARGV[2]))
end
return 0
"""

# ARGV: prefix, portal, quota name, period, n, cap, ttl seconds -> {granted 0/1, count}
SPEND_QUOTA = r"""
local key = K.quota(ARGV[2], ARGV[3], ARGV[4])
local n, cap = tonumber(ARGV[5]), tonumber(ARGV[6])
local used = tonumber(redis.call('GET', key) or '0')
if used + n > cap then return {0, used} end
used = redis.call('INCRBY', key, n)
redis.call('EXPIRE', key, ARGV[7])
return {1, used}
"""

# ARGV: prefix, portal, quota name, period, at least, ttl seconds -> count
RAISE_QUOTA = r"""
local key = K.quota(ARGV[2], ARGV[3], ARGV[4])
local want = tonumber(ARGV[5])
local used = tonumber(redis.call('GET', key) or '0')
if want > used then
  redis.call('SET', key, want, 'EX', ARGV[6])
  used = want
end
return used
"""


def script(body: str) -> str:
    """A script's full source: the shared prelude, then its body."""
    return _PRELUDE + body
