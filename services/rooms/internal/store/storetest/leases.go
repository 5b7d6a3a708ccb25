package storetest

import (
	"testing"
	"time"

	"github.com/parleyhq/parley/services/rooms/internal/store"
)

// testLeases holds sessions under two leases, lets one lapse, and checks that
// exactly its sessions end, that ephemeral members left without a session
// leave (and are reported), and that other members stay, offline.
func testLeases(t *testing.T, s store.Store) {
	ctx := t.Context()
	key := store.RoomKey{Namespace: "acme", Name: "lobby"}
	createRoom(t, s, key, store.RoomOptions{}, t0)
	keep := func(lease string, expire time.Time, wantCreated bool) {
		t.Helper()
		created, err := s.KeepLease(ctx, lease, expire)
		noErr(t, "KeepLease "+lease, err)
		check(t, "KeepLease "+lease+" created", wantCreated, created)
	}
	keep("gw-a", at(10*time.Second), true)
	keep("gw-b", at(10*time.Second), true)
	join(t, s, store.JoinParams{Room: key, UserID: "guest-1", SessionID: "s1", Lease: "gw-a", Ephemeral: true, Now: t0})
	join(t, s, store.JoinParams{Room: key, UserID: "alice", SessionID: "s2", Lease: "gw-a", Now: t0})
	join(t, s, store.JoinParams{Room: key, UserID: "alice", SessionID: "s3", Lease: "gw-b", Now: t0})
	join(t, s, store.JoinParams{Room: key, UserID: "bob", SessionID: "s4", Lease: "gw-a", Now: t0})
	join(t, s, store.JoinParams{Room: key, UserID: "carol", SessionID: "s5", Now: t0})

	left, err := s.ExpireLeases(ctx, at(5*time.Second))
	noErr(t, "ExpireLeases before expiry", err)
	check(t, "left before expiry", []store.Membership(nil), left)

	// gw-b is kept; gw-a lapses.
	keep("gw-b", at(30*time.Second), false)
	left, err = s.ExpireLeases(ctx, at(20*time.Second))
	noErr(t, "ExpireLeases", err)
	check(t, "left", []store.Membership{{Room: key, UserID: "guest-1"}}, left)
	check(t, "ListMembers after expiry", []store.Member{
		{UserID: "alice", JoinTime: t0, Sessions: 1},
		{UserID: "bob", JoinTime: t0},
		{UserID: "carol", JoinTime: t0, Sessions: 1},
	}, listMembers(t, s, key, "", 10))
	check(t, "MemberCount after expiry", uint32(3), getRoom(t, s, key).MemberCount)

	// A lease is kept again by the gateway that holds it, which learns that
	// it lapsed: sessions joined under it from then on last.
	keep("gw-a", at(40*time.Second), true)
	join(t, s, store.JoinParams{Room: key, UserID: "bob", SessionID: "s6", Lease: "gw-a", Now: at(21 * time.Second)})
	left, err = s.ExpireLeases(ctx, at(35*time.Second))
	noErr(t, "ExpireLeases after b lapsed", err)
	check(t, "left after b lapsed", []store.Membership(nil), left)
	check(t, "ListMembers after b lapsed", []store.Member{
		{UserID: "alice", JoinTime: t0},
		{UserID: "bob", JoinTime: t0, Sessions: 1},
		{UserID: "carol", JoinTime: t0, Sessions: 1},
	}, listMembers(t, s, key, "", 10))
}

// testEphemeralWithoutSession checks the other ways an ephemeral member is
// left without a session, besides its lease lapsing: its last session
// ended, or it joined without one. Either way it stays until ExpireLeases,
// which removes and reports it, as it does not a member who is not
// ephemeral, or a room deleted meanwhile.
func testEphemeralWithoutSession(t *testing.T, s store.Store) {
	ctx := t.Context()
	key := store.RoomKey{Namespace: "acme", Name: "lobby"}
	gone := store.RoomKey{Namespace: "acme", Name: "gone"}
	createRoom(t, s, key, store.RoomOptions{}, t0)
	createRoom(t, s, gone, store.RoomOptions{}, t0)
	_, err := s.KeepLease(ctx, "gw-a", at(time.Hour))
	noErr(t, "KeepLease", err)
	join(t, s, store.JoinParams{Room: key, UserID: "guest-1", SessionID: "s1", Lease: "gw-a", Ephemeral: true, Now: t0})
	join(t, s, store.JoinParams{Room: key, UserID: "guest-1", SessionID: "s2", Lease: "gw-a", Ephemeral: true, Now: t0})
	join(t, s, store.JoinParams{Room: key, UserID: "guest-2", Ephemeral: true, Now: t0})
	join(t, s, store.JoinParams{Room: key, UserID: "alice", SessionID: "s3", Lease: "gw-a", Now: t0})
	join(t, s, store.JoinParams{Room: gone, UserID: "guest-3", Ephemeral: true, Now: t0})
	noErr(t, "DeleteRoom", s.DeleteRoom(ctx, gone))

	for _, e := range []struct{ user, session string }{{"guest-1", "s1"}, {"guest-1", "s2"}, {"alice", "s3"}} {
		_, err := s.EndSession(ctx, key, e.user, e.session)
		noErr(t, "EndSession "+e.session, err)
	}
	check(t, "ListMembers before ExpireLeases", []store.Member{
		{UserID: "alice", JoinTime: t0},
		{UserID: "guest-1", JoinTime: t0},
		{UserID: "guest-2", JoinTime: t0},
	}, listMembers(t, s, key, "", 10))

	left, err := s.ExpireLeases(ctx, at(time.Second))
	noErr(t, "ExpireLeases", err)
	check(t, "left", []store.Membership{{Room: key, UserID: "guest-1"}, {Room: key, UserID: "guest-2"}}, left)
	check(t, "ListMembers after ExpireLeases", []store.Member{{UserID: "alice", JoinTime: t0}}, listMembers(t, s, key, "", 10))
	left, err = s.ExpireLeases(ctx, at(2*time.Second))
	noErr(t, "ExpireLeases again", err)
	check(t, "left again", []store.Membership(nil), left)
}
