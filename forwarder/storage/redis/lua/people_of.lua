local portal, out = ARGV[2], {}
for i = 3, #ARGV do
  local person = redis.call('HGET', K.identities(portal), ARGV[i])
  if person then
    out[#out + 1] = {ARGV[i], redis.call('ZRANGE', K.person(portal, person), 0, -1)}
  end
end
return out
