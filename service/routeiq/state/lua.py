"""Lua scripts RedisState runs server-side: each read-modify-write is atomic across replicas.

The breaker machine here mirrors breaker.MemoryBreakers (tests/integration hold both to the same
behaviour). Keys are built from the prefix passed in ARGV (single Redis or Sentinel; not Cluster).
"""

# ARGV: prefix, now, enabled, window_ms, min_requests, failure_rate, open_seconds, probes_needed,
# then 7 per outcome: deployment, success (1/0), latency, error class, quality, experiment, variant.
RECORD_OUTCOMES = """
local p, now = ARGV[1], tonumber(ARGV[2])
local enabled, window_ms, min_req = ARGV[3] == '1', tonumber(ARGV[4]), tonumber(ARGV[5])
local rate, open_s, needed = tonumber(ARGV[6]), tonumber(ARGV[7]), tonumber(ARGV[8])
local opened = {}
for i = 9, #ARGV, 7 do
  local dep, ok, lat, err, q = ARGV[i], ARGV[i+1] == '1', ARGV[i+2], ARGV[i+3], ARGV[i+4]
  local exp, var = ARGV[i+5], ARGV[i+6]
  local sk = p .. 'stats:' .. dep
  redis.call('SADD', p .. 'stats:deployments', dep)
  if ok then redis.call('HINCRBY', sk, 'successes', 1) else
    redis.call('HINCRBY', sk, 'failures', 1)
    redis.call('HINCRBY', sk, 'err:' .. (err ~= '' and err or 'unknown'), 1)
  end
  if lat ~= '' then
    redis.call('HINCRBYFLOAT', sk, 'latency_sum', lat); redis.call('HINCRBY', sk, 'latency_count', 1)
  end
  if q ~= '' then
    redis.call('HINCRBYFLOAT', sk, 'quality_sum', q); redis.call('HINCRBY', sk, 'quality_count', 1)
  end
  if exp ~= '' and var ~= '' then
    local ek = p .. 'exp:' .. exp .. ':outcomes'
    redis.call('HINCRBY', ek, var .. ':' .. (ok and 'successes' or 'failures'), 1)
    if lat ~= '' then
      redis.call('HINCRBYFLOAT', ek, var .. ':latency_sum', lat)
      redis.call('HINCRBY', ek, var .. ':latency_count', 1)
    end
    if q ~= '' then
      redis.call('HINCRBYFLOAT', ek, var .. ':quality_sum', q)
      redis.call('HINCRBY', ek, var .. ':quality_count', 1)
    end
  end
  if enabled then
    local ok_key = p .. 'breaker:ok'
    local probes_key, win_key = p .. 'breaker:probes:' .. dep, p .. 'breaker:window:' .. dep
    local score = redis.call('ZSCORE', p .. 'breaker:open', dep)
    if score then
      if tonumber(score) <= now then  -- half-open: this outcome is a probe's
        if ok then
          if redis.call('HINCRBY', ok_key, dep, 1) >= needed then
            redis.call('ZREM', p .. 'breaker:open', dep); redis.call('HDEL', ok_key, dep)
            redis.call('DEL', probes_key, win_key)
          end
        else
          redis.call('ZADD', p .. 'breaker:open', now + open_s, dep); redis.call('HDEL', ok_key, dep)
          redis.call('DEL', probes_key); table.insert(opened, dep)
        end
      end  -- open: late outcomes of requests sent before it opened change nothing
    else
      local total = redis.call('HINCRBY', win_key, 'requests', 1)
      if total == 1 then redis.call('PEXPIRE', win_key, window_ms) end
      local fails
      if ok then fails = tonumber(redis.call('HGET', win_key, 'failures') or '0')
      else fails = redis.call('HINCRBY', win_key, 'failures', 1) end
      if total >= min_req and fails / total >= rate then
        redis.call('ZADD', p .. 'breaker:open', now + open_s, dep); redis.call('DEL', win_key)
        table.insert(opened, dep)
      end
    end
  end
end
return opened
"""

# ARGV: prefix, now, probes allowed. Returns {open, probing}.
CIRCUIT_VIEW = """
local p, now, allowed = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])
local m = redis.call('ZRANGE', p .. 'breaker:open', 0, -1, 'WITHSCORES')
local open, probing = {}, {}
for i = 1, #m, 2 do
  if tonumber(m[i+1]) > now then table.insert(open, m[i]) else
    local claimed = tonumber(redis.call('GET', p .. 'breaker:probes:' .. m[i]) or '0')
    if claimed >= allowed then table.insert(open, m[i]) else table.insert(probing, m[i]) end
  end
end
return {open, probing}
"""

# ARGV: prefix, now, deployment, probe lifetime (ms).
CLAIM_PROBE = """
local score = redis.call('ZSCORE', ARGV[1] .. 'breaker:open', ARGV[3])
if score and tonumber(score) <= tonumber(ARGV[2]) then
  local key = ARGV[1] .. 'breaker:probes:' .. ARGV[3]
  if redis.call('INCR', key) == 1 then redis.call('PEXPIRE', key, ARGV[4]) end
end
return 0
"""
