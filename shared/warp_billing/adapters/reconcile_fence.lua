--[[
reconcile_fence.lua: stop charging for one customer while a reconcile rebuilds it from the ledger.

  KEYS[1]  warp:{C}:fence   hash  gen, lock, lock_until
  ARGV[1]  token of this reconcile
  ARGV[2]  lease, ms: an abandoned reconcile (crashed operator, killed sweep) fences no longer

Charging scripts refuse the customer ('fenced') while lock_until is in the future. Another
reconcile's live lease is respected ('busy'); the server clock (TIME) is the one every script uses.
]]

local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)
local held = redis.call('HMGET', KEYS[1], 'lock', 'lock_until')
if held[1] and held[1] ~= ARGV[1] and tonumber(held[2]) > now then
  return 'busy'
end
redis.call('HSET', KEYS[1], 'lock', ARGV[1], 'lock_until', string.format('%d', now + tonumber(ARGV[2])))
return 'ok'
