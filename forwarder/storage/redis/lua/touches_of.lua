-- ARGV: prefix, portal, the kvs as one msgpack array.
-- Returns one msgpack string: {index of the kv in the argument, first, last} per kv with a
-- touch memory (most have none); one HMGET per 500 kvs, not one per kv.
local h, out, kvs = K.touches(ARGV[2]), {}, cmsgpack.unpack(ARGV[3])
for s = 1, #kvs, 500 do
  local fields = {}
  for j = s, math.min(s + 499, #kvs) do
    fields[#fields + 1] = f(kvs[j], 'f')
    fields[#fields + 1] = f(kvs[j], 'l')
  end
  local v = redis.call('HMGET', h, unpack(fields))
  for j = 1, #v, 2 do
    if v[j] and v[j + 1] then out[#out + 1] = {s + (j - 1) / 2, v[j], v[j + 1]} end
  end
end
return cmsgpack.pack(out)
