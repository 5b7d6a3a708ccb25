// Package transport is the gateway's Engine.IO websocket transport. It reads
// as the socket.io library's own does, but writes differently: every packet
// handed to it is framed at once into the connection's pending bytes, and one
// writer writes all that has gathered with a single system call, so a socket
// sent several packets at once costs one write, not one per packet. No
// per-connection write buffer or goroutine outlives a burst of writes, which
// keeps idle connections small.
package transport

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"sync"
	"syscall"
	"time"

	ws "github.com/gorilla/websocket"
	"github.com/zishang520/socket.io/parsers/engine/v3/packet"
	"github.com/zishang520/socket.io/parsers/engine/v3/parser"
	"github.com/zishang520/socket.io/servers/engine/v3"
	"github.com/zishang520/socket.io/servers/engine/v3/transports"
	"github.com/zishang520/socket.io/v3/pkg/slices"
	"github.com/zishang520/socket.io/v3/pkg/types"
)

// WebSocket builds the transport; give it to the server's SetTransports in
// place of the library's websocket.
var WebSocket transports.TransportCtor = builder{}

type builder struct{}

func (builder) New(ctx *types.HttpContext) transports.Transport { return newWebSocket(ctx) }
func (builder) Name() string                                    { return transports.WEBSOCKET }
func (builder) HandlesUpgrades() bool                           { return true }
func (builder) UpgradesTo() []string                            { return nil }

// closeFlushTimeout bounds how long a closing connection may take to write
// what was queued before it closed (such as the packet saying why).
const closeFlushTimeout = time.Second

// maxKeptBuffer is the largest write buffer returned to the pool: a burst to
// one slow socket must not pin its memory for everyone.
const maxKeptBuffer = 64 << 10

var buffers = sync.Pool{New: func() any { return new([]byte) }}

type websocket struct {
	transports.Transport

	conn        *types.WebSocketConn
	raw         syscall.RawConn // the TCP connection's, for writes that must not block; nil if none
	idleTimeout time.Duration

	// direct: the connection began on this transport, so the Engine.IO
	// socket never holds packets for it, and a Direct writer may write
	// around the socket without overtaking anything.
	direct bool

	mu      sync.Mutex
	out     *[]byte               // frames not yet written; nil when there are none
	sends   int                   // Send calls whose frames are in out, each owed a "drain"
	dones   []engine.SendCallback // Direct writes whose frames are in out
	writing bool                  // a writer goroutine is running
	closing bool                  // DoClose was called: write what is queued, then close
	closed  bool

	// tryWrite's arguments and results, in fields rather than captured by a
	// closure, which would cost an allocation per write; w.mu guards them.
	writeFd func(fd uintptr) bool
	pend    []byte
	wrote   int
	werr    error
}

func newWebSocket(ctx *types.HttpContext) *websocket {
	w := &websocket{
		Transport: transports.MakeTransport(), conn: ctx.Websocket, idleTimeout: ctx.IdleTimeout,
		direct: !ctx.Query().Has("sid"),
	}
	if sc, ok := w.conn.UnderlyingConn().(syscall.Conn); ok {
		w.raw, _ = sc.SyscallConn()
		w.writeFd = w.writeTo
	}
	w.Prototype(w)
	w.Construct(ctx)
	_ = w.conn.On("error", func(errs ...any) {
		w.OnError("websocket error", slices.TryGetAny[error](errs, 0))
	})
	_ = w.conn.Once("close", func(...any) { w.OnClose() })
	// gorilla answers pings and closes by writing to the connection itself;
	// those frames go through the writer here instead, so that they never
	// land in the middle of one of its writes.
	w.conn.SetPingHandler(func(data string) error {
		w.control(ws.PongMessage, []byte(data))
		return nil
	})
	w.conn.SetCloseHandler(func(code int, _ string) error {
		w.control(ws.CloseMessage, ws.FormatCloseMessage(code, ""))
		return nil
	})
	w.SetWritable(true)
	w.SetPerMessageDeflate(nil)
	transports.StartReader(w, ctx.TransportReadPermission(), w.read)
	return w
}

