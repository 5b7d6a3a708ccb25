package edge

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/zishang520/socket.io/servers/socket/v3"
	"golang.org/x/time/rate"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	roomsv1 "github.com/parleyhq/parley/proto/parley/rooms/v1"
	"github.com/parleyhq/parley/services/gateway/internal/relay"
	"github.com/parleyhq/parley/services/gateway/internal/transport"
	"github.com/parleyhq/parley/services/gateway/internal/wire"
)

// A socket's refusals are logged at most refusalLogBurst at once and
// refusalLogRate a second.
const (
	refusalLogRate  = 1
	refusalLogBurst = 10
)

// client is the gateway's state for one socket.
type client struct {
	g       *Gateway
	ns      *Namespace
	id      string // the socket id, which is also its session id in the rooms service
	user    string
	key     string // what its stored session is found by (see sessions.go)
	member  *relay.Member
	limiter *rate.Limiter
	// sock is the socket.io socket; nil for a client built on a bare
	// transport (newClientOn), which the Admin UI does not show.
	sock *socket.Socket
	// closeConn ends the socket's connection, which the client sees as a
	// network failure: it reconnects and recovers its session.
	closeConn func()

	// logLimit bounds the log lines of refusals this socket causes;
	// unlogged counts those left out.
	logLimit *rate.Limiter
	unlogged atomic.Int64
	// events numbers the socket's events, for their request ids.
	events atomic.Uint64

	mu     sync.Mutex
	rooms  map[string]*joined
	live   bool // counted as connected
	closed bool
	reason string // why it disconnected, once closed
	// ready is closed once the socket's default rooms (or, for a restored
	// session, its rooms and missed messages) are in place.
	ready chan struct{}
	// admitted is closed when socket.io has completed the connection.
	admitted chan struct{}
}

// The direct writer takes packets' text as it is (wire.TextWriter).
var _ wire.TextWriter = (*transport.DirectWriter)(nil)

func (g *Gateway) newClient(ns *Namespace, s *socket.Socket, user, key string) *client {
	var out wire.Transport = s.Conn()
	if d, ok := transport.Direct(s.Conn().Transport()); ok {
		// Room events, the bulk of what a socket is sent, skip the
		// Engine.IO socket's per-packet queue and events.
		out = d
	}
	c := g.newClientOn(ns, string(s.Id()), user, key, out, func() { s.Conn().Close(true) })
	c.sock = s
	return c
}

// newClientOn builds a client on any transport; key is the one its session
// is stored under, and closeConn ends the socket's connection.
func (g *Gateway) newClientOn(ns *Namespace, id, user, key string, t wire.Transport, closeConn func()) *client {
	c := &client{
		g: g, ns: ns, id: id, user: user, key: key, rooms: map[string]*joined{}, ready: make(chan struct{}), admitted: make(chan struct{}),
		limiter:   rate.NewLimiter(rate.Limit(g.cfg.Limits.EventRate), g.cfg.Limits.EventBurst),
		logLimit:  rate.NewLimiter(refusalLogRate, refusalLogBurst),
		closeConn: closeConn,
	}
	out := wire.NewConn(t, key, g.cfg.Limits.SendQueueBytes, func() {
		g.cfg.Log.Warn("socket send queue full; disconnecting", "namespace", ns.Name, "socket", id, "user", user)
		g.cfg.Metrics.Dropped()
		closeConn()
	})
	c.member = &relay.Member{ID: id, User: user, Out: out, Removed: c.removed}
	return c
}

// listen registers the socket's event handlers. It runs before the client is
// told it is connected, so that an event sent right after connecting is never
// missed; handlers wait until the socket's set-up is done (c.ready).
func (c *client) listen(s *socket.Socket) {
	for name := range events {
		s.On(name, func(raw ...any) { c.onEvent(name, raw) })
	}
	s.OnAny(func(raw ...any) {
		name, _ := raw[0].(string)
		if _, known := events[name]; !known {
			c.onEvent(name, raw[1:])
		}
	})
	s.On("disconnect", func(args ...any) {
		reason, _ := firstString(args)
		c.disconnect(reason)
	})
}

