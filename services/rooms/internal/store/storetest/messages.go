package storetest

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/parleyhq/parley/services/rooms/internal/store"
)

func testPublish(t *testing.T, s store.Store) {
	ctx := t.Context()
	key := store.RoomKey{Namespace: "acme", Name: "general"}
	createRoom(t, s, key, store.RoomOptions{}, t0)
	join(t, s, store.JoinParams{Room: key, UserID: "u1", SessionID: "s1", Now: t0})

	_, _, err := s.Publish(ctx, store.PublishParams{Room: store.RoomKey{Namespace: "acme", Name: "missing"}, Payload: "x", Now: t0})
	wantErr(t, "Publish to a missing room", err, store.ErrNotFound)

	var want []store.Message
	for i, payload := range []string{"hello", "héllo, wörld ✓", "line\nbreak and \x00 nul"} {
		m := store.Message{
			Room:            key,
			Offset:          uint64(i + 1),
			Sender:          "u1",
			Payload:         payload,
			ClientMessageID: fmt.Sprintf("c%d", i),
			SessionID:       "s1",
			CreateTime:      at(time.Duration(i) * time.Minute),
		}
		got := publish(t, s, store.PublishParams{
			Room:            key,
			Sender:          m.Sender,
			Payload:         m.Payload,
			ClientMessageID: m.ClientMessageID,
			SessionID:       m.SessionID,
			Now:             m.CreateTime,
			DedupeSince:     at(-time.Hour),
		})
		check(t, "Publish "+payload, m, got)
		want = append(want, m)
	}
	check(t, "LastOffset", uint64(3), getRoom(t, s, key).LastOffset)
	check(t, "History", want, All(t, s, key))

	_, _, err = s.Publish(ctx, store.PublishParams{Room: key, Sender: "stranger", Payload: "x", Now: at(time.Hour)})
	wantErr(t, "Publish by a non-member", err, store.ErrNotMember)
	check(t, "LastOffset after a refused Publish", uint64(3), getRoom(t, s, key).LastOffset)

	// A system message needs no membership.
	sys := publish(t, s, store.PublishParams{Room: key, Payload: "system", Now: at(time.Hour)})
	check(t, "Publish of a system message", store.Message{Room: key, Offset: 4, Payload: "system", CreateTime: at(time.Hour)}, sys)

	// Without a ClientMessageID there is nothing to deduplicate.
	for _, off := range []uint64{5, 6} {
		m := publish(t, s, store.PublishParams{Room: key, Sender: "u1", Payload: "same", Now: at(time.Hour), DedupeSince: at(-time.Hour)})
		check(t, "offset of a message without ClientMessageID", off, m.Offset)
	}
	check(t, "offsets", seq(1, 6), Offsets(All(t, s, key)))
	check(t, "Stats", store.Stats{Rooms: 1, Members: 1, Sessions: 1, Messages: 6}, stats(t, s, ""))
}

func testPublishReadOnly(t *testing.T, s store.Store) {
	ctx := t.Context()
	key := store.RoomKey{Namespace: "acme", Name: "news"}
	createRoom(t, s, key, store.RoomOptions{ReadOnly: true}, t0)
	addMember(t, s, key, "u1")

	_, _, err := s.Publish(ctx, store.PublishParams{Room: key, Sender: "u1", Payload: "x", Now: t0})
	wantErr(t, "Publish by a member of a read-only room", err, store.ErrReadOnly)
	_, _, err = s.Publish(ctx, store.PublishParams{Room: key, Sender: "stranger", Payload: "x", Now: t0})
	if !errors.Is(err, store.ErrReadOnly) && !errors.Is(err, store.ErrNotMember) {
		t.Fatalf("Publish by a non-member of a read-only room: got error %v, want %v or %v", err, store.ErrReadOnly, store.ErrNotMember)
	}
	check(t, "LastOffset after refused publishes", uint64(0), getRoom(t, s, key).LastOffset)

	m := publish(t, s, store.PublishParams{Room: key, Payload: "announcement", Now: t0})
	check(t, "Publish of a system message to a read-only room",
		store.Message{Room: key, Offset: 1, Payload: "announcement", CreateTime: t0}, m)

	_, err = s.UpdateRoom(ctx, key, store.RoomOptionsPatch{ReadOnly: new(false)}, t0)
	noErr(t, "UpdateRoom", err)
	m = publish(t, s, store.PublishParams{Room: key, Sender: "u1", Payload: "reply", Now: t0})
	check(t, "offset after the room became writable", uint64(2), m.Offset)
}

