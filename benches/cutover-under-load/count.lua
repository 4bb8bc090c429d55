-- wrk script for the cut-over benchmark: keep-alive load, counting every
-- answer that is not 2xx (wrk's own "Non-2xx or 3xx" counter lets 3xx pass),
-- and printing one machine-readable line at the end with wrk's socket errors.
-- A small delay per request keeps wrk from taking a whole core away from the
-- router and cutover on a small machine.
local threads = {}

function setup(thread)
   table.insert(threads, thread)
end

function init(args)
   non2xx = 0
   ok2xx = 0
end

function delay()
   return 1
end

function response(status, headers, body)
   if status >= 200 and status < 300 then
      ok2xx = ok2xx + 1
   else
      non2xx = non2xx + 1
   end
end

function done(summary, latency, requests)
   local bad, good = 0, 0
   for _, t in ipairs(threads) do
      bad = bad + t:get("non2xx")
      good = good + t:get("ok2xx")
   end
   local e = summary.errors
   io.write(string.format(
      "WRK requests=%d ok=%d non2xx=%d connect=%d read=%d write=%d timeout=%d\n",
      summary.requests, good, bad, e.connect, e.read, e.write, e.timeout))
end
