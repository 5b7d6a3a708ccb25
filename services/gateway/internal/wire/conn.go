package wire

import (
	"io"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/zishang520/socket.io/parsers/engine/v3/packet"
	"github.com/zishang520/socket.io/servers/engine/v3"
	"github.com/zishang520/socket.io/servers/engine/v3/transports"
)

// Transport is what a Conn writes to: a socket's engine.io connection, which
// keeps one socket's writes in order and calls back once each is flushed.
type Transport interface {
	Write(io.Reader, *packet.Options, engine.SendCallback) engine.Socket
}

// Conn writes packets to one socket. It bounds the packets waiting to be
// flushed: a socket that cannot keep up is declared slow once, and is then
// written nothing more, so it never grows the gateway's memory.
type Conn struct {
	t       Transport
	limit   int64
	onSlow  func()
	pending atomic.Int64
	slow    atomic.Bool
	done    engine.SendCallback

	// mu orders message writes: each message packet ends with the socket's
	// offsets as of that packet, and they must reach the client in the order
	// they were computed.
	mu  sync.Mutex
	pos map[string]uint64 // room -> offset of the last message written, or the join's
	key string            // the key the socket's session is stored under
}

// NewConn returns a Conn on t that lets limit packets wait. Every message it
// writes ends with the socket's position (EncodePosition), which names key.
// onSlow is called once, on its own goroutine, when the socket falls behind;
// it should disconnect the socket.
func NewConn(t Transport, key string, limit int, onSlow func()) *Conn {
	c := &Conn{t: t, key: key, limit: int64(limit), onSlow: onSlow, pos: make(map[string]uint64)}
	c.done = func(transports.Transport) { c.pending.Add(-1) }
	return c
}

// Write queues p, unless the socket is slow.
func (c *Conn) Write(p Packet) bool {
	if !c.reserve(0) {
		return false
	}
	c.t.Write(strings.NewReader(p.text), nil, c.done)
	return true
}

// WriteMessage queues a message packet ending with the socket's position, with
// p's room now at p's offset. headroom lets a catch-up queue a page of history
// at once beyond the live bound.
func (c *Conn) WriteMessage(p MessagePacket, headroom int) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.reserve(int64(headroom)) {
		return false
	}
	c.pos[p.Room] = p.Offset
	c.t.Write(strings.NewReader(p.text(EncodePosition(c.key, c.pos))), nil, c.done)
	return true
}

// Fail declares the socket slow, for a caller that holds packets for it and
// has run out of room.
func (c *Conn) Fail() {
	if !c.slow.Swap(true) {
		// The disconnect runs socket.io's close path, which takes locks of
		// its own: keep it off the caller's.
		go c.onSlow()
	}
}

// reserve counts one more queued packet, or fails the socket when it is full.
func (c *Conn) reserve(headroom int64) bool {
	if c.slow.Load() {
		return false
	}
	if c.pending.Add(1) > c.limit+headroom {
		c.pending.Add(-1)
		c.Fail()
		return false
	}
	return true
}

// SetPos records the offset the socket has reached in room without a message,
// as after a join whose history ends there.
func (c *Conn) SetPos(room string, off uint64) {
	c.mu.Lock()
	c.pos[room] = off
	c.mu.Unlock()
}

// DropPos forgets room, which the socket left.
func (c *Conn) DropPos(room string) {
	c.mu.Lock()
	delete(c.pos, room)
	c.mu.Unlock()
}
