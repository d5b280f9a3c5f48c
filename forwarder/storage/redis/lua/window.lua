-- The rolling-window log shared by the window scripts (included before their bodies).
local function window_now() local t = redis.call('TIME') return t[1] + t[2] / 1e6 end
local function window_sums(z, now, window)
  redis.call('ZREMRANGEBYSCORE', z, '-inf', now - window + 1e-6)
  local entries = redis.call('ZRANGE', z, 0, -1, 'WITHSCORES')
  local ours, phantoms, log = 0, 0, {}
  for j = 1, #entries, 2 do
    local n, kind = string.match(entries[j], ':(%d+):(%a)$')
    n = tonumber(n)
    if kind == 'p' then phantoms = phantoms + n else ours = ours + n end
    log[#log + 1] = {tonumber(entries[j + 1]), n}
  end
  return ours, phantoms, log
end
local function window_add(z, now, n, kind, window)
  local id = redis.call('INCR', K.window_seq())
  redis.call('ZADD', z, now, id .. ':' .. n .. ':' .. kind)
  redis.call('PEXPIRE', z, math.ceil(window * 1000) + 1000)
end
