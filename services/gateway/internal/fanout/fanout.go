// Package fanout delivers room events from the rooms service to the sockets of
// one gateway. It holds at most one upstream Subscribe stream per room with
// local members (reference-counted by those members), encodes each event into
// a socket.io packet once, and writes that same packet to every local socket of
// the room. A socket whose send queue grows beyond its bound is disconnected
// instead of buffering without limit.
package fanout

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/zishang520/socket.io/parsers/socket/v3/parser"
	"github.com/zishang520/socket.io/servers/engine/v3"
	"github.com/zishang520/socket.io/servers/engine/v3/transports"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	roomsv1 "github.com/parleyhq/parley/proto/parley/rooms/v1"
)

// Key names a room.
type Key struct {
	Namespace string
	Room      string
}

// Conn is one local socket as the fan-out sees it.
type Conn struct {
	id      string
	user    string
	eio     engine.Socket
	onSlow  func()
	onLeft  func(room string)
	pending atomic.Int64
	slow    atomic.Bool
	done    engine.SendCallback

	// mu orders message writes: each message packet ends with the socket's
	// offset vector as of that packet, and the vectors must reach the client
	// in the order they were computed.
	mu  sync.Mutex
	pos map[string]uint64 // room -> last offset written (or seen at join)
}

// NewConn wraps the engine.io socket of the socket.io socket with the given
// id, signed in as user. onSlow is called once, on its own goroutine, if the
// socket's send queue overflows; it should disconnect the socket. onLeft is
// called, on its own goroutine, when the rooms service says the user is no
// longer a member of a room (kicked, say): the socket has been taken out of
// the room's delivery and should let go of its reference.
func NewConn(id, user string, eio engine.Socket, onSlow func(), onLeft func(room string)) *Conn {
	c := &Conn{id: id, user: user, eio: eio, onSlow: onSlow, onLeft: onLeft, pos: make(map[string]uint64)}
	c.done = func(transports.Transport) { c.pending.Add(-1) }
	return c
}

// ID returns the socket id.
func (c *Conn) ID() string { return c.id }

// Packet is one socket.io packet, encoded once for every socket it goes to.
type Packet struct {
	text string
}

// MessagePacket is a "receive message" packet encoded once without its last
// argument, the offset string connection state recovery needs, which each
// socket appends for itself.
type MessagePacket struct {
	room   string
	offset uint64
	open   string // the packet text up to the closing bracket
}

// write queues p on c unless c is over its bound. The engine keeps writes of
// one socket in order; the pending count falls as the transport flushes them.
func (c *Conn) write(p Packet, limit int64) bool {
	if !c.reserve(limit) {
		return false
	}
	c.eio.Write(strings.NewReader(p.text), nil, c.done)
	return true
}

// writeMessage queues a message packet ending with c's offset vector.
func (c *Conn) writeMessage(p MessagePacket, limit int64) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.reserve(limit) {
		return false
	}
	c.pos[p.room] = p.offset
	text := p.open + `,"` + EncodeOffsets(c.pos) + `"]`
	c.eio.Write(strings.NewReader(text), nil, c.done)
	return true
}

// reserve counts one more queued packet, or marks c slow when it is full.
func (c *Conn) reserve(limit int64) bool {
	if c.slow.Load() {
		return false
	}
	if c.pending.Add(1) > limit {
		c.pending.Add(-1)
		if !c.slow.Swap(true) {
			// Disconnect handlers run inside the close call: keep them off
			// the fan-out path and its locks.
			go c.onSlow()
		}
		return false
	}
	return true
}

func (c *Conn) setPos(room string, off uint64) {
	c.mu.Lock()
	c.pos[room] = off
	c.mu.Unlock()
}

func (c *Conn) dropPos(room string) {
	c.mu.Lock()
	delete(c.pos, room)
	c.mu.Unlock()
}

// Metrics are the fan-out's hooks into the gateway's metrics.
type Metrics interface {
	// Delivered observes the time from a message's acceptance by the rooms
	// service to its packet being queued on local sockets.
	Delivered(since time.Duration)
}

// Options configure a Hub.
type Options struct {
	// QueueLimit is how many packets may wait to be written to one socket.
	QueueLimit int
	// Replay is how many recent messages per room are kept to bring a
	// socket that joins mid-stream up to date without a store read.
	Replay int
}

