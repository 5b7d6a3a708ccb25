package redis

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/parleyhq/parley/services/rooms/internal/store"
)

// KeepLease implements store.Store.
func (s *Store) KeepLease(ctx context.Context, lease string, expire time.Time) (bool, error) {
	v, err := s.global(ctx, keepLeaseScript, lease, stamp(expire))
	if err != nil {
		return false, fmt.Errorf("keep lease %q: %w", lease, err)
	}
	return v == int64(1), nil
}

// ExpireLeases implements store.Store, in three steps: the leases not kept
// are taken from the deployment-wide keys, then each room that may hold
// their sessions ends them, then the leases are settled. A lease whose rooms
// were not all reached stays marked expiring, and the next call finishes
// it. With an error, it still returns the members the rooms it reached
// removed, so that their departure is told.
func (s *Store) ExpireLeases(ctx context.Context, now time.Time) ([]store.Membership, error) {
	left, err := s.expireLeases(ctx, now)
	slices.SortFunc(left, func(a, b store.Membership) int {
		return cmp.Or(cmp.Compare(a.Room.Namespace, b.Room.Namespace), cmp.Compare(a.Room.Name, b.Room.Name),
			cmp.Compare(a.UserID, b.UserID))
	})
	if err != nil {
		return left, fmt.Errorf("expire leases: %w", err)
	}
	return left, nil
}

func (s *Store) expireLeases(ctx context.Context, now time.Time) ([]store.Membership, error) {
	v, err := s.global(ctx, expiredLeasesScript, stamp(now))
	if err != nil {
		return nil, err
	}
	f, ok := v.([]any)
	if !ok || len(f) != 2 {
		return nil, fmt.Errorf("bad reply %v", v)
	}
	expired, _ := f[0].([]any)
	lonely, _ := f[1].([]any)
	var (
		left    []store.Membership
		settled = []any{s.grace.Milliseconds()}
		forgets []string
		errs    []error
	)
	end := func(ref any, lease string) error {
		k, ok := refKey(ref)
		if !ok {
			return nil
		}
		v, err := s.room(ctx, expireRoomScript, k, lease)
		if err != nil {
			return err
		}
		users, _ := v.([]any)
		for _, u := range users {
			user, _ := u.(string)
			left = append(left, store.Membership{Room: k, UserID: user})
		}
		return nil
	}
	for _, e := range expired {
		pair, _ := e.([]any)
		if len(pair) != 2 {
			return left, fmt.Errorf("bad expired lease %v", e)
		}
		lease, _ := pair[0].(string)
		rooms, _ := pair[1].([]any)
		reached := true
		for _, r := range rooms {
			if err := end(r, lease); err != nil {
				errs = append(errs, err)
				reached = false
			}
		}
		if reached {
			settled = append(settled, lease)
		}
	}
	for _, r := range lonely {
		if err := end(r, ""); err != nil {
			errs = append(errs, err)
			continue
		}
		ref, _ := r.(string)
		forgets = append(forgets, ref, "lonely")
	}
	if len(settled) > 1 {
		if _, err := s.global(ctx, settleLeasesScript, settled...); err != nil {
			errs = append(errs, err)
		}
	}
	return left, errors.Join(append(errs, s.forget(ctx, forgets...))...)
}

// refKey reads a room ref from a script's reply.
func refKey(v any) (store.RoomKey, bool) {
	ref, _ := v.(string)
	f := splitRef(ref)
	if len(f) != 2 {
		return store.RoomKey{}, false
	}
	return store.RoomKey{Namespace: f[0], Name: f[1]}, true
}

// indexed returns the rooms listed in one of the store's room sets.
func (s *Store) indexed(ctx context.Context, set string) ([]store.RoomKey, error) {
	refs, err := s.c.SMembers(ctx, s.g(set)).Result()
	if err != nil {
		return nil, err
	}
	keys := make([]store.RoomKey, 0, len(refs))
	for _, ref := range refs {
		if k, ok := refKey(ref); ok {
			keys = append(keys, k)
		}
	}
	return keys, nil
}

