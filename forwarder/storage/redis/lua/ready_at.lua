local portal, dest = ARGV[2], ARGV[3]
local best = nil
local first = redis.call('ZRANGE', K.leases(portal, dest), 0, 0, 'WITHSCORES')
if #first > 0 then best = first[2] end
local last = redis.call('HGET', K.last_read(), f(portal, dest))
local start = '-'
if last then start = '(' .. last end
local unread = redis.call('XRANGE', K.queue(portal, dest), start, '+', 'COUNT', 1)
if #unread > 0 then
  local at = unread[1][2][4]
  if best == nil or tonumber(at) < tonumber(best) then best = at end
end
return best or false