// Hub owns the upstream subscriptions of one gateway.
type Hub struct {
	rooms   roomsv1.RoomsServiceClient
	log     *slog.Logger
	metrics Metrics
	opts    Options
	enc     parser.Encoder

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu    sync.Mutex
	subs  map[Key]*roomSub
	close bool
}

// NewHub returns a hub that subscribes through rooms.
func NewHub(rooms roomsv1.RoomsServiceClient, log *slog.Logger, m Metrics, opts Options) *Hub {
	ctx, cancel := context.WithCancel(context.Background())
	return &Hub{
		rooms: rooms, log: log, metrics: m, opts: opts, enc: parser.NewEncoder(),
		ctx: ctx, cancel: cancel, subs: make(map[Key]*roomSub),
	}
}

// roomSub is the upstream subscription of one room and its local sockets.
type roomSub struct {
	key   Key
	refs  int
	ready chan struct{} // closed once the stream is registered (or failed)
	err   error         // why it could not register; set before ready closes

	mu sync.Mutex
	// members maps each local socket to the offset it has already seen
	// (through its join's history); it gets only messages above it.
	members   map[*Conn]uint64
	delivered uint64 // offset of the last message dispatched
	recent    []sent // ring of the last messages dispatched, oldest first
	cancel    context.CancelFunc
}

type sent struct {
	session string
	packet  MessagePacket
}

// ErrClosed is returned once the hub is shutting down.
var ErrClosed = errors.New("gateway is shutting down")

// Acquire makes sure the room has a registered upstream subscription and
// takes a reference on it. Anything the rooms service accepts for the room
// after Acquire returns reaches the hub. Each Acquire needs a Release.
func (h *Hub) Acquire(ctx context.Context, k Key) error {
	h.mu.Lock()
	if h.close {
		h.mu.Unlock()
		return ErrClosed
	}
	rs := h.subs[k]
	if rs == nil {
		rs = &roomSub{key: k, ready: make(chan struct{}), members: make(map[*Conn]uint64)}
		h.subs[k] = rs
		sctx, cancel := context.WithCancel(h.ctx)
		rs.cancel = cancel
		h.wg.Go(func() { h.run(sctx, rs) })
	}
	rs.refs++
	h.mu.Unlock()

	select {
	case <-rs.ready:
	case <-ctx.Done():
		h.Release(k)
		return ctx.Err()
	}
	if rs.err != nil {
		h.Release(k)
		return rs.err
	}
	return nil
}

// Release drops a reference taken by Acquire; the last one ends the upstream
// subscription.
func (h *Hub) Release(k Key) {
	h.mu.Lock()
	defer h.mu.Unlock()
	rs := h.subs[k]
	if rs == nil {
		return
	}
	rs.refs--
	if rs.refs == 0 {
		delete(h.subs, k)
		rs.cancel()
	}
}

// Add starts delivering the room's events to c. seen is the last offset c
// already has (from its join's history): messages up to it are not sent
// again, and any dispatched after it before this call are sent now. The
// caller holds a reference from Acquire.
func (h *Hub) Add(ctx context.Context, k Key, c *Conn, seen uint64) error {
	h.mu.Lock()
	rs := h.subs[k]
	h.mu.Unlock()
	if rs == nil {
		return ErrClosed
	}
	rs.mu.Lock()
	defer rs.mu.Unlock()
	c.setPos(k.Room, seen)
	if rs.delivered > seen {
		if len(rs.recent) == 0 || rs.recent[0].packet.offset > seen+1 {
			if err := h.catchUp(ctx, rs, c, seen); err != nil {
				return err
			}
		} else {
			for _, m := range rs.recent {
				if m.packet.offset > seen && m.session != c.id {
					c.writeMessage(m.packet, int64(h.opts.QueueLimit))
				}
			}
		}
		seen = rs.delivered
	}
	rs.members[c] = seen
	return nil
}

