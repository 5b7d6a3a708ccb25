package redis

import goredis "github.com/redis/go-redis/v9"

// Every write is one Lua script, which Redis runs atomically: the script
// checks and changes a room's keys in one round trip, as one SQLite
// transaction would.
//
// ARGV[1] of every script is the key prefix; the scripts derive a room's keys
// from it and the room's namespace and name (the package comment gives the
// layout).
// Times are fixed-width strings of Unix nanoseconds, so that Lua, whose
// numbers are doubles, compares them exactly as strings. Offsets, counts and
// limits stay below 2^53 and are numbers.
const prelude = `
local P = ARGV[1]
local function tag(ns, name) return '{' .. ns .. '\0' .. name .. '}' end
local function keys(ns, name)
	local t = tag(ns, name)
	return P .. 'room' .. t, P .. 'mem' .. t, P .. 'memz' .. t, P .. 'msgs' .. t, P .. 'dedupe' .. t, P .. 'sess' .. t
end
local function ref(...) return table.concat({...}, '\0') end
local function split(s)
	local out, i = {}, 1
	while true do
		local j = string.find(s, '\0', i, true)
		if not j then table.insert(out, string.sub(s, i)) return out end
		table.insert(out, string.sub(s, i, j - 1))
		i = j + 1
	end
end
local function ephemeral(m) return string.sub(m, 21, 21) == '1' end
-- endSession removes one session, from its lease's index too, and notes an
-- ephemeral member left without sessions for ExpireLeases.
local function endSession(ns, name, user, session)
	local room, mem, _, _, _, sess = keys(ns, name)
	local sk = sess .. user
	local lease = redis.call('HGET', sk, session)
	if not lease then return end
	redis.call('HDEL', sk, session)
	redis.call('HINCRBY', room, 'sess', -1)
	if lease ~= '' then redis.call('SREM', P .. 'lease:' .. lease, ref(ns, name, user, session)) end
	if redis.call('HLEN', sk) == 0 then
		local m = redis.call('HGET', mem, user)
		if m and ephemeral(m) then redis.call('SADD', P .. 'lonely', ref(ns, name, user)) end
	end
end
-- removeMember ends a membership with all its sessions.
local function removeMember(ns, name, user)
	local room, mem, memz, _, _, sess = keys(ns, name)
	if redis.call('HDEL', mem, user) == 0 then return false end
	redis.call('ZREM', memz, user)
	local sk = sess .. user
	local ss = redis.call('HGETALL', sk)
	for i = 1, #ss, 2 do
		if ss[i + 1] ~= '' then redis.call('SREM', P .. 'lease:' .. ss[i + 1], ref(ns, name, user, ss[i])) end
	end
	redis.call('DEL', sk)
	if #ss > 0 then redis.call('HINCRBY', room, 'sess', -math.floor(#ss / 2)) end
	redis.call('SREM', P .. 'lonely', ref(ns, name, user))
	redis.call('HINCRBY', room, 'count', -1)
	redis.call('HSET', room, 'esince', '0')
	return true
end
local function deleteRoom(ns, name)
	local room, mem, memz, msgs, dedupe, sess = keys(ns, name)
	for _, u in ipairs(redis.call('ZRANGE', memz, 0, -1)) do removeMember(ns, name, u) end
	redis.call('DEL', room, mem, memz, msgs, dedupe)
	local k = ref(ns, name)
	redis.call('ZREM', P .. 'rooms', k)
	redis.call('SREM', P .. 'retention', k)
	redis.call('SREM', P .. 'emptyttl', k)
	redis.call('SREM', P .. 'deduped', k)
end
local function index(set, k, on)
	if on then redis.call('SADD', P .. set, k) else redis.call('SREM', P .. set, k) end
end
`

func script(body string) *goredis.Script { return goredis.NewScript(prelude + body) }

// ARGV: prefix, ns, name, private, max, read-only, history max, retention,
// now, epoch, delete-when-empty.
var createRoomScript = script(`
local ns, name = ARGV[2], ARGV[3]
local room = keys(ns, name)
if redis.call('EXISTS', room) == 1 then return redis.error_reply('EXISTS') end
redis.call('HSET', room, 'ns', ns, 'name', name, 'priv', ARGV[4], 'max', ARGV[5], 'ro', ARGV[6],
	'hmax', ARGV[7], 'ret', ARGV[8], 'last', 0, 'count', 0, 'sess', 0, 'ct', ARGV[9], 'ut', ARGV[9],
	'epoch', ARGV[10], 'ettl', ARGV[11], 'esince', '0')
local k = ref(ns, name)
redis.call('ZADD', P .. 'rooms', 0, k)
index('retention', k, ARGV[8] ~= '0')
index('emptyttl', k, ARGV[11] ~= '0')
return 1
`)

