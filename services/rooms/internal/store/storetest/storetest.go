// Package storetest is the conformance suite for store.Store backends. A
// backend's tests call Run with a constructor for empty stores; passing it is
// what makes a backend usable by the rooms service.
//
// The suite drives time only through the Now, now and DedupeSince arguments,
// so it needs no sleeps and runs the same against any backend.
package storetest

import (
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/parleyhq/parley/services/rooms/internal/store"
)

// Run runs the suite. newStore must return an empty store, opened with the
// given Committed hook (which may be nil), each time it is called; each
// subtest gets its own, and Run closes it when the subtest ends.
func Run(t *testing.T, newStore func(t *testing.T, committed store.Committed) store.Store) {
	open := func(t *testing.T, committed store.Committed) store.Store {
		s := newStore(t, committed)
		t.Cleanup(func() {
			if err := s.Close(); err != nil {
				t.Errorf("Close: %v", err)
			}
		})
		return s
	}
	tests := []struct {
		name string
		run  func(t *testing.T, s store.Store)
	}{
		{"CreateAndGetRoom", testCreateAndGetRoom},
		{"ListRooms", testListRooms},
		{"ListRoomsPagination", testListRoomsPagination},
		{"UpdateRoom", testUpdateRoom},
		{"DeleteRoom", testDeleteRoom},
		{"Epochs", testEpochs},
		{"DeleteEmptyRooms", testDeleteEmptyRooms},
		{"Join", testJoin},
		{"JoinPrivate", testJoinPrivate},
		{"JoinFull", testJoinFull},
		{"RemoveMember", testRemoveMember},
		{"EndSession", testEndSession},
		{"Leases", testLeases},
		{"EphemeralWithoutSession", testEphemeralWithoutSession},
		{"ListMembers", testListMembers},
		{"Publish", testPublish},
		{"PublishReadOnly", testPublishReadOnly},
		{"PublishDedupe", testPublishDedupe},
		{"PublishTrim", testPublishTrim},
		{"History", testHistory},
		{"Purge", testPurge},
		{"SweepRetention", testSweepRetention},
		{"SweepDedupe", testSweepDedupe},
		{"Stats", testStats},
		{"ConcurrentPublish", testConcurrentPublish},
		{"ConcurrentPublishTrim", testConcurrentPublishTrim},
		{"ConcurrentDedupe", testConcurrentDedupe},
		{"ConcurrentJoin", testConcurrentJoin},
		{"SavedSessions", testSavedSessions},
		{"SavedSessionsInOneCall", testSavedSessionsInOneCall},
		{"ConcurrentTakeSession", testConcurrentTakeSession},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.run(t, open(t, nil))
		})
	}
	t.Run("Committed", func(t *testing.T) {
		var log committedLog
		testCommitted(t, open(t, log.add), &log)
	})
}

// t0 is the suite's reference time. It has nanoseconds and a zone other than
// UTC so that a backend must keep the instant exactly, whatever the location.
var t0 = time.Date(2031, time.March, 4, 5, 6, 7, 123456789, time.FixedZone("UTC+2", 2*60*60))

func at(d time.Duration) time.Time { return t0.Add(d) }

// check reports a difference between want and got. Times compare as
// instants, and nil slices equal empty ones.
// check compares everything but rooms' epochs, which are random: testEpochs
// checks those.
func check(t *testing.T, what string, want, got any) {
	t.Helper()
	if d := cmp.Diff(want, got, cmpopts.EquateEmpty(), cmpopts.IgnoreFields(store.Room{}, "Epoch")); d != "" {
		t.Errorf("%s mismatch (-want +got):\n%s", what, d)
	}
}

func noErr(t *testing.T, what string, err error) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

func wantErr(t *testing.T, what string, err, target error) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Fatalf("%s: got error %v, want %v", what, err, target)
	}
}

func createRoom(t *testing.T, s store.Store, key store.RoomKey, opts store.RoomOptions, now time.Time) store.Room {
	t.Helper()
	r, err := s.CreateRoom(t.Context(), key, opts, now)
	noErr(t, "CreateRoom "+key.Name, err)
	return r
}

func getRoom(t *testing.T, s store.Store, key store.RoomKey) store.Room {
	t.Helper()
	r, err := s.GetRoom(t.Context(), key)
	noErr(t, "GetRoom "+key.Name, err)
	return r
}

func join(t *testing.T, s store.Store, p store.JoinParams) store.JoinResult {
	t.Helper()
	res, err := s.Join(t.Context(), p)
	noErr(t, "Join "+p.UserID, err)
	return res
}

// addMember joins userID to key without a session at t0.
func addMember(t *testing.T, s store.Store, key store.RoomKey, userID string) {
	t.Helper()
	join(t, s, store.JoinParams{Room: key, UserID: userID, Admit: true, Now: t0})
}

func listMembers(t *testing.T, s store.Store, key store.RoomKey, after string, limit int) []store.Member {
	t.Helper()
	ms, err := s.ListMembers(t.Context(), key, after, limit)
	noErr(t, "ListMembers", err)
	return ms
}

// publish publishes a message that must be new.
func publish(t *testing.T, s store.Store, p store.PublishParams) store.Message {
	t.Helper()
	m, dup, err := s.Publish(t.Context(), p)
	noErr(t, "Publish "+p.Payload, err)
	if dup {
		t.Fatalf("Publish %q: reported a duplicate", p.Payload)
	}
	return m
}

// publishN publishes n system messages at t0, t0+1s, ... and returns them.
func publishN(t *testing.T, s store.Store, key store.RoomKey, n int) []store.Message {
	t.Helper()
	msgs := make([]store.Message, n)
	for i := range msgs {
		msgs[i] = publish(t, s, store.PublishParams{
			Room:    key,
			Payload: fmt.Sprintf("m%d", i+1),
			Now:     at(time.Duration(i) * time.Second),
		})
	}
	return msgs
}

func history(t *testing.T, s store.Store, q store.HistoryQuery) []store.Message {
	t.Helper()
	msgs, err := s.History(t.Context(), q)
	noErr(t, "History", err)
	return msgs
}

// All reads every message a room keeps.
func All(t *testing.T, s store.Store, key store.RoomKey) []store.Message {
	t.Helper()
	return history(t, s, store.HistoryQuery{Room: key, Mode: store.HistoryAfter, Limit: 1 << 20})
}

func stats(t *testing.T, s store.Store, namespace string) store.Stats {
	t.Helper()
	st, err := s.Stats(t.Context(), namespace)
	noErr(t, "Stats "+namespace, err)
	return st
}

// Payloads returns the messages' payloads, in order.
func Payloads(msgs []store.Message) []string {
	out := make([]string, len(msgs))
	for i, m := range msgs {
		out[i] = m.Payload
	}
	return out
}

// Offsets returns the messages' offsets, in order.
func Offsets(msgs []store.Message) []uint64 {
	out := make([]uint64, len(msgs))
	for i, m := range msgs {
		out[i] = m.Offset
	}
	return out
}

// seq returns from, from+1, ..., to.
func seq(from, to uint64) []uint64 {
	var out []uint64
	for o := from; o <= to; o++ {
		out = append(out, o)
	}
	return out
}

// pick returns the messages of msgs with the given offsets, in that order.
func pick(msgs []store.Message, offs ...uint64) []store.Message {
	var out []store.Message
	for _, o := range offs {
		i := slices.IndexFunc(msgs, func(m store.Message) bool { return m.Offset == o })
		out = append(out, msgs[i])
	}
	return out
}
