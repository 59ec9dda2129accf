-- wrk script (wrk -s FILE): after the run, one line with the latency percentiles the benchmark
-- reports, in microseconds from wrk's own histogram. wrk's --latency stops at p99, and its
-- figures are rounded to two decimals of whatever unit it picks; this line has p99.9 too and
-- is made to be parsed:
--
--   weirbench-latency-us p50=812 p99=3940 p99.9=8123 max=10452 requests=41870
--
-- Only done() is defined: a script without request() or response() leaves wrk's request path
-- as it is without one (a static request, responses not handed to Lua).
function done(summary, latency, requests)
  io.write(string.format("weirbench-latency-us p50=%d p99=%d p99.9=%d max=%d requests=%d\n",
                         latency:percentile(50), latency:percentile(99),
                         latency:percentile(99.9), latency.max, summary.requests))
end
