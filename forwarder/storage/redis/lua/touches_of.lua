-- ARGV: prefix, portal, the kvs as one msgpack array.
-- Returns one msgpack string: {kv, first, last} per kv with a touch memory (most have none).
local h, out = K.touches(ARGV[2]), {}
for _, kv in ipairs(cmsgpack.unpack(ARGV[3])) do
  local v = redis.call('HMGET', h, f(kv, 'f'), f(kv, 'l'))
  if v[1] and v[2] then out[#out + 1] = {kv, v[1], v[2]} end
end
return cmsgpack.pack(out)
