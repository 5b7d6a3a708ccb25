package loadgen

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
)

// writeTimeout bounds a write to a server that stopped reading.
const writeTimeout = 10 * time.Second

// client is one socket.io connection.
type client struct {
	s            *Session
	id           int
	room, member int // its room's index, and its own index among the room's members
	roomName     string

	// fd is the socket, -1 while there is none; writers hold mu.
	mu sync.Mutex
	fd atomic.Int32
	// reopening is the socket a reconnection is opening, -1 when none: its
	// blocking handshake can take long with an overloaded server, and
	// closing the session shuts it down.
	reopening atomic.Int32
	wbuf      []byte // frames being written
	sbuf      []byte // "send message" packets being framed

	// The reading side, held by whoever reads the socket: the goroutine
	// that opens it, then its poller. Uncontended but for a hand-over.
	rmu       sync.Mutex
	pending   []byte // the start of a frame not wholly read yet
	frag      []byte // a fragmented message being assembled
	sid, pid  string
	position  []byte // the last recovery position the server sent
	recovered bool   // came back by connection state recovery at least once
	acks      chan int
}

var (
	errClosed       = errors.New("closed by the server")
	errNotConnected = errors.New("not connected")
	errConnected    = errors.New("connected") // ends the handshake's frame loop
)

// write sends one text frame.
func (c *client) write(p []byte) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.writeLocked(opText, p)
}

func (c *client) writeLocked(opcode byte, p []byte) error {
	fd := c.fd.Load()
	if fd < 0 {
		return errNotConnected
	}
	c.wbuf = appendFrame(c.wbuf[:0], opcode, p)
	return writeAll(int(fd), c.wbuf, time.Now().Add(writeTimeout))
}

// request emits event(room) with ack id id.
func (c *client) request(event string, id int) error {
	p := append([]byte("42"), strconv.Itoa(id)...)
	p = fmt.Appendf(p, `[%q,%q]`, event, c.roomName)
	return c.write(p)
}

// frames handles the whole frames at the start of b with onText, answering
// websocket pings on fd, and returns how many bytes it used. It stops early
// when onText returns an error.
func (c *client) frames(b []byte, fd int, onText func([]byte) error) (int, error) {
	used := 0
	for {
		f, n, ok := parseFrame(b[used:])
		if !ok {
			return used, nil
		}
		used += n
		var err error
		switch f.opcode {
		case opText:
			if f.fin {
				err = onText(f.payload)
			} else {
				c.frag = append(c.frag[:0], f.payload...)
			}
		case opContinuation:
			c.frag = append(c.frag, f.payload...)
			if f.fin {
				err = onText(c.frag)
			}
		case opPing:
			c.mu.Lock()
			err = writeAll(fd, appendFrame(nil, opPong, f.payload), time.Now().Add(writeTimeout))
			c.mu.Unlock()
		case opClose:
			err = errClosed
		}
		if err != nil {
			return used, err
		}
	}
}

// consume handles what is in pending plus data, keeping an incomplete last
// frame in pending.
func (c *client) consume(data []byte, fd int, onText func([]byte) error) error {
	if len(c.pending) > 0 {
		c.pending = append(c.pending, data...)
		data = c.pending
	}
	used, err := c.frames(data, fd, onText)
	c.pending = append(c.pending[:0], data[used:]...)
	return err
}

// handshake opens the socket.io connection on a fresh websocket, fd
// (blocking) with rest already read: the Engine.IO open packet, then CONNECT
// with connect as its payload (empty, or the recovery request), until the
// server's CONNECT. What follows it stays in pending.
func (c *client) handshake(fd int, rest []byte, connect []byte) (sid, pid string, err error) {
	c.pending, c.frag = append(c.pending[:0], rest...), c.frag[:0]
	opened := false
	reply := func(p []byte) error {
		c.mu.Lock()
		defer c.mu.Unlock()
		return writeAll(fd, appendFrame(nil, opText, p), time.Now().Add(handshakeTimeout))
	}
	onText := func(p []byte) error {
		if !opened {
			if len(p) == 0 || p[0] != '0' {
				return fmt.Errorf("want an Engine.IO open packet, got %.80q", p)
			}
			opened = true
			return reply(append([]byte("40"), connect...))
		}
		switch classify(p) {
		case kindPing:
			return reply([]byte("3"))
		case kindConnect:
			var hello struct{ Sid, Pid string }
			if err := json.Unmarshal(p[2:], &hello); err != nil {
				return fmt.Errorf("CONNECT payload %.80q: %w", p, err)
			}
			sid, pid = hello.Sid, hello.Pid
			return errConnected
		case kindConnectError:
			return fmt.Errorf("connect error: %.200s", p[2:])
		case kindPresence:
			// Parley's gateway puts a socket in its default room before it
			// sends CONNECT, so the room's presence can come first; stock
			// clients buffer such events until they are connected.
			c.s.presence.Add(1)
			c.s.beforeConnect.Add(1)
		case kindEvent, kindMessage:
			c.s.otherEvents.Add(1)
			c.s.beforeConnect.Add(1)
		default:
			return fmt.Errorf("unexpected packet before CONNECT: %.80q", p)
		}
		return nil
	}
	chunk := make([]byte, 4096)
	data := []byte(nil)
	for {
		switch err := c.consume(data, fd, onText); {
		case errors.Is(err, errConnected):
			return sid, pid, nil
		case err != nil:
			return "", "", err
		}
		n, err := readFD(fd, chunk)
		if err != nil {
			return "", "", fmt.Errorf("read handshake: %w", err)
		}
		data = chunk[:n]
	}
}

