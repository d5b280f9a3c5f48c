if redis.call('HGET', K.oauth(ARGV[2]), 'access') == ARGV[3] then
  return redis.call('DEL', K.oauth(ARGV[2]))
end
return 0
