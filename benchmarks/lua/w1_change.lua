-- W1c 'store a change': like the harness's W1 (POST the 20-field body to /question in one
-- session), but every request changes one answer (first name "Alexandra<n>"), so a server that
-- writes only what changed still writes on every request.
-- Env: BENCH_DIR (the harness's lua dir, for common.lua), BENCH_BODY, BENCH_COOKIE,
--      BENCH_QUESTION (default /question), BENCH_EXPECT=302
dofile(os.getenv("BENCH_DIR") .. "/common.lua")
local body, headers, path
local n = 0
function init(args)
  body = trim(read_file(os.getenv("BENCH_BODY")))
  path = os.getenv("BENCH_QUESTION") or "/question"
  headers = {
    ["Content-Type"] = "application/x-www-form-urlencoded",
    ["Cookie"] = os.getenv("BENCH_COOKIE"),
  }
end
function request()
  n = n + 1
  local b = string.gsub(body, "Alexandra", "Alexandra" .. n, 1)
  return wrk.format("POST", path, headers, b)
end
