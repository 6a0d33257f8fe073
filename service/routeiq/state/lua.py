"""Lua scripts RedisState runs server-side: each read-modify-write is atomic across replicas.

The breaker machine here mirrors breaker.MemoryBreakers (tests/integration hold both to the same
behaviour). Every key a script touches arrives in KEYS, named by `state.keys` and sharing one
hash tag, so the scripts run unchanged on a single Redis, behind Sentinel and on Redis Cluster.

Half-open probe claims live in one hash, `breaker:probes`, field = deployment, value =
"<claimed>:<unix time the claims lapse>": a lost probe cannot pin a breaker open, and the view
needs no per-deployment key it could not name in KEYS.
"""

# Per-deployment state has a bounded life (docs/state.md, "Retention"): `stats:reported` scores
# each id with the time it last reported and its `stats:` hash expires `ttl` after that report;
# an open-breaker entry half-open for longer than `ttl` (nobody reports on that deployment any
# more) is dropped. At most `prune_cap` ids are pruned per call, so one call's work stays bounded
# however many went silent at once; the rest go on the next calls.
PRUNE_CAP = 100

# Drops open-breaker entries half-open since before `horizon` (at most `prune_cap`), with their
# probe claims and probe successes. Shared by the scripts that read or write `breaker:open`.
_PRUNE_BREAKERS = f"""
local prune_cap = {PRUNE_CAP}
local function prune_breakers(open_key, ok_key, probes_key, horizon)
  local stale = redis.call('ZRANGEBYSCORE', open_key, '-inf', '(' .. horizon, 'LIMIT', 0, prune_cap)
  if #stale > 0 then
    redis.call('ZREM', open_key, unpack(stale))
    redis.call('HDEL', ok_key, unpack(stale)); redis.call('HDEL', probes_key, unpack(stale))
  end
end
"""

# KEYS: stats reported, breaker open, breaker ok, breaker probes, legacy stats ids (the set older
# versions kept), then 3 per outcome: stats, breaker window, experiment outcomes (any key of the
# namespace when the outcome has no experiment).
# ARGV: now, enabled, window_ms, min_requests, failure_rate, open_seconds, probes_needed, ttl_ms,
# then 8 per outcome: deployment, success (1/0), latency, error class, quality, experiment, variant,
# ramp phase ('' = none; else also counted under `<variant>@<phase>`).
# Returns {deployments whose breaker opened, ids taken over from the legacy set}.
RECORD_OUTCOMES = (
    _PRUNE_BREAKERS
    + """
local now = tonumber(ARGV[1])
local enabled, window_ms, min_req = ARGV[2] == '1', tonumber(ARGV[3]), tonumber(ARGV[4])
local rate, open_s, needed = tonumber(ARGV[5]), tonumber(ARGV[6]), tonumber(ARGV[7])
local ttl_ms = tonumber(ARGV[8])
local horizon = now - ttl_ms / 1000
local ids_key, open_key, ok_key, probes_key = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
-- Older versions kept the ids in a set without expiry: take them over once, as reported now.
local adopted = redis.call('SMEMBERS', KEYS[5])
if #adopted > 0 then
  for _, d in ipairs(adopted) do redis.call('ZADD', ids_key, 'NX', now, d) end
  redis.call('DEL', KEYS[5])
end
local opened = {}
local n = 0
for i = 9, #ARGV, 8 do
  local sk, win_key, ek = KEYS[6 + 3*n], KEYS[7 + 3*n], KEYS[8 + 3*n]
  n = n + 1
  local dep, ok, lat, err, q = ARGV[i], ARGV[i+1] == '1', ARGV[i+2], ARGV[i+3], ARGV[i+4]
  local exp, var, phase = ARGV[i+5], ARGV[i+6], ARGV[i+7]
  redis.call('ZADD', ids_key, now, dep)
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
  redis.call('PEXPIRE', sk, ttl_ms)  -- refreshed by every report: only a silent id expires
  if exp ~= '' and var ~= '' then
    local names = {var}
    if phase ~= '' then table.insert(names, var .. '@' .. phase) end
    for _, v in ipairs(names) do
      redis.call('HINCRBY', ek, v .. ':' .. (ok and 'successes' or 'failures'), 1)
      if lat ~= '' then
        redis.call('HINCRBYFLOAT', ek, v .. ':latency_sum', lat)
        redis.call('HINCRBY', ek, v .. ':latency_count', 1)
      end
      if q ~= '' then
        redis.call('HINCRBYFLOAT', ek, v .. ':quality_sum', q)
        redis.call('HINCRBY', ek, v .. ':quality_count', 1)
      end
    end
  end
  if enabled then
    local score = redis.call('ZSCORE', open_key, dep)
    if score then
      if tonumber(score) <= now then  -- half-open: this outcome is a probe's
        if ok then
          if redis.call('HINCRBY', ok_key, dep, 1) >= needed then
            redis.call('ZREM', open_key, dep); redis.call('HDEL', ok_key, dep)
            redis.call('HDEL', probes_key, dep); redis.call('DEL', win_key)
          end
        else
          redis.call('ZADD', open_key, now + open_s, dep); redis.call('HDEL', ok_key, dep)
          redis.call('HDEL', probes_key, dep); table.insert(opened, dep)
        end
      end  -- open: late outcomes of requests sent before it opened change nothing
    else
      local total = redis.call('HINCRBY', win_key, 'requests', 1)
      if total == 1 then redis.call('PEXPIRE', win_key, window_ms) end
      local fails
      if ok then fails = tonumber(redis.call('HGET', win_key, 'failures') or '0')
      else fails = redis.call('HINCRBY', win_key, 'failures', 1) end
      if total >= min_req and fails / total >= rate then
        redis.call('ZADD', open_key, now + open_s, dep); redis.call('DEL', win_key)
        table.insert(opened, dep)
      end
    end
  end
end
local stale = redis.call('ZRANGEBYSCORE', ids_key, '-inf', '(' .. horizon, 'LIMIT', 0, prune_cap)
if #stale > 0 then redis.call('ZREM', ids_key, unpack(stale)) end
prune_breakers(open_key, ok_key, probes_key, horizon)
return {opened, adopted}
"""
)

