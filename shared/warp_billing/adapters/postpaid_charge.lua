--[[
postpaid_charge.lua: add one event to a postpaid running total, atomically with its dedup mark
(policy: charging/postpaid.py). Both keys carry the customer's hash tag (one cluster slot):

  KEYS[1]  warp:{C}:cycle:<cycle start>  hash  total, events, soft_alerted, hard_alerted
  KEYS[2]  warp:{C}:event:<event_id>     string  the stored result (same format as prepaid_debit.lua)
  KEYS[3]  warp:{C}:fence                hash  gen (run_id the totals were verified on), lock, lock_until
  KEYS[4]  warp:{C}:outbox               hash  'p:<event_id>' -> cycle|amount until the rated row is written
  KEYS[5]  warp:{C}:hold                 string  present while the customer is suspended for non-payment
                                                 (dunning): every event is refused ACCOUNT_SUSPENDED

  ARGV[1]  event_id
  ARGV[2]  amount, micro-units (>= 0)
  ARGV[3]  now, epoch ms
  ARGV[4]  dedup TTL, seconds
  ARGV[5]  hard credit limit, micro-units ('' = none)
  ARGV[6]  soft limit, micro-units ('' = none)
  ARGV[7]  '1' = operator replay: an earlier refusal is decided again
  ARGV[8]  plan version
  ARGV[9]  cycle hash TTL, seconds
  ARGV[10] bound: a total never goes past it (exact in a Lua double)
  ARGV[11] cycle start (YYYY-MM-DD), recorded with the pending charge
  ARGV[12] run_id of the server, as the caller's connection read it when it connected
           ('' = read it here with INFO server; see prepaid_debit.lua)

Returns {'new' | 'dup' | 'fenced' | 'stale', result}. 'stale': this server's totals were not
verified (restart, restored snapshot, promoted replica, flush: fence.gen is not this server's
run_id), so the total is unknown and nothing is decided until a reconcile rebuilds it from the
usage store; with a verified gen, a missing cycle hash is a new cycle that starts at zero.
Result:
  2|outcome C/R|reason|amount|cycle total|at_ms|0||flags||version|
flags: W soft limit reached, H hard limit reached (each once per cycle).
]]

local amount = tonumber(ARGV[2])
local limit = tonumber(ARGV[5])
local soft = tonumber(ARGV[6])
local bound = tonumber(ARGV[10])

local function int(n)
  return string.format('%d', n)
end

local prior = redis.call('GET', KEYS[2])
if prior and not (ARGV[7] == '1' and string.sub(prior, 2, 4) == '|R|') then
  return {'dup', prior}
end

local fence = redis.call('HMGET', KEYS[3], 'gen', 'lock', 'lock_until')
if fence[2] then
  local clock = redis.call('TIME')
  if tonumber(clock[1]) * 1000 < tonumber(fence[3]) then
    return {'fenced', ''}
  end
end
local server_run_id = ARGV[12]
if server_run_id == nil or server_run_id == '' then
  server_run_id = string.match(redis.call('INFO', 'server'), 'run_id:(%x+)')
end
if fence[1] ~= server_run_id then
  return {'stale', ''}
end

local state = redis.call('HMGET', KEYS[1], 'total', 'soft_alerted', 'hard_alerted', 'events')
local total = tonumber(state[1]) or 0
local outcome, reason, flags = 'C', '', ''

if KEYS[5] and redis.call('EXISTS', KEYS[5]) == 1 then
  outcome, reason = 'R', 'ACCOUNT_SUSPENDED'
elseif amount > 0 and (total + amount > bound or (limit and total + amount > limit)) then
  outcome, reason = 'R', 'CREDIT_LIMIT'
  if state[3] ~= '1' then
    flags = 'H'
    redis.call('HSET', KEYS[1], 'hard_alerted', '1')
  end
else
  total = total + amount
  redis.call('HSET', KEYS[1], 'total', int(total), 'events', int((tonumber(state[4]) or 0) + 1))
  -- Pending until the function has written the rated row: a rebuild counts rows + pending.
  redis.call('HSET', KEYS[4], 'p:' .. ARGV[1], ARGV[11] .. '|' .. int(amount))
  if soft and total >= soft and state[2] ~= '1' then
    flags = 'W'
    redis.call('HSET', KEYS[1], 'soft_alerted', '1')
  end
end
redis.call('EXPIRE', KEYS[1], ARGV[9])

local result = table.concat({'2', outcome, reason, int(amount), int(total), ARGV[3], '0', '', flags, '',
  ARGV[8], ''}, '|')
redis.call('SET', KEYS[2], result, 'EX', ARGV[4])
return {'new', result}
