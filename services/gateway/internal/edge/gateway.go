// Package edge is the gateway's socket.io edge: it admits sockets to the
// configured namespaces (with JWT auth where required), decodes each client
// event once into a typed request, runs it against the rooms service and
// answers with a typed ack. Room events flow the other way through package
// relay; packet text is package wire's.
package edge

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/zishang520/socket.io/servers/socket/v3"
	"golang.org/x/time/rate"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	roomsv1 "github.com/parleyhq/parley/proto/parley/rooms/v1"
	"github.com/parleyhq/parley/services/gateway/internal/relay"
	"github.com/parleyhq/parley/services/kit/requestid"
)

// Namespace is the configuration of one socket.io namespace.
type Namespace struct {
	// Name, such as "/" or "/chat".
	Name string `json:"name"`
	// Auth requires a JWT in the handshake's auth.token.
	Auth bool `json:"auth"`
	// DefaultRooms are joined by every socket on connect.
	DefaultRooms []string `json:"default_rooms"`
	// RoomPattern is the regular expression room names must match; empty
	// accepts any name the rooms service accepts.
	RoomPattern string `json:"room_pattern"`
	// CreateRooms lets a join create a room that does not exist.
	CreateRooms bool `json:"create_rooms"`
	// EmptyRoomTTL, a duration such as "10m", has the rooms that joins
	// create deleted once they have been empty that long; empty keeps them.
	EmptyRoomTTL string `json:"empty_room_ttl"`
	// PresenceMaxMembers is the most members a room may have for its members
	// to be sent "member joined" and "member left": beyond it those events
	// would cost every member a packet per arrival, and members ask for
	// presence with the members event instead. 0 takes the default,
	// DefaultPresenceMaxMembers; negative sends none.
	PresenceMaxMembers int `json:"presence_max_members"`

	roomRE   *regexp.Regexp
	emptyTTL time.Duration
}

// DefaultPresenceMaxMembers is the presence limit of a namespace that sets
// none: rooms as big as a team's channel see each other come and go; in a
// bigger room, such as the one every socket of a namespace joins, a connect
// storm of N sockets would otherwise send N² presence packets.
const DefaultPresenceMaxMembers = 100

// PresenceLimits returns each namespace's presence limit (see
// Namespace.PresenceMaxMembers), as the relay takes them.
func PresenceLimits(namespaces []Namespace) map[string]int {
	limits := make(map[string]int, len(namespaces))
	for _, ns := range namespaces {
		limits[ns.Name] = cmp.Or(ns.PresenceMaxMembers, DefaultPresenceMaxMembers)
	}
	return limits
}

// Limits bound what one socket may do.
type Limits struct {
	MaxMessageBytes int           // largest `send message` payload, JSON-encoded
	EventRate       float64       // events per second per socket (token bucket refill)
	EventBurst      int           // events a socket may send at once
	MaxRooms        int           // rooms one socket may be in
	HistoryOnJoin   int           // messages returned in a join ack
	CallTimeout     time.Duration // deadline of each rooms service call
	SendQueueBytes  int           // bytes that may wait to be written to one socket
	// RecoveryMaxMessages bounds the messages one room may replay to a
	// restored socket; further behind, the session is not restored and the
	// client starts afresh (and reads history itself).
	RecoveryMaxMessages uint64
	// CreateRate and CreateBurst bound the rooms one user may create by
	// joining (rooms per second, and at once), across all their sockets.
	CreateRate  float64
	CreateBurst int
}

// Metrics are the hooks the edge reports through.
type Metrics interface {
	Event(name, result string)
	Connected(namespace string, delta int)
	// Dropped counts sockets disconnected because their send queue was full.
	Dropped()
}

// Relay is what the edge needs of package relay: one reference per room a
// socket is in, and delivery to the socket.
type Relay interface {
	Acquire(ctx context.Context, k relay.Key) (*relay.Room, error)
	Release(rm *relay.Room)
	Add(ctx context.Context, rm *relay.Room, m *relay.Member, seen, upTo uint64) (uint64, error)
	SetSize(rm *relay.Room, members int)
	Remove(rm *relay.Room, m *relay.Member)
}