// connected records a socket that completed its connection. One given up
// for abandoned meanwhile is disconnected: its rooms are gone.
func (c *client) connected(s *socket.Socket) {
	c.mu.Lock()
	closed := c.closed
	c.live = !closed
	c.mu.Unlock()
	if closed {
		s.Disconnect(true)
		return
	}
	c.g.track(c, true)
	c.g.cfg.Metrics.Connected(c.ns.Name, 1)
	// Told after track, so that a UI arriving meanwhile finds the socket
	// either in the gateway's list or in this report.
	c.g.cfg.Observer.SocketConnected(c.describe)
	s.Conn().On("upgrade", func(args ...any) {
		c.g.cfg.Observer.SocketUpdated(c.ns.Name, c.id, s.Conn().Transport().Name())
	})
	c.g.cfg.Log.Debug("socket connected", "namespace", c.ns.Name, "socket", c.id, "user", c.user)
	// A disconnect that ran meanwhile found the socket live, but may have
	// untracked it before it was tracked (its sessions would be renewed for
	// good) and reported it gone before it was reported connected: both
	// are done again.
	c.mu.Lock()
	closed, reason := c.closed, c.reason
	c.mu.Unlock()
	if closed {
		c.g.track(c, false)
		c.g.cfg.Observer.SocketDisconnected(c.ns.Name, c.id, reason)
	}
}

func (c *client) isLive() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.live
}

func (c *client) awaitReady() error {
	select {
	case <-c.ready:
		return nil
	default:
	}
	t := time.NewTimer(c.g.cfg.Limits.CallTimeout)
	defer t.Stop()
	select {
	case <-c.ready:
		return nil
	case <-t.C:
		return errorf(CodeUnavailable, "the connection is still being set up; retry")
	}
}

func (c *client) callContext() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), c.g.cfg.Limits.CallTimeout)
}

func (c *client) roomKey(room string) relay.Key { return relay.Key{Namespace: c.ns.Name, Room: room} }

func (c *client) joined(room string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	_, ok := c.rooms[room]
	return ok
}

// joined is a room the socket is in.
type joined struct {
	sub    *relay.Room // the relay's subscription, whose reference the socket holds
	offset uint64      // where the join (or restore) left the socket
	epoch  string      // the room's epoch then: a room created again has another
}

// record notes that the socket is in room, unless it has disconnected
// meanwhile, in which case the caller must undo the join.
func (c *client) record(room string, j *joined) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return false
	}
	c.rooms[room] = j
	c.g.cfg.Observer.RoomJoined(c.ns.Name, room, c.id)
	return true
}

// take removes room from the socket's rooms and returns it if it was there:
// whoever takes it (leave, removal, disconnect) releases the relay
// reference, exactly once.
func (c *client) take(room string) (*joined, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	j, ok := c.rooms[room]
	delete(c.rooms, room)
	if ok {
		c.g.cfg.Observer.RoomLeft(c.ns.Name, room, c.id)
	}
	return j, ok
}

// departure says why a socket leaves a room, which decides what happens to
// the user's membership.
type departure int

const (
	// asked: the user asked to leave; they stop being a member unless
	// another of their sockets is in the room.
	asked departure = iota
	// gone: the socket went away; a guest stops being a member, a signed-in
	// user stays one, offline once their last session ends.
	gone
)

// leave takes the socket out of room, the one way every departure goes: out
// of the relay's delivery, then out of the room in the rooms service.
func (c *client) leave(ctx context.Context, room string, why departure) error {
	j, ok := c.take(room)
	if !ok {
		return nil
	}
	c.detach(j)
	if why == gone {
		// Nobody waits for it, and a session nobody ends keeps its user
		// online until the gateway's lease lapses.
		return c.endRetrying(room, why)
	}
	return c.end(ctx, room, why)
}