func testPublishDedupe(t *testing.T, s store.Store) {
	ctx := t.Context()
	key := store.RoomKey{Namespace: "acme", Name: "general"}
	createRoom(t, s, key, store.RoomOptions{}, t0)
	addMember(t, s, key, "u1")

	first := publish(t, s, store.PublishParams{
		Room: key, Sender: "u1", Payload: "first", ClientMessageID: "c1", SessionID: "s1",
		Now: t0, DedupeSince: at(-time.Hour),
	})
	retry := func(what string, p store.PublishParams, want store.Message) {
		t.Helper()
		got, dup, err := s.Publish(ctx, p)
		noErr(t, what, err)
		if !dup {
			t.Errorf("%s: not reported as a duplicate", what)
		}
		check(t, what, want, got)
	}
	// A retry returns the first message as stored, not as retried.
	retry("Publish of a duplicate", store.PublishParams{
		Room: key, Sender: "u1", Payload: "retry", ClientMessageID: "c1", SessionID: "s2",
		Now: at(time.Minute), DedupeSince: at(-time.Minute),
	}, first)
	retry("Publish of a duplicate accepted at DedupeSince", store.PublishParams{
		Room: key, Sender: "u1", Payload: "first", ClientMessageID: "c1",
		Now: at(time.Minute), DedupeSince: t0,
	}, first)
	check(t, "History after duplicates", []store.Message{first}, All(t, s, key))
	check(t, "LastOffset after duplicates", uint64(1), getRoom(t, s, key).LastOffset)

	second := publish(t, s, store.PublishParams{
		Room: key, Sender: "u1", Payload: "second", ClientMessageID: "c2",
		Now: at(2 * time.Minute), DedupeSince: at(-time.Hour),
	})
	check(t, "offset of another ClientMessageID", uint64(2), second.Offset)

	// Once the window starts after the first publish, the id is new again,
	// and later retries find the newer message.
	third := publish(t, s, store.PublishParams{
		Room: key, Sender: "u1", Payload: "third", ClientMessageID: "c1",
		Now: at(3 * time.Minute), DedupeSince: at(time.Nanosecond),
	})
	check(t, "Publish of an id seen before the window", store.Message{
		Room: key, Offset: 3, Sender: "u1", Payload: "third", ClientMessageID: "c1", CreateTime: at(3 * time.Minute),
	}, third)
	retry("Publish of a duplicate of the newer message", store.PublishParams{
		Room: key, Sender: "u1", Payload: "third", ClientMessageID: "c1",
		Now: at(4 * time.Minute), DedupeSince: t0,
	}, third)

	// Ids are per sender: another user's client may pick the same one.
	addMember(t, s, key, "u2")
	fromU2 := publish(t, s, store.PublishParams{
		Room: key, Sender: "u2", Payload: "u2's", ClientMessageID: "c1",
		Now: at(4 * time.Minute), DedupeSince: t0,
	})
	check(t, "offset of a known id from another sender", uint64(4), fromU2.Offset)

	// Ids are per room.
	other := store.RoomKey{Namespace: "acme", Name: "other"}
	createRoom(t, s, other, store.RoomOptions{}, t0)
	m := publish(t, s, store.PublishParams{Room: other, Payload: "elsewhere", ClientMessageID: "c1", Now: at(5 * time.Minute), DedupeSince: at(-time.Hour)})
	check(t, "offset of a known id in another room", uint64(1), m.Offset)

	// A duplicate of a message no longer kept still reports where and when
	// the first one was stored.
	_, err := s.Purge(ctx, key, 0)
	noErr(t, "Purge", err)
	got, dup, err := s.Publish(ctx, store.PublishParams{
		Room: key, Sender: "u1", Payload: "second", ClientMessageID: "c2",
		Now: at(6 * time.Minute), DedupeSince: t0,
	})
	noErr(t, "Publish of a duplicate of a purged message", err)
	if !dup {
		t.Error("Publish of a duplicate of a purged message: not reported as a duplicate")
	}
	check(t, "offset of a duplicate of a purged message", second.Offset, got.Offset)
	check(t, "time of a duplicate of a purged message", second.CreateTime, got.CreateTime)
	check(t, "History after a duplicate of a purged message", []store.Message(nil), All(t, s, key))
	check(t, "LastOffset", uint64(4), getRoom(t, s, key).LastOffset)
}