// durations reads one duration field of each room; a room deleted meanwhile
// reads as 0.
func (s *Store) durations(ctx context.Context, keys []store.RoomKey, field string) ([]time.Duration, error) {
	pipe := s.c.Pipeline()
	cmds := make([]*goredis.StringCmd, len(keys))
	for i, k := range keys {
		cmds[i] = pipe.HGet(ctx, s.key("room", k), field)
	}
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, goredis.Nil) {
		return nil, err
	}
	out := make([]time.Duration, len(keys))
	for i, c := range cmds {
		n, _ := strconv.ParseInt(c.Val(), 10, 64)
		out[i] = time.Duration(n)
	}
	return out, nil
}

// before returns the stamp of t less d, as a cutoff no stamp is below when
// it falls before 1970.
func before(t time.Time, d time.Duration) string { return stamp(t.Add(-d)) }

// DeleteEmptyRooms implements store.Store.
func (s *Store) DeleteEmptyRooms(ctx context.Context, now time.Time) ([]store.RoomKey, error) {
	keys, err := s.indexed(ctx, "emptyttl")
	var ttls []time.Duration
	if err == nil {
		ttls, err = s.durations(ctx, keys, "ettl")
	}
	var (
		deleted []store.RoomKey
		forgets []string
	)
	for i, k := range keys {
		if err != nil {
			break
		}
		var v any
		v, err = s.room(ctx, emptyRoomScript, k, stamp(now), before(now, ttls[i]))
		switch v {
		case int64(1):
			deleted = append(deleted, k)
			forgets = append(forgets, roomRef(k), "all")
		case int64(-1):
			forgets = append(forgets, roomRef(k), "emptyttl")
		}
	}
	if err == nil {
		err = s.forget(ctx, forgets...)
	}
	if err != nil {
		return nil, fmt.Errorf("delete empty rooms: %w", unavailable(err))
	}
	return deleted, nil
}

// Sweep implements store.Store. It reads every room with a retention and
// every room with deduplication keys: a cost that grows with those rooms,
// paid once per sweep.
func (s *Store) Sweep(ctx context.Context, now, dedupeBefore time.Time) error {
	if err := s.sweep(ctx, now, dedupeBefore); err != nil {
		return fmt.Errorf("sweep: %w", unavailable(err))
	}
	return nil
}

func (s *Store) sweep(ctx context.Context, now, dedupeBefore time.Time) error {
	keys, err := s.indexed(ctx, "retention")
	if err != nil {
		return err
	}
	rets, err := s.durations(ctx, keys, "ret")
	if err != nil {
		return err
	}
	var forgets []string
	for i, k := range keys {
		if rets[i] <= 0 { // the room is gone or keeps its history
			forgets = append(forgets, roomRef(k), "retention")
			continue
		}
		if _, err := s.room(ctx, sweepMessagesScript, k, before(now, rets[i])); err != nil {
			return err
		}
	}
	deduped, err := s.indexed(ctx, "deduped")
	if err != nil {
		return err
	}
	for _, k := range deduped {
		v, err := s.room(ctx, sweepDedupeScript, k, stamp(dedupeBefore))
		if err != nil {
			return err
		}
		if v == int64(1) {
			forgets = append(forgets, roomRef(k), "deduped")
		}
	}
	if err := s.forget(ctx, forgets...); err != nil {
		return err
	}
	// Saved sessions expire in Redis too, by the clock; the sweep removes
	// those expired at now, by the caller's.
	due, err := s.c.ZRangeArgs(ctx, goredis.ZRangeArgs{
		Key: s.g("savedx"), Start: "-inf", Stop: strconv.FormatInt(now.UnixMilli()+1, 10), ByScore: true,
	}).Result()
	if err != nil || len(due) == 0 {
		return err
	}
	args := []any{stamp(now)}
	for _, k := range due {
		args = append(args, k)
	}
	_, err = s.global(ctx, sweepSessionsScript, args...)
	return err
}