// end ends the socket's part in room in the rooms service.
func (c *client) end(ctx context.Context, room string, why departure) error {
	sess := &roomsv1.EndSessionRequest{Namespace: c.ns.Name, Room: room, UserId: c.user, SessionId: c.id}
	quit := &roomsv1.LeaveRoomRequest{Namespace: c.ns.Name, Room: room, UserId: c.user}
	var err error
	switch {
	case why == gone && !c.ns.Auth:
		_, err = c.g.cfg.Rooms.LeaveRoom(ctx, quit)
	case why == gone:
		_, err = c.g.cfg.Rooms.EndSession(ctx, sess)
	default:
		var es *roomsv1.EndSessionResponse
		es, err = c.g.cfg.Rooms.EndSession(ctx, sess)
		if err == nil && es.GetMember().GetSessionCount() == 0 {
			_, err = c.g.cfg.Rooms.LeaveRoom(ctx, quit)
		}
	}
	if status.Code(err) == codes.NotFound {
		return nil
	}
	return err
}

// detach stops the room's delivery to the socket and lets go of its relay
// reference.
func (c *client) detach(j *joined) {
	c.g.cfg.Relay.Remove(j.sub, c.member)
	c.g.cfg.Relay.Release(j.sub)
}

// removed handles the relay's notice that the user is no longer a member of
// room, for instance after KickMember, or that the room was deleted.
func (c *client) removed(room string) {
	if j, ok := c.take(room); ok {
		c.detach(j)
		c.g.cfg.Log.Info("socket removed from room", "namespace", c.ns.Name, "room", room, "socket", c.id, "user", c.user)
	}
}

// disconnect leaves every room, once: a guest's membership ends with its
// socket; a signed-in user's session ends and the user stays a member,
// offline.
func (c *client) disconnect(reason string) {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return
	}
	c.closed, c.reason = true, reason
	live := c.live
	rooms := make([]string, 0, len(c.rooms))
	for r := range c.rooms {
		rooms = append(rooms, r)
	}
	c.mu.Unlock()
	c.g.cfg.Log.Debug("socket disconnected", "namespace", c.ns.Name, "socket", c.id, "user", c.user, "reason", reason)
	if live {
		c.g.cfg.Metrics.Connected(c.ns.Name, -1)
		c.g.track(c, false)
		c.g.cfg.Observer.SocketDisconnected(c.ns.Name, c.id, reason)
		c.g.cfg.Observer.RoomLeft(c.ns.Name, c.id, c.id)
	}
	if !socket.RECOVERABLE_DISCONNECT_REASONS.Has(reason) {
		c.drop()
	}
	// A transport can fail inside a write the relay makes while holding a
	// room's lock, and socket.io then runs this on that goroutine: everything
	// that takes the relay's locks happens elsewhere.
	c.g.bg.Go(func() {
		for _, room := range rooms {
			if err := c.leave(context.Background(), room, gone); err != nil {
				c.g.cfg.Log.Error("ending session after disconnect failed", "namespace", c.ns.Name, "room", room, "user", c.user, "err", err)
			}
		}
	})
}

// endAttempts bounds the tries of endRetrying; with its backoff they span
// about 1.5 s plus the calls.
const endAttempts = 5

// endRetrying ends the socket's part in room like end, trying again while the
// rooms service is unavailable or busy.
func (c *client) endRetrying(room string, why departure) error {
	backoff := 100 * time.Millisecond
	for attempt := 1; ; attempt++ {
		ctx, cancel := c.callContext()
		err := c.end(ctx, room, why)
		cancel()
		switch status.Code(err) {
		case codes.Unavailable, codes.DeadlineExceeded, codes.ResourceExhausted:
			if attempt < endAttempts {
				time.Sleep(backoff)
				backoff *= 2
				continue
			}
		}
		return err
	}
}

func firstString(args []any) (string, bool) {
	if len(args) == 0 {
		return "", false
	}
	s, ok := args[0].(string)
	return s, ok
}
