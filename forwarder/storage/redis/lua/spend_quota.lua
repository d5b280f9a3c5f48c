-- ARGV: prefix, portal, quota name, period, n, cap, ttl seconds -> {granted 0/1, count}
local key = K.quota(ARGV[2], ARGV[3], ARGV[4])
local n, cap = tonumber(ARGV[5]), tonumber(ARGV[6])
local used = tonumber(redis.call('GET', key) or '0')
if used + n > cap then return {0, used} end
used = redis.call('INCRBY', key, n)
redis.call('EXPIRE', key, ARGV[7])
return {1, used}
