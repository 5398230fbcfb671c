package redisstore

import "github.com/redis/go-redis/v9"

// The report scripts come in two families, because Redis Cluster runs a script on one slot
// only: tenant scripts touch the keys of one tenant (one hash tag), queue scripts touch the
// delivery queue's keys (the queue's own hash tag). reports.go explains how the two are
// sequenced so that nothing half-written survives. The one exception is enqueueScript, which
// does the whole sequence at once and is used only where every key is on one server.
//
// Times are Unix milliseconds passed in by the caller (the store's injectable clock), so
// tests control windows and expiries. The one exception is the rate limits' clock: replicas'
// clocks disagree, and a limit must not loosen because a request reached a replica that runs
// behind, so the rate limits read Redis' TIME unless the caller passes its own (tests do).
// Reading TIME in a script that writes needs effects replication (Redis ≥ 5; 7 has nothing
// else).

// Fragments shared by stageScript and enqueueScript, so the two paths cannot drift apart.
// Each script first binds the locals the fragments read: now, window, idemKey, hasIdem,
// bodyHash, userRateKey, tenantRateKey, member, perUser, perTenant, rateNow.

// luaIdempotency answers a repeated Idempotency-Key: the first report's id when the body
// hash matches, a mismatch otherwise. It writes nothing.
const luaIdempotency = `
if hasIdem == '1' then
  local rec = redis.call('GET', idemKey)
  if rec then
    local sep = string.find(rec, '\n', 1, true)
    if sep then
      if string.sub(rec, sep + 1) ~= bodyHash then return {'mismatch'} end
      return {'seen', string.sub(rec, 1, sep - 1)}
    end
  end
end
`

// luaGCRA holds the rate-limit arithmetic: the generic cell rate algorithm, as redis-cell,
// Stripe and GitHub use it. A limit of N per window is one key per subject holding its
// theoretical arrival time (TAT): when the subject's budget would be full again. Each
// admitted report moves the TAT by window/N, from now if it lies in the past; a report is
// admitted while the TAT it would leave is at most one window ahead. So N are admitted at
// once, then one every window/N, and a refusal knows exactly when the next one fits. The
// key expires when its TAT passes, since an absent key means the same as a past TAT.
//
// The TAT is stored in milliseconds with microsecond decimals and computed in whole
// microseconds: exact integers in Lua's doubles, so N reports at once fill a window of any
// length exactly. rnow (microseconds) is the caller's rateNow in milliseconds, or Redis'
// TIME when rateNow is empty.
const luaGCRA = `
local rnow = tonumber(rateNow)
if rnow then
  rnow = rnow * 1000
else
  local t = redis.call('TIME')
  rnow = tonumber(t[1]) * 1000000 + tonumber(t[2])
end
local function interval(limit)
  if limit <= 0 or window <= 0 then return nil end
  return math.max(math.floor(window * 1000 / limit), 1)
end
local function tatOf(key)
  local v = redis.call('GET', key)
  if not v then return rnow end
  return math.max(math.floor(tonumber(v) * 1000 + 0.5), rnow)
end
local function setTat(key, tat)
  if tat <= rnow then
    redis.call('DEL', key)
  else
    redis.call('SET', key, string.format('%.3f', tat / 1000), 'PX', math.ceil((tat - rnow) / 1000))
  end
end
-- gcra answers the TAT that admitting one more report leaves, or nil and the milliseconds
-- until it would be admitted.
local function gcra(key, limit)
  local t = interval(limit)
  if not t then return false, 0 end
  local tat = tatOf(key) + t
  local early = tat - window * 1000 - rnow
  if early > 0 then return nil, math.ceil(early / 1000) end
  return tat, 0
end
`

// luaRateCheck refuses when the user or the tenant is at its limit, with the milliseconds
// until a report fits. It writes nothing, and leaves userTat and tenantTat for luaRateRecord.
const luaRateCheck = luaGCRA + `
local userTat, ra = gcra(userRateKey, perUser)
if userTat == nil then return {'rate', 'user', tostring(ra)} end
local tenantTat
tenantTat, ra = gcra(tenantRateKey, perTenant)
if tenantTat == nil then return {'rate', 'tenant', tostring(ra)} end
`

// luaRateRecord counts an accepted report against both limits.
const luaRateRecord = `
if userTat then setTat(userRateKey, userTat) end
if tenantTat then setTat(tenantRateKey, tenantTat) end
`