// ARGV: prefix, ns, name, then private, max, read-only, history max,
// retention ("" leaves each as it is), now, then delete-when-empty ("" too).
var updateRoomScript = script(`
local ns, name = ARGV[2], ARGV[3]
local room = keys(ns, name)
if redis.call('EXISTS', room) == 0 then return redis.error_reply('NOTFOUND') end
local fields = {'priv', 'max', 'ro', 'hmax', 'ret'}
for i, f in ipairs(fields) do
	if ARGV[3 + i] ~= '' then redis.call('HSET', room, f, ARGV[3 + i]) end
end
redis.call('HSET', room, 'ut', ARGV[9])
if ARGV[10] ~= '' then redis.call('HSET', room, 'ettl', ARGV[10]) end
local k = ref(ns, name)
index('retention', k, redis.call('HGET', room, 'ret') ~= '0')
index('emptyttl', k, redis.call('HGET', room, 'ettl') ~= '0')
return redis.call('HGETALL', room)
`)

// ARGV: prefix, ns, name.
var deleteRoomScript = script(`
local ns, name = ARGV[2], ARGV[3]
if redis.call('EXISTS', (keys(ns, name))) == 0 then return redis.error_reply('NOTFOUND') end
deleteRoom(ns, name)
return 1
`)

// ARGV: prefix, ns, name, user, session, lease, ephemeral, admit, now.
// Returns the room, the membership record, its session count and whether
// the user joined.
var joinScript = script(`
local ns, name, user, session, lease = ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6]
local room, mem, memz, _, _, sess = keys(ns, name)
local r = redis.call('HMGET', room, 'priv', 'max', 'count')
if not r[1] then return redis.error_reply('NOTFOUND') end
local m = redis.call('HGET', mem, user)
local joined = 0
if not m then
	if r[1] == '1' and ARGV[8] ~= '1' then return redis.error_reply('PRIVATE') end
	local max = tonumber(r[2])
	if max > 0 and tonumber(r[3]) >= max then return redis.error_reply('FULL') end
	m = ARGV[9] .. ARGV[7]
	redis.call('HSET', mem, user, m)
	redis.call('ZADD', memz, 0, user)
	redis.call('HINCRBY', room, 'count', 1)
	redis.call('HSET', room, 'esince', '0')
	joined = 1
	if ARGV[7] == '1' and session == '' then redis.call('SADD', P .. 'lonely', ref(ns, name, user)) end
end
local sk = sess .. user
if session ~= '' then
	local old = redis.call('HGET', sk, session)
	local sref = ref(ns, name, user, session)
	if not old then
		redis.call('HINCRBY', room, 'sess', 1)
	elseif old ~= '' and old ~= lease then
		redis.call('SREM', P .. 'lease:' .. old, sref)
	end
	redis.call('HSET', sk, session, lease)
	if lease ~= '' then
		redis.call('SADD', P .. 'lease:' .. lease, sref)
		redis.call('SADD', P .. 'leaserefs', lease)
	end
end
return {redis.call('HGETALL', room), m, redis.call('HLEN', sk), joined}
`)

// ARGV: prefix, ns, name, user. Returns 1 if the user was a member.
var removeMemberScript = script(`
local ns, name = ARGV[2], ARGV[3]
if redis.call('EXISTS', (keys(ns, name))) == 0 then return redis.error_reply('NOTFOUND') end
if removeMember(ns, name, ARGV[4]) then return 1 end
return 0
`)

// ARGV: prefix, ns, name, user, session. Returns the membership record and
// its session count.
var endSessionScript = script(`
local ns, name, user = ARGV[2], ARGV[3], ARGV[4]
local room, mem, _, _, _, sess = keys(ns, name)
if redis.call('EXISTS', room) == 0 then return redis.error_reply('NOTFOUND') end
local m = redis.call('HGET', mem, user)
if not m then return redis.error_reply('NOTFOUND') end
endSession(ns, name, user, ARGV[5])
return {m, redis.call('HLEN', sess .. user)}
`)

