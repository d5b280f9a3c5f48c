local kvs = {}
for i = 4, #ARGV do kvs[#kvs + 1] = ARGV[i] end
link(ARGV[2], kvs, ARGV[3])
return 0
