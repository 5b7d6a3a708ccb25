// Package loadgen drives a socket.io v4 server with many raw Engine.IO 4
// websocket clients, so that no client library is the bottleneck, and
// measures what the server delivers to them.
package loadgen

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/errgroup"
	"golang.org/x/sys/unix"
)

// Layout is how a session's clients are spread over rooms.
type Layout struct {
	Clients  int
	RoomSize int // Clients is a multiple of it
	// RoomPrefix names the rooms: RoomPrefix followed by the room's index, or
	// RoomPrefix alone when there is one room.
	RoomPrefix string
	// JoinEvent is how a client enters its room: "switch room" (leaving the
	// server's default room) or "join" (staying in it too).
	JoinEvent string
}

func (l Layout) roomName(room int) string {
	if l.Clients == l.RoomSize {
		return l.RoomPrefix
	}
	return l.RoomPrefix + strconv.Itoa(room)
}

// Session is a set of connected clients, each in its room.
type Session struct {
	log    *slog.Logger
	addr   netip.AddrPort
	layout Layout
	start  time.Time // origin of the timestamps messages carry

	clients    []*client
	pollers    []*poller
	readers    sync.WaitGroup // the pollers
	background sync.WaitGroup // reconnections
	closing    atomic.Bool
	phase      atomic.Pointer[phase]
	nextID     atomic.Int64

	reconnects, recovered, notRecovered, dropped atomic.Int64
	presence, otherEvents, malformed, stale      atomic.Int64
	beforeConnect                                atomic.Int64
}

// socketIOPath is where socket.io servers serve, websocket transport only.
const socketIOPath = "/socket.io/?EIO=4&transport=websocket"

// pollers is how many epoll loops read the connections. One: its
// batches of ready sockets are the larger, and one core reads ~100k
// frames/s, more than the servers deliver on the cores left.
const pollers = 1

func (s *Session) pollerOf(c *client) *poller { return s.pollers[c.id%len(s.pollers)] }

// Stats are a session's counters over its whole life.
type Stats struct {
	Reconnects     int64 // connections the server dropped that offered recovery, so the client reopened them
	Recovered      int64 // of those, restored by connection state recovery (same sid)
	NotRecovered   int64 // of those, reopened as a new session, rooms joined again
	Dropped        int64 // connections lost for good: no recovery offered, or reopening failed
	PresenceEvents int64 // "member joined" and "member left" received
	OtherEvents    int64
	Malformed      int64 // "receive message" packets the generator could not read
	Stale          int64 // messages of no current phase
	// BeforeConnect are events a socket received before its CONNECT packet.
	BeforeConnect int64
}

// Stats returns the session's counters.
func (s *Session) Stats() Stats {
	return Stats{
		Reconnects: s.reconnects.Load(), Recovered: s.recovered.Load(), NotRecovered: s.notRecovered.Load(),
		Dropped: s.dropped.Load(), PresenceEvents: s.presence.Load(), OtherEvents: s.otherEvents.Load(),
		Malformed: s.malformed.Load(), Stale: s.stale.Load(), BeforeConnect: s.beforeConnect.Load(),
	}
}

// Connect opens layout.Clients connections to the socket.io server at addr
// (an IPv4 ip:port), at most concurrency at a time, and puts each in its
// room, waiting for the server's ack. It returns once every client is in, or
// the first error (having closed what it opened).
func Connect(ctx context.Context, log *slog.Logger, addr string, layout Layout, concurrency int) (*Session, error) {
	if layout.RoomSize <= 0 || layout.Clients%layout.RoomSize != 0 {
		return nil, fmt.Errorf("%d clients do not make rooms of %d", layout.Clients, layout.RoomSize)
	}
	ap, err := netip.ParseAddrPort(addr)
	if err != nil {
		return nil, err
	}
	s := &Session{log: log, addr: ap, layout: layout, start: time.Now()}
	s.clients = make([]*client, layout.Clients)
	for i := range s.clients {
		room := i / layout.RoomSize
		s.clients[i] = &client{
			s: s, id: i, room: room, member: i % layout.RoomSize, roomName: layout.roomName(room),
			acks: make(chan int, 4),
		}
		s.clients[i].fd.Store(-1)
		s.clients[i].reopening.Store(-1)
	}
	for range pollers {
		p, err := newPoller(s)
		if err != nil {
			s.Close()
			return nil, err
		}
		s.pollers = append(s.pollers, p)
		s.readers.Add(1)
		go p.run()
	}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(concurrency)
	for _, c := range s.clients {
		g.Go(func() error { return s.open(gctx, c) })
	}
	if err := g.Wait(); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

// ackTimeout bounds the wait for a join's ack: beyond it the server is
// failing, not slow.
const ackTimeout = 60 * time.Second

func (s *Session) open(ctx context.Context, c *client) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := c.connect(); err != nil {
		return fmt.Errorf("client %d: %w", c.id, err)
	}
	const id = 1
	if err := c.request(s.layout.JoinEvent, id); err != nil {
		return fmt.Errorf("client %d: %s: %w", c.id, s.layout.JoinEvent, err)
	}
	timeout := time.NewTimer(ackTimeout)
	defer timeout.Stop()
	for {
		select {
		case got := <-c.acks:
			if got == id {
				return nil
			}
		case <-timeout.C:
			return fmt.Errorf("client %d: no ack to %q %s within %v", c.id, s.layout.JoinEvent, c.roomName, ackTimeout)
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// Close disconnects every client and waits for the pollers and any
// reconnection to end.
func (s *Session) Close() {
	s.closing.Store(true)
	for _, c := range s.clients {
		c.mu.Lock()
		if fd := c.fd.Swap(-1); fd >= 0 {
			unix.Close(int(fd))
		}
		c.mu.Unlock()
		if fd := c.reopening.Load(); fd >= 0 {
			unix.Shutdown(int(fd), unix.SHUT_RDWR) // its handshake fails at once
		}
	}
	s.readers.Wait()
	s.background.Wait()
}
