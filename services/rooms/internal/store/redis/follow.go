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

// Each room has a shard channel, "<prefix>ch{ns\0name}", in its keys' slot,
// that carries each new message as "m", the origin, a NUL and the stored
// message (the publish script sends it), and each announced event as "e",
// the origin, a NUL and the event's bytes.

// Follower receives what the other stores on the same Redis and prefix
// publish to the rooms watched. Its functions run one at a time, on
// goroutines the Following starts.
type Follower struct {
	// Message is told of each message another store stored, in the order
	// Redis stored them, which is offset order per room.
	Message func(store.Message)
	// Event is given the bytes of each event another store announced.
	Event func(room store.RoomKey, event []byte)
	// Lost is called when a connection to Redis was lost and is back, or
	// a room's slot moved to another Cluster node: what was published
	// meanwhile was not seen.
	Lost func()
}

// Following is a store's subscription to the rooms it watches: one
// connection to each Redis node that holds watched rooms (the one server,
// when there is no Cluster), subscribed to their shard channels.
type Following struct {
	s      *Store
	f      Follower
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	calls sync.Mutex // the Follower's functions run one at a time

	mu       sync.Mutex
	watchers map[string]int             // by channel: Watch calls not yet released
	pending  map[string][]chan struct{} // by channel: one per SSUBSCRIBE sent, closed when Redis confirms it
	unsubs   map[string]int             // by channel: SUNSUBSCRIBEs sent, not yet confirmed
	conns    map[string]*conn           // by node address
	connOf   map[string]*conn           // by channel watched
	lost     bool                       // the next confirmation follows a loss, to report
}

// conn is one connection of a Following, to one node.
type conn struct {
	addr string
	ps   *goredis.PubSub
}

// Follow checks that Redis answers and returns a Following that delivers
// to f, on connections opened as Watch needs them, until ctx ends or Stop
// is called.
func (s *Store) Follow(ctx context.Context, f Follower) (*Following, error) {
	if err := s.c.Ping(ctx).Err(); err != nil {
		return nil, fmt.Errorf("follow: %w", unavailable(err))
	}
	ctx, cancel := context.WithCancel(ctx)
	return &Following{s: s, f: f, ctx: ctx, cancel: cancel,
		watchers: map[string]int{}, pending: map[string][]chan struct{}{}, unsubs: map[string]int{},
		conns: map[string]*conn{}, connOf: map[string]*conn{}}, nil
}

// Stop ends the subscriptions and waits for deliveries to stop.
func (fl *Following) Stop() {
	fl.cancel()
	fl.mu.Lock()
	for _, c := range fl.conns {
		c.ps.Close()
	}
	fl.mu.Unlock()
	fl.wg.Wait()
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
	for _, ch := range subscribe {
		if err = fl.subscribe(ctx, ch); err != nil {
			break
		}
	}
	fl.mu.Unlock()
	release = func() { fl.unwatch(channels) }
	if err != nil {
		release()
		return nil, fmt.Errorf("watch: %w", unavailable(err))
	}
	for _, w := range waits {
		select {
		case <-w:
		case <-ctx.Done():
			release()
			return nil, fmt.Errorf("watch: %w", ctx.Err())
		case <-fl.ctx.Done():
			release()
			return nil, errors.New("watch: no longer following")
		}
	}
	return release, nil
}

// subscribe sends SSUBSCRIBE for ch on the connection to the node that
// holds it, one command per channel because a Cluster refuses one for
// channels of several slots. Called with fl.mu held, so that commands reach
// Redis in the order their confirmations are expected in pending.
func (fl *Following) subscribe(ctx context.Context, ch string) error {
	var addr string
	if cc, ok := fl.s.c.(*goredis.ClusterClient); ok {
		node, err := cc.MasterForKey(ctx, ch)
		if err != nil {
			return err
		}
		addr = node.Options().Addr
	}
	c, ok := fl.conns[addr]
	if !ok {
		c = &conn{addr: addr, ps: fl.s.c.SSubscribe(fl.ctx)}
	}
	if err := c.ps.SSubscribe(ctx, ch); err != nil {
		if !ok {
			c.ps.Close()
		}
		return err
	}
	fl.connOf[ch] = c
	if !ok {
		// Receiving starts once the connection is open: a Cluster
		// connection opened without a channel would go to any node.
		fl.conns[addr] = c
		fl.wg.Add(1)
		go func() {
			defer fl.wg.Done()
			fl.follow(c)
		}()
	}
	return nil
}

func (fl *Following) unwatch(channels []string) {
	fl.mu.Lock()
	defer fl.mu.Unlock()
	for _, ch := range channels {
		if fl.watchers[ch]--; fl.watchers[ch] > 0 {
			continue
		}
		delete(fl.watchers, ch)
		c, ok := fl.connOf[ch]
		if !ok {
			// Between connections: no confirmation is coming for it.
			delete(fl.pending, ch)
			continue
		}
		delete(fl.connOf, ch)
		// A failure leaves deliveries that nothing waits for, which the
		// hub drops; the next loss of the connection ends them.
		if c.ps.SUnsubscribe(context.Background(), ch) == nil {
			fl.unsubs[ch]++
		}
	}
}

