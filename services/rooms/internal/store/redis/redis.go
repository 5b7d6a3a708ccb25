// Package redis is a store.Store on Redis, for rooms services that share
// their rooms through one Redis deployment (one server, one followed by
// Sentinels, or a Cluster) instead of keeping them in a local SQLite file.
// Every change to a room is one Lua script, atomic on the server and one
// round trip (scripts.go says how the deployment-wide indexes keep up).
//
// Keys, under a prefix P ("parley:" by default), with T = "{ns\0name}" the
// hash tag of a room, so that all of a room's keys share one Cluster slot,
// and {g} the hash tag of the deployment-wide keys:
//
//	P room T            hash: the room's settings and counters (last offset, members, sessions)
//	P mem T             hash: user → join time (20 digits) and "1" if ephemeral
//	P memz T            sorted set of user ids, for ordered pages of members
//	P sess T <user>     hash: session id → lease ("" for none)
//	P lses T <lease>    set of "user\0session" held under the lease
//	P lonely T          set of ephemeral members that lost their last session
//	P msgs T            sorted set of messages scored by offset
//	P dedupe T          hash: sender\0client id → "offset created"
//	P ch T              shard channel: the room's new messages and announced events (see Follow)
//	P{g}rooms           sorted set of "ns\0name", for ordered pages of rooms
//	P{g}fresh           sorted set of "ns\0name" by when an index last added the room (ms)
//	P{g}retention       set of rooms with a history age limit, for Sweep
//	P{g}emptyttl        set of rooms deleted when empty, for DeleteEmptyRooms
//	P{g}deduped         set of rooms with deduplication keys, for Sweep
//	P{g}lonely          set of rooms that may have ephemeral members without a session
//	P{g}leases          hash: lease → expiry
//	P{g}leaserefs       set of leases that sessions were joined under
//	P{g}lease:<lease>   sorted set of the rooms joined under the lease, by when (ms)
//	P{g}expiring        set of leases whose sessions ExpireLeases is ending
//	P{g}saved:<ns\0id>  string: a saved session, "expiry data"
//	P{g}savedx          sorted set of saved-session keys by expiry in milliseconds
//	P{g}upkeep:<job>    string: the replica that runs a periodic job this period (see Claim)
package redis

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/maphash"
	"io"
	"net"
	neturl "net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/parleyhq/parley/services/rooms/internal/store"
)

// DefaultPrefix starts every key the store writes.
const DefaultPrefix = "parley:"

// Options configure a Store.
type Options struct {
	// Prefix starts every key; DefaultPrefix when empty. Two stores with
	// different prefixes share a Redis without seeing each other.
	Prefix string
	// Committed is told of every message Publish stores (see store.Committed).
	Committed store.Committed
	// Origin names this store among those sharing the Redis, so that Follow
	// passes on only what the others publish; a random one when empty.
	Origin string
}

// Store is a store.Store on Redis.
type Store struct {
	c         goredis.UniversalClient
	p         string
	origin    string
	committed store.Committed
	grace     time.Duration // indexGrace, shorter in tests

	// Publishes to one room hold its stripe from the script's call until
	// Committed has been told, so that Committed sees each room's messages
	// in offset order even when Publish is called concurrently.
	seed    maphash.Seed
	stripes [256]sync.Mutex
}

var _ store.Store = (*Store)(nil)

// Open connects to the Redis server at url (redis://[user:password@]host:port/db,
// rediss:// for TLS) and returns a Store on it once Redis answers.
//   - A URL with a master_name parameter names a Sentinel instead (more with
//     addr parameters), and the store follows the primary the Sentinels name.
//   - A URL with addr parameters, or one whose server says it is a Cluster
//     node, names a Redis Cluster, whose nodes the store learns from those
//     it is given.
//
// The client never sends a command again by itself after a failure: a
// script whose answer was lost may have run, and a publish without a client
// message id run twice would be stored twice. The caller gets the error,
// as the store's contract says, and decides. (A Cluster node's MOVED or ASK
// answer is followed: the command did not run.)
func Open(ctx context.Context, url string, opts Options) (*Store, error) {
	p := opts.Prefix
	if p == "" {
		p = DefaultPrefix
	}
	if strings.ContainsAny(p, "{}") {
		// A brace in the prefix would change the keys' hash tags.
		return nil, fmt.Errorf("open redis store: the prefix %q has a brace", p)
	}
	c, err := connect(ctx, url)
	if err != nil {
		return nil, fmt.Errorf("open redis store: %w", err)
	}
	origin := opts.Origin
	if origin == "" {
		origin = newEpoch()
	}
	return &Store{c: c, p: p, origin: origin, committed: opts.Committed, grace: indexGrace, seed: maphash.MakeSeed()}, nil
}

