if redis.call('GET', K.lock(ARGV[2])) == ARGV[3] then return redis.call('DEL', K.lock(ARGV[2])) end
return 0
