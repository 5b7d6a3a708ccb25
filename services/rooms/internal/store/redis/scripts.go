package redis

import goredis "github.com/redis/go-redis/v9"

// Every write to a room is one Lua script, which Redis runs atomically: the
// script checks and changes the room's keys in one round trip, as one SQLite
// transaction would. A room's keys share a hash tag, so that on Redis
// Cluster one node holds them all and can run the script.
//
// The deployment-wide indexes (the rooms, those with a retention, those with
// deduplication keys, the leases' rooms...) share another hash tag, so they
// may live on another node: a change to a room and to an index are two
// scripts, and a process can die between them. The order keeps every index
// a superset of what it should hold: an entry is added before the room's
// change that needs it, and removed after the room's change that ends the
// need, and only if no entry for that room was added within indexGrace, so
// that a removal never undoes an addition whose room change has yet to
// land. Readers of an index skip the rooms it names wrongly.
//
// ARGV[1] of every script is the key prefix; room scripts have the room's
// namespace and name next, and derive the room's keys from them (the package
// comment gives the layout), with one of them as KEYS[1] so that Cluster
// routes the script to its node. Global scripts have the rooms index as
// KEYS[1].
//
// Times are fixed-width strings of Unix nanoseconds, so that Lua, whose
// numbers are doubles, compares them exactly as strings. Offsets, counts and
// limits stay below 2^53 and are numbers.
const common = `
local P = ARGV[1]
local G = P .. '{g}'
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
`

const roomPrelude = common + `
local function tag(ns, name) return '{' .. ns .. '\0' .. name .. '}' end
local function keys(ns, name)
	local t = tag(ns, name)
	return P .. 'room' .. t, P .. 'mem' .. t, P .. 'memz' .. t, P .. 'msgs' .. t, P .. 'dedupe' .. t,
		P .. 'sess' .. t, P .. 'lonely' .. t
end
local function leaseKey(ns, name, lease) return P .. 'lses' .. tag(ns, name) .. lease end
local function ephemeral(m) return string.sub(m, 21, 21) == '1' end
-- endSession removes one session, from its lease's set too, and notes an
-- ephemeral member left without sessions for ExpireLeases.
local function endSession(ns, name, user, session)
	local room, mem, _, _, _, sess, lonely = keys(ns, name)
	local sk = sess .. user
	local lease = redis.call('HGET', sk, session)
	if not lease then return end
	redis.call('HDEL', sk, session)
	redis.call('HINCRBY', room, 'sess', -1)
	if lease ~= '' then redis.call('SREM', leaseKey(ns, name, lease), ref(user, session)) end
	if redis.call('HLEN', sk) == 0 then
		local m = redis.call('HGET', mem, user)
		if m and ephemeral(m) then redis.call('SADD', lonely, user) end
	end
end
-- removeMember ends a membership with all its sessions.
local function removeMember(ns, name, user)
	local room, mem, memz, _, _, sess, lonely = keys(ns, name)
	if redis.call('HDEL', mem, user) == 0 then return false end
	redis.call('ZREM', memz, user)
	local sk = sess .. user
	local ss = redis.call('HGETALL', sk)
	for i = 1, #ss, 2 do
		if ss[i + 1] ~= '' then redis.call('SREM', leaseKey(ns, name, ss[i + 1]), ref(user, ss[i])) end
	end
	redis.call('DEL', sk)
	if #ss > 0 then redis.call('HINCRBY', room, 'sess', -math.floor(#ss / 2)) end
	redis.call('SREM', lonely, user)
	redis.call('HINCRBY', room, 'count', -1)
	redis.call('HSET', room, 'esince', '0')
	return true
end
local function deleteRoom(ns, name)
	local room, mem, memz, msgs, dedupe, _, lonely = keys(ns, name)
	for _, u in ipairs(redis.call('ZRANGE', memz, 0, -1)) do removeMember(ns, name, u) end
	redis.call('DEL', room, mem, memz, msgs, dedupe, lonely)
end
`

const globalPrelude = common + `
local function nowms()
	local t = redis.call('TIME')
	return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
`

func roomScript(body string) *goredis.Script   { return goredis.NewScript(roomPrelude + body) }
func globalScript(body string) *goredis.Script { return goredis.NewScript(globalPrelude + body) }

