-- ARGV: prefix, portal, the kvs as one msgpack array (one argument, not one per key).
-- Returns one msgpack string: {kv, {every kv of its person}} per known kv.
local portal, out = ARGV[2], {}
for _, kv in ipairs(cmsgpack.unpack(ARGV[3])) do
  local person = redis.call('HGET', K.identities(portal), kv)
  if person then
    out[#out + 1] = {kv, redis.call('ZRANGE', K.person(portal, person), 0, -1)}
  end
end
return cmsgpack.pack(out)
