package transport_test

import (
	"fmt"
	"net"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	ws "github.com/gorilla/websocket"
	"github.com/zishang520/socket.io/servers/engine/v3"
	"github.com/zishang520/socket.io/servers/engine/v3/config"
	"github.com/zishang520/socket.io/servers/engine/v3/transports"
	"github.com/zishang520/socket.io/v3/pkg/types"

	"github.com/parleyhq/parley/services/gateway/internal/transport"
)

// startServer serves Engine.IO over the transport only and hands each
// connecting socket to onConnect.
func startServer(t *testing.T, onConnect func(engine.Socket)) string {
	t.Helper()
	opts := config.DefaultServerOptions()
	opts.SetTransports(types.NewSet(transport.WebSocket))
	opts.SetPingInterval(time.Minute)
	eio := engine.NewServer(opts)
	eio.On("connection", func(args ...any) { onConnect(args[0].(engine.Socket)) })
	srv := httptest.NewServer(eio)
	t.Cleanup(func() {
		srv.Close()
		eio.Close()
	})
	return "ws" + strings.TrimPrefix(srv.URL, "http") + "/engine.io/?EIO=4&transport=websocket"
}

func dial(t *testing.T, url string) *ws.Conn {
	t.Helper()
	c, _, err := ws.DefaultDialer.DialContext(t.Context(), url, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if typ, open := read(t, c); typ != ws.TextMessage || !strings.HasPrefix(open, `0{`) {
		t.Fatalf("open packet %d %q", typ, open)
	}
	return c
}

func read(t *testing.T, c *ws.Conn) (int, string) {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	typ, b, err := c.ReadMessage()
	if err != nil {
		t.Fatal(err)
	}
	return typ, string(b)
}

// TestWritesEveryPacketInOrder sends a burst of text and binary messages of
// every frame-length class at once, and checks that each arrives whole, once,
// in order, in the right frame type.
func TestWritesEveryPacketInOrder(t *testing.T) {
	sizes := []int{0, 1, 124, 125, 126, 65535, 65536, 200_000}
	var want []string
	for i, n := range sizes {
		want = append(want, fmt.Sprintf("%d:%s", i, strings.Repeat("x", n)))
	}
	url := startServer(t, func(s engine.Socket) {
		for i, m := range want {
			if i%2 == 0 {
				s.Send(types.NewStringBufferString(m), nil, nil)
			} else {
				s.Send(types.NewBytesBuffer([]byte(m)), nil, nil)
			}
		}
	})
	c := dial(t, url)
	for i, m := range want {
		typ, got := read(t, c)
		switch {
		case i%2 == 0 && (typ != ws.TextMessage || got != "4"+m):
			t.Fatalf("message %d: frame %d of %d bytes, want text %q", i, typ, len(got), "4"+m[:min(len(m), 10)])
		case i%2 == 1 && (typ != ws.BinaryMessage || got != m):
			t.Fatalf("message %d: frame %d of %d bytes, want binary of %d", i, typ, len(got), len(m))
		}
	}
}

// TestClosingWritesWhatWasQueued closes a socket right after sending it a
// message: the client gets the message, then the close.
func TestClosingWritesWhatWasQueued(t *testing.T) {
	url := startServer(t, func(s engine.Socket) {
		s.Send(types.NewStringBufferString("bye"), nil, nil)
		s.Close(false)
	})
	c := dial(t, url)
	if _, got := read(t, c); got != "4bye" {
		t.Fatalf("got %q, want 4bye", got)
	}
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, _, err := c.ReadMessage(); err == nil {
		t.Fatal("the connection is still open")
	}
}

// TestAnswersPingsAndEcho checks the read side: a client's messages reach the
// socket, and a websocket ping is answered with a pong.
func TestAnswersPingsAndEcho(t *testing.T) {
	url := startServer(t, func(s engine.Socket) {
		s.On("message", func(args ...any) {
			s.Send(types.NewStringBufferString("echo:"+args[0].(types.BufferInterface).String()), nil, nil)
		})
	})
	c := dial(t, url)
	pong := make(chan string, 1)
	c.SetPongHandler(func(data string) error {
		pong <- data
		return nil
	})
	if err := c.WriteControl(ws.PingMessage, []byte("p1"), time.Now().Add(time.Second)); err != nil {
		t.Fatal(err)
	}
	if err := c.WriteMessage(ws.TextMessage, []byte("4hello")); err != nil {
		t.Fatal(err)
	}
	if _, got := read(t, c); got != "4echo:hello" {
		t.Fatalf("got %q", got)
	}
	select {
	case data := <-pong:
		if data != "p1" {
			t.Fatalf("pong %q", data)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no pong")
	}
}

// TestReadsMessagesOfEverySize echoes text and binary messages around the
// sizes where reading a message needs a bigger buffer, each back whole and
// in its own frame type.
func TestReadsMessagesOfEverySize(t *testing.T) {
	url := startServer(t, func(s engine.Socket) {
		s.On("message", func(args ...any) {
			s.Send(args[0].(types.BufferInterface), nil, nil)
		})
	})
	c := dial(t, url)
	for _, n := range []int{0, 1, 511, 512, 513, 1024, 4097, 70_000} {
		for _, typ := range []int{ws.TextMessage, ws.BinaryMessage} {
			body := strings.Repeat(fmt.Sprint(n%10), n)
			msg := body
			if typ == ws.TextMessage {
				msg = "4" + body
			}
			if err := c.WriteMessage(typ, []byte(msg)); err != nil {
				t.Fatal(err)
			}
			if gotTyp, got := read(t, c); gotTyp != typ || got != msg {
				t.Fatalf("sent %d bytes as type %d, got %d bytes as type %d", len(msg), typ, len(got), gotTyp)
			}
		}
	}
}

// TestWritesMoreThanTheSocketTakes sends a client more at once than the
// connection's buffers hold, so that writing must wait for the client to
// read: everything still arrives, in order.
func TestWritesMoreThanTheSocketTakes(t *testing.T) {
	const n, size = 128, 64 << 10
	url := startServer(t, func(s engine.Socket) {
		for i := range n {
			s.Send(types.NewStringBufferString(fmt.Sprintf("%03d", i)+strings.Repeat("y", size)), nil, nil)
		}
	})
	c := dial(t, url)
	for i := range n {
		if _, got := read(t, c); !strings.HasPrefix(got, fmt.Sprintf("4%03d", i)) || len(got) != 4+size {
			t.Fatalf("message %d: got %.10q... of %d bytes", i, got, len(got))
		}
	}
}

// TestDirectWritesKeepOrderWithTheSocket interleaves packets written around
// the Engine.IO socket with packets it sends: they arrive in the order
// written, and each direct write's callback runs once it is out.
func TestDirectWritesKeepOrderWithTheSocket(t *testing.T) {
	const n = 200
	done := make(chan struct{}, n)
	url := startServer(t, func(s engine.Socket) {
		d, ok := transport.Direct(s.Transport())
		if !ok {
			t.Error("a connection that began on the websocket has no direct writer")
			return
		}
		for i := range n {
			m := fmt.Sprintf("m%03d", i)
			if i%3 == 0 {
				s.Send(types.NewStringBufferString(m), nil, nil)
			} else {
				d.Write(types.NewStringBufferString(m), nil, func(transports.Transport) { done <- struct{}{} })
			}
		}
	})
	c := dial(t, url)
	for i := range n {
		if _, got := read(t, c); got != fmt.Sprintf("4m%03d", i) {
			t.Fatalf("message %d: got %q", i, got)
		}
	}
	for i := range n - (n+2)/3 {
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			t.Fatalf("%d direct writes reported written, want %d", i, n-(n+2)/3)
		}
	}
}

// TestAFailedWriteClosesOffTheWritersGoroutine writes to a connection its
// client has reset while holding a lock the socket's close handler takes, as
// a room delivering to its members does: the write returns, and the socket
// closes once the lock is free.
func TestAFailedWriteClosesOffTheWritersGoroutine(t *testing.T) {
	var mu sync.Mutex
	closed := make(chan struct{})
	wrote := make(chan error, 1)
	reset := make(chan struct{})
	url := startServer(t, func(s engine.Socket) {
		s.On("close", func(...any) {
			mu.Lock()
			mu.Unlock()
			close(closed)
		})
		d, _ := transport.Direct(s.Transport())
		go func() {
			<-reset
			mu.Lock()
			defer mu.Unlock()
			deadline := time.Now().Add(5 * time.Second)
			for s.ReadyState() == "open" && time.Now().Before(deadline) {
				d.Write(types.NewStringBufferString(strings.Repeat("z", 1024)), nil, nil)
			}
			wrote <- nil
		}()
	})
	c := dial(t, url)
	c.UnderlyingConn().(*net.TCPConn).SetLinger(0)
	c.Close()
	close(reset)
	select {
	case <-wrote:
	case <-time.After(10 * time.Second):
		t.Fatal("writing to a reset connection never returned")
	}
	select {
	case <-closed:
	case <-time.After(10 * time.Second):
		t.Fatal("the socket never closed")
	}
}
