-- The request of the load test in bench/load: one process call, a stock
-- read of the demo inventory, the same for every server. wrk sends it as
-- a static request (no request() function, so no Lua per request) and
-- prints its figures in one line that the program reads.
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"id":"load-1","user_id":"user-1","data":{"action":"stock","sku":"SKU-001"}}'

done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "wrk-result requests=%d duration_us=%d bytes=%d connect=%d read=%d write=%d status=%d timeout=%d " ..
    "p50_us=%d p90_us=%d p99_us=%d p999_us=%d max_us=%d mean_us=%.1f\n",
    summary.requests, summary.duration, summary.bytes, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency:percentile(99.9),
    latency.max, latency.mean))
end
