-- Shared by learn.lua and append.lua: what one request teaches the identity graph.
-- Link every group (kind SEP value strings) of portal, then release what waits on any
-- identifier of the people the groups now belong to; returns the released items' replies.
local function learn(portal, now, groups)
  local idn = K.identities(portal)
  for _, kvs in ipairs(groups) do link(portal, kvs, now) end
  -- After every link: a later group may have merged an earlier one's person away.
  local people, everyone = {}, {}
  for _, kvs in ipairs(groups) do
    local p = redis.call('HGET', idn, kvs[1])
    if p and not people[p] then
      people[p] = true
      for _, m in ipairs(redis.call('ZRANGE', K.person(portal, p), 0, -1)) do
        everyone[#everyone + 1] = m
      end
    end
  end
  return release_held_by(portal, everyone, now)
end
