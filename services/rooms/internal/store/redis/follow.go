package redis

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/parleyhq/parley/services/rooms/internal/store"
)

// Each room has a channel, "<prefix>ch{ns\0name}", that carries each new
// message as "m", the origin, a NUL and the stored message (the publish
// script sends it), and each announced event as "e", the origin, a NUL and
// the event's bytes.

// Follower receives what the other stores on the same Redis and prefix
// publish to the rooms watched. Its functions run one at a time, on the
// goroutine Follow starts.
type Follower struct {
	// Message is told of each message another store stored, in the order
	// Redis stored them, which is offset order per room.
	Message func(store.Message)
	// Event is given the bytes of each event another store announced.
	Event func(room store.RoomKey, event []byte)
	// Lost is called when the connection to Redis was lost and is back:
	// what was published meanwhile was not seen.
	Lost func()
}

// Following is a store's subscription to the rooms it watches.
type Following struct {
	s  *Store
	ps *goredis.PubSub
	f  Follower

	mu       sync.Mutex
	watchers map[string]int             // by channel: Watch calls not yet released
	pending  map[string][]chan struct{} // by channel: one per subscription sent, closed when Redis confirms it
	cancel   context.CancelFunc
	done     chan struct{}
}

// control is a channel nothing is published on: a subscription to it keeps
// the connection up while no room is watched.
const control = "control"

// Follow opens the connection on which the rooms Watch names are followed,
// and delivers to f until ctx ends or Stop is called.
func (s *Store) Follow(ctx context.Context, f Follower) (*Following, error) {
	ps := s.c.Subscribe(ctx, s.p+control)
	if _, err := ps.Receive(ctx); err != nil {
		ps.Close()
		return nil, fmt.Errorf("follow: %w", err)
	}
	ctx, cancel := context.WithCancel(ctx)
	fl := &Following{s: s, ps: ps, f: f, watchers: map[string]int{}, pending: map[string][]chan struct{}{},
		cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(fl.done)
		fl.follow(ctx)
	}()
	return fl, nil
}

// Stop ends the subscription and waits for deliveries to stop.
func (fl *Following) Stop() {
	fl.cancel()
	fl.ps.Close()
	<-fl.done
}

// Watch makes the rooms' messages and events reach the Follower, and
// returns once Redis has confirmed it, so that everything published to them
// from then on does. Each Watch must be released once, with the function it
// returns.
func (fl *Following) Watch(ctx context.Context, rooms []store.RoomKey) (release func(), err error) {
	var channels, subscribe []string
	var waits []chan struct{}
	fl.mu.Lock()
	for _, k := range rooms {
		ch := fl.s.key("ch", k)
		channels = append(channels, ch)
		fl.watchers[ch]++
		switch q := fl.pending[ch]; {
		case fl.watchers[ch] == 1:
			w := make(chan struct{})
			fl.pending[ch] = append(q, w)
			subscribe = append(subscribe, ch)
			waits = append(waits, w)
		case len(q) > 0: // watched, not confirmed yet
			waits = append(waits, q[len(q)-1])
		}
	}
	if len(subscribe) > 0 {
		// Sent under the lock so that commands reach Redis in the order
		// their confirmations are expected in pending.
		err = fl.ps.Subscribe(ctx, subscribe...)
	}
	fl.mu.Unlock()
	release = func() { fl.unwatch(channels) }
	if err != nil {
		release()
		return nil, fmt.Errorf("watch: %w", err)
	}
	for _, w := range waits {
		select {
		case <-w:
		case <-ctx.Done():
			release()
			return nil, fmt.Errorf("watch: %w", ctx.Err())
		case <-fl.done:
			release()
			return nil, errors.New("watch: no longer following")
		}
	}
	return release, nil
}

func (fl *Following) unwatch(channels []string) {
	var drop []string
	fl.mu.Lock()
	defer fl.mu.Unlock()
	for _, ch := range channels {
		if fl.watchers[ch]--; fl.watchers[ch] == 0 {
			delete(fl.watchers, ch)
			drop = append(drop, ch)
		}
	}
	if len(drop) > 0 {
		// A failure leaves deliveries that nothing waits for, which the
		// hub drops; the next loss of the connection ends them.
		_ = fl.ps.Unsubscribe(context.Background(), drop...)
	}
}

func (fl *Following) follow(ctx context.Context) {
	// After an error the client reconnects and subscribes again on the
	// next Receive; the confirmations that follow mark the loss.
	broken := false
	for ctx.Err() == nil {
		msg, err := fl.ps.Receive(ctx)
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
			if m.Kind != "subscribe" {
				continue
			}
			// Confirmations come in the order the subscriptions were
			// sent; after a loss, the client's own come first, for
			// every channel it had.
			fl.mu.Lock()
			if q := fl.pending[m.Channel]; len(q) > 0 {
				close(q[0])
				if len(q) == 1 {
					delete(fl.pending, m.Channel)
				} else {
					fl.pending[m.Channel] = q[1:]
				}
			}
			fl.mu.Unlock()
			if broken && fl.f.Lost != nil {
				fl.f.Lost()
			}
			broken = false
		case *goredis.Message:
			fl.deliver(m.Channel, m.Payload)
		}
	}
}

func (fl *Following) deliver(channel, payload string) {
	tag, ok := strings.CutPrefix(channel, fl.s.p+"ch{")
	tag, ok2 := strings.CutSuffix(tag, "}")
	ns, name, ok3 := strings.Cut(tag, "\x00")
	if !ok || !ok2 || !ok3 || payload == "" {
		return
	}
	room := store.RoomKey{Namespace: ns, Name: name}
	kind, rest := payload[0], payload[1:]
	origin, rest, ok := strings.Cut(rest, "\x00")
	if !ok || origin == fl.s.origin {
		return
	}
	switch kind {
	case 'e':
		if fl.f.Event != nil {
			fl.f.Event(room, []byte(rest))
		}
	case 'm':
		// A message that does not decode is not passed on: subscribers
		// fill the gap from history when the room's next one arrives.
		if m, err := decodeMessage(room, rest); err == nil && fl.f.Message != nil {
			fl.f.Message(m)
		}
	}
}

// Announce publishes an event's bytes to the stores that watch room.
func (s *Store) Announce(ctx context.Context, room store.RoomKey, event []byte) error {
	if err := s.c.Publish(ctx, s.key("ch", room), "e"+s.origin+"\x00"+string(event)).Err(); err != nil {
		return fmt.Errorf("announce: %w", err)
	}
	return nil
}
