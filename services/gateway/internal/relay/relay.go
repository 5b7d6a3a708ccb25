// Package relay carries room events from the rooms service to the sockets of
// one gateway. It holds at most one upstream Subscribe stream per room with
// local members, reference-counted by them, and hands each event — encoded
// once, by package wire — to every member of the room in offset order, without
// duplicates. A member that starts behind the room (a late join, a recovered
// session) is caught up from history without holding the room up.
package relay

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	roomsv1 "github.com/parleyhq/parley/proto/parley/rooms/v1"
	"github.com/parleyhq/parley/services/gateway/internal/wire"
)

// Key names a room.
type Key struct {
	Namespace string
	Room      string
}

// Member is one local socket as the relay sees it.
type Member struct {
	// ID is the socket id: a message the socket published is not sent back
	// to it.
	ID string
	// User is the signed-in user (or guest) the socket belongs to.
	User string
	// Out is the socket's writer.
	Out *wire.Conn
	// Removed is called, on its own goroutine, when the rooms service says
	// the user is no longer a member of room (kicked, say) or the room was
	// deleted. The relay has already stopped delivering the room to the
	// socket; the socket should let go of its reference.
	Removed func(room string)
}

// Metrics are the relay's hooks into the gateway's metrics.
type Metrics interface {
	// Delivered observes the time from a message's acceptance by the rooms
	// service to its packet being queued on local sockets, and counts
	// those sockets.
	Delivered(since time.Duration, sockets int)
}

// Options configure a Relay.
type Options struct {
	// Replay is how many recent messages per room are kept to bring a
	// member that joins mid-stream up to date without a history read.
	Replay int
	// Backlog is how many live messages may wait for a member while it
	// catches up from history; beyond that it is failed as slow.
	Backlog int
	// PresenceMax is, per namespace, the most members a room may have for
	// its "member joined" and "member left" events to reach its sockets:
	// in a bigger room they would cost every member a packet per arrival,
	// so that connecting N sockets costs N² packets, and its members read
	// presence on demand instead. Negative sends none; a namespace not
	// listed has no limit.
	PresenceMax map[string]int
}

// ErrClosed is returned once the relay is shutting down.
var ErrClosed = errors.New("gateway is shutting down")

// errRoomGone refuses a member for a room deleted since it was acquired.
var errRoomGone = status.Error(codes.NotFound, "the room was deleted")

// Relay owns the upstream subscriptions of one gateway.
type Relay struct {
	rooms   roomsv1.RoomsServiceClient
	log     *slog.Logger
	metrics Metrics
	opts    Options

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu     sync.Mutex
	subs   map[Key]*Room
	closed bool
}

// New returns a relay that subscribes through rooms.
func New(rooms roomsv1.RoomsServiceClient, log *slog.Logger, m Metrics, opts Options) *Relay {
	ctx, cancel := context.WithCancel(context.Background())
	return &Relay{rooms: rooms, log: log, metrics: m, opts: opts, ctx: ctx, cancel: cancel, subs: make(map[Key]*Room)}
}

// Room is the upstream subscription of one room and its local members: what
// Acquire hands out and the other methods take back.
type Room struct {
	key    Key
	refs   int           // guarded by Relay.mu
	ready  chan struct{} // closed once the stream is registered (or failed)
	err    error         // why it could not register; set before ready closes
	cancel context.CancelFunc

	mu        sync.Mutex
	members   map[*Member]*position
	delivered uint64               // offset of the last message dispatched
	recent    []wire.MessagePacket // the last messages dispatched, oldest first
	ended     bool                 // the room was deleted: nobody is added any more
	// size is how many members the room has, as the rooms service last
	// counted them for a join (SetSize), kept current by the member joined
	// and left events since: exact but for the joins and leaves in flight,
	// which is all the presence limit needs.
	size int
}

// position is where a member stands in a room.
type position struct {
	// seen is the offset the member already has: it gets only messages
	// above it.
	seen uint64
	// catching is set while the member reads history; live messages wait in
	// backlog meanwhile.
	catching bool
	backlog  []wire.MessagePacket
}

