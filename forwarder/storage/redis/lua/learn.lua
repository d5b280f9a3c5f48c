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
local people, everyone = {}, {}
for _, kv in ipairs(firsts) do
  local p = redis.call('HGET', idn, kv)
  if p and not people[p] then
    people[p] = true
    for _, m in ipairs(redis.call('ZRANGE', K.person(portal, p), 0, -1)) do
      everyone[#everyone + 1] = m
    end
  end
end
return release_held_by(portal, everyone, now)
