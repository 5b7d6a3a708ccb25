// Package admin serves the protocol of the official socket.io Admin UI
// (@socket.io/admin-ui) on its own namespace, behind its own credentials,
// for a whole deployment rather than one process: every gateway reports its
// sockets, their rooms and events through a reserved room of the rooms
// service (the bus), which every gateway follows. A UI connected to any
// gateway therefore sees the sockets of all of them, and what it asks for
// (disconnect a socket, make sockets join or leave a room) is carried out by
// whichever gateway holds the sockets.
//
// Reports cost nothing while nobody watches: a gateway reports its sockets
// only while some gateway has a UI connected (its stats say so, every two
// seconds, and a UI's arrival says so at once).
package admin

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/zishang520/socket.io/servers/socket/v3"

	roomsv1 "github.com/parleyhq/parley/proto/parley/rooms/v1"
)

// BusRoom is the reserved room, in the admin namespace, that carries the
// gateways' reports; no socket can reach it, the admin namespace being the
// UI's alone.
const BusRoom = "gateways"

const (
	// statsEvery is how often each gateway reports its stats, as the Node
	// instrument does; the UI marks a server unhealthy after 10 s without.
	statsEvery = 2 * time.Second
	// aliveFor is how long a gateway counts as up after its last stats,
	// and the deployment as watched after the last sign that a UI is
	// connected.
	aliveFor = 3 * statsEvery
	// gatherFor bounds how long a new UI waits for the other gateways'
	// sockets; those that answer later are shown as they come.
	gatherFor = 2 * time.Second
	// drainFor bounds the publishing of the last reports at shutdown.
	drainFor = 2 * time.Second
)

// Credentials sign the UI in, as the Node instrument's basic auth does.
type Credentials struct {
	Username string
	// PasswordHash is a bcrypt hash of the password.
	PasswordHash string
}

// Config is what a Server needs.
type Config struct {
	// Namespace is the admin namespace, "/admin" unless the UI is told
	// otherwise.
	Namespace   string
	Credentials Credentials
	// ReadOnly offers the UI no actions (no disconnect, join or leave).
	ReadOnly bool
	// ServerID names this gateway in the UI; unique per process.
	ServerID string
	Rooms    roomsv1.RoomsServiceClient
	Log      *slog.Logger
	// MaxReport bounds one report's payload, below the rooms service's
	// --max-payload-bytes.
	MaxReport int
}

// DefaultServerID names a gateway by host and process, as the Node
// instrument does for a cluster worker.
func DefaultServerID() string {
	host, _ := os.Hostname()
	return fmt.Sprintf("%s#%d", host, os.Getpid())
}

// Sockets is what the server needs of the gateway's own sockets. A filter
// names a room or a socket id; empty matches every socket of the namespace.
type Sockets interface {
	// Sockets describes this gateway's connected sockets.
	Sockets() []Socket
	// Counts returns how many sockets each namespace has here and how many
	// of them are on long-polling.
	Counts() (namespaces map[string]int, polling int)
	Disconnect(nsp, filter string, closeConn bool)
	Join(ctx context.Context, nsp, filter, room string)
	Leave(ctx context.Context, nsp, filter, room string)
}

// Server is the admin namespace of one gateway and its part of the bus.
type Server struct {
	cfg     Config
	sockets Sockets
	// clients returns how many Engine.IO connections this gateway has.
	clients func() int
	started time.Time
	auth    *authenticator
	out     *outbox
	// watched is when the deployment stops counting as watched, in Unix
	// nanoseconds: until then this gateway reports its sockets.
	watched atomic.Int64
	// counts of connections and disconnections for the UI's charts.
	agg aggregates

	mu       sync.Mutex
	uis      map[*viewer]struct{} // the UIs connected here
	gateways map[string]time.Time // gateways by id -> their last report
	fetches  map[string]*viewer   // socket lists asked for -> who asked
	// owners are the sockets the UIs here were shown, with the gateway
	// holding each and its rooms (see ghosts.go).
	owners map[sockKey]*owned
}

