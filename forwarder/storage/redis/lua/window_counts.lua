local z, now = K.window(ARGV[2], ARGV[3]), window_now()
local ours, phantoms = window_sums(z, now, tonumber(ARGV[4]))
return {ours, phantoms}
