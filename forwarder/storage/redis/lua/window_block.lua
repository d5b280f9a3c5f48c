local t = redis.call('TIME')
local until_ = t[1] + t[2] / 1e6 + tonumber(ARGV[4])
local key = K.window_block(ARGV[2], ARGV[3])
if until_ > tonumber(redis.call('GET', key) or '0') then
  redis.call('SET', key, tostring(until_), 'PX', math.ceil(tonumber(ARGV[4]) * 1000) + 1000)
end
return 0
