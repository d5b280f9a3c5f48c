local kvs = {}
for i = 4, #ARGV do kvs[#kvs + 1] = ARGV[i] end
if unsettles(K.identities(ARGV[2]), ARGV[2], kvs) then unsettle() end
link(ARGV[2], kvs, ARGV[3])
return 0
