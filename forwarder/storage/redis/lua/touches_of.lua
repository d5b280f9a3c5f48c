-- ARGV: prefix, portal, the keys as one msgpack array of [kind, value] pairs.
-- Returns one msgpack string: {index of the key in the argument, first, last} per key with a
-- touch memory (most have none); one HMGET per 500 keys, not one per key.
local h, out, keys = K.touches(ARGV[2]), {}, cmsgpack.unpack(ARGV[3])
for s = 1, #keys, 500 do
  local fields = {}
  for j = s, math.min(s + 499, #keys) do
    local kv = keys[j][1] .. SEP .. keys[j][2]
    fields[#fields + 1] = kv .. SEP .. 'f'
    fields[#fields + 1] = kv .. SEP .. 'l'
  end
  local v = redis.call('HMGET', h, unpack(fields))
  for j = 1, #v, 2 do
    if v[j] and v[j + 1] then out[#out + 1] = {s + (j - 1) / 2, v[j], v[j + 1]} end
  end
end
return cmsgpack.pack(out)
