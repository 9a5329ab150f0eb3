-- wrk script for bench/run.py: one method and path, and optionally a file of request
-- bodies used in turn (one a line; each thread takes every n-th line, so that no two
-- threads send the same one-time token). done() prints the figures as one JSON line.
--
--   wrk -t T -c C -d D -s bench/wrk.lua URL -- METHOD PATH [BODIES_FILE T]
-- Headers come from wrk's -H options.

local counter = 0

function setup(thread)
  thread:set("thread_id", counter)
  counter = counter + 1
end

function init(args)
  method, path = args[1], args[2]
  bodies = {}
  if args[3] then
    local lines = {}
    for line in io.lines(args[3]) do
      lines[#lines + 1] = line
    end
    -- A file of one body (a reusable token, a password) is every thread's.
    local threads = #lines == 1 and 1 or tonumber(args[4])
    for i, line in ipairs(lines) do
      if (i - 1) % threads == thread_id % threads then
        bodies[#bodies + 1] = line
      end
    end
  end
  next_body = 1
end

function request()
  local body = nil
  if #bodies > 0 then
    body = bodies[next_body]
    next_body = next_body % #bodies + 1
  end
  return wrk.format(method, path, nil, body)
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    '\nBENCH {"requests": %d, "duration_us": %d, "p50_us": %d, "p99_us": %d, '
      .. '"socket_errors": %d, "non_2xx": %d}\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    e.connect + e.read + e.write + e.timeout, e.status))
end
