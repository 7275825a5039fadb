--[[
prepaid_debit.lua: one atomic prepaid step for one customer (policy: charging/prepaid.py).

Every key carries the customer's hash tag, so a Redis Cluster / Memorystore cluster keeps
them in one slot:

  KEYS[1]  warp:{C}:account          hash  balance, seq, low, suspend_at, suspended_alerted, opened_ms
  KEYS[2]  warp:{C}:event:<event_id> | warp:{C}:credit:<entry_id>   the stored result (format below)
  KEYS[3]  warp:{C}:ledger           stream  recent ledger entries (capped at ARGV[6], approximate)
  KEYS[4]  warp:{C}:fence            hash  gen (server run_id the state was verified on), lock, lock_until
  KEYS[5]  warp:{C}:outbox           hash  entry_id -> ledger entry not yet persisted (drained by
                                           the function after its ledger write, and by the sweep)
  KEYS[6]  warp:{C}:hold             string  present while the customer is suspended for non-payment
                                           (dunning): every debit is refused ACCOUNT_SUSPENDED

  ARGV[1]  op: debit | credit | open
  ARGV[2]  entry_id (the event_id; "topup:<id>" for top-ups)
  ARGV[3]  amount in micro-units (debit: >= 0; credit: signed change)
  ARGV[4]  now, epoch ms (processing time: ledger time, suspension clock)
  ARGV[5]  dedup TTL in seconds (0 = keep forever, for top-ups)
  ARGV[6]  ledger stream MAXLEN
  ARGV[7]  low-balance threshold, micro-units (0 = no alert)
  ARGV[8]  notice before suspension, ms
  ARGV[9]  auto-recharge trigger, micro-units ('' = no auto-recharge)
  ARGV[10] auto-recharge amount, micro-units
  ARGV[11] '1' = operator replay: an earlier refusal is decided again (a charge never is)
  ARGV[12] plan version (stored with the result)
  ARGV[13] ledger kind for credit: topup | adjustment
  ARGV[14] ledger reference (event kind, payment id, note)
  ARGV[15] bound: |balance| and every amount stay at or below it (exact in a Lua double)
  ARGV[16] run_id of the server this call runs on, as the caller's connection read it (INFO server)
           when it connected; '' = read it here (INFO server, 18-30 us per call)

Returns {status, result}: status 'new' (decided now), 'dup' (the stored original result),
'no_account' (the account does not exist: Redis lost its data or the plan was never loaded),
'fenced' (a rebuild holds this customer), 'stale' (the account was not verified against the
ledger on this server: restored snapshot, promoted replica, restart; reconcile first) or
'out_of_range' (a credit would take the balance past the bound; nothing moved).

The fence: every reconcile stamps fence.gen with the server's run_id (INFO server). A server
that restarted, was restored from a snapshot or was promoted from a replica has another run_id,
so nothing is charged on its copy until a reconcile has brought it up to the ledger. The caller
passes the run_id its connection read when it connected (ARGV[16]): a restart, restore or
failover always drops the connection, and a new connection reads the new server's run_id, so the
value is the current server's without an INFO call per charge.

Result (also the dedup value), '|'-separated, integers in micro-units / epoch ms:
  1|outcome C/R|reason|amount|balance|at_ms|recharge|balance after first entry|flags|deadline|version|seq
(the first field is the format: 1 = prepaid step, 2 = postpaid step, see postpaid_charge.lua;
seq = the account's position after the step: the last entry's sequence number)
flags: P/R auto-recharge before/after the debit, L low balance, S suspend pending, X suspended.

Lua numbers are doubles: integers are exact below 2^53; the bound (2^50) keeps every sum exact.
]]

local op = ARGV[1]
local entry_id = ARGV[2]
local amount = tonumber(ARGV[3])
local now = tonumber(ARGV[4])
local ttl = tonumber(ARGV[5])
local maxlen = ARGV[6]
local low_threshold = tonumber(ARGV[7]) or 0
local notice = tonumber(ARGV[8]) or 0
local recharge_below = tonumber(ARGV[9])
local recharge_amount = tonumber(ARGV[10]) or 0
local replay = ARGV[11] == '1'
local version = ARGV[12]
local credit_kind = ARGV[13]
local reference = ARGV[14]
local bound = tonumber(ARGV[15])

local function int(n)
  return string.format('%d', n)
end

local server_run_id = ARGV[16]
local function run_id()
  if server_run_id == nil or server_run_id == '' then
    server_run_id = string.match(redis.call('INFO', 'server'), 'run_id:(%x+)')
  end
  return server_run_id
end

if op == 'open' then
  if redis.call('EXISTS', KEYS[1]) == 0 then
    redis.call('HSET', KEYS[1], 'balance', '0', 'seq', '0', 'opened_ms', ARGV[4])
    redis.call('HSET', KEYS[4], 'gen', run_id())
  end
  return {'new', ''}
