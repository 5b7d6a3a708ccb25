package storetest

import (
	"fmt"
	"testing"
	"time"

	"github.com/parleyhq/parley/services/rooms/internal/store"
)

func testJoin(t *testing.T, s store.Store) {
	ctx := t.Context()
	key := store.RoomKey{Namespace: "acme", Name: "general"}
	opts := store.RoomOptions{MaxMembers: 10, HistoryMaxMessages: 5}
	room := createRoom(t, s, key, opts, t0)

	_, err := s.Join(ctx, store.JoinParams{Room: store.RoomKey{Namespace: "acme", Name: "missing"}, UserID: "u1", Now: t0})
	wantErr(t, "Join of a missing room", err, store.ErrNotFound)

	room.MemberCount = 1
	u1 := store.Member{UserID: "u1", JoinTime: at(time.Minute), Sessions: 1}
	got := join(t, s, store.JoinParams{Room: key, UserID: "u1", SessionID: "s1", Now: at(time.Minute)})
	check(t, "Join of a new member", store.JoinResult{Room: room, Member: u1, Joined: true}, got)

	// Joining again opens another session but keeps the membership.
	u1.Sessions = 2
	got = join(t, s, store.JoinParams{Room: key, UserID: "u1", SessionID: "s2", Now: at(2 * time.Minute)})
	check(t, "Join with a second session", store.JoinResult{Room: room, Member: u1}, got)
	got = join(t, s, store.JoinParams{Room: key, UserID: "u1", SessionID: "s2", Now: at(3 * time.Minute)})
	check(t, "Join with the same session again", store.JoinResult{Room: room, Member: u1}, got)
	got = join(t, s, store.JoinParams{Room: key, UserID: "u1", Now: at(4 * time.Minute)})
	check(t, "Join without a session", store.JoinResult{Room: room, Member: u1}, got)

	room.MemberCount = 2
	u2 := store.Member{UserID: "u2", JoinTime: at(5 * time.Minute)}
	got = join(t, s, store.JoinParams{Room: key, UserID: "u2", Now: at(5 * time.Minute)})
	check(t, "Join of a new member without a session", store.JoinResult{Room: room, Member: u2, Joined: true}, got)

	// Session ids are per member: another member may use the same one.
	u2.Sessions = 1
	got = join(t, s, store.JoinParams{Room: key, UserID: "u2", SessionID: "s1", Now: at(6 * time.Minute)})
	check(t, "Join with another member's session id", store.JoinResult{Room: room, Member: u2}, got)

	check(t, "GetRoom", room, getRoom(t, s, key))
	check(t, "ListMembers", []store.Member{u1, u2}, listMembers(t, s, key, "", 10))
	check(t, "Stats", store.Stats{Rooms: 1, Members: 2, Sessions: 3}, stats(t, s, ""))
}

func testJoinPrivate(t *testing.T, s store.Store) {
	ctx := t.Context()
	key := store.RoomKey{Namespace: "acme", Name: "board"}
	room := createRoom(t, s, key, store.RoomOptions{Private: true}, t0)

	_, err := s.Join(ctx, store.JoinParams{Room: key, UserID: "u1", SessionID: "s1", Now: t0})
	wantErr(t, "Join of a private room", err, store.ErrPrivate)
	check(t, "GetRoom after a refused Join", room, getRoom(t, s, key))
	check(t, "ListMembers after a refused Join", []store.Member(nil), listMembers(t, s, key, "", 10))

	room.MemberCount = 1
	u1 := store.Member{UserID: "u1", JoinTime: at(time.Minute), Sessions: 1}
	got := join(t, s, store.JoinParams{Room: key, UserID: "u1", SessionID: "s1", Admit: true, Now: at(time.Minute)})
	check(t, "Join of a private room with Admit", store.JoinResult{Room: room, Member: u1, Joined: true}, got)

	// A member needs no Admit to open more sessions.
	u1.Sessions = 2
	got = join(t, s, store.JoinParams{Room: key, UserID: "u1", SessionID: "s2", Now: at(2 * time.Minute)})
	check(t, "Join of a private room by a member", store.JoinResult{Room: room, Member: u1}, got)

	_, err = s.Join(ctx, store.JoinParams{Room: key, UserID: "u2", Now: at(3 * time.Minute)})
	wantErr(t, "Join of a private room by another user", err, store.ErrPrivate)
	check(t, "GetRoom", room, getRoom(t, s, key))
}