// catchUp sends c the messages after seen up to what the room has dispatched,
// read from the rooms service when the replay ring does not reach back far
// enough. rs.mu is held, so dispatch waits: this only happens for a socket that
// joined while a burst larger than the ring went by.
func (h *Hub) catchUp(ctx context.Context, rs *roomSub, c *Conn, seen uint64) error {
	for seen < rs.delivered {
		resp, err := h.rooms.GetHistory(ctx, &roomsv1.GetHistoryRequest{
			Namespace: rs.key.Namespace, Room: rs.key.Room,
			Cursor: &roomsv1.GetHistoryRequest_AfterOffset{AfterOffset: seen}, Limit: 1000,
		})
		if err != nil {
			return err
		}
		if len(resp.GetMessages()) == 0 {
			return nil
		}
		for _, m := range resp.GetMessages() {
			if m.GetOffset() > rs.delivered {
				return nil
			}
			if m.GetSessionId() != c.id {
				c.writeMessage(h.EncodeMessage(rs.key, m), int64(h.opts.QueueLimit))
			}
			seen = m.GetOffset()
		}
	}
	return nil
}

// Remove stops delivering the room's events to c.
func (h *Hub) Remove(k Key, c *Conn) {
	h.mu.Lock()
	rs := h.subs[k]
	h.mu.Unlock()
	if rs == nil {
		return
	}
	rs.mu.Lock()
	delete(rs.members, c)
	rs.mu.Unlock()
	c.dropPos(k.Room)
}

// Close ends every upstream subscription and waits for them.
func (h *Hub) Close() {
	h.mu.Lock()
	h.close = true
	h.mu.Unlock()
	h.cancel()
	h.wg.Wait()
}

// run keeps the room's upstream subscription open until ctx ends, resuming
// after the last offset dispatched whenever the stream breaks.
func (h *Hub) run(ctx context.Context, rs *roomSub) {
	registered := false
	backoff := 100 * time.Millisecond
	for ctx.Err() == nil {
		sub := &roomsv1.RoomSubscription{Namespace: rs.key.Namespace, Room: rs.key.Room}
		if registered {
			after := rs.lastDelivered()
			sub.AfterOffset = &after
		}
		stream, err := h.rooms.Subscribe(ctx, &roomsv1.SubscribeRequest{Rooms: []*roomsv1.RoomSubscription{sub}})
		if err == nil {
			err = awaitRegistered(stream)
		}
		if err == nil && !registered {
			registered = true
			close(rs.ready)
		}
		if err == nil {
			backoff = 100 * time.Millisecond
			err = h.pump(rs, stream)
		}
		if ctx.Err() != nil {
			break
		}
		if errors.Is(err, errRoomDeleted) {
			return
		}
		if code := status.Code(err); code == codes.NotFound || code == codes.PermissionDenied {
			if !registered {
				rs.err = err
				close(rs.ready)
			}
			return
		}
		h.log.Warn("room subscription interrupted; resuming", "namespace", rs.key.Namespace, "room", rs.key.Room, "err", err)
		select {
		case <-ctx.Done():
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 5*time.Second)
	}
	if !registered {
		rs.err = ErrClosed
		close(rs.ready)
	}
}

func (rs *roomSub) lastDelivered() uint64 {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	return rs.delivered
}

type eventStream interface {
	Recv() (*roomsv1.SubscribeResponse, error)
}

// awaitRegistered waits for the response headers the rooms service sends once
// the subscription is registered. A stream refused before that (an unknown
// room, say) ends without headers, and its status comes from Recv.
func awaitRegistered(stream grpc.ServerStreamingClient[roomsv1.SubscribeResponse]) error {
	md, err := stream.Header()
	if err != nil {
		return err
	}
	if md == nil {
		if _, err := stream.Recv(); err != nil {
			return err
		}
		return errors.New("subscription sent events before its headers")
	}
	return nil
}

// pump dispatches the events of one upstream stream until it ends.
func (h *Hub) pump(rs *roomSub, stream eventStream) error {
	for {
		resp, err := stream.Recv()
		if err == io.EOF {
			return errors.New("subscription ended")
		}
		if err != nil {
			return err
		}
		if _, deleted := resp.GetEvent().GetKind().(*roomsv1.Event_RoomDeleted); deleted {
			return errRoomDeleted
		}
		h.dispatch(rs, resp.GetEvent())
	}
}

// errRoomDeleted ends a room's subscription for good.
var errRoomDeleted = errors.New("room deleted")

