-- wrk script: POST /api/auth/token with pre-signed bodies, one line of tokens.txt per request
-- (a challenge is valid once). Each wrk thread takes every n-th line; a thread that runs out
-- sends its first body again, which the API refuses: wrk counts those as non-2xx, and the
-- benchmark fails on any.
local counter = 0
function setup(thread)
  thread:set("id", counter)
  counter = counter + 1
end

function init(args)
  bodies = {}
  local threads = tonumber(args[2])
  local n = 0
  for line in io.lines(args[1]) do
    if n % threads == id then
      bodies[#bodies + 1] = line
    end
    n = n + 1
  end
  next_body = 1
end

function request()
  local body = bodies[next_body] or bodies[1]
  next_body = next_body + 1
  return wrk.format("POST", "/api/auth/token", { ["Content-Type"] = "application/json" }, body)
end
