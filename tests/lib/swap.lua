-- wrk script for the hot-swap test: POSTs one user to /v1/predict and counts
-- the answers that are not 200 or do not name the version that served them
-- (header X-Model-Version and the body's model_version must agree), and how
-- many each version answered. The user's JSON comes from $LTV_USER.
wrk.method = "POST"
wrk.body = os.getenv("LTV_USER")
wrk.headers["Content-Type"] = "application/json"

local threads = {}

function setup(thread)
	table.insert(threads, thread)
end

function init(args)
	bad, v1, v2, other = 0, 0, 0, 0
end

function response(status, headers, body)
	local v = headers["X-Model-Version"]
	local bv = body:match('"model_version":(%d+)')
	if status ~= 200 or v == nil or v ~= bv then
		bad = bad + 1
	elseif v == "1" then
		v1 = v1 + 1
	elseif v == "2" then
		v2 = v2 + 1
	else
		other = other + 1
	end
end

function done(summary, latency, requests)
	local b, a1, a2, o = 0, 0, 0, 0
	for _, t in ipairs(threads) do
		b = b + t:get("bad")
		a1 = a1 + t:get("v1")
		a2 = a2 + t:get("v2")
		o = o + t:get("other")
	end
	local e = summary.errors
	io.write(string.format("responses %d bad %d v1 %d v2 %d other %d socket_errors %d p99_ms %.2f\n",
		summary.requests, b, a1, a2, o, e.connect + e.read + e.write + e.timeout,
		latency:percentile(99) / 1000))
end
