-- ARGV: prefix, then per attempt: its id, its JSON, its item ids as one msgpack array.
-- One call per batch: the attempt and its item index (ao:{item}) are written inside Redis.
for i = 2, #ARGV, 3 do
  local aid = ARGV[i]
  redis.call('SET', K.attempt(aid), ARGV[i + 1])
  for _, id in ipairs(cmsgpack.unpack(ARGV[i + 2])) do
    redis.call('SADD', K.attempts_of(id), aid)
  end
end
return 0
