-- wrk script: POST the file in $BODY_FILE as JSON, with Basic auth if $AUTH_B64 is set, and
-- every "__SEQ__" in it replaced by a number unique to the request ($SEQ_PREFIX .. n) and
-- every "__USER__" by n % 1000, so each request carries new messageIds (nothing is deduped).
local f = assert(io.open(os.getenv("BODY_FILE"), "rb"))
local template = f:read("*a")
f:close()
local prefix = os.getenv("SEQ_PREFIX") or "seq"
local headers = { ["Content-Type"] = "application/json" }
-- $AUTH_B64 is base64("writekey:"), computed by the caller (wrk's Lua has no base64)
local auth = os.getenv("AUTH_B64")
if auth and auth ~= "" then
  headers["Authorization"] = "Basic " .. auth
end
local threads = 0
function setup(thread)
  threads = threads + 1
  thread:set("tid", threads)
end
local n = 0
function request()
  n = n + 1
  local seq = prefix .. "-" .. tostring(tid or 0) .. "-" .. n
  local body = template:gsub("__SEQ__", seq):gsub("__USER__", tostring(n % 1000))
  return wrk.format("POST", nil, headers, body)
end
