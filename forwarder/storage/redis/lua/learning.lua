-- Shared by learn.lua, link.lua and append.lua: what one request teaches the identity graph.
-- A link is settled when its keys are the whole of one person, all stamped alike, and nothing
-- is held on them: learning it again would only move the stamps forward together. Replicas
-- remember settled links (settled.py) as of an epoch, which every change that could unsettle
-- one bumps (unsettle()); holds are checked live instead (held_on).
local function equal_stamps(members)
  for j = 4, #members, 2 do
    if members[j] ~= members[2] then return false end
  end
  return true
end
-- Whether linking kvs could unsettle a settled link: a key joining an existing person, people
-- merging, or part of a person whose stamps are all alike stamped apart. A new person, or a
-- person's whole set stamped again, changes nothing a replica holds settled.
local function unsettles(idn, portal, kvs)
  local p, missing = nil, false
  for _, q in ipairs(redis.call('HMGET', idn, unpack(kvs))) do
    if not q then
      missing = true
    elseif p and q ~= p then
      return true
    else
      p = q
    end
  end
  if not p then return false end
  if missing then return true end
  local members = redis.call('ZRANGE', K.person(portal, p), 0, -1, 'WITHSCORES')
  return #members ~= 2 * #kvs and equal_stamps(members)
end
-- Whether kvs are a settled link now (nothing held on them: the caller just released it).
local function is_settled(idn, portal, kvs)
  local persons = redis.call('HMGET', idn, unpack(kvs))
  for _, q in ipairs(persons) do
    if q ~= persons[1] then return false end
  end
  if not persons[1] then return false end
  local members = redis.call('ZRANGE', K.person(portal, persons[1]), 0, -1, 'WITHSCORES')
  return #members == 2 * #kvs and equal_stamps(members)
end
-- Whether any of the keys named exists (EXISTS in parts: unpack has a stack limit).
local function any_exists(names)
  for s = 1, #names, 1000 do
    if redis.call('EXISTS', unpack(names, s, math.min(s + 999, #names))) > 0 then return true end
  end
  return false
end
-- Whether an item is held on any of the groups' keys.
local function held_on(portal, groups)
  local names = {}
  for _, kvs in ipairs(groups) do
    for _, kv in ipairs(kvs) do names[#names + 1] = K.held_by(portal, kv) end
  end
  return any_exists(names)
end
-- Link every group (kind SEP value strings) of portal but those skip marks (settled), then
-- release what waits on any identifier of the people the groups now belong to. Returns the
-- released items' replies, the indexes of the learned groups now settled, and whether it
-- bumped the epoch.
local function learn(portal, now, groups, skip)
  local idn = K.identities(portal)
  local learned, changed = {}, false
  if skip then
    -- A group that changes the graph may take a settled one's person: learn them all then,
    -- so every key of it is stamped as learning them without any cache would.
    for i, kvs in ipairs(groups) do
      if not skip[i] and unsettles(idn, portal, kvs) then
        skip = nil
        break
      end
    end
  end
  for i, kvs in ipairs(groups) do
    if not (skip and skip[i]) then
      changed = changed or unsettles(idn, portal, kvs)
      link(portal, kvs, now)
      learned[#learned + 1] = i
    end
  end
  if changed then unsettle() end
  -- After every link: a later group may have merged an earlier one's person away.
  local people, everyone = {}, {}
  for _, i in ipairs(learned) do
    local p = redis.call('HGET', idn, groups[i][1])
    if p and not people[p] then
      people[p] = true
      for _, m in ipairs(redis.call('ZRANGE', K.person(portal, p), 0, -1)) do
        everyone[#everyone + 1] = m
      end
    end
  end
  local released = release_held_by(portal, everyone, now)
  local settled = {}
  for _, i in ipairs(learned) do
    if is_settled(idn, portal, groups[i]) then settled[#settled + 1] = i end
  end
  return released, settled, changed
end
-- The groups a replica holds settled as of epoch (assumed: a flag per group) that it may
-- skip: all of them when epoch is the store's (current) and nothing is held on them, else none.
local function skippable(portal, epoch, current, groups, assumed)
  local marked = {}
  for i, kvs in ipairs(groups) do
    if assumed[i] then marked[#marked + 1] = kvs end
  end
  if #marked == 0 then return nil end
  if epoch ~= current then return nil end
  if held_on(portal, marked) then return nil end
  return assumed
end