// New returns a Server for cfg; Attach and Run start it.
func New(cfg Config) (*Server, error) {
	if cfg.Credentials.Username == "" {
		return nil, errors.New("admin UI: a username is required")
	}
	auth, err := newAuthenticator(cfg.Credentials)
	if err != nil {
		return nil, err
	}
	if cfg.ServerID == "" {
		cfg.ServerID = DefaultServerID()
	}
	if cfg.MaxReport <= 0 {
		cfg.MaxReport = 32 << 10
	}
	return &Server{
		cfg: cfg, started: time.Now(), auth: auth, out: newOutbox(cfg.MaxReport),
		uis: map[*viewer]struct{}{}, gateways: map[string]time.Time{}, fetches: map[string]*viewer{}, owners: map[sockKey]*owned{},
	}, nil
}

// Setup creates the bus room, if it does not exist: read-only to users,
// private, keeping only a minute of reports.
func (s *Server) Setup(ctx context.Context) error {
	_, err := s.cfg.Rooms.CreateRoom(ctx, busRoomRequest(s.cfg.Namespace))
	if err != nil && !alreadyExists(err) {
		return fmt.Errorf("create the admin bus room: %w", err)
	}
	return nil
}

// Attach serves the admin namespace on io, taking its sockets' actions to
// sockets.
func (s *Server) Attach(io *socket.Server, sockets Sockets) {
	s.sockets = sockets
	s.clients = func() int {
		if e := io.Engine(); e != nil {
			return int(e.ClientsCount())
		}
		return 0
	}
	nsp := io.Of(s.cfg.Namespace, nil)
	nsp.Use(s.admit)
	nsp.On("connection", func(args ...any) { s.connected(args[0].(*socket.Socket)) })
}

// Run publishes this gateway's reports and follows everyone's until ctx
// ends, then publishes what is left for up to drainFor: end it once the
// gateway's sockets are closed, and the UIs see them go as they went
// rather than, later, as lost with the gateway.
func (s *Server) Run(ctx context.Context) {
	pctx, stop := context.WithCancel(context.WithoutCancel(ctx))
	defer stop()
	var wg sync.WaitGroup
	wg.Go(func() { s.follow(ctx) })
	wg.Go(func() { s.publish(pctx) })
	t := time.NewTicker(statsEvery)
	defer t.Stop()
	for {
		s.sendStats()
		s.forgetSilent(time.Now())
		select {
		case <-ctx.Done():
			s.out.close()
			drain := time.AfterFunc(drainFor, stop)
			defer drain.Stop()
			wg.Wait()
			return
		case <-t.C:
		}
	}
}

// Watching reports whether some UI, on any gateway, may be looking: only
// then are sockets described and reported.
func (s *Server) Watching() bool { return time.Now().UnixNano() < s.watched.Load() }

// watch makes the deployment count as watched for aliveFor more, and
// reports whether it was not before.
func (s *Server) watch() (began bool) {
	now := time.Now()
	until := now.Add(aliveFor).UnixNano()
	for {
		cur := s.watched.Load()
		if cur >= until || s.watched.CompareAndSwap(cur, until) {
			return cur <= now.UnixNano()
		}
	}
}

// newID returns a random identifier, for sessions and socket-list requests.
func newID() string {
	b := make([]byte, 8)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// timestamp is how the Node instrument's dates reach the UI: JSON dates.
func timestamp(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.000Z07:00") }

// aggregates count connections and disconnections per second and kind, for
// the UI's dashboard charts, between two stats reports.
type aggregates struct {
	mu     sync.Mutex
	counts map[aggKey]int
}

type aggKey struct {
	second        int64
	kind, subKind string
}

func (a *aggregates) add(kind, subKind string) {
	k := aggKey{time.Now().Unix(), kind, subKind}
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.counts == nil {
		a.counts = map[aggKey]int{}
	}
	a.counts[k]++
}

// take returns the counts as the instrument's aggregatedEvents and clears
// them.
func (a *aggregates) take() []map[string]any {
	a.mu.Lock()
	counts := a.counts
	a.counts = nil
	a.mu.Unlock()
	out := make([]map[string]any, 0, len(counts))
	for k, n := range counts {
		e := map[string]any{"timestamp": k.second * 1000, "type": k.kind, "count": n}
		if k.subKind != "" {
			e["subType"] = k.subKind
		}
		out = append(out, e)
	}
	return out
}

func mustJSON(v any) json.RawMessage {
	b, err := json.Marshal(v)
	if err != nil {
		// Only values built here, of strings, numbers and maps of them, are
		// encoded.
		panic(fmt.Sprintf("admin: encode %T: %v", v, err))
	}
	return b
}
