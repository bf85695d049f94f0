-- wrk script for bench/soak.sh. Two streams, chosen by SOAK_MODE:
--
--   good   (the well-behaved clients) POST /validate?timeout=10s, rotating over the review
--          bodies in SOAK_BODIES (a ':'-separated list of files): digest-pinned pods that need no
--          registry. Every answer must be HTTP 200 with "allowed":true; any other is counted as
--          bad and reported by done() as "soak-bad N".
--   noise  (everything else a webhook sees) rotating over: a cold review whose image is on the
--          black-hole registry (a new tag every time: no cache can answer), a cold review of an
--          image on a port nobody listens on, a body that is not JSON, the wrong Content-Type,
--          and GET of a path that does not exist. SOAK_COLD_TEMPLATE is a review holding
--          @IMAGE@ where the image goes; SOAK_BLACKHOLE and SOAK_REFUSED are the two hosts.
--          Run with as many threads as connections (-tN -cN): each thread's requests and
--          responses then alternate, so every answer is counted under the request that got it.
--          done() prints "soak-noise KIND STATUS COUNT" lines.
--
-- SOAK_DELAY_MS: each connection waits this long (fractions: floor or ceiling at random) after
-- a response before its next request, as in post.lua.

local mode = os.getenv("SOAK_MODE") or "good"

local function slurp(path)
  local file = assert(io.open(path, "rb"), "soak.lua: cannot open " .. path)
  local text = file:read("*a")
  file:close()
  return text
end

local delay_ms = tonumber(os.getenv("SOAK_DELAY_MS") or "")
if delay_ms and delay_ms > 0 then
  local whole = math.floor(delay_ms)
  local fraction = delay_ms - whole
  function delay()
    if math.random() < fraction then
      return whole + 1
    end
    return whole
  end
end

local threads = {}
function setup(thread)
  thread:set("id", #threads + 1)
  table.insert(threads, thread)
end

-- wrk.format uses these instead of wrk.headers, so they carry Host themselves.
local json = { ["Host"] = "localhost", ["Content-Type"] = "application/json" }
local validate = "/validate?timeout=10s"

if mode == "good" then
  local requests = {}
  for path in string.gmatch(os.getenv("SOAK_BODIES") or "", "[^:]+") do
    table.insert(requests, wrk.format("POST", validate, json, slurp(path)))
  end
  assert(#requests > 0, "soak.lua: SOAK_BODIES names no file")
  local next_index = 0
  bad = 0
  function init(args)
    next_index = math.random(#requests) - 1
  end
  function request()
    next_index = next_index % #requests + 1
    return requests[next_index]
  end
  function response(status, headers, body)
    if status ~= 200 or not string.find(body, '"allowed":true', 1, true) then
      bad = bad + 1
    end
  end
  function done(summary, latency, requests_)
    local total = 0
    for _, thread in ipairs(threads) do
      total = total + (thread:get("bad") or 0)
    end
    io.write(string.format("soak-bad %d\n", total))
  end
else
  local template = slurp(os.getenv("SOAK_COLD_TEMPLATE"))
  local blackhole = os.getenv("SOAK_BLACKHOLE")
  local refused = os.getenv("SOAK_REFUSED")
  -- One cold review in 10 (half of them wait for the black hole's timeout), the rest are fast.
  local kinds = { "cold-blackhole", "bad-json", "wrong-type", "not-found", "bad-json",
                  "cold-refused", "bad-json", "wrong-type", "not-found", "not-found",
                  "bad-json", "wrong-type", "not-found", "bad-json", "not-found",
                  "cold-refused", "bad-json", "wrong-type", "not-found", "not-found" }
  local serial = 0
  local last = nil
  counts = {}
  local function cold(host)
    serial = serial + 1
    local image = string.format("%s/soak/cold-%d:t%d-%d", host, id or 0, serial, math.random(1e9))
    return wrk.format("POST", validate, json, (template:gsub("@IMAGE@", image)))
  end
  function request()
    last = kinds[serial % #kinds + 1]
    if last == "cold-blackhole" then return cold(blackhole) end
    if last == "cold-refused" then return cold(refused) end
    serial = serial + 1
    if last == "bad-json" then
      return wrk.format("POST", validate, json, '{"apiVersion": "admission.k8s.io/v1", "kind": ')
    elseif last == "wrong-type" then
      return wrk.format("POST", validate, { ["Host"] = "localhost", ["Content-Type"] = "text/plain" }, "hello")
    end
    return wrk.format("GET", "/no-such-path", { ["Host"] = "localhost" }, nil)
  end
  function response(status, headers, body)
    local key = (last or "?") .. " " .. status
    counts[key] = (counts[key] or 0) + 1
  end
  function done(summary, latency, requests_)
    local total = {}
    for _, thread in ipairs(threads) do
      local c = thread:get("counts") or {}
      for key, n in pairs(c) do total[key] = (total[key] or 0) + n end
    end
    for key, n in pairs(total) do io.write(string.format("soak-noise %s %d\n", key, n)) end
  end
end
