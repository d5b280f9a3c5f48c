local until_, renewed = ARGV[2], 0
for i = 3, #ARGV, 3 do
  local id, portal, dest = ARGV[i], ARGV[i + 1], ARGV[i + 2]
  renewed = renewed + redis.call('ZADD', K.leases(portal, dest), 'XX', 'GT', 'CH', until_, id)
end
return renewed
