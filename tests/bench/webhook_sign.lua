-- wrk script: POSTs helpdesk ticket webhooks to /v1/webhooks/helpdesk, each with a
-- new delivery id and requester, signed like a real support tool would sign it
-- (Nudge-Signature: t=UNIX,v1=HMAC-SHA256(secret, t.body)), using OpenSSL's HMAC
-- through LuaJIT's FFI. Usage (see docs/BENCHMARKS.md):
--   WEBHOOK_SECRET=whsec_bench wrk -t1 -c16 -d10s --latency \
--     -s tests/bench/webhook_sign.lua http://127.0.0.1:PORT/v1/webhooks/helpdesk
local ffi = require("ffi")
ffi.cdef [[
  typedef struct evp_md_st EVP_MD;
  const EVP_MD *EVP_sha256(void);
  unsigned char *HMAC(const EVP_MD *evp_md, const void *key, int key_len,
                      const unsigned char *d, size_t n, unsigned char *md,
                      unsigned int *md_len);
]]
local crypto = ffi.load("crypto")
local secret = os.getenv("WEBHOOK_SECRET") or "whsec_bench"
local md = ffi.new("unsigned char[32]")
local md_len = ffi.new("unsigned int[1]")

local function hmac_hex(data)
  crypto.HMAC(crypto.EVP_sha256(), secret, #secret, data, #data, md, md_len)
  local out = {}
  for i = 0, 31 do out[#out + 1] = string.format("%02x", md[i]) end
  return table.concat(out)
end

local counter = 0
local thread_tag = "0"

function setup(thread)
  thread:set("thread_tag", tostring(math.random(1, 1e9)))
end

function init(args)
  thread_tag = thread_tag or "0"
end

function request()
  counter = counter + 1
  local event = (counter % 4 == 0) and "ticket.solved" or "ticket.created"
  local body = string.format(
    '{"delivery_id":"wrk-%s-%d","event":"%s","occurred_at":"2026-11-24T09:58:12Z",' ..
    '"ticket":{"id":%d,"priority":"high","subject":"Parcel","requester":' ..
    '{"email":"caller%d@example.com","phone":"+44 20 7946 %04d"}}}',
    thread_tag, counter, event, counter, counter % 5000, counter % 5000)
  local t = tostring(os.time())
  local headers = {
    ["Content-Type"] = "application/json",
    ["Nudge-Signature"] = "t=" .. t .. ",v1=" .. hmac_hex(t .. "." .. body),
  }
  return wrk.format("POST", nil, headers, body)
end

local statuses = {}
function response(status, headers, body)
  statuses[status] = (statuses[status] or 0) + 1
end

function done(summary, latency, requests)
  io.write(string.format("non-2xx or socket errors: %d\n",
    summary.errors.status + summary.errors.connect + summary.errors.read +
    summary.errors.write + summary.errors.timeout))
end
