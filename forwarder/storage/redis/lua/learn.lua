-- ARGV: prefix, now, portal, then per group its size and its keys (kind SEP value).
local groups, i = {}, 4
while i <= #ARGV do
  local n = tonumber(ARGV[i])
  local kvs = {}
  for j = i + 1, i + n do kvs[#kvs + 1] = ARGV[j] end
  i = i + n + 1
  groups[#groups + 1] = kvs
end
local released = learn(ARGV[3], ARGV[2], groups, nil)
return released
