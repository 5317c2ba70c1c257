-- wrk script: POST one 28×28 digit (a vertical bar, 784 floats) to
-- /api/predict of `matnet serve`, and count answers that are not 200.
-- Run: wrk -t4 -c200 -d30s --latency -s bench/serve/predict.lua http://127.0.0.1:8080
local pixels = {}
for i = 0, 783 do
  local row, col = math.floor(i / 28), i % 28
  pixels[#pixels + 1] = (row >= 4 and row < 24 and col >= 13 and col < 15) and "1" or "0"
end
wrk.method = "POST"
wrk.path = "/api/predict"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"pixels":[' .. table.concat(pixels, ",") .. ']}'

local non200 = 0
function response(status, headers, body)
  if status ~= 200 then non200 = non200 + 1 end
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "requests %d, non-2xx %d (socket errors: connect %d, read %d, write %d, timeout %d)\n",
    summary.requests, e.status, e.connect, e.read, e.write, e.timeout))
  io.write(string.format("p50 %.2f ms, p90 %.2f ms, p99 %.2f ms, max %.2f ms\n",
    latency:percentile(50) / 1000, latency:percentile(90) / 1000,
    latency:percentile(99) / 1000, latency.max / 1000))
end
