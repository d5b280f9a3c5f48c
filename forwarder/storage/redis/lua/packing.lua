-- Included by lease.lua: msgpack written by hand for a reply msgspec decodes straight into
-- Items. cmsgpack has no bin type (a payload is bytes), a table cannot hold nil (an event's
-- missing name), and a cmsgpack.pack per value costs Redis four times the concatenation.
-- Ids, counts, flags and times go as msgpack integers, booleans and floats (a string the
-- client's decoder parses costs it more than the script's tonumber; cmsgpack writes a float
-- to the last bit, as a float32 when that is exact). Field names are literal fixstr (a header
-- byte 0xa0 + length, then the name): what a script builds at its start it builds on every
-- call.
local function mp_u32(n)
  return string.char(math.floor(n / 16777216), math.floor(n / 65536) % 256,
                     math.floor(n / 256) % 256, n % 256)
end
-- A stored non-negative integer (a string) as a msgpack integer.
local function mp_uint(s)
  local n = tonumber(s)
  if n < 128 then return string.char(n) end
  if n < 4294967296 then return '\206' .. mp_u32(n) end
  return '\207' .. mp_u32(math.floor(n / 4294967296)) .. mp_u32(n % 4294967296)
end
local function mp_str(s)
  local n = #s
  if n < 32 then return string.char(0xa0 + n) .. s end
  if n < 256 then return string.char(0xd9, n) .. s end
  if n < 65536 then return string.char(0xda, math.floor(n / 256), n % 256) .. s end
  return '\219' .. mp_u32(n) .. s
end
local function mp_bin(s)
  local n = #s
  if n < 256 then return string.char(0xc4, n) .. s end
  if n < 65536 then return string.char(0xc5, math.floor(n / 256), n % 256) .. s end
  return '\198' .. mp_u32(n) .. s
end
local function mp_array(n)
  if n < 16 then return string.char(0x90 + n) end
  if n < 65536 then return string.char(0xdc, math.floor(n / 256), n % 256) end
  return '\221' .. mp_u32(n)
end
-- One leased item as a msgpack map of storage.base.Item (5 fields, '\133'), its event a
-- StoredEvent (9 fields, '\137'); '\192' is nil, '\195' true and '\194' false.
local function item_packed(id, portal, attempts, dest, seq)
  local ev = redis.call('HMGET', K.event(seq), 'portal', 'mid', 'src', 'type', 'name', 'at',
                        'test', 'payload')
  local name, test = '\192', '\194'
  if ev[5] then name = mp_str(ev[5]) end
  if ev[7] == '1' then test = '\195' end
  return table.concat({
    '\133\162id', mp_uint(id), '\166portal', mp_str(portal), '\171destination', mp_str(dest),
    '\168attempts', mp_uint(attempts), '\165event',
    '\137\163seq', mp_uint(seq), '\166portal', mp_str(ev[1]), '\170message_id', mp_str(ev[2]),
    '\166source', mp_str(ev[3]), '\164type', mp_str(ev[4]), '\164name', name,
    '\171received_at', cmsgpack.pack(tonumber(ev[6])), '\167payload', mp_bin(ev[8]), '\164test', test})
end
