-- ARGV: prefix, now, state, has outcome, outcome, the item ids comma-joined (one argument).
local now, state, outcome, closed = ARGV[2], ARGV[3], false, 0
if ARGV[4] == '1' then outcome = ARGV[5] end
for id in string.gmatch(ARGV[6], '[^,]+') do closed = closed + finish(id, state, now, outcome) end
redis.call('DECRBY', K.open_total(), closed)
return closed