// Acquire makes sure the room has a registered upstream subscription and
// takes a reference on it: anything the rooms service accepts for the room
// after Acquire returns reaches the relay. Each Acquire needs a Release of
// the Room it returns.
func (r *Relay) Acquire(ctx context.Context, k Key) (*Room, error) {
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return nil, ErrClosed
	}
	rm := r.subs[k]
	if rm == nil {
		sctx, cancel := context.WithCancel(r.ctx)
		rm = &Room{key: k, ready: make(chan struct{}), cancel: cancel, members: make(map[*Member]*position)}
		r.subs[k] = rm
		r.wg.Go(func() { r.run(sctx, rm) })
	}
	rm.refs++
	r.mu.Unlock()

	select {
	case <-rm.ready:
	case <-ctx.Done():
		r.Release(rm)
		return nil, ctx.Err()
	}
	if rm.err != nil {
		r.Release(rm)
		return nil, rm.err
	}
	return rm, nil
}

// Release drops a reference taken by Acquire; the last one ends the upstream
// subscription.
func (r *Relay) Release(rm *Room) {
	r.mu.Lock()
	defer r.mu.Unlock()
	rm.refs--
	if rm.refs == 0 {
		r.forget(rm)
		rm.cancel()
	}
}

// forget takes rm out of the room map, unless a newer subscription of the
// same room has taken its place. r.mu is held.
func (r *Relay) forget(rm *Room) {
	if r.subs[rm.key] == rm {
		delete(r.subs, rm.key)
	}
}

// fail records why rm could not register. It leaves the room map at once, so
// that an Acquire after the failure (a join that has just created the room,
// say) starts a new subscription instead of sharing the failed one, whose
// waiters may not all have let go yet.
func (r *Relay) fail(rm *Room, err error) {
	r.mu.Lock()
	r.forget(rm)
	r.mu.Unlock()
	rm.err = err
	close(rm.ready)
}

// Add starts delivering the room's events to m, which already has the room's
// messages up to seen; upTo is an offset the room is known to have reached
// (a JoinRoom's), which this relay may not have dispatched yet. Every message
// after seen then reaches m once, in order: from the replay ring when it
// reaches back far enough, otherwise through catchUp. It returns the offset m
// stands at when live delivery takes over. The caller holds a reference from
// Acquire.
func (r *Relay) Add(ctx context.Context, rm *Room, m *Member, seen, upTo uint64) (uint64, error) {
	m.Out.SetPos(rm.key.Room, seen)
	rm.mu.Lock()
	if rm.ended {
		rm.mu.Unlock()
		m.Out.DropPos(rm.key.Room)
		return 0, errRoomGone
	}
	end := max(rm.delivered, upTo)
	if end <= seen || rm.replays(seen, end) {
		for _, p := range rm.recent {
			if p.Offset > seen {
				deliver(m, p, true)
			}
		}
		seen = max(seen, rm.delivered)
		rm.members[m] = &position{seen: seen}
		rm.mu.Unlock()
		return seen, nil
	}
	pos := &position{seen: seen, catching: true}
	rm.members[m] = pos
	rm.mu.Unlock()
	return r.catchUp(ctx, rm, m, pos)
}

// replays reports whether the replay ring holds every message after seen up
// to end.
func (rm *Room) replays(seen, end uint64) bool {
	return end <= rm.delivered && len(rm.recent) > 0 && rm.recent[0].Offset <= seen+1
}

// SetSize records how many members the rooms service counted in the room.
func (r *Relay) SetSize(rm *Room, members int) {
	rm.mu.Lock()
	rm.size = members
	rm.mu.Unlock()
}

// Remove stops delivering the room's events to m.
func (r *Relay) Remove(rm *Room, m *Member) {
	rm.mu.Lock()
	delete(rm.members, m)
	rm.mu.Unlock()
	m.Out.DropPos(rm.key.Room)
}

// Close ends every upstream subscription and waits for them.
func (r *Relay) Close() {
	r.mu.Lock()
	r.closed = true
	r.mu.Unlock()
	r.cancel()
	r.wg.Wait()
}

// deliver writes a message packet to m unless m published it. A catch-up's
// packets may go over the socket's live bound (wire.Conn.WriteMessage).
func deliver(m *Member, p wire.MessagePacket, catchUp bool) bool {
	if p.Session == m.ID {
		return false
	}
	m.Out.WriteMessage(p, catchUp)
	return true
}