// ARGV: prefix, room ref, lease or "", then the indexes ("rooms",
// "retention", "emptyttl", "deduped", "lonely") to add the room to. Notes
// the time in fresh; with a lease, adds the room to the lease's rooms,
// unless ExpireLeases is ending the lease's sessions.
var indexScript = globalScript(`
local r, lease = ARGV[2], ARGV[3]
if lease ~= '' and redis.call('SISMEMBER', G .. 'expiring', lease) == 1 then
	return redis.error_reply('TRYAGAIN the lease is being expired')
end
local ms = nowms()
redis.call('ZADD', G .. 'fresh', ms, r)
for i = 4, #ARGV do
	if ARGV[i] == 'rooms' then redis.call('ZADD', G .. 'rooms', 0, r) else redis.call('SADD', G .. ARGV[i], r) end
end
if lease ~= '' then
	redis.call('ZADD', G .. 'lease:' .. lease, ms, r)
	redis.call('SADD', G .. 'leaserefs', lease)
end
return 1
`)

// ARGV: prefix, grace in milliseconds, then pairs of a room ref and the
// index to remove it from, or "all" for every index. Leaves a room whose
// last addition is within grace where it is.
var forgetScript = globalScript(`
local cutoff = nowms() - tonumber(ARGV[2])
for i = 3, #ARGV - 1, 2 do
	local r, which = ARGV[i], ARGV[i + 1]
	local f = redis.call('ZSCORE', G .. 'fresh', r)
	if not f or tonumber(f) <= cutoff then
		if which == 'all' then
			redis.call('ZREM', G .. 'rooms', r)
			redis.call('ZREM', G .. 'fresh', r)
			for _, s in ipairs({'retention', 'emptyttl', 'deduped', 'lonely'}) do redis.call('SREM', G .. s, r) end
		else
			redis.call('SREM', G .. which, r)
		end
	end
end
return 1
`)

// ARGV: prefix, ns, name, private, max, read-only, history max, retention,
// now, epoch, delete-when-empty.
var createRoomScript = roomScript(`
local ns, name = ARGV[2], ARGV[3]
local room = keys(ns, name)
if redis.call('EXISTS', room) == 1 then return redis.error_reply('EXISTS') end
redis.call('HSET', room, 'ns', ns, 'name', name, 'priv', ARGV[4], 'max', ARGV[5], 'ro', ARGV[6],
	'hmax', ARGV[7], 'ret', ARGV[8], 'last', 0, 'count', 0, 'sess', 0, 'ct', ARGV[9], 'ut', ARGV[9],
	'epoch', ARGV[10], 'ettl', ARGV[11], 'esince', '0')
return 1
`)

// ARGV: prefix, ns, name, then private, max, read-only, history max,
// retention ("" leaves each as it is), now, then delete-when-empty ("" too).
var updateRoomScript = roomScript(`
local ns, name = ARGV[2], ARGV[3]
local room = keys(ns, name)
if redis.call('EXISTS', room) == 0 then return redis.error_reply('NOTFOUND') end
local fields = {'priv', 'max', 'ro', 'hmax', 'ret'}
for i, f in ipairs(fields) do
	if ARGV[3 + i] ~= '' then redis.call('HSET', room, f, ARGV[3 + i]) end
end
redis.call('HSET', room, 'ut', ARGV[9])
if ARGV[10] ~= '' then redis.call('HSET', room, 'ettl', ARGV[10]) end
return redis.call('HGETALL', room)
`)

// ARGV: prefix, ns, name.
var deleteRoomScript = roomScript(`
local ns, name = ARGV[2], ARGV[3]
if redis.call('EXISTS', (keys(ns, name))) == 0 then return redis.error_reply('NOTFOUND') end
deleteRoom(ns, name)
return 1
`)

// ARGV: prefix, ns, name, user, session, lease, ephemeral, admit, now.
// Returns the room, the membership record, its session count and whether
// the user joined.
var joinScript = roomScript(`
local ns, name, user, session, lease = ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6]
local room, mem, memz, _, _, sess, lonely = keys(ns, name)
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
	if ARGV[7] == '1' and session == '' then redis.call('SADD', lonely, user) end
end
local sk = sess .. user
if session ~= '' then
	local old = redis.call('HGET', sk, session)
	local sref = ref(user, session)
	if not old then
		redis.call('HINCRBY', room, 'sess', 1)
	elseif old ~= '' and old ~= lease then
		redis.call('SREM', leaseKey(ns, name, old), sref)
	end
	redis.call('HSET', sk, session, lease)
	if lease ~= '' then redis.call('SADD', leaseKey(ns, name, lease), sref) end
end
return {redis.call('HGETALL', room), m, redis.call('HLEN', sk), joined}
`)