// rateCheckScript (tenant) is the look at the rate limits taken before a report's body is
// read, so that a limited user's upload is refused without reading it. It writes nothing:
// only enqueueScript and stageScript count a report, so concurrent requests that all pass
// here are still held to the limit there. A repeat of a request whose idempotency record
// exists passes, because the authoritative scripts answer it with a replay (or a mismatch)
// before looking at the limits.
//
// KEYS: rate-user, rate-tenant, idem. ARGV: rateNow, window, perUser, perTenant, hasIdem.
var rateCheckScript = redis.NewScript(`
local rateNow, window = ARGV[1], tonumber(ARGV[2])
local userRateKey, tenantRateKey = KEYS[1], KEYS[2]
local perUser, perTenant = tonumber(ARGV[3]), tonumber(ARGV[4])
if ARGV[5] == '1' and redis.call('EXISTS', KEYS[3]) == 1 then return {'ok'} end
` + luaRateCheck + `
return {'ok'}
`)

// admitScript (queue) is the cheap first check of Enqueue: it refuses while the queue or
// the stored attachment bytes are over their caps, writing nothing, and otherwise records
// the intent to publish a report, which is how a crash before publishing is recovered.
//
// KEYS: stream, bytes, intents. ARGV: member, now, maxLen, maxBytes, nbytes.
var admitScript = redis.NewScript(`
local maxLen, maxBytes, nb = tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])
if maxLen > 0 and redis.call('XLEN', KEYS[1]) >= maxLen then return {'queue'} end
if maxBytes > 0 and tonumber(redis.call('GET', KEYS[2]) or '0') + nb > maxBytes then
  return {'attachments'}
end
redis.call('ZADD', KEYS[3], ARGV[2], ARGV[1])
return {'ok'}
`)

// stageScript (tenant) decides idempotency and rate limits and, when the report is
// accepted, stores it with its attachments, all in one step. Every refusal returns before
// the first write. A stored report is answered first, as in enqueueScript.
//
// KEYS: report, files, idem, rate-user, rate-tenant.
// ARGV: id, bodyHash, now, json, nbytes, hasIdem, idemTTL, window, perUser, perTenant,
// rateNow, then attachment id and content pairs.
var stageScript = redis.NewScript(`
local now, window = tonumber(ARGV[3]), tonumber(ARGV[8])
local idemKey, hasIdem, bodyHash = KEYS[3], ARGV[6], ARGV[2]
local userRateKey, tenantRateKey, member = KEYS[4], KEYS[5], ARGV[1]
local perUser, perTenant, rateNow = tonumber(ARGV[9]), tonumber(ARGV[10]), ARGV[11]
if redis.call('EXISTS', KEYS[1]) == 1 then return {'exists'} end
` + luaIdempotency + luaRateCheck + luaRateRecord + `
redis.call('HSET', KEYS[1], 'json', ARGV[4], 'state', 'queued', 'createdAt', now,
  'updatedAt', now, 'published', 0, 'fence', 0, 'attempts', 0, 'tries', 0, 'bytes', ARGV[5])
for i = 12, #ARGV, 2 do
  redis.call('HSET', KEYS[2], ARGV[i], ARGV[i + 1])
end
if ARGV[6] == '1' then
  redis.call('SET', KEYS[3], ARGV[1] .. '\n' .. ARGV[2], 'PX', ARGV[7])
end
return {'ok'}
`)