end

local prior = redis.call('GET', KEYS[2])
if prior and not (replay and string.sub(prior, 2, 4) == '|R|') then
  return {'dup', prior}
end

local account = redis.call('HMGET', KEYS[1], 'balance', 'low', 'suspend_at', 'suspended_alerted', 'seq')
local fence = redis.call('HMGET', KEYS[4], 'gen', 'lock', 'lock_until')
if fence[2] then
  local clock = redis.call('TIME')
  if tonumber(clock[1]) * 1000 < tonumber(fence[3]) then
    return {'fenced', ''}
  end
end
if not account[1] then
  if op ~= 'credit' then
    return {'no_account', ''}
  end
  -- A credit opens a missing account (callers that may face a lost Redis reconcile first).
  account = {'0', false, false, false, '0'}
  redis.call('HSET', KEYS[1], 'opened_ms', ARGV[4])
  fence[1] = run_id()
  redis.call('HSET', KEYS[4], 'gen', fence[1])
elseif fence[1] ~= run_id() then
  return {'stale', ''}
end

local balance = tonumber(account[1])
local low = account[2] == '1'
local suspend_at = tonumber(account[3])
local suspended_alerted = account[4] == '1'
local seq = tonumber(account[5]) or 0
local flags = ''
local first_balance = ''
local recharged = ''

if op == 'credit' and (math.abs(amount) > bound or math.abs(balance + amount) > bound) then
  return {'out_of_range', int(balance)}
end

local function book(id, kind, change)
  balance = balance + change
  seq = seq + 1
  redis.call('XADD', KEYS[3], 'MAXLEN', '~', maxlen, '*',
    'id', id, 'kind', kind, 'amount', int(change), 'balance', int(balance), 'at_ms', ARGV[4], 'ref', reference)
  redis.call('HSET', KEYS[5], id,
    table.concat({kind, int(change), int(balance), ARGV[4], int(seq), reference}, '|'))
  if first_balance == '' then
    first_balance = int(balance)
  end
end

local function auto_recharge(mark)
  if recharged == '' and recharge_below and recharge_amount > 0 and balance < recharge_below
      and balance + recharge_amount <= bound then
    book(entry_id .. '#recharge', 'auto_recharge', recharge_amount)
    recharged = mark
  end
end

local outcome, reason = 'C', ''
if op == 'credit' then
  book(entry_id, credit_kind, amount)
elseif KEYS[6] and redis.call('EXISTS', KEYS[6]) == 1 then
  -- suspended for non-payment (dunning): refused before anything moves, no auto-recharge either
  outcome, reason = 'R', 'ACCOUNT_SUSPENDED'
else
  auto_recharge('P')
  if suspend_at and now >= suspend_at and balance <= 0 then
    outcome, reason = 'R', 'SUSPENDED'
    if not suspended_alerted then
      flags = flags .. 'X'
      suspended_alerted = true
    end
  elseif amount > 0 and balance <= 0 then
    outcome, reason = 'R', 'INSUFFICIENT_BALANCE'
  else
    if amount > 0 then
      book(entry_id, 'debit', -amount)
    end
    auto_recharge('R')
  end
end
flags = flags .. recharged

-- Low-balance crossing, judged on the balance this step leaves: once per crossing.
if low_threshold > 0 then
  if balance < low_threshold then
    if not low then
      flags = flags .. 'L'
      low = true
    end
  else
    low = false
  end
end

-- Exhaustion starts the suspension notice; money above zero ends it.
if balance <= 0 then
  if not suspend_at then
    suspend_at = now + notice
    flags = flags .. 'S'
  end
else
  suspend_at = nil
  suspended_alerted = false
end

if suspend_at then
  redis.call('HSET', KEYS[1], 'balance', int(balance), 'seq', int(seq), 'low', low and '1' or '0',
    'suspended_alerted', suspended_alerted and '1' or '0', 'suspend_at', int(suspend_at))
else
  redis.call('HSET', KEYS[1], 'balance', int(balance), 'seq', int(seq), 'low', low and '1' or '0',
    'suspended_alerted', suspended_alerted and '1' or '0')
  if account[3] then  -- only a notice that was running is removed (no HDEL on every debit)
    redis.call('HDEL', KEYS[1], 'suspend_at')
  end
end

local result = table.concat({'1', outcome, reason, int(amount), int(balance), ARGV[4],
  recharged ~= '' and int(recharge_amount) or '0', first_balance, flags,
  suspend_at and int(suspend_at) or '', version, int(seq)}, '|')
if ttl > 0 then
  redis.call('SET', KEYS[2], result, 'EX', ttl)
else
  redis.call('SET', KEYS[2], result)
end
return {'new', result}