// Stats implements store.Store.
func (s *Store) Stats(ctx context.Context, namespace string) (store.Stats, error) {
	st, err := s.stats(ctx, namespace)
	if err != nil {
		return store.Stats{}, fmt.Errorf("stats %q: %w", namespace, unavailable(err))
	}
	return st, nil
}

func (s *Store) stats(ctx context.Context, namespace string) (store.Stats, error) {
	lo, hi := "-", "+"
	if namespace != "" {
		lo, hi = "["+namespace+"\x00", "("+namespace+"\x01"
	}
	refs, err := s.c.ZRangeArgs(ctx, goredis.ZRangeArgs{Key: s.g("rooms"), Start: lo, Stop: hi, ByLex: true}).Result()
	if err != nil {
		return store.Stats{}, err
	}
	pipe := s.c.Pipeline()
	counts := make([]*goredis.SliceCmd, 0, len(refs))
	msgs := make([]*goredis.IntCmd, 0, len(refs))
	for _, ref := range refs {
		f := splitRef(ref)
		if len(f) != 2 {
			continue
		}
		k := store.RoomKey{Namespace: f[0], Name: f[1]}
		counts = append(counts, pipe.HMGet(ctx, s.key("room", k), "count", "sess"))
		msgs = append(msgs, pipe.ZCard(ctx, s.key("msgs", k)))
	}
	if len(counts) > 0 {
		if _, err := pipe.Exec(ctx); err != nil {
			return store.Stats{}, err
		}
	}
	var st store.Stats
	for i, c := range counts {
		v := c.Val()
		if len(v) != 2 || v[0] == nil {
			continue // deleted since the index was read
		}
		st.Rooms++
		members, _ := strconv.ParseUint(fmt.Sprint(v[0]), 10, 64)
		sessions, _ := strconv.ParseUint(fmt.Sprint(v[1]), 10, 64)
		st.Members += members
		st.Sessions += sessions
		st.Messages += uint64(msgs[i].Val())
	}
	return st, nil
}

func (s *Store) savedKey(namespace, id string) string {
	return s.g("saved:" + namespace + "\x00" + id)
}

// SaveSessions implements store.Store.
func (s *Store) SaveSessions(ctx context.Context, sessions []store.Session) error {
	if len(sessions) == 0 {
		return nil
	}
	_, err := s.c.TxPipelined(ctx, func(pipe goredis.Pipeliner) error {
		for _, ss := range sessions {
			k := s.savedKey(ss.Namespace, ss.ID)
			pipe.Set(ctx, k, stamp(ss.Expire)+" "+string(ss.Data), 0)
			// One millisecond late, so that Redis never drops a session
			// before TakeSession would stop returning it.
			pipe.PExpireAt(ctx, k, ss.Expire.Add(time.Millisecond))
			pipe.ZAdd(ctx, s.g("savedx"), goredis.Z{Score: float64(ss.Expire.UnixMilli()), Member: k})
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("save %d sessions: %w", len(sessions), unavailable(err))
	}
	return nil
}

// TakeSession implements store.Store.
func (s *Store) TakeSession(ctx context.Context, namespace, id string, now time.Time) ([]byte, error) {
	v, err := s.global(ctx, takeSessionScript, s.savedKey(namespace, id), stamp(now))
	if err == nil && v == nil {
		err = store.ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("take session %s/%s: %w", namespace, id, err)
	}
	data, _ := v.(string)
	return []byte(data), nil
}

// Claim says whether this store's replica runs a periodic job this time:
// the first of the replicas sharing the prefix to ask in a period does. A
// claim lapses a little before the period ends, so that the next tick of
// any replica finds it free. When Redis cannot be asked, the job runs (and
// reports the failure it will meet).
func (s *Store) Claim(ctx context.Context, job string, every time.Duration) bool {
	ok, err := s.c.SetNX(ctx, s.g("upkeep:"+job), s.origin, every*9/10).Result()
	return ok || err != nil
}