// Config is what a Gateway needs.
type Config struct {
	Namespaces []Namespace
	// Tokens verifies client tokens on namespaces with auth.
	Tokens Tokens
	Limits Limits
	// RecoveryWindow is how long a disconnected client's session can be
	// restored (socket.io connection state recovery).
	RecoveryWindow time.Duration
	// LeaseTTL is how long the sessions of this gateway stay live in the
	// rooms service if it stops keeping its lease (it dies): its users are
	// offline, and its guests out of their rooms, that long after.
	LeaseTTL time.Duration
	Rooms    roomsv1.RoomsServiceClient
	Relay    Relay
	Log      *slog.Logger
	Metrics  Metrics
	// Observer, if set, is told of sockets, rooms and events for the
	// Admin UI.
	Observer Observer
}

// Gateway serves the configured namespaces on a socket.io server.
type Gateway struct {
	cfg Config
	// bg tracks rooms service calls made after a socket is gone (ending its
	// sessions, saving it for recovery), which shutdown must let finish.
	bg sync.WaitGroup
	// saver saves sessions for recovery in batches.
	saver *saver

	// lease holds every session this gateway opens in the rooms service;
	// leaseHeld is set once it has been kept.
	lease     string
	leaseHeld atomic.Bool

	mu       sync.Mutex
	live     map[*client]struct{}     // connected sockets, whose sessions Maintain renews
	creators map[string]*rate.Limiter // users who created rooms lately -> their allowance
}

// New checks the configuration and returns a Gateway.
func New(cfg Config) (*Gateway, error) {
	if len(cfg.Namespaces) == 0 {
		return nil, errors.New("no namespace configured")
	}
	seen := map[string]bool{}
	for i := range cfg.Namespaces {
		ns := &cfg.Namespaces[i]
		if !strings.HasPrefix(ns.Name, "/") || seen[ns.Name] {
			return nil, fmt.Errorf("namespace %q: names start with / and are unique", ns.Name)
		}
		seen[ns.Name] = true
		if ns.Auth && cfg.Tokens.empty() {
			return nil, fmt.Errorf("namespace %q requires auth but no JWT secret or public key is set", ns.Name)
		}
		if ns.EmptyRoomTTL != "" {
			d, err := time.ParseDuration(ns.EmptyRoomTTL)
			if err != nil || d <= 0 {
				return nil, fmt.Errorf("namespace %q: empty_room_ttl %q: want a positive duration such as \"10m\"", ns.Name, ns.EmptyRoomTTL)
			}
			ns.emptyTTL = d
		}
		if ns.RoomPattern != "" {
			re, err := regexp.Compile(ns.RoomPattern)
			if err != nil {
				return nil, fmt.Errorf("namespace %q: room_pattern: %w", ns.Name, err)
			}
			ns.roomRE = re
		}
	}
	if cfg.Observer == nil {
		cfg.Observer = unobserved{}
	}
	g := &Gateway{cfg: cfg, lease: newSessionKey(), live: map[*client]struct{}{}, creators: map[string]*rate.Limiter{}}
	g.saver = newSaver(g)
	return g, nil
}

