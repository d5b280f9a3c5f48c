-- wrk script: POST the file in $BODY_FILE as JSON, with Basic auth if $AUTH_B64 is set.
local f = assert(io.open(os.getenv("BODY_FILE"), "rb"))
wrk.method = "POST"
wrk.body = f:read("*a")
f:close()
wrk.headers["Content-Type"] = "application/json"
-- $AUTH_B64 is base64("writekey:"), computed by the caller (wrk's Lua has no base64)
local auth = os.getenv("AUTH_B64")
if auth and auth ~= "" then
  wrk.headers["Authorization"] = "Basic " .. auth
end
