package storetest

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/parleyhq/parley/services/rooms/internal/store"
)

// committedLog records what a store passes to its Committed hook.
type committedLog struct {
	mu   sync.Mutex
	msgs []store.Message
	last map[store.RoomKey]uint64 // highest offset passed, by room
}

func (l *committedLog) add(msgs []store.Message) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.last == nil {
		l.last = make(map[store.RoomKey]uint64)
	}
	l.msgs = append(l.msgs, msgs...) // copies: the store may reuse msgs
	for _, m := range msgs {
		l.last[m.Room] = max(l.last[m.Room], m.Offset)
	}
}

// passed reports whether the hook was given a message of room k at offset
// off or later.
func (l *committedLog) passed(k store.RoomKey, off uint64) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.last[k] >= off
}

// of returns the messages of room k passed so far, in the order of passing.
func (l *committedLog) of(k store.RoomKey) []store.Message {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []store.Message
	for _, m := range l.msgs {
		if m.Room == k {
			out = append(out, m)
		}
	}
	return out
}

func testCommitted(t *testing.T, s store.Store, log *committedLog) {
	ctx := t.Context()
	key := store.RoomKey{Namespace: "acme", Name: "general"}
	createRoom(t, s, key, store.RoomOptions{}, t0)
	addMember(t, s, key, "u1")

	first := publish(t, s, store.PublishParams{Room: key, Sender: "u1", Payload: "first", ClientMessageID: "c1", Now: t0, DedupeSince: at(-time.Hour)})
	check(t, "messages passed once Publish returned", []store.Message{first}, log.of(key))

	_, dup, err := s.Publish(ctx, store.PublishParams{Room: key, Sender: "u1", Payload: "first", ClientMessageID: "c1", Now: t0, DedupeSince: at(-time.Hour)})
	noErr(t, "Publish of a duplicate", err)
	if !dup {
		t.Fatal("Publish of a duplicate: not reported as one")
	}
	_, _, err = s.Publish(ctx, store.PublishParams{Room: key, Sender: "stranger", Payload: "x", Now: t0})
	wantErr(t, "Publish by a stranger", err, store.ErrNotMember)
	check(t, "messages passed after a duplicate and a refused publish", []store.Message{first}, log.of(key))

	// Concurrent publishes to a few rooms, each retried once, share commits:
	// every new one is passed before its Publish returns, once, in offset
	// order within its room.
	const workers, perWorker = 8, 50
	rooms := []store.RoomKey{key, {Namespace: "acme", Name: "busy"}, {Namespace: "other", Name: "busy"}}
	for _, k := range rooms[1:] {
		createRoom(t, s, k, store.RoomOptions{}, t0)
	}
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := range perWorker {
				p := store.PublishParams{
					Room:            rooms[(w+i)%len(rooms)],
					Payload:         fmt.Sprintf("w%d-%d", w, i),
					ClientMessageID: fmt.Sprintf("w%d-%d", w, i),
					Now:             at(time.Duration(i) * time.Millisecond),
					DedupeSince:     at(-time.Hour),
				}
				for range 2 {
					m, _, err := s.Publish(ctx, p)
					if err != nil {
						t.Errorf("Publish %s: %v", p.Payload, err)
						return
					}
					if !log.passed(m.Room, m.Offset) {
						t.Errorf("Publish %s returned offset %d before passing it to the Committed hook", p.Payload, m.Offset)
					}
				}
			}
		})
	}
	wg.Wait()
	for _, k := range rooms {
		check(t, "messages of "+k.Namespace+"/"+k.Name+" passed to the Committed hook", All(t, s, k), log.of(k))
	}
}