// ARGV: prefix, ns, name, after ("" for the first), limit. Returns user,
// membership record, session count for each member.
var listMembersScript = script(`
local ns, name = ARGV[2], ARGV[3]
local room, mem, memz, _, _, sess = keys(ns, name)
if redis.call('EXISTS', room) == 0 then return redis.error_reply('NOTFOUND') end
local from = '-'
if ARGV[4] ~= '' then from = '(' .. ARGV[4] end
local out = {}
for _, u in ipairs(redis.call('ZRANGEBYLEX', memz, from, '+', 'LIMIT', 0, tonumber(ARGV[5]))) do
	table.insert(out, u)
	table.insert(out, redis.call('HGET', mem, u))
	table.insert(out, redis.call('HLEN', sess .. u))
end
return out
`)

// ARGV: prefix, ns, name, sender, payload, client message id, session, now,
// dedupe-since, origin. Returns {1, offset} for a new message, {0, offset,
// created, message or nil} for a duplicate.
//
// A message is the member of its room's sorted set, scored by its offset:
// "offset:created(20)" then sender, session and client id, each as
// "length:text", then the payload. A new one is also published on the
// room's channel, in the same step, for the stores that watch the room.
var publishScript = script(`
local ns, name, sender, cid, now = ARGV[2], ARGV[3], ARGV[4], ARGV[6], ARGV[8]
local room, mem, _, msgs, dedupe = keys(ns, name)
local r = redis.call('HMGET', room, 'ro', 'hmax')
if not r[1] then return redis.error_reply('NOTFOUND') end
if sender ~= '' then
	if r[1] == '1' then return redis.error_reply('READONLY') end
	if redis.call('HEXISTS', mem, sender) == 0 then return redis.error_reply('NOTMEMBER') end
end
local dkey = ref(sender, cid)
if cid ~= '' then
	local d = redis.call('HGET', dedupe, dkey)
	if d then
		local off, created = string.match(d, '^(%d+) (%d+)$')
		if created >= ARGV[9] then
			local found = redis.call('ZRANGEBYSCORE', msgs, off, off)
			return {0, tonumber(off), created, found[1]}
		end
	end
end
local off = redis.call('HINCRBY', room, 'last', 1)
local session, payload = ARGV[7], ARGV[5]
local enc = off .. ':' .. now .. #sender .. ':' .. sender .. #session .. ':' .. session .. #cid .. ':' .. cid .. payload
redis.call('ZADD', msgs, off, enc)
redis.call('PUBLISH', P .. 'ch' .. tag(ns, name), 'm' .. ARGV[10] .. '\0' .. enc)
if cid ~= '' then
	redis.call('HSET', dedupe, dkey, off .. ' ' .. now)
	redis.call('SADD', P .. 'deduped', ref(ns, name))
end
local hmax = tonumber(r[2])
if hmax > 0 and off > hmax then redis.call('ZREMRANGEBYSCORE', msgs, '-inf', off - hmax) end
return {1, off}
`)

// ARGV: prefix, ns, name, mode ("latest", "before" or "after"), offset,
// limit. Returns the messages, newest first unless mode is "after".
var historyScript = script(`
local ns, name = ARGV[2], ARGV[3]
local room, _, _, msgs = keys(ns, name)
if redis.call('EXISTS', room) == 0 then return redis.error_reply('NOTFOUND') end
local limit = tonumber(ARGV[6])
if limit <= 0 then return {} end
if ARGV[4] == 'latest' then return redis.call('ZREVRANGEBYSCORE', msgs, '+inf', '-inf', 'LIMIT', 0, limit) end
if ARGV[4] == 'before' then return redis.call('ZREVRANGEBYSCORE', msgs, '(' .. ARGV[5], '-inf', 'LIMIT', 0, limit) end
return redis.call('ZRANGEBYSCORE', msgs, '(' .. ARGV[5], '+inf', 'LIMIT', 0, limit)
`)

// ARGV: prefix, ns, name, before (0: all). Returns how many were deleted.
var purgeScript = script(`
local ns, name = ARGV[2], ARGV[3]
local room, _, _, msgs = keys(ns, name)
if redis.call('EXISTS', room) == 0 then return redis.error_reply('NOTFOUND') end
if ARGV[4] == '0' then return redis.call('ZREMRANGEBYSCORE', msgs, '-inf', '+inf') end
return redis.call('ZREMRANGEBYSCORE', msgs, '-inf', '(' .. ARGV[4])
`)

// ARGV: prefix, lease, expiry. Returns 1 if the lease was not kept before.
var keepLeaseScript = script(`
local old = redis.call('HGET', P .. 'leases', ARGV[2])
redis.call('HSET', P .. 'leases', ARGV[2], ARGV[3])
if old then return 0 end
return 1
`)