// Wait blocks until background calls finish or ctx ends.
func (g *Gateway) Wait(ctx context.Context) error {
	done := make(chan struct{})
	go func() {
		g.bg.Wait()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Setup takes the gateway's lease and creates the default rooms in the rooms
// service, so that the first socket does not race to create them.
func (g *Gateway) Setup(ctx context.Context) error {
	if _, err := g.keepLease(ctx); err != nil {
		return fmt.Errorf("take lease: %w", err)
	}
	for _, ns := range g.cfg.Namespaces {
		for _, room := range ns.DefaultRooms {
			_, err := g.cfg.Rooms.CreateRoom(ctx, &roomsv1.CreateRoomRequest{Namespace: ns.Name, Room: room})
			if err != nil && status.Code(err) != codes.AlreadyExists {
				return fmt.Errorf("create default room %s in %s: %w", room, ns.Name, err)
			}
		}
	}
	return nil
}

// Attach registers the namespaces on io. Namespaces not configured are
// refused by socket.io itself with "Invalid namespace".
func (g *Gateway) Attach(io *socket.Server) {
	for i := range g.cfg.Namespaces {
		ns := &g.cfg.Namespaces[i]
		nsp := io.Of(ns.Name, nil)
		nsp.Use(g.admit(ns))
		nsp.On("connection", func(args ...any) {
			s := args[0].(*socket.Socket)
			switch d := s.Data().(type) {
			case *client:
				// socket.io has queued the CONNECT reply: what the socket's
				// rooms sent it meanwhile may follow.
				d.member.Out.Open()
				close(d.admitted)
				d.connected(s)
			case *restored:
				close(d.admitted)
				g.resume(ns, s, d)
			}
		})
	}
}

// admit is the namespace middleware. It runs before the client is told it is
// connected, for fresh and restored sessions alike: it authenticates the
// socket (a restored session only with its owner's token) and joins a fresh
// socket's default rooms, so a client that sends as soon as it connects (as
// the classic chat does) is already in them, and so are the others it talks
// to.
func (g *Gateway) admit(ns *Namespace) socket.NamespaceMiddleware {
	return func(s *socket.Socket, next func(*socket.ExtendedError)) {
		user := "guest-" + string(s.Id())
		if ns.Auth {
			sub, reason := g.authenticate(s.Handshake().Auth)
			if r, ok := s.Data().(*restored); ok && reason == "" && sub != r.user {
				reason = "invalid_token" // a token of someone else's
			}
			if reason != "" {
				g.cfg.Log.Info("connection refused", "namespace", ns.Name, "reason", reason, "recovering", s.Recovered())
				next(socket.NewExtendedError("unauthorized", map[string]any{"code": reason}))
				return
			}
			user = sub
		}
		if r, ok := s.Data().(*restored); ok && s.Recovered() {
			// resume restores its rooms once it is connected.
			next(nil)
			if g.awaitConnect(r.admitted) && !open(s) {
				if c, ok := s.Data().(*client); ok {
					c.disconnect("transport close")
				}
			}
			return
		}
		c := g.newClient(ns, s, user, newSessionKey())
		c.member.Out.Hold()
		c.listen(s)
		ctx, cancel := c.callContext()
		defer cancel()
		// The connection's calls have request id number 0; events count
		// from 1.
		ctx = requestid.With(ctx, c.id+":0")
		for _, room := range ns.DefaultRooms {
			if err := c.autoJoin(ctx, room); err != nil {
				g.cfg.Log.Error("auto-join failed", "namespace", ns.Name, "room", room, "socket", s.Id(), "err", err)
				c.disconnect("auto-join failed")
				next(socket.NewExtendedError("unavailable", map[string]any{"code": CodeUnavailable}))
				return
			}
		}
		c.save(ctx)
		close(c.ready)
		s.SetData(c)
		next(nil)
		if !g.awaitConnect(c.admitted) || !open(s) {
			// socket.io drops a socket whose connection closed before its
			// CONNECT was answered without any event, and connects one
			// whose connection failed while the reply was written, without
			// a disconnect; such a socket is ended here, or it would stay a
			// member, online, for good.
			c.disconnect("connect abandoned")
		}
	}
}

// open reports whether the socket's connection is still up. Checked once the
// socket is connected: a connection that closes after that is reported by
// socket.io's disconnect event.
func open(s *socket.Socket) bool { return s.Conn().ReadyState() == "open" }

// awaitConnect waits, up to the call timeout, until the socket admitted on
// this goroutine is connected (admitted closes), and reports whether it was.
//
// The middleware runs on the goroutine that reads the client's packets,
// while socket.io completes the connection on another, and it sends the
// CONNECT reply before it records the namespace as joined: a packet read in
// between (the event of a client that emits on connect, or the next packet
// of the same long-polling payload) would be taken for a packet of a
// namespace the client is not in, and the connection closed. Holding the
// reader here until the connection is complete rules that out.
func (g *Gateway) awaitConnect(admitted <-chan struct{}) bool {
	t := time.NewTimer(g.cfg.Limits.CallTimeout)
	defer t.Stop()
	select {
	case <-admitted:
		return true
	case <-t.C:
		return false
	}
}

// allowCreate takes one room creation from user's allowance. A guest is a
// new user with every socket, so guests are better held back by the
// namespace's room_pattern or by turning create_rooms off.
func (g *Gateway) allowCreate(user string) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	lim := g.creators[user]
	if lim == nil {
		lim = rate.NewLimiter(rate.Limit(g.cfg.Limits.CreateRate), g.cfg.Limits.CreateBurst)
		g.creators[user] = lim
	}
	return lim.Allow()
}

// forgetCreators drops the allowances that are full again, which are the
// same as new ones, so the map holds only users who created rooms lately.
func (g *Gateway) forgetCreators() {
	g.mu.Lock()
	defer g.mu.Unlock()
	for user, lim := range g.creators {
		if lim.Tokens() >= float64(g.cfg.Limits.CreateBurst) {
			delete(g.creators, user)
		}
	}
}
