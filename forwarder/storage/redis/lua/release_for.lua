local now, portal = ARGV[2], ARGV[3]
local keys = {}
for i = 4, #ARGV do keys[#keys + 1] = K.held_by(portal, ARGV[i]) end
local ids = redis.call('SUNION', unpack(keys))
table.sort(ids, function(a, b) return tonumber(a) < tonumber(b) end)
local out = {}
for _, id in ipairs(ids) do
  forget_held_keys(id)
  if release(id, now) then out[#out + 1] = item_reply(id) end
end
return out