// enqueueScript (single server only: it touches tenant and queue keys) is Enqueue in one
// atomic step, for a Redis that is not a Cluster. It gives the answers admit, stage, publish
// and commit give together, checked in the order their refusals take effect there:
// idempotency (answered even while overloaded), the caps, the rate limits. Every refusal
// returns before the first write; an accepted report is stored, queued, counted, committed
// and indexed at once, so no intent is needed.
//
// A report id is fresh, so finding the report already stored means this very call ran
// before and its answer was lost (the client resends after a broken connection): that is
// answered first, before the checks, which would now count the report against itself.
//
// KEYS: stream, bytes, held, report, files, idem, rate-user, rate-tenant, filed-by.
// ARGV: tenantKey, id, bodyHash, now, json, nbytes, hasIdem, idemTTL, window, perUser,
// perTenant, maxLen, maxBytes, heldField, filedByTTL, rateNow, then attachment id and
// content pairs.
var enqueueScript = redis.NewScript(`
local now, nb, window = tonumber(ARGV[4]), tonumber(ARGV[6]), tonumber(ARGV[9])
local idemKey, hasIdem, bodyHash = KEYS[6], ARGV[7], ARGV[3]
local userRateKey, tenantRateKey, member = KEYS[7], KEYS[8], ARGV[2]
local perUser, perTenant, rateNow = tonumber(ARGV[10]), tonumber(ARGV[11]), ARGV[16]
if redis.call('EXISTS', KEYS[4]) == 1 then return {'exists'} end
` + luaIdempotency + `
local maxLen, maxBytes = tonumber(ARGV[12]), tonumber(ARGV[13])
if maxLen > 0 and redis.call('XLEN', KEYS[1]) >= maxLen then return {'queue'} end
if maxBytes > 0 and tonumber(redis.call('GET', KEYS[2]) or '0') + nb > maxBytes then
  return {'attachments'}
end
` + luaRateCheck + luaRateRecord + `
local entry = redis.call('XADD', KEYS[1], '*', 't', ARGV[1], 'r', ARGV[2])
redis.call('HSET', KEYS[4], 'json', ARGV[5], 'state', 'queued', 'createdAt', now,
  'updatedAt', now, 'published', 1, 'entry', entry, 'fence', 0, 'attempts', 0, 'tries', 0,
  'bytes', ARGV[6])
for i = 17, #ARGV, 2 do
  redis.call('HSET', KEYS[5], ARGV[i], ARGV[i + 1])
end
if ARGV[7] == '1' then
  redis.call('SET', KEYS[6], ARGV[2] .. '\n' .. ARGV[3], 'PX', ARGV[8])
end
if nb > 0 and redis.call('HSETNX', KEYS[3], ARGV[14], nb) == 1 then
  redis.call('INCRBY', KEYS[2], nb)
end
redis.call('SET', KEYS[9], ARGV[1], 'PX', ARGV[15])
return {'ok', entry}
`)

// publishScript (queue) puts a staged report on the stream. Only the caller that still
// finds the intent publishes, so an Enqueue and the recovery sweep racing over the same
// report add it once. With checkCaps it re-checks the caps exactly, because other reports
// were published since admitScript looked. Attachment bytes are counted once per report
// (the held hash), so a retried report is not counted twice.
//
// KEYS: stream, bytes, intents, held.
// ARGV: member, tenantKey, id, nbytes, checkCaps, maxLen, maxBytes, heldField.
var publishScript = redis.NewScript(`
if not redis.call('ZSCORE', KEYS[3], ARGV[1]) then return {'gone'} end
local nb = tonumber(ARGV[4])
if ARGV[5] == '1' then
  local maxLen, maxBytes = tonumber(ARGV[6]), tonumber(ARGV[7])
  if maxLen > 0 and redis.call('XLEN', KEYS[1]) >= maxLen then return {'queue'} end
  if maxBytes > 0 and tonumber(redis.call('GET', KEYS[2]) or '0') + nb > maxBytes then
    return {'attachments'}
  end
end
local id = redis.call('XADD', KEYS[1], '*', 't', ARGV[2], 'r', ARGV[3])
if nb > 0 and redis.call('HSETNX', KEYS[4], ARGV[8], nb) == 1 then
  redis.call('INCRBY', KEYS[2], nb)
end
redis.call('ZREM', KEYS[3], ARGV[1])
return {'ok', id}
`)

// commitScript (tenant) marks a report as being on the stream, which turns later
// idempotent repeats from "in flight" into replays. It never creates a report that an
// abort removed meanwhile.
//
// KEYS: report. ARGV: entryID.
var commitScript = redis.NewScript(`
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('HSET', KEYS[1], 'published', 1)
local e = redis.call('HGET', KEYS[1], 'entry')
if not e or e == '' then redis.call('HSET', KEYS[1], 'entry', ARGV[1]) end
return 1
`)

// abortScript (tenant) removes everything stageScript wrote for a report that was refused
// after staging, unless it was published meanwhile, and gives back what it counted against
// the rate limits: each TAT moves back by one interval. Only the run that finds the report
// gives it back, so a repeated abort cannot give back twice.
//
// KEYS: report, files, idem, rate-user, rate-tenant.
// ARGV: id, window, perUser, perTenant, rateNow.
var abortScript = redis.NewScript(`
if redis.call('HGET', KEYS[1], 'published') == '1' then return 0 end
local staged = redis.call('EXISTS', KEYS[1]) == 1
redis.call('DEL', KEYS[1], KEYS[2])
local rec = redis.call('GET', KEYS[3])
if rec and string.sub(rec, 1, #ARGV[1] + 1) == ARGV[1] .. '\n' then redis.call('DEL', KEYS[3]) end
if not staged then return 1 end
local window, perUser, perTenant, rateNow = tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4]), ARGV[5]
` + luaGCRA + `
for i, lim in ipairs({perUser, perTenant}) do
  local key, t = KEYS[3 + i], interval(lim)
  if t and redis.call('EXISTS', key) == 1 then setTat(key, tatOf(key) - t) end
end
return 1
`)

