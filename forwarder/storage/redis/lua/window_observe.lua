local portal, envelope = ARGV[2], ARGV[3]
local spent, limit, window = tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6])
local z, now = K.window(portal, envelope), window_now()
local ours, phantoms = window_sums(z, now, window)
local missing = math.min(spent - ours, limit) - phantoms
if missing > 0 then window_add(z, now, missing, 'p', window) end
return {ours, phantoms}