# KEYS: breaker open, breaker probes, breaker ok. ARGV: now, probes allowed, ttl_ms.
# Returns {open, probing}. Every decision reads it (through a short per-worker cache), so
# entries nobody reports on are pruned here even when no /feedback arrives at all.
CIRCUIT_VIEW = (
    _PRUNE_BREAKERS
    + """
local now, allowed = tonumber(ARGV[1]), tonumber(ARGV[2])
prune_breakers(KEYS[1], KEYS[3], KEYS[2], now - tonumber(ARGV[3]) / 1000)
local m = redis.call('ZRANGE', KEYS[1], 0, -1, 'WITHSCORES')
local open, probing = {}, {}
for i = 1, #m, 2 do
  if tonumber(m[i+1]) > now then table.insert(open, m[i]) else
    local claimed = 0
    local v = redis.call('HGET', KEYS[2], m[i])
    if v then
      local c, lapse = string.match(v, '^(%d+):(.+)$')
      if c and tonumber(lapse) > now then claimed = tonumber(c) end
    end
    if claimed >= allowed then table.insert(open, m[i]) else table.insert(probing, m[i]) end
  end
end
return {open, probing}
"""
)

# KEYS: breaker open, breaker probes. ARGV: now, deployment, probe lifetime (s).
CLAIM_PROBE = """
local now = tonumber(ARGV[1])
local score = redis.call('ZSCORE', KEYS[1], ARGV[2])
if score and tonumber(score) <= now then
  local claimed, lapse = 0, now + tonumber(ARGV[3])
  local v = redis.call('HGET', KEYS[2], ARGV[2])
  if v then
    local c, l = string.match(v, '^(%d+):(.+)$')
    if c and tonumber(l) > now then claimed, lapse = tonumber(c), tonumber(l) end
  end
  redis.call('HSET', KEYS[2], ARGV[2], (claimed + 1) .. ':' .. string.format('%.3f', lapse))
end
return 0
"""

