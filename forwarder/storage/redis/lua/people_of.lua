-- ARGV: prefix, portal, the keys as one msgpack array of [kind, value] pairs (one argument,
-- not one per key; msgspec packs the client's tuples as they are).
-- Returns one msgpack string: {people, at}: each person once, as its [kind, value] pairs
-- (oldest stamp first), and per key asked the index of its person (0: unknown).
-- The client builds no key of its own and parses a person once, however many keys share it.
local portal, people, at, index = ARGV[2], {}, {}, {}
local idn, keys = K.identities(portal), cmsgpack.unpack(ARGV[3])
for s = 1, #keys, 1000 do
  local kvs = {}
  for j = s, math.min(s + 999, #keys) do kvs[#kvs + 1] = keys[j][1] .. SEP .. keys[j][2] end
  for j, person in ipairs(redis.call('HMGET', idn, unpack(kvs))) do
    local p = 0
    if person then
      p = index[person]
      if not p then
        local members = {}
        -- the range as strings: a Lua number argument is formatted with printf (~3.5k instructions)
        for _, m in ipairs(redis.call('ZRANGE', K.person(portal, person), '0', '-1')) do
          local sep = string.find(m, SEP, 1, true)
          members[#members + 1] = {string.sub(m, 1, sep - 1), string.sub(m, sep + 1)}
        end
        people[#people + 1] = members
        p = #people
        index[person] = p
      end
    end
    at[s + j - 1] = p
  end
end
return cmsgpack.pack({people, at})
