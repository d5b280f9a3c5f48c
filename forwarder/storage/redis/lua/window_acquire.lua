local portal, envelope = ARGV[2], ARGV[3]
local n, limit, window = tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6])
local interval, burst = tonumber(ARGV[7]), tonumber(ARGV[8])
local z, now = K.window(portal, envelope), window_now()
local blocked = tonumber(redis.call('GET', K.window_block(portal, envelope)) or '0') - now
if blocked > 0 then return tostring(blocked) end
-- Pacing (GCRA): the theoretical arrival time may run at most burst - 1 intervals ahead.
local pace = K.window_pace(portal, envelope)
local tat = math.max(tonumber(redis.call('GET', pace) or '0'), now)
local early = tat - (burst - 1) * interval - now
if interval > 0 and early > 1e-9 then return tostring(early) end
local ours, phantoms, log = window_sums(z, now, window)
local excess = ours + phantoms + n - limit
if excess <= 0 then
  window_add(z, now, n, 'o', window)
  if interval > 0 then
    redis.call('SET', pace, tostring(tat + n * interval), 'PX', math.ceil(window * 1000) + 1000)
  end
  return '0'
end
local freed = 0
for _, entry in ipairs(log) do
  freed = freed + entry[2]
  if freed >= excess then return tostring(entry[1] + window - now) end
end
return tostring(window)
