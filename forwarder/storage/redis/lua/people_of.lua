-- ARGV: prefix, portal, the kvs as one msgpack array (one argument, not one per key).
-- Returns one msgpack string: {people, rows}: each person once, as its [kind, value] pairs
-- (oldest stamp first), and per known kv its index in the argument and its person's index.
-- The client builds no key of its own and parses a person once, however many kvs share it.
local portal, people, rows, index = ARGV[2], {}, {}, {}
local idn, kvs = K.identities(portal), cmsgpack.unpack(ARGV[3])
for s = 1, #kvs, 1000 do
  for j, person in ipairs(redis.call('HMGET', idn, unpack(kvs, s, math.min(s + 999, #kvs)))) do
    if person then
      local at = index[person]
      if not at then
        local members = {}
        for _, m in ipairs(redis.call('ZRANGE', K.person(portal, person), 0, -1)) do
          local sep = string.find(m, SEP, 1, true)
          members[#members + 1] = {string.sub(m, 1, sep - 1), string.sub(m, sep + 1)}
        end
        people[#people + 1] = members
        at = #people
        index[person] = at
      end
      rows[#rows + 1] = {s + j - 1, at}
    end
  end
end
return cmsgpack.pack({people, rows})
