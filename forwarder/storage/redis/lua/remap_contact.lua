local portal, now, new_id, changed = ARGV[2], ARGV[3], ARGV[4], 0
local idn = K.identities(portal)
for i = 5, #ARGV do
  local kv = f('contactId', ARGV[i])
  local person = redis.call('HGET', idn, kv)
  if person then
    redis.call('HDEL', idn, kv)
    redis.call('ZREM', K.person(portal, person), kv)
    local kvs = {f('contactId', new_id)}
    local survivor = redis.call('ZRANGE', K.person(portal, person), 0, 0)
    if #survivor > 0 then kvs[2] = survivor[1] end
    link(portal, kvs, now)
    changed = changed + 1
  end
end
if changed > 0 then unsettle() end
return changed