// connect opens the client's first connection.
func (c *client) connect() error {
	c.rmu.Lock()
	defer c.rmu.Unlock()
	fd, rest, err := dial(c.s.addr, socketIOPath)
	if err != nil {
		return err
	}
	if c.sid, c.pid, err = c.handshake(fd, rest, nil); err != nil {
		unix.Close(fd)
		return err
	}
	return c.attach(fd)
}

// attach hands an opened socket over: it becomes the client's, frames
// already read are handled, and its poller reads the rest.
func (c *client) attach(fd int) error {
	if err := unix.SetNonblock(fd, true); err != nil {
		return err
	}
	c.mu.Lock()
	c.fd.Store(int32(fd))
	c.mu.Unlock()
	if err := c.consume(nil, fd, c.handle); err != nil {
		return err
	}
	return c.s.pollerOf(c).add(fd, c.id)
}

func (c *client) handle(p []byte) error {
	switch classify(p) {
	case kindMessage:
		m, position, ok := parseMessage(p)
		if !ok {
			c.s.malformed.Add(1)
			return nil
		}
		if position != nil {
			c.position = append(c.position[:0], position...)
		}
		if ph := c.s.phase.Load(); ph != nil {
			ph.deliver(c, m, time.Since(c.s.start))
		} else {
			c.s.stale.Add(1)
		}
	case kindPing:
		return c.write([]byte("3"))
	case kindPresence:
		c.s.presence.Add(1)
	case kindAck:
		if id, ok := ackID(p); ok {
			select {
			case c.acks <- id:
			default:
			}
		}
	case kindClose:
		return errClosed
	default:
		c.s.otherEvents.Add(1)
	}
	return nil
}

// lost ends a connection that failed, and reopens it with recovery when the
// server offered it (a pid). It runs on the poller, which must not block, so
// reconnecting has its own goroutine.
func (c *client) lost(err error) {
	c.mu.Lock()
	fd := c.fd.Swap(-1)
	c.mu.Unlock()
	if fd >= 0 {
		unix.Close(int(fd)) // which also takes it out of the poller
	}
	if c.s.closing.Load() {
		return
	}
	// Rare, and what the report's losses and reconnects come from.
	c.s.log.Warn("connection lost", "client", c.id, "sid", c.sid, "err", err, "recoverable", c.pid != "")
	if c.pid == "" {
		c.s.dropped.Add(1)
		return
	}
	c.s.background.Add(1)
	go func() {
		defer c.s.background.Done()
		if !c.reconnect() {
			c.s.dropped.Add(1)
		}
	}()
}

// reconnect reopens the connection with socket.io connection state recovery
// and reports whether it could.
func (c *client) reconnect() bool {
	c.rmu.Lock()
	defer c.rmu.Unlock()
	c.s.reconnects.Add(1)
	req, _ := json.Marshal(map[string]string{"pid": c.pid, "offset": string(c.position)})
	for attempt := range 10 {
		if c.s.closing.Load() {
			return false
		}
		time.Sleep(time.Duration(attempt) * 200 * time.Millisecond)
		fd, rest, err := dial(c.s.addr, socketIOPath)
		if err != nil {
			continue
		}
		c.reopening.Store(int32(fd))
		sid, pid, err := c.handshake(fd, rest, req)
		c.reopening.Store(-1)
		if err != nil {
			c.s.log.Warn("reconnecting failed", "client", c.id, "sid", c.sid, "err", err, "attempt", attempt+1)
			unix.Close(fd)
			continue
		}
		fresh := sid != c.sid
		c.s.log.Warn("reconnected", "client", c.id, "sid", c.sid, "new_sid", sid, "recovered", !fresh, "attempt", attempt+1)
		if !fresh {
			c.s.recovered.Add(1)
			c.recovered = true
		} else {
			// A new session: the server forgot the client's rooms, so it joins
			// again; what it missed meanwhile counts as lost.
			c.s.notRecovered.Add(1)
			c.sid = sid
		}
		c.pid = pid
		if err := c.attach(fd); err != nil {
			c.lost(err)
			return true
		}
		if fresh {
			if err := c.request(c.s.layout.JoinEvent, 0); err != nil {
				c.lost(err)
			}
		}
		return true
	}
	return false
}
