local portal, dest, now = ARGV[2], ARGV[3], ARGV[4]
local zset = K.leases(portal, dest)
local moved = 0
for _, id in ipairs(redis.call('ZRANGEBYSCORE', zset, '(' .. now, '+inf')) do
  local it = K.item(id)
  if redis.call('HGET', it, 'state') == 'pending' then
    redis.call('HSET', it, 'av', now)
    redis.call('ZADD', zset, now, id)
    moved = moved + 1
  end
end
return moved
