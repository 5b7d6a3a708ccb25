package loadgen

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"sync"
	"time"

	"github.com/gorilla/websocket"
)

// writeTimeout bounds a write to a server that stopped reading, so that
// closing a session never waits on it forever.
const writeTimeout = 10 * time.Second

// client is one socket.io connection. Its reader goroutine owns everything
// but ws and wbuf, which senders share under mu.
type client struct {
	s            *Session
	id           int
	room, member int // its room's index, and its own index among the room's members
	roomName     string

	mu   sync.Mutex
	ws   *websocket.Conn
	wbuf []byte

	rbuf      []byte
	sid, pid  string
	position  []byte // the last recovery position the server sent
	recovered bool   // came back by connection state recovery at least once
	acks      chan int
}

// handshake opens the socket.io connection on a fresh websocket: the
// Engine.IO open packet, then CONNECT with connect as its payload (empty, or
// the recovery request), until the server's CONNECT. It answers pings on the
// way; nothing else is expected before CONNECT.
func (c *client) handshake(ws *websocket.Conn, connect []byte) (sid, pid string, err error) {
	p, err := c.next(ws)
	if err != nil {
		return "", "", fmt.Errorf("read open packet: %w", err)
	}
	if len(p) == 0 || p[0] != '0' {
		return "", "", fmt.Errorf("want an Engine.IO open packet, got %.80q", p)
	}
	if err := ws.WriteMessage(websocket.TextMessage, append([]byte("40"), connect...)); err != nil {
		return "", "", fmt.Errorf("send CONNECT: %w", err)
	}
	for {
		p, err := c.next(ws)
		if err != nil {
			return "", "", fmt.Errorf("read CONNECT: %w", err)
		}
		switch classify(p) {
		case kindPing:
			if err := ws.WriteMessage(websocket.TextMessage, []byte("3")); err != nil {
				return "", "", err
			}
		case kindConnect:
			var hello struct{ Sid, Pid string }
			if err := json.Unmarshal(p[2:], &hello); err != nil {
				return "", "", fmt.Errorf("CONNECT payload %.80q: %w", p, err)
			}
			return hello.Sid, hello.Pid, nil
		case kindConnectError:
			return "", "", fmt.Errorf("connect error: %.200s", p[2:])
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
			return "", "", fmt.Errorf("unexpected packet before CONNECT: %.80q", p)
		}
	}
}

// next reads one frame into the client's read buffer, which the returned
// slice aliases until the next call: one reader per client, no allocation
// per frame.
func (c *client) next(ws *websocket.Conn) ([]byte, error) {
	_, r, err := ws.NextReader()
	if err != nil {
		return nil, err
	}
	c.rbuf = c.rbuf[:0]
	for {
		if len(c.rbuf) == cap(c.rbuf) {
			c.rbuf = append(c.rbuf, 0)[:len(c.rbuf)]
		}
		n, err := r.Read(c.rbuf[len(c.rbuf):cap(c.rbuf)])
		c.rbuf = c.rbuf[:len(c.rbuf)+n]
		if errors.Is(err, io.EOF) {
			return c.rbuf, nil
		}
		if err != nil {
			return nil, err
		}
	}
}

// write sends one text frame.
func (c *client) write(p []byte) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.writeLocked(p)
}

func (c *client) writeLocked(p []byte) error {
	if err := c.ws.SetWriteDeadline(time.Now().Add(writeTimeout)); err != nil {
		return err
	}
	return c.ws.WriteMessage(websocket.TextMessage, p)
}

// request emits event(room) with an ack id and returns the id.
func (c *client) request(event string, id int) error {
	p := append([]byte("42"), strconv.Itoa(id)...)
	p = fmt.Appendf(p, `[%q,%q]`, event, c.roomName)
	return c.write(p)
}

// read is the client's reader goroutine: it handles every frame until the
// session closes, reconnecting with recovery when the server dropped it.
func (c *client) read(ws *websocket.Conn) {
	defer c.s.readers.Done()
	for {
		p, err := c.next(ws)
		if err == nil {
			err = c.handle(p)
		}
		if err == nil {
			continue
		}
		if c.s.closing.Load() {
			return
		}
		c.s.log.Debug("connection lost", "client", c.id, "err", err)
		ws.Close()
		if ws = c.reconnect(); ws == nil {
			c.s.dropped.Add(1)
			return
		}
	}
}

var errClosed = errors.New("closed by the server")

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

// reconnect reopens a dropped connection with socket.io connection state
// recovery when the server offered it (a pid), and returns the new
// websocket, or nil when it cannot.
func (c *client) reconnect() *websocket.Conn {
	if c.pid == "" {
		return nil
	}
	c.s.reconnects.Add(1)
	req, _ := json.Marshal(map[string]string{"pid": c.pid, "offset": string(c.position)})
	for attempt := range 10 {
		if c.s.closing.Load() {
			return nil
		}
		time.Sleep(time.Duration(attempt) * 200 * time.Millisecond)
		ws, _, err := c.s.dialer.Dial(c.s.url, nil)
		if err != nil {
			continue
		}
		sid, pid, err := c.handshake(ws, req)
		if err != nil {
			ws.Close()
			continue
		}
		c.mu.Lock()
		c.ws = ws
		c.mu.Unlock()
		if sid == c.sid {
			c.s.recovered.Add(1)
			c.recovered = true
		} else {
			// A new session: the server forgot the client's rooms, so it joins
			// again; what it missed meanwhile counts as lost.
			c.s.notRecovered.Add(1)
			c.sid = sid
			if err := c.request(c.s.layout.JoinEvent, 0); err != nil {
				ws.Close()
				continue
			}
		}
		c.pid = pid
		return ws
	}
	return nil
}