func connect(ctx context.Context, url string) (goredis.UniversalClient, error) {
	// url.Parse's errors quote the URL, password and all.
	u, err := neturl.Parse(url)
	if err != nil {
		return nil, errors.New("the URL does not parse")
	}
	q := u.Query()
	var c goredis.UniversalClient
	switch {
	case q.Has("master_name"):
		o, err := goredis.ParseFailoverURL(url)
		if err != nil {
			return nil, err
		}
		o.MaxRetries = -1
		c = goredis.NewFailoverClient(o)
	case q.Has("addr"):
		return connectCluster(ctx, url)
	default:
		o, err := goredis.ParseURL(url)
		if err != nil {
			return nil, err
		}
		o.MaxRetries = -1
		c = goredis.NewClient(o)
	}
	info, err := c.Info(ctx, "cluster").Result()
	if err != nil {
		c.Close()
		return nil, err
	}
	if strings.Contains(info, "cluster_enabled:1") {
		c.Close()
		return connectCluster(ctx, url)
	}
	return c, nil
}

func connectCluster(ctx context.Context, url string) (goredis.UniversalClient, error) {
	o, err := goredis.ParseClusterURL(url)
	if err != nil {
		return nil, err
	}
	o.MaxRetries = -1
	c := goredis.NewClusterClient(o)
	guard(c)
	if err := c.Ping(ctx).Err(); err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

// Close implements store.Store.
func (s *Store) Close() error { return s.c.Close() }

// unavailable marks the errors of a Redis that cannot be reached or is not
// ready yet, or of a Cluster that is down until a node is back, as
// store.ErrUnavailable.
func unavailable(err error) error {
	var netErr net.Error
	switch {
	case err == nil, errors.Is(err, store.ErrUnavailable):
		return err
	case errors.As(err, &netErr), errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF),
		errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, syscall.ECONNRESET), errors.Is(err, goredis.ErrPoolTimeout),
		goredis.HasErrorPrefix(err, "LOADING"), goredis.HasErrorPrefix(err, "MASTERDOWN"), goredis.HasErrorPrefix(err, "TRYAGAIN"),
		goredis.HasErrorPrefix(err, "CLUSTERDOWN"):
		return fmt.Errorf("%w: %w", store.ErrUnavailable, err)
	}
	return err
}

// room runs one of a room's scripts, with the prefix, namespace and name as
// its first arguments, on the node that holds the room.
func (s *Store) room(ctx context.Context, sc *goredis.Script, k store.RoomKey, args ...any) (any, error) {
	return s.run(ctx, sc, s.key("room", k), append([]any{s.p, k.Namespace, k.Name}, args...))
}

// global runs one of the scripts of the deployment-wide keys, with the
// prefix as its first argument.
func (s *Store) global(ctx context.Context, sc *goredis.Script, args ...any) (any, error) {
	return s.run(ctx, sc, s.g("rooms"), append([]any{s.p}, args...))
}

