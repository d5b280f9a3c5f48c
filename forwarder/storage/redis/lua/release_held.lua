for i = 3, #ARGV do release(ARGV[i], ARGV[2]) end
return 0