func (w *websocket) Name() string          { return transports.WEBSOCKET }
func (w *websocket) HandlesUpgrades() bool { return true }

// read hands every message the client sends to the Engine.IO socket until
// the connection fails or closes.
func (w *websocket) read() {
	for {
		if w.idleTimeout > 0 {
			_ = w.conn.SetReadDeadline(time.Now().Add(w.idleTimeout))
		}
		mt, r, err := w.conn.NextReader()
		if err != nil {
			w.fail(err)
			return
		}
		if mt != ws.BinaryMessage && mt != ws.TextMessage {
			continue
		}
		msg, err := readAll(r)
		if err != nil {
			w.fail(err)
			return
		}
		switch p, ok := w.decodeText(mt, msg); {
		case ok:
			w.OnPacket(p)
		case mt == ws.BinaryMessage:
			w.OnData(types.NewBytesBuffer(msg))
		default:
			w.OnData(types.NewStringBuffer(msg))
		}
	}
}

// decodeText decodes an Engine.IO 4 text packet as the library's parser does,
// but around msg rather than copied into a growing buffer (a kilobyte or two
// of allocations per chat message). Binary and base64 packets, unknown types
// and the older protocol are left to the parser.
func (w *websocket) decodeText(mt int, msg []byte) (*packet.Packet, bool) {
	if mt != ws.TextMessage || w.Protocol() != 4 || len(msg) == 0 || msg[0] == 'b' {
		return nil, false
	}
	typ, ok := parser.PACKET_TYPES_REVERSE[msg[0]]
	if !ok {
		return nil, false
	}
	return &packet.Packet{Type: typ, Data: types.NewStringBuffer(msg[1:])}, true
}

// readAll reads a message into a pooled buffer and returns a copy of exactly
// its size: read straight into a growing buffer, a chat message of a hundred
// bytes cost nearly 3 KB of allocations.
func readAll(r io.Reader) ([]byte, error) {
	b := buffers.Get().(*[]byte)
	defer release(b)
	for {
		if len(*b) == cap(*b) {
			*b = append(*b, make([]byte, max(len(*b), 512))...)[:len(*b)]
		}
		n, err := r.Read((*b)[len(*b):cap(*b)])
		*b = (*b)[:len(*b)+n]
		if err == io.EOF {
			return bytes.Clone(*b), nil
		}
		if err != nil {
			return nil, err
		}
	}
}

// fail ends the transport after a read or write error: a connection the peer
// closed ends as a close, anything else as an error, as the library's own
// transport reports them.
func (w *websocket) fail(err error) {
	var closeErr *ws.CloseError
	if errors.As(err, &closeErr) || errors.Is(err, net.ErrClosed) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		w.conn.Emit("close")
		return
	}
	w.conn.Emit("error", err)
	w.conn.Emit("close")
}

// Send frames packets into the pending bytes and writes them. The transport
// stays writable throughout: packets never wait in the Engine.IO socket, they
// wait here, where they are written together.
func (w *websocket) Send(packets []*packet.Packet) {
	if !w.begin() {
		return
	}
	ping := false
	for _, p := range packets {
		var err error
		if *w.out, err = w.appendPacket(*w.out, p); err != nil {
			go w.OnError("encoding a packet failed", err)
		}
		ping = ping || p.Type == packet.PING
	}
	w.sends++
	if ping {
		// The Engine.IO socket arms its pong deadline only once the ping's
		// Send has returned; a ping written here, inline, can be answered
		// before that if the sending goroutine is then kept waiting for a
		// CPU, and the pong, come too early, leaves the late deadline to
		// end a healthy connection. The writer goroutine sends it instead,
		// as the library's own transport does.
		w.startWriter()
		w.mu.Unlock()
		return
	}
	w.flush()
}

// sendMessage frames one socket.io packet as an Engine.IO message and writes
// it; done, if any, is called once it is written.
func (w *websocket) sendMessage(data []byte, done engine.SendCallback) {
	if !w.begin() {
		return
	}
	*w.out = appendHeader(*w.out, ws.TextMessage, 1+len(data))
	*w.out = append(append(*w.out, '4'), data...)
	if done != nil {
		w.dones = append(w.dones, done)
	}
	w.flush()
}

