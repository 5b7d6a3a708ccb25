package wire

import (
	"io"
	"slices"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/zishang520/socket.io/parsers/engine/v3/packet"
	"github.com/zishang520/socket.io/servers/engine/v3"
	"github.com/zishang520/socket.io/servers/engine/v3/transports"
	"github.com/zishang520/socket.io/v3/pkg/types"
)

// Transport is what a Conn writes to: a socket's engine.io connection, which
// keeps one socket's writes in order and calls back once each is flushed.
type Transport interface {
	Write(io.Reader, *packet.Options, engine.SendCallback) engine.Socket
}

// TextWriter is a Transport that also takes a packet's text as it is, with
// no reader around it (the gateway's direct websocket writer): on the
// delivery path, every packet of every socket goes through here.
type TextWriter interface {
	Transport
	// WriteText queues a copy of text, which it must not modify or keep,
	// and calls done once it is flushed.
	WriteText(text []byte, done engine.SendCallback)
}

// DefaultQueueBytes is the default bound of one socket's queue: room for
// dozens of the largest messages, and for the presence events of thousands
// of members leaving at once.
const DefaultQueueBytes = 1 << 20

// Conn writes packets to one socket. It bounds the bytes waiting to be
// flushed: a socket that cannot keep up is declared slow once, and is then
// written nothing more, so it never grows the gateway's memory. The bound is
// in bytes, not packets, so that a burst of small packets (a crowd's
// presence events) does not pass for a slow reader.
type Conn struct {
	t       Transport
	tw      TextWriter // t, when it takes text as it is; else nil
	limit   int64
	onSlow  func()
	pending atomic.Int64 // bytes written and not yet flushed
	slow    atomic.Bool

	// mu orders writes: each message packet ends with the socket's offsets
	// as of that packet, and they must reach the client in the order they
	// were computed.
	mu     sync.Mutex
	places []place // per room, in name order: offset of the last message written, or the join's
	key    string  // the key the socket's session is stored under
	// held keeps packets from the socket while holding (see Hold).
	holding bool
	held    [][]byte
}

// NewConn returns a Conn on t that lets limit bytes wait. Every message it
// writes ends with the socket's position (EncodePosition), which names key.
// onSlow is called once, on its own goroutine, when the socket falls behind;
// it should disconnect the socket.
func NewConn(t Transport, key string, limit int, onSlow func()) *Conn {
	tw, _ := t.(TextWriter)
	return &Conn{t: t, tw: tw, key: key, limit: int64(limit), onSlow: onSlow}
}

// Hold keeps what is written from the socket until Open. A socket starts
// receiving its rooms while it is being admitted, before socket.io has sent
// it the namespace's CONNECT reply, and nothing may reach a client before
// that reply. Held packets count against the bound like queued ones.
func (c *Conn) Hold() {
	c.mu.Lock()
	c.holding = true
	c.mu.Unlock()
}

// Open queues what was held, in order, and lets what follows through.
func (c *Conn) Open() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.holding = false
	if !c.slow.Load() {
		for _, text := range c.held {
			c.send(text)
		}
	}
	c.held = nil
}

// Write queues p, unless the socket is slow.
func (c *Conn) Write(p Packet) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.write(p.text, false)
}

// WriteMessage queues a message packet ending with the socket's position, with
// p's room now at p's offset. A catch-up's packets are counted but not held to
// the bound: history is written faster than any client reads it, and how much
// a catch-up sends is bounded where it starts (history on join, recovery's
// message limit).
func (c *Conn) WriteMessage(p MessagePacket, catchUp bool) bool {
	if c.slow.Load() {
		return false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	i := c.place(p.Room)
	before := c.places[i].offset
	c.places[i].offset = p.Offset
	var ok bool
	if c.tw != nil && !c.holding {
		// The writer copies the text at once: build it in a buffer that
		// the next delivery reuses.
		b := texts.Get().(*[]byte)
		*b = p.appendText((*b)[:0], c.key, c.places)
		ok = c.write(*b, catchUp)
		if cap(*b) <= maxKeptText {
			*b = (*b)[:0]
			texts.Put(b)
		}
	} else {
		ok = c.write(p.appendText(nil, c.key, c.places), catchUp)
	}
	if !ok {
		c.places[i].offset = before
	}
	return ok
}

// texts holds buffers for the text of a delivery that is copied as soon as it
// is written.
var texts = sync.Pool{New: func() any { return new([]byte) }}

// maxKeptText is the largest buffer texts keeps: one that grew for a rare big
// message is left to the collector.
const maxKeptText = 16 << 10

// write queues text, or holds it. c.mu is held.
func (c *Conn) write(text []byte, exempt bool) bool {
	if !c.reserve(int64(len(text)), exempt) {
		return false
	}
	if c.holding {
		c.held = append(c.held, text)
		return true
	}
	c.send(text)
	return true
}

// send hands reserved bytes to the transport, which gives them back once
// they are flushed.
func (c *Conn) send(text []byte) {
	n := int64(len(text))
	done := func(transports.Transport) { c.pending.Add(-n) }
	if c.tw != nil {
		c.tw.WriteText(text, done)
		return
	}
	// A StringBuffer, unlike other readers, goes out as a text frame; it
	// only reads text, which may be shared by every socket of a room.
	c.t.Write(types.NewStringBuffer(text), nil, done)
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

// reserve counts n more queued bytes, or fails the socket when they do not
// fit and the write is not exempt.
func (c *Conn) reserve(n int64, exempt bool) bool {
	if c.slow.Load() {
		return false
	}
	if c.pending.Add(n) > c.limit && !exempt {
		c.pending.Add(-n)
		c.Fail()
		return false
	}
	return true
}

// SetPos records the offset the socket has reached in room without a message,
// as after a join whose history ends there.
func (c *Conn) SetPos(room string, off uint64) {
	c.mu.Lock()
	c.places[c.place(room)].offset = off
	c.mu.Unlock()
}

// DropPos forgets room, which the socket left.
func (c *Conn) DropPos(room string) {
	c.mu.Lock()
	if i, ok := slices.BinarySearchFunc(c.places, room, byRoom); ok {
		c.places = slices.Delete(c.places, i, i+1)
	}
	c.mu.Unlock()
}

// place returns the index of room's place, adding it at offset 0 if the
// socket has none. c.mu is held.
func (c *Conn) place(room string) int {
	i, ok := slices.BinarySearchFunc(c.places, room, byRoom)
	if !ok {
		c.places = slices.Insert(c.places, i, newPlace(room, 0))
	}
	return i
}

func byRoom(p place, room string) int { return strings.Compare(p.room, room) }