// ARGV: prefix, now. Ends the sessions of leases not kept until now, forgets
// those leases, and removes ephemeral members left without a session.
// Returns ns, name, user of each member removed.
var expireLeasesScript = script(`
local now = ARGV[2]
local leases = P .. 'leases'
for _, lease in ipairs(redis.call('SMEMBERS', P .. 'leaserefs')) do
	local exp = redis.call('HGET', leases, lease)
	if not exp or exp < now then
		for _, s in ipairs(redis.call('SMEMBERS', P .. 'lease:' .. lease)) do
			local f = split(s)
			local _, _, _, _, _, sess = keys(f[1], f[2])
			if redis.call('HGET', sess .. f[3], f[4]) == lease then endSession(f[1], f[2], f[3], f[4]) end
		end
		redis.call('DEL', P .. 'lease:' .. lease)
		redis.call('SREM', P .. 'leaserefs', lease)
	end
end
local all = redis.call('HGETALL', leases)
for i = 1, #all, 2 do
	if all[i + 1] < now then redis.call('HDEL', leases, all[i]) end
end
local left = {}
for _, c in ipairs(redis.call('SMEMBERS', P .. 'lonely')) do
	local f = split(c)
	local _, mem, _, _, _, sess = keys(f[1], f[2])
	local m = redis.call('HGET', mem, f[3])
	if m and ephemeral(m) and redis.call('HLEN', sess .. f[3]) == 0 then
		removeMember(f[1], f[2], f[3])
		table.insert(left, f[1])
		table.insert(left, f[2])
		table.insert(left, f[3])
	end
	redis.call('SREM', P .. 'lonely', c)
end
return left
`)

// ARGV: prefix, ns, name, now, cutoff: now less the room's
// delete-when-empty. Notes an empty room, clears the note of one with
// members, or deletes one noted empty at or before cutoff; returns 1 if it
// deleted the room.
var emptyRoomScript = script(`
local ns, name = ARGV[2], ARGV[3]
local room = keys(ns, name)
local r = redis.call('HMGET', room, 'count', 'esince', 'ettl')
if not r[1] or r[3] == '0' then return 0 end
if tonumber(r[1]) > 0 then
	if r[2] ~= '0' then redis.call('HSET', room, 'esince', '0') end
	return 0
end
if r[2] == '0' then
	redis.call('HSET', room, 'esince', ARGV[4])
	return 0
end
if r[2] <= ARGV[5] then
	deleteRoom(ns, name)
	return 1
end
return 0
`)

// ARGV: prefix, ns, name, cutoff. Deletes the room's messages created
// before cutoff.
var sweepMessagesScript = script(`
local ns, name = ARGV[2], ARGV[3]
local _, _, _, msgs = keys(ns, name)
local n = 0
for _, m in ipairs(redis.call('ZRANGE', msgs, 0, -1)) do
	local created = string.match(m, '^%d+:(' .. string.rep('%d', 20) .. ')')
	if created < ARGV[4] then
		redis.call('ZREM', msgs, m)
		n = n + 1
	end
end
return n
`)

// ARGV: prefix, ns, name, before. Forgets the room's deduplication keys
// accepted before before, and the room from the rooms that have some once
// it has none.
var sweepDedupeScript = script(`
local ns, name = ARGV[2], ARGV[3]
local _, _, _, _, dedupe = keys(ns, name)
local all = redis.call('HGETALL', dedupe)
for i = 1, #all, 2 do
	if string.match(all[i + 1], ' (%d+)$') < ARGV[4] then redis.call('HDEL', dedupe, all[i]) end
end
if redis.call('HLEN', dedupe) == 0 then redis.call('SREM', P .. 'deduped', ref(ns, name)) end
return 1
`)

// ARGV: prefix, saved-session key, now. Returns the session's data and
// deletes it; nil if there was none or it expired at now.
var takeSessionScript = script(`
local v = redis.call('GET', ARGV[2])
if not v then return false end
redis.call('DEL', ARGV[2])
redis.call('ZREM', P .. 'savedx', ARGV[2])
if string.sub(v, 1, 20) <= ARGV[3] then return false end
return string.sub(v, 22)
`)

// ARGV: prefix, now, then candidate saved-session keys. Deletes those
// expired at now.
var sweepSessionsScript = script(`
for i = 3, #ARGV do
	local v = redis.call('GET', ARGV[i])
	if not v or string.sub(v, 1, 20) <= ARGV[2] then
		redis.call('DEL', ARGV[i])
		redis.call('ZREM', P .. 'savedx', ARGV[i])
	end
end
return 1
`)
