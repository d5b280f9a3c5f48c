local now, state, outcome, closed = ARGV[2], ARGV[3], false, 0
if ARGV[4] == '1' then outcome = ARGV[5] end
for i = 6, #ARGV do closed = closed + finish(ARGV[i], state, now, outcome) end
redis.call('DECRBY', K.open_total(), closed)
return closed