// begin locks w.mu for a send and readies the pending bytes; it reports
// false, with w.mu unlocked, once the transport is closing.
func (w *websocket) begin() bool {
	w.mu.Lock()
	if w.closing || w.closed {
		w.mu.Unlock()
		return false
	}
	if w.out == nil {
		w.out = buffers.Get().(*[]byte)
	}
	return true
}

// flush writes the pending bytes, and unlocks w.mu. With no writer running,
// it first tries to write them at once, without blocking: a socket that
// keeps up — nearly all of them — costs one system call per send and no
// goroutine. What the socket does not take at once is left to a writer
// goroutine, which may block.
func (w *websocket) flush() {
	if w.writing {
		w.mu.Unlock()
		return
	}
	n, err := w.tryWrite(*w.out)
	if err != nil {
		w.mu.Unlock()
		// Closing runs socket.io's close path, which takes locks of its
		// own, some perhaps held by whoever is sending (a room delivering
		// to its members): keep it off the sender's goroutine.
		go w.fail(err)
		return
	}
	if n < len(*w.out) {
		*w.out = (*w.out)[:copy(*w.out, (*w.out)[n:])]
		w.startWriter()
		w.mu.Unlock()
		return
	}
	sends, dones := w.sends, w.dones
	release(w.out)
	w.out, w.sends, w.dones = nil, 0, nil
	w.mu.Unlock()
	w.written(sends, dones)
}

// written tells the senders of frames that went out: the Engine.IO socket
// (a "drain" per Send, which runs their callbacks) and Direct writers.
func (w *websocket) written(sends int, dones []engine.SendCallback) {
	for range sends {
		w.Emit("drain")
	}
	for _, done := range dones {
		done(w)
	}
}

// tryWrite writes what of b the connection takes without blocking.
func (w *websocket) tryWrite(b []byte) (int, error) {
	if w.raw == nil {
		return 0, nil
	}
	w.pend = b
	err := w.raw.Write(w.writeFd)
	n, werr := w.wrote, w.werr
	w.pend, w.wrote, w.werr = nil, 0, nil
	switch {
	case err != nil:
		return 0, err
	case errors.Is(werr, syscall.EAGAIN), errors.Is(werr, syscall.EINTR):
		return 0, nil
	case werr != nil:
		return 0, werr
	}
	return n, nil
}

// writeTo writes w.pend to the connection's descriptor fd, once.
func (w *websocket) writeTo(fd uintptr) bool {
	w.wrote, w.werr = syscall.Write(int(fd), w.pend)
	if w.wrote < 0 {
		w.wrote = 0
	}
	return true
}

// control queues a control frame.
func (w *websocket) control(op int, payload []byte) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return
	}
	if w.out == nil {
		w.out = buffers.Get().(*[]byte)
	}
	*w.out = appendFrame(*w.out, op, payload)
	w.startWriter()
}

// startWriter starts a writer unless one runs. w.mu is held.
func (w *websocket) startWriter() {
	if !w.writing {
		w.writing = true
		go w.write()
	}
}

// write writes the pending bytes until there are none, then tells the
// Engine.IO socket which of its sends went out ("drain", one per Send, which
// runs their callbacks).
func (w *websocket) write() {
	raw := w.conn.UnderlyingConn()
	for {
		w.mu.Lock()
		out, sends, dones, closing := w.out, w.sends, w.dones, w.closing
		w.out, w.sends, w.dones = nil, 0, nil
		if out == nil {
			w.writing = false
			w.mu.Unlock()
			if closing {
				_ = w.conn.Close()
			}
			return
		}
		w.mu.Unlock()

		if closing {
			_ = raw.SetWriteDeadline(time.Now().Add(closeFlushTimeout))
		}
		_, err := raw.Write(*out)
		release(out)
		if err != nil {
			w.mu.Lock()
			w.writing = false
			w.mu.Unlock()
			w.fail(err)
			return
		}
		w.written(sends, dones)
	}
}

func release(b *[]byte) {
	if cap(*b) <= maxKeptBuffer {
		*b = (*b)[:0]
		buffers.Put(b)
	}
}