// run runs a script and maps the scripts' error replies to the store's
// errors.
func (s *Store) run(ctx context.Context, sc *goredis.Script, route string, args []any) (any, error) {
	v, err := sc.Run(ctx, s.c, []string{route}, args...).Result()
	if errors.Is(err, goredis.Nil) {
		return nil, nil
	}
	if err := unavailable(err); err != nil {
		switch strings.TrimPrefix(err.Error(), "ERR ") {
		case "NOTFOUND":
			return nil, store.ErrNotFound
		case "EXISTS":
			return nil, store.ErrAlreadyExists
		case "FULL":
			return nil, store.ErrRoomFull
		case "PRIVATE":
			return nil, store.ErrPrivate
		case "NOTMEMBER":
			return nil, store.ErrNotMember
		case "READONLY":
			return nil, store.ErrReadOnly
		case "UNINDEXED":
			return nil, errUnindexed
		}
		return nil, err
	}
	return v, nil
}

// errUnindexed is a room script's refusal to make a change that needs the
// room in an index first.
var errUnindexed = errors.New("room not indexed")

// indexGrace is how long an index keeps a room after its last addition,
// whatever removals say, so that a removal never undoes an addition whose
// room change has yet to land: far longer than any request takes.
const indexGrace = time.Minute

// index adds the room to indexes, and with a lease to the lease's rooms,
// before the room's change that needs it.
func (s *Store) index(ctx context.Context, k store.RoomKey, lease string, indexes ...string) error {
	args := []any{roomRef(k), lease}
	for _, ix := range indexes {
		args = append(args, ix)
	}
	_, err := s.global(ctx, indexScript, args...)
	return err
}

// forget removes rooms from indexes ("all" for every one) after the rooms'
// changes that end their need; pairs are a room ref and an index.
func (s *Store) forget(ctx context.Context, pairs ...string) error {
	if len(pairs) == 0 {
		return nil
	}
	args := []any{s.grace.Milliseconds()}
	for _, p := range pairs {
		args = append(args, p)
	}
	_, err := s.global(ctx, forgetScript, args...)
	return err
}

// stamp writes t as 20 digits of Unix nanoseconds, so that stamps compare as
// strings as their instants do. Instants before 1970 are not kept apart.
func stamp(t time.Time) string {
	return fmt.Sprintf("%020d", max(t.UnixNano(), 0))
}

func unstamp(s string) (time.Time, error) {
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return time.Time{}, fmt.Errorf("bad time %q: %w", s, err)
	}
	return time.Unix(0, n).UTC(), nil
}

func flag(b bool) string {
	if b {
		return "1"
	}
	return "0"
}

func newEpoch() string {
	b := make([]byte, 8)
	rand.Read(b)
	return hex.EncodeToString(b)
}

func roomRef(k store.RoomKey) string { return k.Namespace + "\x00" + k.Name }

func splitRef(s string) []string { return strings.Split(s, "\x00") }

// roomHash reads a room from the scripts' HGETALL reply.
func roomHash(v any) (store.Room, error) {
	f, ok := v.([]any)
	if !ok || len(f)%2 != 0 {
		return store.Room{}, fmt.Errorf("bad room reply %T", v)
	}
	m := make(map[string]string, len(f)/2)
	for i := 0; i < len(f); i += 2 {
		k, _ := f[i].(string)
		val, _ := f[i+1].(string)
		m[k] = val
	}
	return parseRoom(m)
}

func parseRoom(m map[string]string) (store.Room, error) {
	if len(m) == 0 {
		return store.Room{}, store.ErrNotFound
	}
	var (
		r    store.Room
		errs []error
	)
	num := func(k string) uint64 {
		n, err := strconv.ParseUint(m[k], 10, 64)
		errs = append(errs, err)
		return n
	}
	dur := func(k string) time.Duration {
		n, err := strconv.ParseInt(m[k], 10, 64)
		errs = append(errs, err)
		return time.Duration(n)
	}
	at := func(k string) time.Time {
		t, err := unstamp(m[k])
		errs = append(errs, err)
		return t
	}
	r.Namespace, r.Name, r.Epoch = m["ns"], m["name"], m["epoch"]
	r.Options = store.RoomOptions{
		Private:            m["priv"] == "1",
		MaxMembers:         uint32(num("max")),
		ReadOnly:           m["ro"] == "1",
		HistoryMaxMessages: uint32(num("hmax")),
		HistoryRetention:   dur("ret"),
		DeleteWhenEmpty:    dur("ettl"),
	}
	r.LastOffset = num("last")
	r.MemberCount = uint32(num("count"))
	r.CreateTime, r.UpdateTime = at("ct"), at("ut")
	if err := errors.Join(errs...); err != nil {
		return store.Room{}, fmt.Errorf("bad room %s/%s: %w", r.Namespace, r.Name, err)
	}
	return r, nil
}

