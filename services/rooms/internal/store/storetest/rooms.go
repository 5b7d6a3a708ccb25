package storetest

import (
	"testing"
	"time"

	"github.com/parleyhq/parley/services/rooms/internal/store"
)

func testCreateAndGetRoom(t *testing.T, s store.Store) {
	ctx := t.Context()
	key := store.RoomKey{Namespace: "acme", Name: "general"}
	opts := store.RoomOptions{
		Private:            true,
		MaxMembers:         10,
		ReadOnly:           true,
		HistoryMaxMessages: 100,
		HistoryRetention:   48 * time.Hour,
	}
	want := store.Room{RoomKey: key, Options: opts, CreateTime: t0, UpdateTime: t0}

	check(t, "CreateRoom", want, createRoom(t, s, key, opts, t0))
	check(t, "GetRoom", want, getRoom(t, s, key))

	_, err := s.CreateRoom(ctx, key, store.RoomOptions{}, at(time.Minute))
	wantErr(t, "CreateRoom of a taken name", err, store.ErrAlreadyExists)
	check(t, "GetRoom after a refused CreateRoom", want, getRoom(t, s, key))

	// The same name in another namespace is another room.
	other := store.RoomKey{Namespace: "globex", Name: "general"}
	wantOther := store.Room{RoomKey: other, CreateTime: at(time.Hour), UpdateTime: at(time.Hour)}
	check(t, "CreateRoom in another namespace", wantOther, createRoom(t, s, other, store.RoomOptions{}, at(time.Hour)))
	check(t, "GetRoom in another namespace", wantOther, getRoom(t, s, other))
	check(t, "GetRoom of the first room", want, getRoom(t, s, key))

	for _, missing := range []store.RoomKey{
		{Namespace: "acme", Name: "random"},
		{Namespace: "", Name: "general"},
		{Namespace: "initech", Name: "general"},
	} {
		_, err := s.GetRoom(ctx, missing)
		wantErr(t, "GetRoom "+missing.Namespace+"/"+missing.Name, err, store.ErrNotFound)
	}
}

// listKeys is ListRooms reduced to the keys.
func listKeys(t *testing.T, s store.Store, q store.ListRoomsQuery) []store.RoomKey {
	t.Helper()
	rooms, err := s.ListRooms(t.Context(), q)
	noErr(t, "ListRooms", err)
	keys := make([]store.RoomKey, len(rooms))
	for i, r := range rooms {
		keys[i] = r.RoomKey
	}
	return keys
}

// listFixture creates rooms out of order and returns their keys in the
// order ListRooms must return them: by namespace, then name, bytewise.
func listFixture(t *testing.T, s store.Store) []store.RoomKey {
	t.Helper()
	for i, k := range []store.RoomKey{
		{Namespace: "b", Name: "alpha"},
		{Namespace: "a", Name: "beta"},
		{Namespace: "a", Name: "alpha"},
		{Namespace: "a", Name: "alphabet"},
		{Namespace: "c", Name: "alpha"},
		{Namespace: "a", Name: "Alpha"},
		{Namespace: "b", Name: "al"},
		{Namespace: "a", Name: "gamma"},
	} {
		createRoom(t, s, k, store.RoomOptions{}, at(time.Duration(i)*time.Minute))
	}
	return []store.RoomKey{
		{Namespace: "a", Name: "Alpha"},
		{Namespace: "a", Name: "alpha"},
		{Namespace: "a", Name: "alphabet"},
		{Namespace: "a", Name: "beta"},
		{Namespace: "a", Name: "gamma"},
		{Namespace: "b", Name: "al"},
		{Namespace: "b", Name: "alpha"},
		{Namespace: "c", Name: "alpha"},
	}
}