func testJoinFull(t *testing.T, s store.Store) {
	ctx := t.Context()
	key := store.RoomKey{Namespace: "acme", Name: "small"}
	room := createRoom(t, s, key, store.RoomOptions{MaxMembers: 2}, t0)
	join(t, s, store.JoinParams{Room: key, UserID: "u1", SessionID: "s1", Now: t0})
	join(t, s, store.JoinParams{Room: key, UserID: "u2", Now: t0})

	for _, admit := range []bool{false, true} {
		_, err := s.Join(ctx, store.JoinParams{Room: key, UserID: "u3", SessionID: "s1", Admit: admit, Now: t0})
		wantErr(t, fmt.Sprintf("Join of a full room (Admit %v)", admit), err, store.ErrRoomFull)
	}
	room.MemberCount = 2
	check(t, "GetRoom of a full room", room, getRoom(t, s, key))

	// Members of a full room come and go as they like.
	got := join(t, s, store.JoinParams{Room: key, UserID: "u1", SessionID: "s2", Now: at(time.Minute)})
	check(t, "Join of a full room by a member", store.JoinResult{
		Room:   room,
		Member: store.Member{UserID: "u1", JoinTime: t0, Sessions: 2},
	}, got)

	removed, err := s.RemoveMember(ctx, key, "u2")
	noErr(t, "RemoveMember", err)
	if !removed {
		t.Fatal("RemoveMember of a member reported false")
	}
	got = join(t, s, store.JoinParams{Room: key, UserID: "u3", Now: at(2 * time.Minute)})
	check(t, "Join after a member left", store.JoinResult{
		Room:   room,
		Member: store.Member{UserID: "u3", JoinTime: at(2 * time.Minute)},
		Joined: true,
	}, got)

	// Lowering the limit below the member count keeps the members in.
	room, err = s.UpdateRoom(ctx, key, store.RoomOptionsPatch{MaxMembers: new(uint32(1))}, at(3*time.Minute))
	noErr(t, "UpdateRoom", err)
	got = join(t, s, store.JoinParams{Room: key, UserID: "u3", SessionID: "s9", Now: at(4 * time.Minute)})
	check(t, "Join of an overfull room by a member", store.JoinResult{
		Room:   room,
		Member: store.Member{UserID: "u3", JoinTime: at(2 * time.Minute), Sessions: 1},
	}, got)
	_, err = s.Join(ctx, store.JoinParams{Room: key, UserID: "u4", Admit: true, Now: at(5 * time.Minute)})
	wantErr(t, "Join of an overfull room", err, store.ErrRoomFull)

	// The limit holds for private rooms with Admit too.
	private := store.RoomKey{Namespace: "acme", Name: "private"}
	createRoom(t, s, private, store.RoomOptions{Private: true, MaxMembers: 1}, t0)
	join(t, s, store.JoinParams{Room: private, UserID: "u1", Admit: true, Now: t0})
	_, err = s.Join(ctx, store.JoinParams{Room: private, UserID: "u2", Admit: true, Now: t0})
	wantErr(t, "Join of a full private room with Admit", err, store.ErrRoomFull)
	check(t, "Stats", store.Stats{Rooms: 2, Members: 3, Sessions: 3}, stats(t, s, ""))
}

func testRemoveMember(t *testing.T, s store.Store) {
	ctx := t.Context()
	key := store.RoomKey{Namespace: "acme", Name: "general"}
	createRoom(t, s, key, store.RoomOptions{}, t0)
	join(t, s, store.JoinParams{Room: key, UserID: "u1", SessionID: "s1", Now: t0})
	join(t, s, store.JoinParams{Room: key, UserID: "u1", SessionID: "s2", Now: t0})
	join(t, s, store.JoinParams{Room: key, UserID: "u2", SessionID: "s1", Now: t0})

	_, err := s.RemoveMember(ctx, store.RoomKey{Namespace: "acme", Name: "missing"}, "u1")
	wantErr(t, "RemoveMember of a missing room", err, store.ErrNotFound)

	removed, err := s.RemoveMember(ctx, key, "nobody")
	noErr(t, "RemoveMember", err)
	if removed {
		t.Error("RemoveMember of a non-member reported true")
	}
	removed, err = s.RemoveMember(ctx, key, "u1")
	noErr(t, "RemoveMember", err)
	if !removed {
		t.Error("RemoveMember of a member reported false")
	}
	removed, err = s.RemoveMember(ctx, key, "u1")
	noErr(t, "RemoveMember", err)
	if removed {
		t.Error("RemoveMember of a removed member reported true")
	}

	check(t, "MemberCount after RemoveMember", uint32(1), getRoom(t, s, key).MemberCount)
	check(t, "ListMembers after RemoveMember",
		[]store.Member{{UserID: "u2", JoinTime: t0, Sessions: 1}}, listMembers(t, s, key, "", 10))
	check(t, "Stats after RemoveMember", store.Stats{Rooms: 1, Members: 1, Sessions: 1}, stats(t, s, ""))
	_, _, err = s.Publish(ctx, store.PublishParams{Room: key, Sender: "u1", Payload: "x", Now: t0})
	wantErr(t, "Publish by a removed member", err, store.ErrNotMember)
	_, err = s.EndSession(ctx, key, "u1", "s1")
	wantErr(t, "EndSession of a removed member", err, store.ErrNotFound)

	// Joining again starts a new membership: its old sessions are gone.
	got := join(t, s, store.JoinParams{Room: key, UserID: "u1", SessionID: "s3", Now: at(time.Hour)})
	check(t, "Join after RemoveMember", store.Member{UserID: "u1", JoinTime: at(time.Hour), Sessions: 1}, got.Member)
	if !got.Joined {
		t.Error("Join after RemoveMember: Joined is false")
	}
}

