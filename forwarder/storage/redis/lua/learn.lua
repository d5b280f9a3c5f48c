-- ARGV: prefix, now, portal, then per group its size and its keys (kind SEP value).
local now, portal = ARGV[2], ARGV[3]
local idn = K.identities(portal)
local firsts, i = {}, 4
while i <= #ARGV do
  local n = tonumber(ARGV[i])
  local kvs = {}
  for j = i + 1, i + n do kvs[#kvs + 1] = ARGV[j] end
  i = i + n + 1
  link(portal, kvs, now)
  firsts[#firsts + 1] = kvs[1]
end
-- After every link: a later group may have merged an earlier one's person away.
local people, waits = {}, {}
for _, kv in ipairs(firsts) do
  local p = redis.call('HGET', idn, kv)
  if p and not people[p] then
    people[p] = true
    for _, m in ipairs(redis.call('ZRANGE', K.person(portal, p), 0, -1)) do
      waits[#waits + 1] = K.held_by(portal, m)
    end
  end
end
local ids, seen = {}, {}
for s = 1, #waits, 500 do  -- unpack has a stack limit: SUNION in parts
  local part = {}
  for j = s, math.min(s + 499, #waits) do part[#part + 1] = waits[j] end
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
