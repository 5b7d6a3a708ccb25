package storetest

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/parleyhq/parley/services/rooms/internal/store"
)

func testSavedSessions(t *testing.T, s store.Store) {
	ctx := t.Context()
	_, err := s.TakeSession(ctx, "/", "p1", t0)
	if !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("TakeSession of an unknown id: err %v, want ErrNotFound", err)
	}
	noErr(t, "SaveSession", save(ctx, s, "/", "p1", []byte("first"), at(time.Minute)))
	noErr(t, "SaveSession again", save(ctx, s, "/", "p1", []byte("second"), at(time.Minute)))
	noErr(t, "SaveSession other namespace", save(ctx, s, "/chat", "p1", []byte("chat"), at(time.Minute)))

	got, err := s.TakeSession(ctx, "/", "p1", at(time.Second))
	noErr(t, "TakeSession", err)
	check(t, "TakeSession data (the later save wins)", "second", string(got))
	if _, err := s.TakeSession(ctx, "/", "p1", at(time.Second)); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("second TakeSession: err %v, want ErrNotFound (a session is taken once)", err)
	}
	got, err = s.TakeSession(ctx, "/chat", "p1", at(time.Second))
	noErr(t, "TakeSession other namespace", err)
	check(t, "TakeSession data of the other namespace", "chat", string(got))

	noErr(t, "SaveSession", save(ctx, s, "/", "p2", []byte("x"), at(time.Minute)))
	if _, err := s.TakeSession(ctx, "/", "p2", at(time.Minute)); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("TakeSession at its expiry: err %v, want ErrNotFound", err)
	}

	noErr(t, "SaveSession", save(ctx, s, "/", "p3", []byte("x"), at(time.Minute)))
	noErr(t, "SaveSession", save(ctx, s, "/", "p4", []byte("y"), at(time.Hour)))
	noErr(t, "Sweep", s.Sweep(ctx, at(2*time.Minute), at(-time.Hour)))
	noErr(t, "SaveSession", save(ctx, s, "/", "p3", []byte("z"), at(time.Hour)))
	got, err = s.TakeSession(ctx, "/", "p4", at(3*time.Minute))
	noErr(t, "TakeSession of a session Sweep must keep", err)
	check(t, "data kept by Sweep", "y", string(got))
}

// save stores one session.
func save(ctx context.Context, s store.Store, namespace, id string, data []byte, expire time.Time) error {
	return s.SaveSessions(ctx, []store.Session{{Namespace: namespace, ID: id, Data: data, Expire: expire}})
}

func testSavedSessionsInOneCall(t *testing.T, s store.Store) {
	ctx := t.Context()
	noErr(t, "SaveSessions", s.SaveSessions(ctx, []store.Session{
		{Namespace: "/", ID: "b1", Data: []byte("first"), Expire: at(time.Minute)},
		{Namespace: "/", ID: "b2", Data: []byte("other"), Expire: at(time.Minute)},
		{Namespace: "/", ID: "b1", Data: []byte("last"), Expire: at(time.Minute)},
	}))
	for id, want := range map[string]string{"b1": "last", "b2": "other"} {
		got, err := s.TakeSession(ctx, "/", id, at(time.Second))
		noErr(t, "TakeSession "+id, err)
		check(t, "data of "+id+" (a session listed twice keeps its last record)", want, string(got))
	}
}

func testConcurrentTakeSession(t *testing.T, s store.Store) {
	ctx := t.Context()
	noErr(t, "SaveSession", save(ctx, s, "/", "p", []byte("once"), at(time.Hour)))
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		wins int
	)
	for range 8 {
		wg.Go(func() {
			if _, err := s.TakeSession(ctx, "/", "p", t0); err == nil {
				mu.Lock()
				wins++
				mu.Unlock()
			} else if !errors.Is(err, store.ErrNotFound) {
				t.Errorf("TakeSession: %v", err)
			}
		})
	}
	wg.Wait()
	check(t, "callers that took the session", 1, wins)
}