func testEndSession(t *testing.T, s store.Store) {
	ctx := t.Context()
	key := store.RoomKey{Namespace: "acme", Name: "general"}
	createRoom(t, s, key, store.RoomOptions{}, t0)
	join(t, s, store.JoinParams{Room: key, UserID: "u1", SessionID: "s1", Now: t0})
	join(t, s, store.JoinParams{Room: key, UserID: "u1", SessionID: "s2", Now: at(time.Minute)})
	join(t, s, store.JoinParams{Room: key, UserID: "u2", SessionID: "s9", Now: t0})

	endSession := func(what, sessionID string, want uint32) {
		t.Helper()
		m, err := s.EndSession(ctx, key, "u1", sessionID)
		noErr(t, "EndSession "+what, err)
		check(t, "EndSession "+what, store.Member{UserID: "u1", JoinTime: t0, Sessions: want}, m)
	}
	endSession("of a session", "s1", 1)
	endSession("of an unknown session", "unknown", 1)
	endSession("of an ended session", "s1", 1)
	endSession("of another member's session", "s9", 1)
	endSession("of the last session", "s2", 0)

	// The member stays, offline, and may still publish.
	check(t, "ListMembers after EndSession", []store.Member{
		{UserID: "u1", JoinTime: t0},
		{UserID: "u2", JoinTime: t0, Sessions: 1},
	}, listMembers(t, s, key, "", 10))
	check(t, "MemberCount after EndSession", uint32(2), getRoom(t, s, key).MemberCount)
	publish(t, s, store.PublishParams{Room: key, Sender: "u1", Payload: "still here", Now: t0})

	_, err := s.EndSession(ctx, key, "nobody", "s1")
	wantErr(t, "EndSession of a non-member", err, store.ErrNotFound)
	_, err = s.EndSession(ctx, store.RoomKey{Namespace: "acme", Name: "missing"}, "u1", "s1")
	wantErr(t, "EndSession in a missing room", err, store.ErrNotFound)
}

func testListMembers(t *testing.T, s store.Store) {
	ctx := t.Context()
	key := store.RoomKey{Namespace: "acme", Name: "general"}
	createRoom(t, s, key, store.RoomOptions{}, t0)
	check(t, "ListMembers of an empty room", []store.Member(nil), listMembers(t, s, key, "", 10))

	// u05 joins first with no session, u01 last with four.
	var want []store.Member
	for i, u := range []string{"u05", "u04", "u03", "u02", "u01"} {
		m := store.Member{UserID: u, JoinTime: at(time.Duration(i) * time.Minute), Sessions: uint32(i)}
		join(t, s, store.JoinParams{Room: key, UserID: u, Now: m.JoinTime})
		for j := range i {
			join(t, s, store.JoinParams{Room: key, UserID: u, SessionID: fmt.Sprintf("s%d", j), Now: at(time.Hour)})
		}
		want = append([]store.Member{m}, want...)
	}

	tests := []struct {
		after string
		limit int
		want  []store.Member
	}{
		{"", 10, want},
		{"", 2, want[:2]},
		{"u02", 2, want[2:4]},
		{"u025", 10, want[2:]},
		{"u", 1, want[:1]},
		{"u05", 10, nil},
		{"v", 10, nil},
	}
	for _, tt := range tests {
		check(t, fmt.Sprintf("ListMembers after %q limit %d", tt.after, tt.limit), tt.want, listMembers(t, s, key, tt.after, tt.limit))
	}

	var got []store.Member
	after := ""
	for range len(want) + 1 {
		page := listMembers(t, s, key, after, 2)
		if len(page) > 2 {
			t.Fatalf("ListMembers: page of %d members, limit 2", len(page))
		}
		if len(page) == 0 {
			break
		}
		got = append(got, page...)
		after = page[len(page)-1].UserID
	}
	check(t, "ListMembers pages", want, got)

	_, err := s.ListMembers(ctx, store.RoomKey{Namespace: "acme", Name: "missing"}, "", 10)
	wantErr(t, "ListMembers of a missing room", err, store.ErrNotFound)
}
