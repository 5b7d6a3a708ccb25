package redis

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/parleyhq/parley/services/rooms/internal/store"
)

// The events channel carries, for each new message, "m" then origin, ns,
// name and the stored message, separated by NULs (the publish script sends
// it), and for each announced event "e" then origin, a NUL and the event's
// bytes.

// Follower receives what the other stores on the same Redis and prefix
// publish. Its functions run one at a time, on Follow's goroutine.
type Follower struct {
	// Message is told of each message another store stored, in the order
	// Redis stored them, which is offset order per room.
	Message func(store.Message)
	// Event is given the bytes of each event another store announced.
	Event func([]byte)
	// Lost is called when the connection to Redis was lost and is back:
	// what was published meanwhile was not seen.
	Lost func()
}

// Follow subscribes to the events channel and returns once Redis has
// confirmed it, so that everything published from then on reaches f. It
// delivers until ctx ends or stop is called; stop waits for it to finish.
func (s *Store) Follow(ctx context.Context, f Follower) (stop func(), err error) {
	ps := s.c.Subscribe(ctx, s.p+"events")
	if _, err := ps.Receive(ctx); err != nil {
		ps.Close()
		return nil, fmt.Errorf("follow %sevents: %w", s.p, err)
	}
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		s.follow(ctx, ps, f)
	}()
	return func() {
		cancel()
		ps.Close()
		<-done
	}, nil
}

func (s *Store) follow(ctx context.Context, ps *goredis.PubSub, f Follower) {
	// After an error the client reconnects and subscribes again on the
	// next Receive; the confirmation that follows marks the loss.
	broken := false
	for ctx.Err() == nil {
		msg, err := ps.Receive(ctx)
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, goredis.ErrClosed) {
				return
			}
			broken = true
			select {
			case <-ctx.Done():
			case <-time.After(100 * time.Millisecond):
			}
			continue
		}
		switch m := msg.(type) {
		case *goredis.Subscription:
			if broken && m.Kind == "subscribe" && f.Lost != nil {
				f.Lost()
			}
			broken = false
		case *goredis.Message:
			s.deliver(m.Payload, f)
		}
	}
}

func (s *Store) deliver(payload string, f Follower) {
	if payload == "" {
		return
	}
	kind, rest := payload[0], payload[1:]
	origin, rest, ok := strings.Cut(rest, "\x00")
	if !ok || origin == s.origin {
		return
	}
	switch kind {
	case 'e':
		if f.Event != nil {
			f.Event([]byte(rest))
		}
	case 'm':
		ns, rest, ok1 := strings.Cut(rest, "\x00")
		name, enc, ok2 := strings.Cut(rest, "\x00")
		if !ok1 || !ok2 || f.Message == nil {
			return
		}
		// A message that does not decode is not passed on: subscribers
		// fill the gap from history when the room's next one arrives.
		if m, err := decodeMessage(store.RoomKey{Namespace: ns, Name: name}, enc); err == nil {
			f.Message(m)
		}
	}
}

// Announce publishes an event's bytes to the stores that follow this one's
// Redis and prefix.
func (s *Store) Announce(ctx context.Context, event []byte) error {
	if err := s.c.Publish(ctx, s.p+"events", "e"+s.origin+"\x00"+string(event)).Err(); err != nil {
		return fmt.Errorf("announce: %w", err)
	}
	return nil
}