// beginScript (tenant) hands a report to a worker: it moves it to delivering, counts the
// attempt and raises the fence, and returns every field. Entries of reports that are
// settled, gone, or superseded by a newer entry (after an admin retry) are answered with
// what the caller must do instead.
//
// KEYS: report. ARGV: now, entryID.
var beginScript = redis.NewScript(`
if redis.call('HEXISTS', KEYS[1], 'state') == 0 then return {'missing'} end
local st = redis.call('HGET', KEYS[1], 'state')
if st == 'delivered' or st == 'failed' then return {st} end
if redis.call('HEXISTS', KEYS[1], 'json') == 0 then return {'missing'} end
local e = redis.call('HGET', KEYS[1], 'entry')
if e and e ~= '' and e ~= ARGV[2] then return {'stale'} end
redis.call('HINCRBY', KEYS[1], 'fence', 1)
redis.call('HINCRBY', KEYS[1], 'attempts', 1)
redis.call('HINCRBY', KEYS[1], 'tries', 1)
redis.call('HSET', KEYS[1], 'state', 'delivering', 'published', 1, 'entry', ARGV[2], 'updatedAt', ARGV[1])
return {'ok', redis.call('HGETALL', KEYS[1])}
`)

// attemptScript (tenant, fenced) counts one more attempt and returns the tries since the
// last finished step.
//
// KEYS: report. ARGV: fence, now.
var attemptScript = redis.NewScript(`
if redis.call('HGET', KEYS[1], 'fence') ~= ARGV[1] then return -1 end
redis.call('HINCRBY', KEYS[1], 'attempts', 1)
redis.call('HSET', KEYS[1], 'updatedAt', ARGV[2])
return redis.call('HINCRBY', KEYS[1], 'tries', 1)
`)

// recordScript (tenant, fenced) writes step records and, given a tenant, links the ticket
// to it in the same step, so a recorded ticket is never left unlinked (consent requests on
// it would be refused) and a retried record finds the link already there. A record that
// adds a step record the report did not have yet resets the tries; writing one again (a
// retry after a lost answer, a re-upload) does not, so a delivery that keeps recording the
// same steps still runs out of attempts.
//
// KEYS: report, then the ticket link when ARGV[4] is not empty (single server only: the
// link is in another slot). ARGV: fence, now, nset, the tenant to link the ticket to (or empty), then nset
// field/value pairs, then fields to delete. Answers the tries after the write, -1 when the
// fence is stale, -2 when the ticket is linked to another tenant (nothing is written).
var recordScript = redis.NewScript(`
if redis.call('HGET', KEYS[1], 'fence') ~= ARGV[1] then return -1 end
local link = ARGV[4]
local linked = false
if link ~= '' then
  local cur = redis.call('GET', KEYS[2])
  if cur and cur ~= link then return -2 end
  linked = cur ~= false
end
local nset = tonumber(ARGV[3])
local i = 5
local progressed = false
for _ = 1, nset do
  local f = ARGV[i]
  if (f == 'customer' or f == 'emailSource' or f == 'ticketKey' or string.sub(f, 1, 7) == 'upload:'
      or string.sub(f, 1, 5) == 'done:')
    and redis.call('HEXISTS', KEYS[1], f) == 0 then
    progressed = true
  end
  redis.call('HSET', KEYS[1], f, ARGV[i + 1])
  i = i + 2
end
for j = i, #ARGV do redis.call('HDEL', KEYS[1], ARGV[j]) end
if link ~= '' and not linked then redis.call('SET', KEYS[2], link) end
if progressed then redis.call('HSET', KEYS[1], 'tries', 0) end
redis.call('HSET', KEYS[1], 'updatedAt', ARGV[2])
return tonumber(redis.call('HGET', KEYS[1], 'tries') or '0')
`)

// deliveredScript (tenant, fenced) marks a report delivered and forgets what only the
// delivery needed: the report itself (it holds the reporter's email), its attachments and
// the step records. The status stays readable until it expires.
//
// KEYS: report, files. ARGV: fence, now, statusTTL.
var deliveredScript = redis.NewScript(`
if redis.call('HGET', KEYS[1], 'fence') ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[1], 'state', 'delivered', 'updatedAt', ARGV[2])
local drop = {'json', 'customer'}
for _, f in ipairs(redis.call('HKEYS', KEYS[1])) do
  local p = string.sub(f, 1, 7)
  if p == 'upload:' or p == 'pending' or string.sub(f, 1, 5) == 'done:' then table.insert(drop, f) end
end
redis.call('HDEL', KEYS[1], unpack(drop))
redis.call('DEL', KEYS[2])
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return 1
`)