func testListRooms(t *testing.T, s store.Store) {
	check(t, "ListRooms of an empty store", []store.RoomKey(nil), listKeys(t, s, store.ListRoomsQuery{Limit: 10}))

	keys := listFixture(t, s)
	k := func(ns, name string) store.RoomKey { return store.RoomKey{Namespace: ns, Name: name} }
	tests := []struct {
		name string
		q    store.ListRoomsQuery
		want []store.RoomKey
	}{
		{"all", store.ListRoomsQuery{Limit: 100}, keys},
		{"limit", store.ListRoomsQuery{Limit: 3}, keys[:3]},
		{"after", store.ListRoomsQuery{After: k("a", "beta"), Limit: 100}, keys[4:]},
		{"after a missing key", store.ListRoomsQuery{After: k("a", "b"), Limit: 100}, keys[3:]},
		{"after a namespace", store.ListRoomsQuery{After: k("a", "zzz"), Limit: 2}, keys[5:7]},
		{"after the last", store.ListRoomsQuery{After: k("c", "alpha"), Limit: 100}, nil},
		{"namespace", store.ListRoomsQuery{Namespace: "b", Limit: 100}, keys[5:7]},
		{"namespace limit", store.ListRoomsQuery{Namespace: "a", Limit: 2}, keys[:2]},
		{"namespace after", store.ListRoomsQuery{Namespace: "a", After: k("a", "alpha"), Limit: 100}, keys[2:5]},
		{"namespace after an earlier namespace", store.ListRoomsQuery{Namespace: "b", After: k("a", "zzz"), Limit: 100}, keys[5:7]},
		{"namespace after a later namespace", store.ListRoomsQuery{Namespace: "a", After: k("b", ""), Limit: 100}, nil},
		{"unknown namespace", store.ListRoomsQuery{Namespace: "d", Limit: 100}, nil},
		{"prefix", store.ListRoomsQuery{Prefix: "al", Limit: 100}, []store.RoomKey{keys[1], keys[2], keys[5], keys[6], keys[7]}},
		{"prefix is a whole name", store.ListRoomsQuery{Prefix: "alpha", Limit: 100}, []store.RoomKey{keys[1], keys[2], keys[6], keys[7]}},
		{"prefix is case sensitive", store.ListRoomsQuery{Prefix: "A", Limit: 100}, keys[:1]},
		{"prefix limit", store.ListRoomsQuery{Prefix: "al", Limit: 3}, []store.RoomKey{keys[1], keys[2], keys[5]}},
		{"prefix after", store.ListRoomsQuery{Prefix: "alpha", After: k("a", "alphabet"), Limit: 100}, keys[6:]},
		{"prefix and namespace", store.ListRoomsQuery{Namespace: "b", Prefix: "alp", Limit: 100}, keys[6:7]},
		{"prefix without match", store.ListRoomsQuery{Prefix: "alphas", Limit: 100}, nil},
	}
	for _, tt := range tests {
		check(t, "ListRooms "+tt.name, tt.want, listKeys(t, s, tt.q))
	}

	// Listed rooms are whole rooms, with their current counters.
	key := k("c", "alpha")
	opts := store.RoomOptions{MaxMembers: 3, HistoryMaxMessages: 7, HistoryRetention: time.Minute}
	_, err := s.UpdateRoom(t.Context(), key, store.RoomOptionsPatch{
		MaxMembers:         new(opts.MaxMembers),
		HistoryMaxMessages: new(opts.HistoryMaxMessages),
		HistoryRetention:   new(opts.HistoryRetention),
	}, at(time.Hour))
	noErr(t, "UpdateRoom", err)
	addMember(t, s, key, "u1")
	publishN(t, s, key, 2)
	rooms, err := s.ListRooms(t.Context(), store.ListRoomsQuery{Namespace: "c", Limit: 10})
	noErr(t, "ListRooms", err)
	want := []store.Room{{
		RoomKey:     key,
		Options:     opts,
		LastOffset:  2,
		MemberCount: 1,
		CreateTime:  at(4 * time.Minute),
		UpdateTime:  at(time.Hour),
	}}
	check(t, "ListRooms of namespace c", want, rooms)
}

func testListRoomsPagination(t *testing.T, s store.Store) {
	keys := listFixture(t, s)
	tests := []struct {
		name  string
		q     store.ListRoomsQuery
		limit int
		want  []store.RoomKey
	}{
		{"all", store.ListRoomsQuery{Limit: 3}, 3, keys},
		{"one by one", store.ListRoomsQuery{Limit: 1}, 1, keys},
		{"namespace", store.ListRoomsQuery{Namespace: "a", Limit: 2}, 2, keys[:5]},
		{"prefix", store.ListRoomsQuery{Prefix: "al", Limit: 2}, 2, []store.RoomKey{keys[1], keys[2], keys[5], keys[6], keys[7]}},
	}
	for _, tt := range tests {
		var got []store.RoomKey
		q := tt.q
		for range len(keys) + 1 {
			page := listKeys(t, s, q)
			if len(page) > tt.limit {
				t.Fatalf("ListRooms %s: page of %d rooms, limit %d", tt.name, len(page), tt.limit)
			}
			if len(page) == 0 {
				break
			}
			got = append(got, page...)
			q.After = page[len(page)-1]
		}
		check(t, "ListRooms pages "+tt.name, tt.want, got)
	}
}

