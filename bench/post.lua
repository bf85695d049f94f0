-- wrk script used by bench/run.sh: every request is
--   POST <url> with Content-Type: application/json and the body of $BENCH_BODY
-- (default: bench/pod3.json next to this script), over the connections wrk keeps alive.
--
-- Optional pacing (bench/run.sh's rate-limited run): with BENCH_DELAY_MS set, each connection
-- waits that many milliseconds on average (fractions allowed: wrk's timers are whole
-- milliseconds, so each wait is the floor or the ceiling, at random, with the right mean) after a
-- response before sending its next request; BENCH_ARRIVALS says how the waits vary (below). With -c N connections and a service time S, that offers about
-- N * 1000 / (BENCH_DELAY_MS + S) requests/s; run.sh calibrates the delay to hit its target.
-- wrk starts its latency clock when the request is written, so the wait is never counted.

local function script_dir()
  local source = debug.getinfo(1, "S").source
  return source:match("^@(.*/)") or "./"
end

local path = os.getenv("BENCH_BODY") or (script_dir() .. "pod3.json")
local file = assert(io.open(path, "rb"), "post.lua: cannot open request body " .. path)
local body = file:read("*a")
file:close()

wrk.method = "POST"
wrk.body = body
wrk.headers["Content-Type"] = "application/json"

local delay_ms = tonumber(os.getenv("BENCH_DELAY_MS") or "")
-- BENCH_ARRIVALS=fixed waits the same delay every time. Connections answered together then send
-- together again, forever: the fixed think time turns every chance clump into a convoy that
-- queues on the server at each round. BENCH_ARRIVALS=poisson (run.sh's default) draws each wait
-- from an exponential distribution with the same mean, so that the connections' requests arrive
-- independently, as pod creations from many controllers and users do.
local poisson = (os.getenv("BENCH_ARRIVALS") or "fixed") == "poisson"

-- A whole number of milliseconds with mean `ms`: the floor or the ceiling, at random.
local function whole_ms(ms)
  local whole = math.floor(ms)
  if math.random() < ms - whole then
    return whole + 1
  end
  return whole
end

if delay_ms and delay_ms > 0 then
  function delay()
    if poisson then
      return whole_ms(-delay_ms * math.log(1 - math.random()))
    end
    return whole_ms(delay_ms)
  end
end