// OnClose ends the transport for every close path, including a peer's close
// and an error, and releases the connection.
func (w *websocket) OnClose() {
	w.mu.Lock()
	w.closed = true
	if !w.writing && w.out != nil {
		release(w.out)
		w.out = nil
	}
	w.mu.Unlock()
	w.Transport.OnClose()
	_ = w.conn.Close()
}

// DoClose closes the transport once what is queued is written (within
// closeFlushTimeout), so that a client sent away learns why.
func (w *websocket) DoClose(fn types.Callable) {
	w.mu.Lock()
	w.closing = true
	flushing := w.writing
	w.mu.Unlock()
	if !flushing {
		_ = w.conn.Close()
	}
	if fn != nil {
		fn()
	}
}

// appendPacket frames one Engine.IO packet onto b.
func (w *websocket) appendPacket(b []byte, p *packet.Packet) ([]byte, error) {
	if p.Options != nil && p.Options.WsPreEncodedFrame != nil {
		f := p.Options.WsPreEncodedFrame
		if _, text := f.(*types.StringBuffer); text {
			return appendFrame(b, ws.TextMessage, f.Bytes()), nil
		}
		return appendFrame(b, ws.BinaryMessage, f.Bytes()), nil
	}
	if sb, ok := p.Data.(*types.StringBuffer); ok && p.Type == packet.MESSAGE {
		// The common case, a socket.io packet: framed without an
		// intermediate copy.
		data := sb.Bytes()
		b = appendHeader(b, ws.TextMessage, 1+len(data))
		b = append(b, '4')
		return append(b, data...), nil
	}
	enc, err := w.Parser().EncodePacket(p, w.SupportsBinary())
	if err != nil {
		return b, err
	}
	if _, text := enc.(*types.StringBuffer); text {
		return appendFrame(b, ws.TextMessage, enc.Bytes()), nil
	}
	return appendFrame(b, ws.BinaryMessage, enc.Bytes()), nil
}

func appendFrame(b []byte, op int, payload []byte) []byte {
	return append(appendHeader(b, op, len(payload)), payload...)
}

// appendHeader appends the header of a final, unmasked frame (a server's
// frames are never masked) of n payload bytes.
func appendHeader(b []byte, op, n int) []byte {
	b = append(b, 0x80|byte(op))
	switch {
	case n < 126:
		return append(b, byte(n))
	case n <= 0xFFFF:
		return binary.BigEndian.AppendUint16(append(b, 126), uint16(n))
	default:
		return binary.BigEndian.AppendUint64(append(b, 127), uint64(n))
	}
}

// Direct returns a writer of socket.io packets straight onto t, around the
// Engine.IO socket's queue and events, or false when t is not this
// transport or the connection began on another (polling) and was upgraded:
// then the Engine.IO socket may still hold packets from before the upgrade.
func Direct(t transports.Transport) (*DirectWriter, bool) {
	w, ok := t.(*websocket)
	if !ok || !w.direct {
		return nil, false
	}
	return &DirectWriter{w: w}, true
}

// DirectWriter writes socket.io packets to one websocket connection, in
// order with what the Engine.IO socket sends it.
type DirectWriter struct {
	w *websocket
}

// Write writes the socket.io packet r holds and calls done once it is
// written; it has the shape of the Engine.IO socket's Write, which it stands
// in for.
func (d *DirectWriter) Write(r io.Reader, _ *packet.Options, done engine.SendCallback) engine.Socket {
	var data []byte
	if b, ok := r.(types.BufferInterface); ok {
		data = b.Bytes()
	} else {
		var err error
		if data, err = io.ReadAll(r); err != nil {
			go d.w.OnError("reading a packet failed", err)
			return nil
		}
	}
	d.WriteText(data, done)
	return nil
}

// WriteText writes a socket.io packet's text and calls done, if any, once it
// is written. The text is copied into the connection's pending bytes, so it
// may be shared by other sockets.
func (d *DirectWriter) WriteText(text []byte, done engine.SendCallback) {
	d.w.sendMessage(text, done)
}