func testPublishTrim(t *testing.T, s store.Store) {
	ctx := t.Context()
	key := store.RoomKey{Namespace: "acme", Name: "short"}
	createRoom(t, s, key, store.RoomOptions{HistoryMaxMessages: 3}, t0)
	msgs := publishN(t, s, key, 5)

	check(t, "History after trimming", msgs[2:], All(t, s, key))
	check(t, "latest History after trimming", msgs[2:],
		history(t, s, store.HistoryQuery{Room: key, Mode: store.HistoryLatest, Limit: 10}))
	check(t, "LastOffset after trimming", uint64(5), getRoom(t, s, key).LastOffset)
	check(t, "Stats after trimming", store.Stats{Rooms: 1, Messages: 3}, stats(t, s, ""))

	_, err := s.UpdateRoom(ctx, key, store.RoomOptionsPatch{HistoryMaxMessages: new(uint32(2))}, t0)
	noErr(t, "UpdateRoom", err)
	publish(t, s, store.PublishParams{Room: key, Payload: "m6", Now: t0})
	check(t, "offsets after lowering the limit", []uint64{5, 6}, Offsets(All(t, s, key)))

	_, err = s.UpdateRoom(ctx, key, store.RoomOptionsPatch{HistoryMaxMessages: new(uint32(0))}, t0)
	noErr(t, "UpdateRoom", err)
	publish(t, s, store.PublishParams{Room: key, Payload: "m7", Now: t0})
	publish(t, s, store.PublishParams{Room: key, Payload: "m8", Now: t0})
	check(t, "offsets without a limit", []uint64{5, 6, 7, 8}, Offsets(All(t, s, key)))
}

func testHistory(t *testing.T, s store.Store) {
	ctx := t.Context()
	key := store.RoomKey{Namespace: "acme", Name: "general"}
	createRoom(t, s, key, store.RoomOptions{}, t0)
	for _, mode := range []store.HistoryMode{store.HistoryLatest, store.HistoryBefore, store.HistoryAfter} {
		got := history(t, s, store.HistoryQuery{Room: key, Mode: mode, Offset: 5, Limit: 10})
		check(t, fmt.Sprintf("History mode %d of an empty room", mode), []store.Message(nil), got)
	}

	msgs := publishN(t, s, key, 10)
	tests := []struct {
		name   string
		mode   store.HistoryMode
		offset uint64
		limit  int
		want   []uint64
	}{
		{"latest", store.HistoryLatest, 0, 3, []uint64{8, 9, 10}},
		{"latest all", store.HistoryLatest, 0, 100, seq(1, 10)},
		{"latest ignores offset", store.HistoryLatest, 5, 2, []uint64{9, 10}},
		{"before", store.HistoryBefore, 5, 2, []uint64{3, 4}},
		{"before all", store.HistoryBefore, 5, 10, seq(1, 4)},
		{"before the first", store.HistoryBefore, 1, 10, nil},
		{"before the end", store.HistoryBefore, 11, 3, []uint64{8, 9, 10}},
		{"before far past the end", store.HistoryBefore, 1000, 2, []uint64{9, 10}},
		{"after the start", store.HistoryAfter, 0, 3, []uint64{1, 2, 3}},
		{"after", store.HistoryAfter, 3, 4, []uint64{4, 5, 6, 7}},
		{"after near the end", store.HistoryAfter, 8, 5, []uint64{9, 10}},
		{"after the last", store.HistoryAfter, 10, 5, nil},
		{"after past the end", store.HistoryAfter, 1000, 5, nil},
	}
	for _, tt := range tests {
		got := history(t, s, store.HistoryQuery{Room: key, Mode: tt.mode, Offset: tt.offset, Limit: tt.limit})
		check(t, "History "+tt.name, pick(msgs, tt.want...), got)
	}

	// HistoryAfter from 0 starts at the oldest message kept.
	_, err := s.Purge(ctx, key, 5)
	noErr(t, "Purge", err)
	check(t, "History after the start of a purged room", msgs[4:6],
		history(t, s, store.HistoryQuery{Room: key, Mode: store.HistoryAfter, Limit: 2}))
	check(t, "History before in a purged room", msgs[4:6],
		history(t, s, store.HistoryQuery{Room: key, Mode: store.HistoryBefore, Offset: 7, Limit: 10}))

	_, err = s.History(ctx, store.HistoryQuery{Room: store.RoomKey{Namespace: "acme", Name: "missing"}, Limit: 10})
	wantErr(t, "History of a missing room", err, store.ErrNotFound)
}