// member reads a membership record: join time then "1" if ephemeral.
func member(user string, rec any, sessions any) (store.Member, error) {
	s, _ := rec.(string)
	if len(s) < 20 {
		return store.Member{}, fmt.Errorf("bad member record %q of %q", s, user)
	}
	t, err := unstamp(s[:20])
	if err != nil {
		return store.Member{}, err
	}
	n, _ := sessions.(int64)
	return store.Member{UserID: user, JoinTime: t, Sessions: uint32(n)}, nil
}

// CreateRoom implements store.Store.
func (s *Store) CreateRoom(ctx context.Context, key store.RoomKey, opts store.RoomOptions, now time.Time) (store.Room, error) {
	epoch := newEpoch()
	indexes := []string{"rooms"}
	if opts.HistoryRetention != 0 {
		indexes = append(indexes, "retention")
	}
	if opts.DeleteWhenEmpty != 0 {
		indexes = append(indexes, "emptyttl")
	}
	err := s.index(ctx, key, "", indexes...)
	if err == nil {
		_, err = s.room(ctx, createRoomScript, key, flag(opts.Private), opts.MaxMembers,
			flag(opts.ReadOnly), opts.HistoryMaxMessages, int64(opts.HistoryRetention), stamp(now), epoch,
			int64(opts.DeleteWhenEmpty))
	}
	if err != nil {
		return store.Room{}, fmt.Errorf("create room %s/%s: %w", key.Namespace, key.Name, err)
	}
	at, _ := unstamp(stamp(now))
	return store.Room{RoomKey: key, Options: opts, CreateTime: at, UpdateTime: at, Epoch: epoch}, nil
}

// key is the name of one of a room's keys (kind "room", "msgs") or of its
// channel ("ch"), as the scripts' keys function builds it.
func (s *Store) key(kind string, k store.RoomKey) string {
	return s.p + kind + "{" + k.Namespace + "\x00" + k.Name + "}"
}

// g is the name of one of the deployment-wide keys, as the scripts' G
// builds it.
func (s *Store) g(name string) string { return s.p + "{g}" + name }

// GetRoom implements store.Store.
func (s *Store) GetRoom(ctx context.Context, key store.RoomKey) (store.Room, error) {
	m, err := s.c.HGetAll(ctx, s.key("room", key)).Result()
	err = unavailable(err)
	if err == nil {
		var r store.Room
		if r, err = parseRoom(m); err == nil {
			return r, nil
		}
	}
	return store.Room{}, fmt.Errorf("get room %s/%s: %w", key.Namespace, key.Name, err)
}

// ListRooms implements store.Store.
func (s *Store) ListRooms(ctx context.Context, q store.ListRoomsQuery) ([]store.Room, error) {
	if q.Limit <= 0 {
		return nil, nil
	}
	lo, hi := "-", "+"
	if q.Namespace != "" {
		lo, hi = "["+q.Namespace+"\x00"+q.Prefix, "("+q.Namespace+"\x01"
	}
	if q.After != (store.RoomKey{}) {
		if after := roomRef(q.After); lo == "-" || after >= lo[1:] {
			lo = "(" + after
		}
	}
	var rooms []store.Room
	pageSize := max(q.Limit, 64)
	for len(rooms) < q.Limit {
		page, err := s.c.ZRangeArgs(ctx, goredis.ZRangeArgs{
			Key: s.g("rooms"), Start: lo, Stop: hi, ByLex: true, Count: int64(pageSize),
		}).Result()
		if err != nil {
			return nil, fmt.Errorf("list rooms: %w", unavailable(err))
		}
		var keys []store.RoomKey
		for _, ref := range page {
			f := splitRef(ref)
			if len(f) != 2 {
				return nil, fmt.Errorf("list rooms: bad index entry %q", ref)
			}
			if strings.HasPrefix(f[1], q.Prefix) {
				keys = append(keys, store.RoomKey{Namespace: f[0], Name: f[1]})
			}
		}
		got, err := s.rooms(ctx, keys)
		if err != nil {
			return nil, fmt.Errorf("list rooms: %w", unavailable(err))
		}
		rooms = append(rooms, got...)
		if len(page) < pageSize {
			break
		}
		lo = "(" + page[len(page)-1]
	}
	return rooms[:min(len(rooms), q.Limit)], nil
}