// ARGV: prefix, ns, name, user. Returns 1 if the user was a member.
var removeMemberScript = roomScript(`
local ns, name = ARGV[2], ARGV[3]
if redis.call('EXISTS', (keys(ns, name))) == 0 then return redis.error_reply('NOTFOUND') end
if removeMember(ns, name, ARGV[4]) then return 1 end
return 0
`)

// ARGV: prefix, ns, name, user, session, indexed. Returns the membership
// record and its session count. Unless indexed is "1", refuses with
// UNINDEXED, changing nothing, to leave an ephemeral member without a
// session in a room that may be missing from the lonely index.
var endSessionScript = roomScript(`
local ns, name, user, session = ARGV[2], ARGV[3], ARGV[4], ARGV[5]
local room, mem, _, _, _, sess, lonely = keys(ns, name)
if redis.call('EXISTS', room) == 0 then return redis.error_reply('NOTFOUND') end
local m = redis.call('HGET', mem, user)
if not m then return redis.error_reply('NOTFOUND') end
local sk = sess .. user
if ARGV[6] ~= '1' and ephemeral(m) and redis.call('EXISTS', lonely) == 0
	and redis.call('HEXISTS', sk, session) == 1 and redis.call('HLEN', sk) == 1 then
	return redis.error_reply('UNINDEXED')
end
endSession(ns, name, user, session)
return {m, redis.call('HLEN', sk)}
`)