func testPurge(t *testing.T, s store.Store) {
	ctx := t.Context()
	key := store.RoomKey{Namespace: "acme", Name: "general"}
	other := store.RoomKey{Namespace: "acme", Name: "other"}
	createRoom(t, s, key, store.RoomOptions{}, t0)
	createRoom(t, s, other, store.RoomOptions{}, t0)
	publishN(t, s, key, 10)
	otherMsgs := publishN(t, s, other, 2)

	purge := func(what string, before, want uint64) {
		t.Helper()
		n, err := s.Purge(ctx, key, before)
		noErr(t, "Purge "+what, err)
		check(t, "count of Purge "+what, want, n)
	}
	purge("before 4", 4, 3)
	check(t, "offsets after Purge before 4", seq(4, 10), Offsets(All(t, s, key)))
	purge("before 4 again", 4, 0)
	purge("before 1", 1, 0)
	purge("all", 0, 7)
	check(t, "History after Purge of all", []store.Message(nil), All(t, s, key))
	check(t, "LastOffset after Purge", uint64(10), getRoom(t, s, key).LastOffset)

	m := publish(t, s, store.PublishParams{Room: key, Payload: "next", Now: t0})
	check(t, "offset after Purge", uint64(11), m.Offset)
	purge("before beyond the last", 100, 1)
	check(t, "LastOffset after Purge", uint64(11), getRoom(t, s, key).LastOffset)

	check(t, "History of another room", otherMsgs, All(t, s, other))
	check(t, "Stats after Purge", store.Stats{Rooms: 2, Messages: 2}, stats(t, s, ""))

	_, err := s.Purge(ctx, store.RoomKey{Namespace: "acme", Name: "missing"}, 0)
	wantErr(t, "Purge of a missing room", err, store.ErrNotFound)
}

func testSweepRetention(t *testing.T, s store.Store) {
	ctx := t.Context()
	hour := store.RoomKey{Namespace: "acme", Name: "hour"}
	forever := store.RoomKey{Namespace: "acme", Name: "forever"}
	twoHours := store.RoomKey{Namespace: "globex", Name: "two-hours"}
	createRoom(t, s, hour, store.RoomOptions{HistoryRetention: time.Hour}, t0)
	createRoom(t, s, forever, store.RoomOptions{}, t0)
	createRoom(t, s, twoHours, store.RoomOptions{HistoryRetention: 2 * time.Hour}, t0)
	post := func(key store.RoomKey, d time.Duration) {
		t.Helper()
		publish(t, s, store.PublishParams{Room: key, Payload: d.String(), Now: at(d)})
	}
	post(hour, 0)
	post(hour, 30*time.Minute)
	post(hour, 90*time.Minute)
	post(forever, 0)
	post(twoHours, 0)
	post(twoHours, time.Hour)

	// A message exactly as old as the retention is not older than it.
	noErr(t, "Sweep", s.Sweep(ctx, at(2*time.Hour), at(-24*time.Hour)))
	check(t, "offsets kept for an hour", []uint64{3}, Offsets(All(t, s, hour)))
	check(t, "offsets kept forever", []uint64{1}, Offsets(All(t, s, forever)))
	check(t, "offsets kept for two hours", []uint64{1, 2}, Offsets(All(t, s, twoHours)))

	noErr(t, "Sweep", s.Sweep(ctx, at(3*time.Hour), at(-24*time.Hour)))
	check(t, "offsets kept for an hour", []uint64(nil), Offsets(All(t, s, hour)))
	check(t, "offsets kept forever", []uint64{1}, Offsets(All(t, s, forever)))
	check(t, "offsets kept for two hours", []uint64{2}, Offsets(All(t, s, twoHours)))

	check(t, "LastOffset after Sweep", uint64(3), getRoom(t, s, hour).LastOffset)
	m := publish(t, s, store.PublishParams{Room: hour, Payload: "next", Now: at(3 * time.Hour)})
	check(t, "offset after Sweep", uint64(4), m.Offset)
	check(t, "Stats after Sweep", store.Stats{Rooms: 3, Messages: 3}, stats(t, s, ""))
}

