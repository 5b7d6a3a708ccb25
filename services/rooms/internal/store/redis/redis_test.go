package redis_test

import (
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	goredis "github.com/redis/go-redis/v9"

	"github.com/parleyhq/parley/services/kit/redistest"
	"github.com/parleyhq/parley/services/rooms/internal/store"
	"github.com/parleyhq/parley/services/rooms/internal/store/redis"
	"github.com/parleyhq/parley/services/rooms/internal/store/storetest"
)

// TestConformance runs the store suite on one real redis-server, each
// subtest under a prefix of its own, as several deployments sharing a Redis
// would be.
func TestConformance(t *testing.T) {
	addr := redistest.Start(t)
	var n atomic.Int64
	storetest.Run(t, func(t *testing.T, committed store.Committed) store.Store {
		c := goredis.NewClient(&goredis.Options{Addr: addr})
		s, err := redis.Open(t.Context(), c, redis.Options{
			Prefix:    fmt.Sprintf("t%d:", n.Add(1)),
			Committed: committed,
		})
		if err != nil {
			t.Fatalf("Open: %v", err)
		}
		return s
	})
}

func open(t *testing.T, addr, prefix string) *redis.Store {
	t.Helper()
	s, err := redis.Open(t.Context(), goredis.NewClient(&goredis.Options{Addr: addr}), redis.Options{Prefix: prefix})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// TestFollow checks that a store is told of what the other stores on the
// same Redis and prefix publish and announce, not of its own, nor of those
// of another prefix; and that a lost connection is reported once it is back.
func TestFollow(t *testing.T) {
	ctx := t.Context()
	addr := redistest.Start(t)
	a, b, other := open(t, addr, "p:"), open(t, addr, "p:"), open(t, addr, "q:")
	key := store.RoomKey{Namespace: "/", Name: "lobby"}
	t0 := time.Date(2031, time.March, 4, 5, 6, 7, 123456789, time.UTC)
	for _, s := range []*redis.Store{a, other} {
		if _, err := s.CreateRoom(ctx, key, store.RoomOptions{}, t0); err != nil {
			t.Fatal(err)
		}
	}

	msgs, events, lost := make(chan store.Message, 10), make(chan string, 10), make(chan struct{}, 10)
	stop, err := a.Follow(ctx, redis.Follower{
		Message: func(m store.Message) { msgs <- m },
		Event:   func(e []byte) { events <- string(e) },
		Lost:    func() { lost <- struct{}{} },
	})
	if err != nil {
		t.Fatal(err)
	}
	defer stop()

	publish := func(s *redis.Store, payload string) store.Message {
		t.Helper()
		m, _, err := s.Publish(ctx, store.PublishParams{Room: key, Payload: payload, ClientMessageID: "c-" + payload, Now: t0})
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	publish(a, "own")
	publish(other, "elsewhere")
	want := publish(b, "from b\x00with a NUL")
	if err := a.Announce(ctx, []byte("own event")); err != nil {
		t.Fatal(err)
	}
	if err := b.Announce(ctx, []byte("b event")); err != nil {
		t.Fatal(err)
	}

	timeout := time.After(10 * time.Second)
	select {
	case got := <-msgs:
		if d := cmp.Diff(want, got); d != "" {
			t.Errorf("message mismatch (-want +got):\n%s", d)
		}
	case <-timeout:
		t.Fatal("no message from b")
	}
	select {
	case got := <-events:
		if got != "b event" {
			t.Errorf("event %q, want %q", got, "b event")
		}
	case <-timeout:
		t.Fatal("no event from b")
	}

	// Redis drops the subscriber's connection; the client subscribes again.
	killer := goredis.NewClient(&goredis.Options{Addr: addr})
	defer killer.Close()
	if err := killer.Do(ctx, "CLIENT", "KILL", "TYPE", "pubsub").Err(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-lost:
	case <-timeout:
		t.Fatal("Lost not called after the connection was killed")
	}
	want = publish(b, "after the loss")
	select {
	case got := <-msgs:
		if d := cmp.Diff(want, got); d != "" {
			t.Errorf("message after the loss mismatch (-want +got):\n%s", d)
		}
	case <-timeout:
		t.Fatal("no message from b after the loss")
	}
	if len(msgs)+len(events) != 0 {
		t.Errorf("unexpected deliveries: %d messages, %d events", len(msgs), len(events))
	}
}