// ARGV: prefix, ns, name, after ("" for the first), limit. Returns user,
// membership record, session count for each member.
var listMembersScript = roomScript(`
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
// dedupe-since, origin, indexed. Returns {1, offset} for a new message, {0,
// offset, created, message or nil} for a duplicate. Unless indexed is "1",
// refuses with UNINDEXED, changing nothing, to keep the first
// deduplication key of a room that may be missing from the deduped index.
//
// A message is the member of its room's sorted set, scored by its offset:
// "offset:created(20)" then sender, session and client id, each as
// "length:text", then the payload. A new one is also published on the
// room's shard channel, in the same step, for the stores that watch the
// room.
var publishScript = roomScript(`
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
	elseif ARGV[11] ~= '1' and redis.call('EXISTS', dedupe) == 0 then
		return redis.error_reply('UNINDEXED')
	end
end
local off = redis.call('HINCRBY', room, 'last', 1)
local session, payload = ARGV[7], ARGV[5]
local enc = off .. ':' .. now .. #sender .. ':' .. sender .. #session .. ':' .. session .. #cid .. ':' .. cid .. payload
redis.call('ZADD', msgs, off, enc)
redis.call('SPUBLISH', P .. 'ch' .. tag(ns, name), 'm' .. ARGV[10] .. '\0' .. enc)
if cid ~= '' then redis.call('HSET', dedupe, dkey, off .. ' ' .. now) end
local hmax = tonumber(r[2])
if hmax > 0 and off > hmax then redis.call('ZREMRANGEBYSCORE', msgs, '-inf', off - hmax) end
return {1, off}
`)

// ARGV: prefix, ns, name, mode ("latest", "before" or "after"), offset,
// limit. Returns the messages, newest first unless mode is "after".
var historyScript = roomScript(`
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
var purgeScript = roomScript(`
local ns, name = ARGV[2], ARGV[3]
local room, _, _, msgs = keys(ns, name)
if redis.call('EXISTS', room) == 0 then return redis.error_reply('NOTFOUND') end
if ARGV[4] == '0' then return redis.call('ZREMRANGEBYSCORE', msgs, '-inf', '+inf') end
return redis.call('ZREMRANGEBYSCORE', msgs, '-inf', '(' .. ARGV[4])
`)

// ARGV: prefix, lease, expiry. Returns 1 if the lease was not kept before.
var keepLeaseScript = globalScript(`
local old = redis.call('HGET', G .. 'leases', ARGV[2])
redis.call('HSET', G .. 'leases', ARGV[2], ARGV[3])
if old then return 0 end
return 1
`)

// ARGV: prefix, now. The first step of ExpireLeases: forgets the leases not
// kept until now, marks them expiring (so that no session joins under them
// until the last step), and returns them, each with the rooms that may hold
// its sessions, then the rooms that may have ephemeral members without a
// session. A lease still marked expiring was not finished by an earlier
// call, and is returned again.
var expiredLeasesScript = globalScript(`
local now, leases, expiring = ARGV[2], G .. 'leases', G .. 'expiring'
local out, seen = {}, {}
local function take(l)
	if seen[l] then return end
	seen[l] = true
	local exp = redis.call('HGET', leases, l)
	if not exp or exp < now then
		redis.call('HDEL', leases, l)
	elseif redis.call('SISMEMBER', expiring, l) == 0 then
		return
	end
	redis.call('SADD', expiring, l)
	table.insert(out, {l, redis.call('ZRANGE', G .. 'lease:' .. l, 0, -1)})
end
for _, l in ipairs(redis.call('SMEMBERS', G .. 'leaserefs')) do take(l) end
for _, l in ipairs(redis.call('SMEMBERS', expiring)) do take(l) end
local all = redis.call('HGETALL', leases)
for i = 1, #all, 2 do
	if all[i + 1] < now then redis.call('HDEL', leases, all[i]) end
end
return {out, redis.call('SMEMBERS', G .. 'lonely')}
`)

// ARGV: prefix, ns, name, lease or "". The room's step of ExpireLeases:
// ends the room's sessions held under lease, then removes the ephemeral
// members left without a session, and returns them.
var expireRoomScript = roomScript(`
local ns, name, lease = ARGV[2], ARGV[3], ARGV[4]
local _, mem, _, _, _, sess, lonely = keys(ns, name)
if lease ~= '' then
	local lk = leaseKey(ns, name, lease)
	for _, e in ipairs(redis.call('SMEMBERS', lk)) do
		local f = split(e)
		if redis.call('HGET', sess .. f[1], f[2]) == lease then endSession(ns, name, f[1], f[2]) end
	end
	redis.call('DEL', lk)
end
local left = {}
for _, u in ipairs(redis.call('SMEMBERS', lonely)) do
	local m = redis.call('HGET', mem, u)
	if m and ephemeral(m) and redis.call('HLEN', sess .. u) == 0 and removeMember(ns, name, u) then
		table.insert(left, u)
	end
end
redis.call('DEL', lonely)
return left
`)

// ARGV: prefix, grace in milliseconds, then leases. The last step of
// ExpireLeases, once the rooms' steps are done: removes from each lease's
// rooms those added before grace, the lease once it has none, and the
// leases' expiring marks.
var settleLeasesScript = globalScript(`
local cutoff = nowms() - tonumber(ARGV[2])
for i = 3, #ARGV do
	local l = ARGV[i]
	local k = G .. 'lease:' .. l
	redis.call('ZREMRANGEBYSCORE', k, '-inf', cutoff)
	if redis.call('EXISTS', k) == 0 then redis.call('SREM', G .. 'leaserefs', l) end
	redis.call('SREM', G .. 'expiring', l)
end
return 1
`)

// ARGV: prefix, ns, name, now, cutoff: now less the room's
// delete-when-empty. Notes an empty room, clears the note of one with
// members, or deletes one noted empty at or before cutoff; returns 1 if it
// deleted the room, -1 if the room is missing or not deleted when empty.
var emptyRoomScript = roomScript(`
local ns, name = ARGV[2], ARGV[3]
local room = keys(ns, name)
local r = redis.call('HMGET', room, 'count', 'esince', 'ettl')
if not r[1] or r[3] == '0' then return -1 end
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
var sweepMessagesScript = roomScript(`
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
// accepted before before; returns 1 if the room has none left.
var sweepDedupeScript = roomScript(`
local ns, name = ARGV[2], ARGV[3]
local _, _, _, _, dedupe = keys(ns, name)
local all = redis.call('HGETALL', dedupe)
for i = 1, #all, 2 do
	if string.match(all[i + 1], ' (%d+)$') < ARGV[4] then redis.call('HDEL', dedupe, all[i]) end
end
if redis.call('EXISTS', dedupe) == 0 then return 1 end
return 0
`)

// ARGV: prefix, saved-session key, now. Returns the session's data and
// deletes it; nil if there was none or it expired at now.
var takeSessionScript = globalScript(`
local v = redis.call('GET', ARGV[2])
if not v then return false end
redis.call('DEL', ARGV[2])
redis.call('ZREM', G .. 'savedx', ARGV[2])
if string.sub(v, 1, 20) <= ARGV[3] then return false end
return string.sub(v, 22)
`)

// ARGV: prefix, now, then candidate saved-session keys. Deletes those
// expired at now.
var sweepSessionsScript = globalScript(`
for i = 3, #ARGV do
	local v = redis.call('GET', ARGV[i])
	if not v or string.sub(v, 1, 20) <= ARGV[2] then
		redis.call('DEL', ARGV[i])
		redis.call('ZREM', G .. 'savedx', ARGV[i])
	end
end
return 1
`)