func (fl *Following) follow(c *conn) {
	for fl.ctx.Err() == nil {
		msg, err := c.ps.Receive(fl.ctx)
		if err != nil {
			if fl.ctx.Err() == nil && !errors.Is(err, goredis.ErrClosed) {
				fl.rehome(c)
			}
			return
		}
		switch m := msg.(type) {
		case *goredis.Subscription:
			switch m.Kind {
			case "ssubscribe":
				fl.confirmed(m.Channel)
			case "sunsubscribe":
				fl.unsubscribed(c, m.Channel)
			}
		case *goredis.Message:
			fl.deliver(m.Channel, m.Payload)
		}
	}
}

// confirmed handles Redis's confirmation of an SSUBSCRIBE. Confirmations
// come in the order the subscriptions were sent on their connection.
func (fl *Following) confirmed(ch string) {
	fl.mu.Lock()
	if q := fl.pending[ch]; len(q) > 0 {
		close(q[0])
		if len(q) == 1 {
			delete(fl.pending, ch)
		} else {
			fl.pending[ch] = q[1:]
		}
	}
	lost := fl.lost
	fl.lost = false
	fl.mu.Unlock()
	if lost && fl.f.Lost != nil {
		fl.calls.Lock()
		fl.f.Lost()
		fl.calls.Unlock()
	}
}

// unsubscribed handles an SUNSUBSCRIBE: the confirmation of one sent, or
// Redis's notice that the channel's slot moved to another node, where the
// channel is followed from then on.
func (fl *Following) unsubscribed(c *conn, ch string) {
	fl.mu.Lock()
	defer fl.mu.Unlock()
	if fl.unsubs[ch] > 0 {
		if fl.unsubs[ch]--; fl.unsubs[ch] == 0 {
			delete(fl.unsubs, ch)
		}
		return
	}
	if fl.connOf[ch] != c {
		return
	}
	// The connection's own list keeps the channel: it would only subscribe
	// to it again after a failure, and a failed connection is replaced.
	// Unsubscribing from the old node could be answered MOVED.
	delete(fl.connOf, ch)
	fl.awaitAgain(ch)
	fl.lost = true
	fl.wg.Add(1)
	go func() {
		defer fl.wg.Done()
		fl.retry([]string{ch})
	}()
}

// awaitAgain makes Watch calls for ch wait for a confirmation to come.
// Called with fl.mu held.
func (fl *Following) awaitAgain(ch string) {
	if len(fl.pending[ch]) == 0 {
		fl.pending[ch] = []chan struct{}{make(chan struct{})}
	}
}

// rehome replaces a connection that failed: its channels are subscribed
// again on the nodes that hold them now (the same one unless the Cluster
// failed over), and the first confirmation reports the loss.
func (fl *Following) rehome(dead *conn) {
	fl.mu.Lock()
	delete(fl.conns, dead.addr)
	var chans []string
	for ch, c := range fl.connOf {
		if c == dead {
			chans = append(chans, ch)
			delete(fl.connOf, ch)
			fl.awaitAgain(ch)
		}
	}
	fl.lost = true
	fl.mu.Unlock()
	dead.ps.Close()
	fl.retry(chans)
}

// retry subscribes again to the channels still watched, after a pause and
// until it could send every subscription or the Following stops.
func (fl *Following) retry(chans []string) {
	for wait := 100 * time.Millisecond; len(chans) > 0; wait = min(2*wait, 2*time.Second) {
		select {
		case <-fl.ctx.Done():
			return
		case <-time.After(wait):
		}
		if cc, ok := fl.s.c.(*goredis.ClusterClient); ok {
			cc.ReloadState(fl.ctx)
		}
		fl.mu.Lock()
		chans = fl.resubscribe(chans)
		fl.mu.Unlock()
	}
}

// resubscribe subscribes again to the channels still watched, once for each
// confirmation awaited (at least one), and returns those it could not.
// Called with fl.mu held.
func (fl *Following) resubscribe(chans []string) (failed []string) {
	for _, ch := range chans {
		if fl.watchers[ch] == 0 {
			delete(fl.pending, ch)
			continue
		}
		fl.awaitAgain(ch)
		for range fl.pending[ch] {
			if err := fl.subscribe(fl.ctx, ch); err != nil {
				failed = append(failed, ch)
				break
			}
		}
	}
	return failed
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
	fl.calls.Lock()
	defer fl.calls.Unlock()
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
	if err := s.c.SPublish(ctx, s.key("ch", room), "e"+s.origin+"\x00"+string(event)).Err(); err != nil {
		return fmt.Errorf("announce: %w", err)
	}
	return nil
}