func testUpdateRoom(t *testing.T, s store.Store) {
	ctx := t.Context()
	key := store.RoomKey{Namespace: "acme", Name: "general"}
	opts := store.RoomOptions{MaxMembers: 5, HistoryMaxMessages: 50, HistoryRetention: time.Hour}
	createRoom(t, s, key, opts, t0)
	addMember(t, s, key, "u1")
	publishN(t, s, key, 1)

	got, err := s.UpdateRoom(ctx, key, store.RoomOptionsPatch{
		MaxMembers: new(uint32(7)),
		ReadOnly:   new(true),
	}, at(time.Hour))
	noErr(t, "UpdateRoom", err)
	want := store.Room{
		RoomKey: key,
		Options: store.RoomOptions{
			MaxMembers:         7,
			ReadOnly:           true,
			HistoryMaxMessages: 50,
			HistoryRetention:   time.Hour,
		},
		LastOffset:  1,
		MemberCount: 1,
		CreateTime:  t0,
		UpdateTime:  at(time.Hour),
	}
	check(t, "UpdateRoom of two fields", want, got)
	check(t, "GetRoom after UpdateRoom", want, getRoom(t, s, key))

	got, err = s.UpdateRoom(ctx, key, store.RoomOptionsPatch{}, at(2*time.Hour))
	noErr(t, "UpdateRoom", err)
	want.UpdateTime = at(2 * time.Hour)
	check(t, "UpdateRoom with an empty patch", want, got)

	// Non-nil pointers to zero values clear the options.
	got, err = s.UpdateRoom(ctx, key, store.RoomOptionsPatch{
		Private:            new(true),
		MaxMembers:         new(uint32(0)),
		ReadOnly:           new(false),
		HistoryMaxMessages: new(uint32(0)),
		HistoryRetention:   new(time.Duration(0)),
	}, at(3*time.Hour))
	noErr(t, "UpdateRoom", err)
	want.Options = store.RoomOptions{Private: true}
	want.UpdateTime = at(3 * time.Hour)
	check(t, "UpdateRoom of every field", want, got)
	check(t, "GetRoom after UpdateRoom", want, getRoom(t, s, key))

	_, err = s.UpdateRoom(ctx, store.RoomKey{Namespace: "acme", Name: "missing"}, store.RoomOptionsPatch{ReadOnly: new(true)}, at(4*time.Hour))
	wantErr(t, "UpdateRoom of a missing room", err, store.ErrNotFound)
}

func testDeleteRoom(t *testing.T, s store.Store) {
	ctx := t.Context()
	key := store.RoomKey{Namespace: "acme", Name: "general"}
	other := store.RoomKey{Namespace: "acme", Name: "other"}
	createRoom(t, s, key, store.RoomOptions{}, t0)
	createRoom(t, s, other, store.RoomOptions{}, t0)
	join(t, s, store.JoinParams{Room: key, UserID: "u1", SessionID: "s1", Now: t0})
	join(t, s, store.JoinParams{Room: key, UserID: "u2", SessionID: "s2", Now: t0})
	join(t, s, store.JoinParams{Room: other, UserID: "u1", SessionID: "s1", Now: t0})
	for _, id := range []string{"c1", "c2", "c3"} {
		publish(t, s, store.PublishParams{Room: key, Sender: "u1", Payload: id, ClientMessageID: id, Now: t0})
	}
	publish(t, s, store.PublishParams{Room: other, Sender: "u1", Payload: "kept", Now: t0})

	noErr(t, "DeleteRoom", s.DeleteRoom(ctx, key))

	_, err := s.GetRoom(ctx, key)
	wantErr(t, "GetRoom of a deleted room", err, store.ErrNotFound)
	wantErr(t, "DeleteRoom of a deleted room", s.DeleteRoom(ctx, key), store.ErrNotFound)
	_, err = s.History(ctx, store.HistoryQuery{Room: key, Limit: 10})
	wantErr(t, "History of a deleted room", err, store.ErrNotFound)
	_, err = s.ListMembers(ctx, key, "", 10)
	wantErr(t, "ListMembers of a deleted room", err, store.ErrNotFound)
	_, err = s.Join(ctx, store.JoinParams{Room: key, UserID: "u1", Now: t0})
	wantErr(t, "Join of a deleted room", err, store.ErrNotFound)
	_, _, err = s.Publish(ctx, store.PublishParams{Room: key, Payload: "x", Now: t0})
	wantErr(t, "Publish to a deleted room", err, store.ErrNotFound)
	check(t, "Stats after DeleteRoom", store.Stats{Rooms: 1, Members: 1, Sessions: 1, Messages: 1}, stats(t, s, ""))
	check(t, "History of the other room", []string{"kept"}, Payloads(All(t, s, other)))

	// The name can be taken again, by a room that shares nothing with the old one.
	want := store.Room{RoomKey: key, CreateTime: at(time.Hour), UpdateTime: at(time.Hour)}
	check(t, "CreateRoom after DeleteRoom", want, createRoom(t, s, key, store.RoomOptions{}, at(time.Hour)))
	check(t, "ListMembers of the new room", []store.Member(nil), listMembers(t, s, key, "", 10))
	check(t, "History of the new room", []store.Message(nil), All(t, s, key))
	_, _, err = s.Publish(ctx, store.PublishParams{Room: key, Sender: "u1", Payload: "x", Now: at(time.Hour)})
	wantErr(t, "Publish by a member of the deleted room", err, store.ErrNotMember)
	m := publish(t, s, store.PublishParams{
		Room:            key,
		Payload:         "again",
		ClientMessageID: "c1",
		Now:             at(time.Hour),
		DedupeSince:     at(-time.Hour),
	})
	check(t, "offset of the first message of the new room", uint64(1), m.Offset)
}