func (h *Hub) dispatch(rs *roomSub, ev *roomsv1.Event) {
	limit := int64(h.opts.QueueLimit)
	switch k := ev.GetKind().(type) {
	case *roomsv1.Event_Message:
		m := k.Message
		p := h.EncodeMessage(rs.key, m)
		rs.mu.Lock()
		if m.GetOffset() <= rs.delivered {
			rs.mu.Unlock()
			return
		}
		rs.delivered = m.GetOffset()
		rs.recent = append(rs.recent, sent{session: m.GetSessionId(), packet: p})
		if len(rs.recent) > h.opts.Replay {
			rs.recent = rs.recent[len(rs.recent)-h.opts.Replay:]
		}
		for c, seen := range rs.members {
			if m.GetOffset() > seen && c.id != m.GetSessionId() {
				c.writeMessage(p, limit)
			}
		}
		rs.mu.Unlock()
		h.metrics.Delivered(time.Since(m.GetCreateTime().AsTime()))
	case *roomsv1.Event_MemberJoined:
		h.broadcast(rs, h.encode(rs.key.Namespace, "member joined", memberEvent{Room: rs.key.Room, User: k.MemberJoined.GetUserId()}))
	case *roomsv1.Event_MemberLeft:
		user := k.MemberLeft.GetUserId()
		h.broadcast(rs, h.encode(rs.key.Namespace, "member left", memberEvent{Room: rs.key.Room, User: user}))
		// The user's own sockets here are told too, then stop receiving the
		// room: a removed member must not go on reading it.
		rs.mu.Lock()
		for c := range rs.members {
			if c.user == user {
				delete(rs.members, c)
				c.dropPos(rs.key.Room)
				go c.onLeft(rs.key.Room)
			}
		}
		rs.mu.Unlock()
	case *roomsv1.Event_HistoryGap:
		h.log.Warn("messages expired before delivery", "namespace", rs.key.Namespace, "room", rs.key.Room,
			"from", k.HistoryGap.GetFromOffset(), "to", k.HistoryGap.GetToOffset())
	}
}

func (h *Hub) broadcast(rs *roomSub, p Packet) {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	for c := range rs.members {
		c.write(p, int64(h.opts.QueueLimit))
	}
}

type memberEvent struct {
	Room string `json:"room"`
	User string `json:"user"`
}

// Meta is the second argument of a "receive message" event.
type Meta struct {
	Room   string `json:"room"`
	ID     string `json:"id"`
	Offset uint64 `json:"offset"`
	From   string `json:"from"`
	TS     int64  `json:"ts"`
}

// MessageID is the id a message is known by to clients: the publisher's
// client message id, or its offset when it gave none.
func MessageID(m *roomsv1.Message) string {
	if id := m.GetClientMessageId(); id != "" {
		return id
	}
	return strconv.FormatUint(m.GetOffset(), 10)
}

// Payload is m's body as clients get it: gateways publish JSON, which is
// passed on as is; other publishers may not, and their text is passed on as a
// string rather than breaking the packet.
func Payload(m *roomsv1.Message) any {
	if !json.Valid([]byte(m.GetPayload())) {
		return m.GetPayload()
	}
	return json.RawMessage(m.GetPayload())
}

// EncodeMessage encodes the "receive message" packet of m once.
func (h *Hub) EncodeMessage(k Key, m *roomsv1.Message) MessagePacket {
	p := h.encode(k.Namespace, "receive message", Payload(m), Meta{
		Room: k.Room, ID: MessageID(m), Offset: m.GetOffset(), From: m.GetSender(), TS: m.GetCreateTime().AsTime().UnixMilli(),
	})
	return MessagePacket{room: k.Room, offset: m.GetOffset(), open: strings.TrimSuffix(p.text, "]")}
}

// WriteMessages writes stored messages of one room to c, as a restored
// session's catch-up, with room in its queue for all of them. Like live
// delivery, it skips what c itself sent.
func (h *Hub) WriteMessages(k Key, c *Conn, msgs []*roomsv1.Message) {
	for _, m := range msgs {
		if m.GetSessionId() != c.id {
			c.writeMessage(h.EncodeMessage(k, m), int64(h.opts.QueueLimit+len(msgs)))
		}
	}
}

// encode builds the socket.io EVENT packet once.
func (h *Hub) encode(nsp, event string, args ...any) Packet {
	bufs := h.enc.Encode(&parser.Packet{Type: parser.EVENT, Nsp: nsp, Data: append([]any{event}, args...)})
	return Packet{text: bufs[0].String()}
}
