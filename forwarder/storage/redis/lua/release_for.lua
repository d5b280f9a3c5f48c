local now, portal = ARGV[2], ARGV[3]
local kvs = {}
for i = 4, #ARGV do kvs[#kvs + 1] = ARGV[i] end
return release_held_by(portal, kvs, now)
