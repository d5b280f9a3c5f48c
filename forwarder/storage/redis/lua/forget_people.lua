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
unsettle()
local out, touches = {}, K.touches(portal)
for kv, _ in pairs(found) do
  out[#out + 1] = kv
  redis.call('HDEL', touches, f(kv, 'f'), f(kv, 'l'))
end
return out