// rooms reads the rooms of keys that still exist.
func (s *Store) rooms(ctx context.Context, keys []store.RoomKey) ([]store.Room, error) {
	if len(keys) == 0 {
		return nil, nil
	}
	pipe := s.c.Pipeline()
	cmds := make([]*goredis.MapStringStringCmd, len(keys))
	for i, k := range keys {
		cmds[i] = pipe.HGetAll(ctx, s.key("room", k))
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return nil, err
	}
	rooms := make([]store.Room, 0, len(keys))
	var gone []string
	for i, c := range cmds {
		r, err := parseRoom(c.Val())
		if errors.Is(err, store.ErrNotFound) {
			gone = append(gone, roomRef(keys[i]), "all")
			continue
		}
		if err != nil {
			return nil, err
		}
		rooms = append(rooms, r)
	}
	// What the index names wrongly goes once nothing can be adding it: a
	// failure here leaves it for the next reader.
	_ = s.forget(ctx, gone...)
	return rooms, nil
}

// UpdateRoom implements store.Store.
func (s *Store) UpdateRoom(ctx context.Context, key store.RoomKey, patch store.RoomOptionsPatch, now time.Time) (store.Room, error) {
	opt := func(set bool, v string) string {
		if !set {
			return ""
		}
		return v
	}
	var retention, emptyTTL string
	if patch.HistoryRetention != nil {
		retention = strconv.FormatInt(int64(*patch.HistoryRetention), 10)
	}
	if patch.DeleteWhenEmpty != nil {
		emptyTTL = strconv.FormatInt(int64(*patch.DeleteWhenEmpty), 10)
	}
	var indexes []string
	if deref(patch.HistoryRetention) != 0 {
		indexes = append(indexes, "retention")
	}
	if deref(patch.DeleteWhenEmpty) != 0 {
		indexes = append(indexes, "emptyttl")
	}
	var err error
	if len(indexes) > 0 {
		err = s.index(ctx, key, "", indexes...)
	}
	var v any
	if err == nil {
		v, err = s.room(ctx, updateRoomScript, key,
			opt(patch.Private != nil, flag(patch.Private != nil && *patch.Private)),
			opt(patch.MaxMembers != nil, strconv.FormatUint(uint64(deref(patch.MaxMembers)), 10)),
			opt(patch.ReadOnly != nil, flag(patch.ReadOnly != nil && *patch.ReadOnly)),
			opt(patch.HistoryMaxMessages != nil, strconv.FormatUint(uint64(deref(patch.HistoryMaxMessages)), 10)),
			retention, stamp(now), emptyTTL)
	}
	var r store.Room
	if err == nil {
		r, err = roomHash(v)
	}
	if err != nil {
		return store.Room{}, fmt.Errorf("update room %s/%s: %w", key.Namespace, key.Name, err)
	}
	return r, nil
}

func deref[T any](p *T) T {
	var zero T
	if p == nil {
		return zero
	}
	return *p
}

// DeleteRoom implements store.Store.
func (s *Store) DeleteRoom(ctx context.Context, key store.RoomKey) error {
	_, err := s.room(ctx, deleteRoomScript, key)
	if err == nil {
		err = s.forget(ctx, roomRef(key), "all")
	}
	if err != nil {
		return fmt.Errorf("delete room %s/%s: %w", key.Namespace, key.Name, err)
	}
	return nil
}

