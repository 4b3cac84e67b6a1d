-- wrk script for bench/intake.py: signed GitHub webhook deliveries.
--
-- BENCH_MANIFEST names a file written by bench/intake.py, one delivery per line:
--     <event>\t<sha256=signature>\t<path of the body file>
-- Requests cycle through the lines in order (each thread starts at a different offset).
-- Every request gets a fresh X-GitHub-Delivery (the signature covers only the body).
-- done() prints one line "BENCH_JSON {...}" with counts and latency percentiles (µs).

local manifest_path = os.getenv("BENCH_MANIFEST")
local run_tag = tonumber(os.getenv("BENCH_RUN_TAG") or "0")
local webhook_path = os.getenv("BENCH_PATH") or "/api/github/webhooks"

local threads = {}
local thread_count = 0

function setup(thread)
  thread_count = thread_count + 1
  thread:set("tid", thread_count)
  table.insert(threads, thread)
end

local function read_file(path)
  local handle = assert(io.open(path, "rb"))
  local data = handle:read("*a")
  handle:close()
  return data
end

-- Per-thread state (each wrk thread has its own Lua state).
local heads, tails = {}, {}
local count, index, serial = 0, 0, 0
c200, c202, cother = 0, 0, 0

function init(args)
  local host = wrk.host .. (wrk.port and (":" .. wrk.port) or "")
  for line in io.lines(manifest_path) do
    local event, signature, body_path = line:match("^([^\t]+)\t([^\t]+)\t(.+)$")
    if event then
      local body = read_file(body_path)
      count = count + 1
      heads[count] = "POST " .. webhook_path .. " HTTP/1.1\r\n"
        .. "Host: " .. host .. "\r\n"
        .. "User-Agent: GitHub-Hookshot/bench\r\n"
        .. "Accept: */*\r\n"
        .. "Content-Type: application/json\r\n"
        .. "Content-Length: " .. #body .. "\r\n"
        .. "X-GitHub-Event: " .. event .. "\r\n"
        .. "X-GitHub-Hook-ID: 512345678\r\n"
        .. "X-GitHub-Hook-Installation-Target-Type: integration\r\n"
        .. "X-GitHub-Hook-Installation-Target-ID: 1012345\r\n"
        .. "X-Hub-Signature-256: " .. signature .. "\r\n"
        .. "X-GitHub-Delivery: "
      tails[count] = "\r\n\r\n" .. body
    end
  end
  assert(count > 0, "empty manifest " .. tostring(manifest_path))
  index = ((tid or 1) - 1) * 7 % count
end

function request()
  index = index % count + 1
  serial = serial + 1
  -- GUID-shaped and unique across threads and runs.
  local delivery = string.format("%08x-%04x-4000-8000-%012x", run_tag, tid or 1, serial)
  return heads[index] .. delivery .. tails[index]
end

function response(status, headers, body)
  if status == 202 then
    c202 = c202 + 1
  elseif status == 200 then
    c200 = c200 + 1
  else
    cother = cother + 1
  end
end

function done(summary, latency, requests)
  local s200, s202, sother = 0, 0, 0
  for _, thread in ipairs(threads) do
    s200 = s200 + (thread:get("c200") or 0)
    s202 = s202 + (thread:get("c202") or 0)
    sother = sother + (thread:get("cother") or 0)
  end
  local e = summary.errors
  io.write(string.format(
    'BENCH_JSON {"requests":%d,"duration_us":%d,"bytes":%d,'
      .. '"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d},'
      .. '"status":{"200":%d,"202":%d,"other":%d},'
      .. '"latency_us":{"min":%d,"mean":%.1f,"max":%d,"p50":%d,"p90":%d,"p99":%d,"p999":%d}}\n',
    summary.requests, summary.duration, summary.bytes,
    e.connect, e.read, e.write, e.status, e.timeout,
    s200, s202, sother,
    latency.min, latency.mean, latency.max,
    latency:percentile(50), latency:percentile(90), latency:percentile(99),
    latency:percentile(99.9)))
end