func testSweepDedupe(t *testing.T, s store.Store) {
	ctx := t.Context()
	key := store.RoomKey{Namespace: "acme", Name: "general"}
	createRoom(t, s, key, store.RoomOptions{}, t0)
	for _, p := range []struct {
		id string
		d  time.Duration
	}{{"old", 0}, {"edge", time.Hour}, {"new", 2 * time.Hour}} {
		publish(t, s, store.PublishParams{Room: key, Payload: p.id, ClientMessageID: p.id, Now: at(p.d), DedupeSince: at(-time.Hour)})
	}

	noErr(t, "Sweep", s.Sweep(ctx, at(2*time.Hour), at(time.Hour)))
	check(t, "offsets after Sweep without retention", seq(1, 3), Offsets(All(t, s, key)))

	for _, tt := range []struct {
		id         string
		dup        bool
		wantOffset uint64
	}{
		{"old", false, 4}, // forgotten: accepted before dedupeBefore
		{"edge", true, 2}, // accepted exactly at dedupeBefore
		{"new", true, 3},
	} {
		m, dup, err := s.Publish(ctx, store.PublishParams{
			Room: key, Payload: tt.id, ClientMessageID: tt.id, Now: at(3 * time.Hour), DedupeSince: at(-time.Hour),
		})
		noErr(t, "Publish "+tt.id, err)
		if dup != tt.dup {
			t.Errorf("Publish %s after Sweep: duplicate %v, want %v", tt.id, dup, tt.dup)
		}
		check(t, "offset of "+tt.id+" after Sweep", tt.wantOffset, m.Offset)
	}
}

func testStats(t *testing.T, s store.Store) {
	ctx := t.Context()
	check(t, "Stats of an empty store", store.Stats{}, stats(t, s, ""))

	r1 := store.RoomKey{Namespace: "ns1", Name: "r1"}
	r2 := store.RoomKey{Namespace: "ns1", Name: "r2"}
	r3 := store.RoomKey{Namespace: "ns2", Name: "r1"}
	for _, k := range []store.RoomKey{r1, r2, r3} {
		createRoom(t, s, k, store.RoomOptions{}, t0)
	}
	for _, j := range []struct {
		room          store.RoomKey
		user, session string
	}{
		{r1, "u1", "s1"}, {r1, "u1", "s2"}, {r1, "u2", "s3"}, {r2, "u1", "s4"}, {r3, "u9", ""},
	} {
		join(t, s, store.JoinParams{Room: j.room, UserID: j.user, SessionID: j.session, Now: t0})
	}
	publishN(t, s, r1, 3)
	publishN(t, s, r2, 2)
	publishN(t, s, r3, 2)

	check(t, "Stats of all", store.Stats{Rooms: 3, Members: 4, Sessions: 4, Messages: 7}, stats(t, s, ""))
	check(t, "Stats of ns1", store.Stats{Rooms: 2, Members: 3, Sessions: 4, Messages: 5}, stats(t, s, "ns1"))
	check(t, "Stats of ns2", store.Stats{Rooms: 1, Members: 1, Messages: 2}, stats(t, s, "ns2"))
	check(t, "Stats of an unknown namespace", store.Stats{}, stats(t, s, "ns3"))

	_, err := s.Purge(ctx, r1, 3)
	noErr(t, "Purge", err)
	_, err = s.RemoveMember(ctx, r1, "u1")
	noErr(t, "RemoveMember", err)
	noErr(t, "DeleteRoom", s.DeleteRoom(ctx, r3))
	check(t, "Stats of ns1 after changes", store.Stats{Rooms: 2, Members: 2, Sessions: 2, Messages: 3}, stats(t, s, "ns1"))
	check(t, "Stats of ns2 after changes", store.Stats{}, stats(t, s, "ns2"))
	check(t, "Stats of all after changes", store.Stats{Rooms: 2, Members: 2, Sessions: 2, Messages: 3}, stats(t, s, ""))
}