// failedScript (tenant, fenced) marks a report failed; its data and step records stay, so
// an admin retry resumes where it stopped, but only for failedRetention: then the report
// and its files leave Redis (a retry makes them permanent again).
//
// KEYS: report, files. ARGV: fence, now, reason, retention ms.
var failedScript = redis.NewScript(`
if redis.call('HGET', KEYS[1], 'fence') ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[1], 'state', 'failed', 'reason', ARGV[3], 'updatedAt', ARGV[2])
if ARGV[4] then
  redis.call('PEXPIRE', KEYS[1], ARGV[4])
  if KEYS[2] then redis.call('PEXPIRE', KEYS[2], ARGV[4]) end
end
return 1
`)

// retryScript (tenant) puts a failed report back to queued, keeping its step records. The
// fence is raised so a worker still holding the old delivery can write nothing more.
//
// KEYS: report, files (optional). ARGV: now.
var retryScript = redis.NewScript(`
local st = redis.call('HGET', KEYS[1], 'state')
if not st then return {'missing'} end
if st ~= 'failed' then return {'state'} end
if redis.call('HEXISTS', KEYS[1], 'json') == 0 then return {'missing'} end
redis.call('HINCRBY', KEYS[1], 'fence', 1)
redis.call('PERSIST', KEYS[1])
if KEYS[2] then redis.call('PERSIST', KEYS[2]) end
redis.call('HSET', KEYS[1], 'state', 'queued', 'reason', '', 'tries', 0, 'published', 0,
  'entry', '', 'updatedAt', ARGV[1])
return {'ok', redis.call('HGET', KEYS[1], 'bytes') or '0'}
`)

// settleScript (queue) removes a finished entry: acknowledged and deleted, so the stream's
// length is the number of reports still to deliver, and, with release, the report's
// attachment bytes are given back. Both parts are idempotent, so a worker that crashed
// after it may run it again.
//
// KEYS: stream, bytes, held. ARGV: group, entryID, heldField, release.
var settleScript = redis.NewScript(`
redis.call('XACK', KEYS[1], ARGV[1], ARGV[2])
redis.call('XDEL', KEYS[1], ARGV[2])
if ARGV[4] == '1' then
  local nb = redis.call('HGET', KEYS[3], ARGV[3])
  if nb then
    redis.call('HDEL', KEYS[3], ARGV[3])
    redis.call('DECRBY', KEYS[2], nb)
  end
end
return 1
`)

// deadLetterScript (queue) moves an entry of a failed report to the dead-letter stream,
// once: an entry no longer on the stream was moved already.
//
// Dead letters older than the retention (ARGV[8] ms, optional) are trimmed on each move.
//
// KEYS: stream, dead. ARGV: group, entryID, tenantKey, id, reason, now, deadMaxLen, retention.
var deadLetterScript = redis.NewScript(`
if #redis.call('XRANGE', KEYS[1], ARGV[2], ARGV[2]) == 0 then
  redis.call('XACK', KEYS[1], ARGV[1], ARGV[2])
  return 0
end
redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[7], '*', 't', ARGV[3], 'r', ARGV[4],
  'reason', ARGV[5], 'at', ARGV[6], 'entry', ARGV[2])
if ARGV[8] then
  redis.call('XTRIM', KEYS[2], 'MINID', tostring(tonumber(ARGV[6]) - tonumber(ARGV[8])))
end
redis.call('XACK', KEYS[1], ARGV[1], ARGV[2])
redis.call('XDEL', KEYS[1], ARGV[2])
return 1
`)

// touchScript (queue) resets the idle time of an entry this consumer still owns, so that
// a long delivery (Retry-After waits, marker searches) is not claimed by another worker.
// It never takes an entry from another consumer.
//
// KEYS: stream. ARGV: group, consumer, entryID.
var touchScript = redis.NewScript(`
local p = redis.call('XPENDING', KEYS[1], ARGV[1], ARGV[3], ARGV[3], 1, ARGV[2])
if #p == 0 then return 0 end
redis.call('XCLAIM', KEYS[1], ARGV[1], ARGV[2], 0, ARGV[3], 'JUSTID')
return 1
`)

// forgetCustomerScript (tenant) drops a customer-cache entry only while it still names the
// account that was refused, so an entry another worker refreshed meanwhile is kept.
//
// KEYS: customer. ARGV: accountId.
var forgetCustomerScript = redis.NewScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
`)