# KEYS: version. ARGV: the writer's last known version. The new version is above both what
# Redis holds and what the writer has seen: after Redis lost its data a write cannot produce a
# version the workers already passed (they would discard it as older).
BUMP_VERSION = """
local current = tonumber(redis.call('GET', KEYS[1]) or '0')
local floor = tonumber(ARGV[1])
if floor > current then current = floor end
redis.call('SET', KEYS[1], current + 1)
return current + 1
"""

# Every change to an experiment definition, atomic with its version bump and logged in
# `experiments:log` (name -> version of its last change), so workers load only what changed.
# KEYS: experiments, experiments log, version, exp decisions, exp outcomes.
# ARGV: mode (create | set | replace | delete), name, definition JSON ('' for delete), writer's
# version, and for replace the definition the writer read (it changes only if still that one).
# Returns the new version, 0 when nothing changed (create of an existing name), -1 when replace
# found another definition (someone else changed it since the read: read again).
CHANGE_EXPERIMENT = """
local mode, name, spec, floor = ARGV[1], ARGV[2], ARGV[3], tonumber(ARGV[4])
if mode == 'create' then
  if redis.call('HEXISTS', KEYS[1], name) == 1 then return 0 end
  redis.call('HSET', KEYS[1], name, spec)
elseif mode == 'set' then
  redis.call('HSET', KEYS[1], name, spec)
elseif mode == 'replace' then
  if redis.call('HGET', KEYS[1], name) ~= ARGV[5] then return -1 end
  redis.call('HSET', KEYS[1], name, spec)
else
  redis.call('HDEL', KEYS[1], name); redis.call('DEL', KEYS[4], KEYS[5])
end
local current = tonumber(redis.call('GET', KEYS[3]) or '0')
if floor > current then current = floor end
redis.call('SET', KEYS[3], current + 1)
redis.call('ZADD', KEYS[2], current + 1, name)
return current + 1
"""

# The shared config as one consistent read. Incremental when ARGV[1] (the version the reader
# holds) is > 0 and not ahead of Redis: only the experiments changed since, a missing definition
# meaning deleted. Else everything.
# KEYS: version, config, experiments, experiments log. ARGV: version held.
# Returns {version, config as flat list, 1 = full | 0 = changes, flat name/definition list}.
LOAD_CONFIG = """
local version = tonumber(redis.call('GET', KEYS[1]) or '0')
local held = tonumber(ARGV[1])
local config = redis.call('HGETALL', KEYS[2])
if held <= 0 or held > version then
  return {version, config, 1, redis.call('HGETALL', KEYS[3])}
end
local out = {}
for _, name in ipairs(redis.call('ZRANGEBYSCORE', KEYS[4], '(' .. held, '+inf')) do
  table.insert(out, name)
  table.insert(out, redis.call('HGET', KEYS[3], name) or '')
end
return {version, config, 0, out}
"""

# A token bucket every worker and replica takes from (state.quotas.Quota's rule, in one atomic
# step). The hash holds `tokens`, `at` (when they were counted) and the `rate` they were counted
# at: a bucket whose rate changed starts again full, as a new quota does. The key expires once
# the bucket would be full again, so an idle tenant's bucket costs nothing.
# KEYS: the bucket. ARGV: now, rate, n.
# Returns the seconds until n would fit ('0' = taken) as a string: a Lua number would come back
# cut to an integer.
TAKE_QUOTA = """
local now, rate, n = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local burst = math.max(rate, 1)
local held = redis.call('HMGET', KEYS[1], 'tokens', 'at', 'rate')
local tokens, at = tonumber(held[1]), tonumber(held[2])
if tokens == nil or at == nil or tonumber(held[3]) ~= rate then
  tokens, at = burst, now
end
if now > at then
  tokens = math.min(burst, tokens + (now - at) * rate)
  at = now
end
local need = math.min(n, burst)
if tokens < need then
  return tostring((need - tokens) / rate)
end
tokens = tokens - n
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'at', tostring(at), 'rate', ARGV[2])
redis.call('PEXPIRE', KEYS[1], math.ceil((burst - tokens) / rate * 1000) + 1000)
return '0'
"""
