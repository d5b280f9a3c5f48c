-- ARGV: prefix, then per attempt: its id, its JSON, how many items, the item ids.
-- One call per batch: the attempt and its item index (ao:{item}) are written inside Redis.
local i = 2
while i <= #ARGV do
  local aid, n = ARGV[i], tonumber(ARGV[i + 2])
  redis.call('SET', K.attempt(aid), ARGV[i + 1])
  for j = i + 3, i + 2 + n do redis.call('SADD', K.attempts_of(ARGV[j]), aid) end
  i = i + 3 + n
end
return 0