// Join implements store.Store.
func (s *Store) Join(ctx context.Context, p store.JoinParams) (store.JoinResult, error) {
	var err error
	switch {
	case p.SessionID != "" && p.Lease != "":
		err = s.index(ctx, p.Room, p.Lease)
	case p.SessionID == "" && p.Ephemeral:
		err = s.index(ctx, p.Room, "", "lonely")
	}
	var v any
	if err == nil {
		v, err = s.room(ctx, joinScript, p.Room, p.UserID, p.SessionID, p.Lease, flag(p.Ephemeral), flag(p.Admit), stamp(p.Now))
	}
	var res store.JoinResult
	if err == nil {
		err = func() error {
			f, ok := v.([]any)
			if !ok || len(f) != 4 {
				return fmt.Errorf("bad join reply %v", v)
			}
			var err error
			if res.Room, err = roomHash(f[0]); err != nil {
				return err
			}
			if res.Member, err = member(p.UserID, f[1], f[2]); err != nil {
				return err
			}
			res.Joined = f[3] == int64(1)
			return nil
		}()
	}
	if err != nil {
		return store.JoinResult{}, fmt.Errorf("join %s/%s as %q: %w", p.Room.Namespace, p.Room.Name, p.UserID, err)
	}
	return res, nil
}

// RemoveMember implements store.Store.
func (s *Store) RemoveMember(ctx context.Context, key store.RoomKey, userID string) (bool, error) {
	v, err := s.room(ctx, removeMemberScript, key, userID)
	if err != nil {
		return false, fmt.Errorf("remove member %q from %s/%s: %w", userID, key.Namespace, key.Name, err)
	}
	return v == int64(1), nil
}

// EndSession implements store.Store.
func (s *Store) EndSession(ctx context.Context, key store.RoomKey, userID, sessionID string) (store.Member, error) {
	v, err := s.room(ctx, endSessionScript, key, userID, sessionID, "0")
	if errors.Is(err, errUnindexed) {
		if err = s.index(ctx, key, "", "lonely"); err == nil {
			v, err = s.room(ctx, endSessionScript, key, userID, sessionID, "1")
		}
	}
	var m store.Member
	if err == nil {
		if f, ok := v.([]any); ok && len(f) == 2 {
			m, err = member(userID, f[0], f[1])
		} else {
			err = fmt.Errorf("bad reply %v", v)
		}
	}
	if err != nil {
		return store.Member{}, fmt.Errorf("end session %q of %q in %s/%s: %w", sessionID, userID, key.Namespace, key.Name, err)
	}
	return m, nil
}

// ListMembers implements store.Store.
func (s *Store) ListMembers(ctx context.Context, key store.RoomKey, afterUser string, limit int) ([]store.Member, error) {
	v, err := s.room(ctx, listMembersScript, key, afterUser, max(limit, 0))
	var members []store.Member
	if err == nil {
		f, _ := v.([]any)
		for i := 0; i+2 < len(f) && err == nil; i += 3 {
			user, _ := f[i].(string)
			var m store.Member
			if m, err = member(user, f[i+1], f[i+2]); err == nil {
				members = append(members, m)
			}
		}
	}
	if err != nil {
		return nil, fmt.Errorf("list members of %s/%s: %w", key.Namespace, key.Name, err)
	}
	return members, nil
}

// Publish implements store.Store.
func (s *Store) Publish(ctx context.Context, p store.PublishParams) (store.Message, bool, error) {
	mu := &s.stripes[maphash.String(s.seed, roomRef(p.Room))%uint64(len(s.stripes))]
	mu.Lock()
	defer mu.Unlock()
	publish := func(indexed string) (any, error) {
		return s.room(ctx, publishScript, p.Room, p.Sender, p.Payload,
			p.ClientMessageID, p.SessionID, stamp(p.Now), stamp(p.DedupeSince), s.origin, indexed)
	}
	v, err := publish("0")
	if errors.Is(err, errUnindexed) {
		if err = s.index(ctx, p.Room, "", "deduped"); err == nil {
			v, err = publish("1")
		}
	}
	m, dup, err := s.published(p, v, err)
	if err != nil {
		return store.Message{}, false, fmt.Errorf("publish %s/%s: %w", p.Room.Namespace, p.Room.Name, err)
	}
	if !dup && s.committed != nil {
		s.committed([]store.Message{m})
	}
	return m, dup, nil
}

