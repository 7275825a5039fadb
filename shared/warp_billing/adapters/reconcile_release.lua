--[[
reconcile_release.lua: write one customer's reconciled state and lift the fence, atomically.

  KEYS[1]   warp:{C}:fence    hash  gen, lock, lock_until
  KEYS[2]   warp:{C}:account  hash  prepaid account (written when ARGV[2] = '1')
  KEYS[3..] warp:{C}:cycle:<date>  postpaid cycles to write (totals in ARGV[9..], two per cycle)

  ARGV[1]  token (the fence this reconcile holds)
  ARGV[2]  '1' = write the prepaid account
  ARGV[3]  balance, micro-units      ARGV[4]  seq (position of the last ledger entry)
  ARGV[5]  low-balance mark '1'/'0'  ARGV[6]  suspend_at ms or ''     ARGV[7]  opened_ms
  ARGV[8]  cycle hash TTL, seconds
  ARGV[9 + 2i], ARGV[10 + 2i]  total and events of the i-th cycle

Returns 'ok', or 'lost' when this reconcile no longer holds a live fence (its lease expired, so
charges may have run on the old state, or another reconcile took over): nothing is written.
Then stamps fence.gen with this server's run_id: the state is verified against the ledger here.
]]

local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)
local held = redis.call('HMGET', KEYS[1], 'lock', 'lock_until')
if held[1] ~= ARGV[1] or tonumber(held[2]) <= now then
  return 'lost'
end

if ARGV[2] == '1' then
  redis.call('HSET', KEYS[2], 'balance', ARGV[3], 'seq', ARGV[4], 'low', ARGV[5])
  if ARGV[6] ~= '' then
    redis.call('HSET', KEYS[2], 'suspend_at', ARGV[6])
  else
    redis.call('HDEL', KEYS[2], 'suspend_at')
    redis.call('HSET', KEYS[2], 'suspended_alerted', '0')
  end
  redis.call('HSETNX', KEYS[2], 'suspended_alerted', '0')
  redis.call('HSETNX', KEYS[2], 'opened_ms', ARGV[7])
end

for i = 3, #KEYS do
  local total = ARGV[9 + 2 * (i - 3)]
  local events = ARGV[10 + 2 * (i - 3)]
  redis.call('HSET', KEYS[i], 'total', total, 'events', events)
  redis.call('EXPIRE', KEYS[i], ARGV[8])
end

redis.call('HSET', KEYS[1], 'gen', string.match(redis.call('INFO', 'server'), 'run_id:(%x+)'))
redis.call('HDEL', KEYS[1], 'lock', 'lock_until')
return 'ok'
