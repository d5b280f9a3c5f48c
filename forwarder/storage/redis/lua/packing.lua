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
-- A string's msgpack header: the string itself goes into the reply's buffer after it, not
-- copied into a new string with its header (a concatenation copies and interns its result).
local function mp_str_head(n)
  if n < 32 then return string.char(0xa0 + n) end
  if n < 256 then return string.char(0xd9, n) end
  if n < 65536 then return string.char(0xda, math.floor(n / 256), n % 256) end
  return '\219' .. mp_u32(n)
end
local function mp_str(s) return mp_str_head(#s) .. s end
local function mp_bin_head(n)
  if n < 256 then return string.char(0xc4, n) end
  if n < 65536 then return string.char(0xc5, math.floor(n / 256), n % 256) end
  return '\198' .. mp_u32(n)
end
local function mp_array(n)
  if n < 16 then return string.char(0x90 + n) end
  if n < 65536 then return string.char(0xdc, math.floor(n / 256), n % 256) end
  return '\221' .. mp_u32(n)
end
-- One leased item as a msgpack map of storage.base.Item (5 fields, '\133'), its event a
-- StoredEvent (9 fields, '\137'); '\192' is nil, '\195' true and '\194' false. Its pieces go
-- into the buffer b after its n-th piece (the reply is one table.concat of the whole batch);
-- returns the count of pieces now. queue is what every item of the call shares: its portal and
-- destination packed once (an item and its event are of the queue's portal).
local function item_packed(b, n, queue, id, attempts, seq)
  local ev = redis.call('HMGET', K.event(seq), 'mid', 'src', 'type', 'name', 'at', 'test',
                        'payload')
  local mid, src, typ, name, payload = ev[1], ev[2], ev[3], ev[4], ev[7]
  b[n + 1] = '\133\162id'
  b[n + 2] = mp_uint(id)
  b[n + 3] = queue.item
  b[n + 4] = mp_uint(attempts)
  b[n + 5] = '\165event\137\163seq'
  b[n + 6] = mp_uint(seq)
  b[n + 7] = queue.event
  b[n + 8] = mp_str_head(#mid)
  b[n + 9] = mid
  b[n + 10] = '\166source'
  b[n + 11] = mp_str_head(#src)
  b[n + 12] = src
  b[n + 13] = '\164type'
  b[n + 14] = mp_str_head(#typ)
  b[n + 15] = typ
  if name then
    b[n + 16] = '\164name'
    b[n + 17] = mp_str_head(#name)
    b[n + 18] = name
  else
    b[n + 16] = '\164name'
    b[n + 17] = '\192'
    b[n + 18] = ''
  end
  b[n + 19] = '\171received_at'
  b[n + 20] = cmsgpack.pack(tonumber(ev[5]))
  b[n + 21] = '\167payload'
  b[n + 22] = mp_bin_head(#payload)
  b[n + 23] = payload
  if ev[6] == '1' then b[n + 24] = '\164test\195' else b[n + 24] = '\164test\194' end
  return n + 24
end
-- What item_packed writes of the queue (portal, dest) once per call.
local function queue_packed(portal, dest)
  local portal_packed = '\166portal' .. mp_str(portal)
  return {item = portal_packed .. '\171destination' .. mp_str(dest) .. '\168attempts',
          event = portal_packed .. '\170message_id'}
end