func (s *Store) published(p store.PublishParams, v any, err error) (store.Message, bool, error) {
	if err != nil {
		return store.Message{}, false, err
	}
	f, ok := v.([]any)
	if !ok || len(f) < 2 {
		return store.Message{}, false, fmt.Errorf("bad publish reply %v", v)
	}
	off, _ := f[1].(int64)
	m := store.Message{
		Room: p.Room, Offset: uint64(off), Sender: p.Sender, Payload: p.Payload,
		ClientMessageID: p.ClientMessageID, SessionID: p.SessionID,
	}
	if f[0] == int64(1) {
		m.CreateTime, _ = unstamp(stamp(p.Now))
		return m, false, nil
	}
	// A duplicate: the first message if history still has it, else what
	// the deduplication key kept of it.
	if len(f) == 4 {
		if enc, ok := f[3].(string); ok {
			m, err := decodeMessage(p.Room, enc)
			return m, true, err
		}
	}
	created, _ := f[2].(string)
	m.CreateTime, err = unstamp(created)
	return m, true, err
}

// decodeMessage reads a message as publishScript stores it.
func decodeMessage(room store.RoomKey, enc string) (store.Message, error) {
	bad := fmt.Errorf("bad message %.40q", enc)
	m := store.Message{Room: room}
	i := strings.IndexByte(enc, ':')
	if i < 0 || len(enc) < i+21 {
		return m, bad
	}
	off, err := strconv.ParseUint(enc[:i], 10, 64)
	if err != nil {
		return m, bad
	}
	m.Offset = off
	if m.CreateTime, err = unstamp(enc[i+1 : i+21]); err != nil {
		return m, bad
	}
	rest := enc[i+21:]
	for _, dst := range []*string{&m.Sender, &m.SessionID, &m.ClientMessageID} {
		j := strings.IndexByte(rest, ':')
		if j < 0 {
			return m, bad
		}
		n, err := strconv.Atoi(rest[:j])
		if err != nil || n < 0 || len(rest) < j+1+n {
			return m, bad
		}
		*dst, rest = rest[j+1:j+1+n], rest[j+1+n:]
	}
	m.Payload = rest
	return m, nil
}

// History implements store.Store.
func (s *Store) History(ctx context.Context, q store.HistoryQuery) ([]store.Message, error) {
	var mode string
	switch q.Mode {
	case store.HistoryLatest:
		mode = "latest"
	case store.HistoryBefore:
		mode = "before"
	case store.HistoryAfter:
		mode = "after"
	default:
		return nil, fmt.Errorf("history of %s/%s: unknown mode %d", q.Room.Namespace, q.Room.Name, q.Mode)
	}
	v, err := s.room(ctx, historyScript, q.Room, mode, strconv.FormatUint(q.Offset, 10), max(q.Limit, 0))
	var msgs []store.Message
	if err == nil {
		f, _ := v.([]any)
		msgs = make([]store.Message, 0, len(f))
		for _, e := range f {
			enc, _ := e.(string)
			var m store.Message
			if m, err = decodeMessage(q.Room, enc); err != nil {
				break
			}
			msgs = append(msgs, m)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("history of %s/%s: %w", q.Room.Namespace, q.Room.Name, err)
	}
	if mode != "after" {
		slices.Reverse(msgs) // read newest first to apply the limit at the right end
	}
	return msgs, nil
}

// Purge implements store.Store.
func (s *Store) Purge(ctx context.Context, key store.RoomKey, before uint64) (uint64, error) {
	v, err := s.room(ctx, purgeScript, key, strconv.FormatUint(before, 10))
	if err != nil {
		return 0, fmt.Errorf("purge %s/%s: %w", key.Namespace, key.Name, err)
	}
	n, _ := v.(int64)
	return uint64(n), nil
}
