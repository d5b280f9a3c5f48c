-- ARGV: prefix, portal, quota name, period, at least, ttl seconds -> count
local key = K.quota(ARGV[2], ARGV[3], ARGV[4])
local want = tonumber(ARGV[5])
local used = tonumber(redis.call('GET', key) or '0')
if want > used then
  redis.call('SET', key, want, 'EX', ARGV[6])
  used = want
end
return used
