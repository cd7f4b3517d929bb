-- wrk script for scenario (6) of docs/BENCHMARKS.md: POSTs {"batch": [...]} of
-- BATCH events (default 100) to /v1/events, each event with a new id and one of
-- PROFILES anonymous profiles (default 10000), in the retail shape of nudge_bench
-- (page views, product views, cart adds, purchases). Every request is a fresh batch,
-- so nothing is answered as a duplicate. SEQUENTIAL=1 walks the profiles in order
-- instead of at random (one wrk thread: every profile gets one event per round), to
-- fill a store with exactly PROFILES profiles. Usage:
--   WRITE_KEY=$(cat DATA/web.key) BATCH=100 wrk -t1 -c8 -d10s --latency \
--     -s tests/bench/events_batch.lua http://127.0.0.1:PORT/v1/events
local key = os.getenv("WRITE_KEY") or ""
local batch = tonumber(os.getenv("BATCH") or "100")
local profiles = tonumber(os.getenv("PROFILES") or "10000")
local sequential = os.getenv("SEQUENTIAL") == "1"
-- Zero-padded like nudge_bench's ids (a-<n> as wide as PROFILES - 1), so that both
-- tools address the same profiles.
local width = #tostring(math.max(profiles - 1, 0))
local identity_format = '{"type":"event","id":"wb-%s-%d","identities":{"anonymous_id":"a-%0' .. width .. 'd"},%s}'

local counter = 0
local thread_tag = "0"
local threads = {}

function setup(thread)
  thread:set("thread_tag", tostring(math.random(1, 1e9)))
  table.insert(threads, thread)
end

function init(args)
  thread_tag = thread_tag or "0"
  math.randomseed(tonumber(thread_tag) or os.time())
end

local shapes = {
  '"name":"page_view","properties":{"path":"/c/shoes","referrer":"search"}',
  '"name":"page_view","properties":{"path":"/","referrer":"direct"}',
  '"name":"product_view","properties":{"sku":"SKU-%d","category":"shoes","price":49.0}',
  '"name":"cart_add","properties":{"sku":"SKU-%d","price":49.0,"quantity":1}',
  '"name":"purchase","properties":{"order_id":"o-%d","value":98.0,"currency":"EUR"}',
}

function request()
  local parts = {}
  for i = 1, batch do
    counter = counter + 1
    local shape = shapes[(counter % #shapes) + 1]
    if shape:find("%%d") then shape = string.format(shape, counter % 997) end
    parts[i] = string.format(identity_format,
                             thread_tag, counter,
                             sequential and ((counter - 1) % profiles) or math.random(0, profiles - 1), shape)
  end
  local body = '{"batch":[' .. table.concat(parts, ",") .. ']}'
  return wrk.format("POST", nil, {["Content-Type"] = "application/json", ["Authorization"] = "Bearer " .. key}, body)
end

error_results = 0
function response(status, headers, body)
  local _, n = body:gsub('"type":"error"', "")
  error_results = error_results + n
end

-- done() runs in wrk's main Lua state: the threads' counts are read from each thread.
function done(summary, latency, requests)
  local errors = 0
  for _, t in ipairs(threads) do errors = errors + (t:get("error_results") or 0) end
  io.write(string.format("events per request: %d; events/s: %.0f\n", batch,
                         summary.requests / (summary.duration / 1e6) * batch))
  io.write(string.format("non-2xx or socket errors: %d; error replies inside bodies: %d\n",
                         summary.errors.status + summary.errors.connect + summary.errors.read +
                         summary.errors.write + summary.errors.timeout, errors))
end
