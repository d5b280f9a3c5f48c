-- Per identifier (ARGV: portal, then kv, at, touch JSON triples): keep the earliest touch as
-- its first and the latest as its last (of equal times: the first and the last to arrive);
-- a value is "at json", compared on "at".
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