// testEpochs checks that every room gets an epoch, that it does not change
// with the room's options or messages, and that a room deleted and created
// again gets another one.
func testEpochs(t *testing.T, s store.Store) {
	ctx := t.Context()
	key := store.RoomKey{Namespace: "acme", Name: "phoenix"}
	created := createRoom(t, s, key, store.RoomOptions{}, t0)
	if created.Epoch == "" {
		t.Fatal("CreateRoom returned no epoch")
	}
	other := createRoom(t, s, store.RoomKey{Namespace: "acme", Name: "other"}, store.RoomOptions{}, t0)
	if other.Epoch == created.Epoch {
		t.Errorf("two rooms share epoch %q", created.Epoch)
	}
	readOnly := true
	_, err := s.UpdateRoom(ctx, key, store.RoomOptionsPatch{ReadOnly: &readOnly}, at(time.Minute))
	noErr(t, "UpdateRoom", err)
	if got := getRoom(t, s, key).Epoch; got != created.Epoch {
		t.Errorf("epoch %q after UpdateRoom, want %q", got, created.Epoch)
	}
	noErr(t, "DeleteRoom", s.DeleteRoom(ctx, key))
	again := createRoom(t, s, key, store.RoomOptions{}, at(time.Hour))
	if again.Epoch == "" || again.Epoch == created.Epoch {
		t.Errorf("room created again has epoch %q, the deleted one had %q", again.Epoch, created.Epoch)
	}
	if got := getRoom(t, s, key).Epoch; got != again.Epoch {
		t.Errorf("GetRoom epoch %q, CreateRoom said %q", got, again.Epoch)
	}
}

// testDeleteEmptyRooms checks that a room with DeleteWhenEmpty is deleted
// once it has been seen empty for that long, that a member joining or leaving
// starts the wait again, and that rooms without the option stay.
func testDeleteEmptyRooms(t *testing.T, s store.Store) {
	ctx := t.Context()
	temp := store.RoomKey{Namespace: "acme", Name: "temp"}
	busy := store.RoomKey{Namespace: "acme", Name: "busy"}
	kept := store.RoomKey{Namespace: "acme", Name: "kept"}
	createRoom(t, s, temp, store.RoomOptions{DeleteWhenEmpty: time.Minute}, t0)
	createRoom(t, s, busy, store.RoomOptions{DeleteWhenEmpty: time.Minute}, t0)
	createRoom(t, s, kept, store.RoomOptions{}, t0)
	check(t, "options", time.Minute, getRoom(t, s, temp).Options.DeleteWhenEmpty)
	join(t, s, store.JoinParams{Room: busy, UserID: "u", Now: t0})

	sweep := func(what string, after time.Duration, want []store.RoomKey) {
		t.Helper()
		got, err := s.DeleteEmptyRooms(ctx, at(after))
		noErr(t, "DeleteEmptyRooms "+what, err)
		check(t, "deleted "+what, want, got)
	}
	sweep("first seen empty", 0, nil)
	sweep("before the wait is over", 30*time.Second, nil)
	// busy empties at 40s: its wait starts when a sweep sees it empty.
	_, err := s.RemoveMember(ctx, busy, "u")
	noErr(t, "RemoveMember", err)
	sweep("once temp waited long enough", time.Minute, []store.RoomKey{temp})
	sweep("while busy waits", 90*time.Second, nil)
	// A join and leave in between starts busy's wait again.
	join(t, s, store.JoinParams{Room: busy, UserID: "v", Now: at(100 * time.Second)})
	_, err = s.RemoveMember(ctx, busy, "v")
	noErr(t, "RemoveMember", err)
	sweep("after a visit", 2*time.Minute, nil)
	sweep("busy's wait over", 3*time.Minute, []store.RoomKey{busy})
	_, err = s.GetRoom(ctx, temp)
	wantErr(t, "GetRoom of a deleted room", err, store.ErrNotFound)
	check(t, "room without the option", kept, getRoom(t, s, kept).RoomKey)
}
