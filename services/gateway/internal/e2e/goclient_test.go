package e2e

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/zishang520/socket.io/clients/engine/v3/transports"
	cio "github.com/zishang520/socket.io/clients/socket/v3"
	"github.com/zishang520/socket.io/v3/pkg/types"
)

// goClient is a zishang520 Go socket.io client whose events are recorded.
type goClient struct {
	t      *testing.T
	sock   *cio.Socket
	events chan []any // "receive message" arguments
	joined chan map[string]any
}

func dialGo(t *testing.T, url string, auth map[string]any) *goClient {
	t.Helper()
	// The Go client now and then never completes a websocket connection, with
	// no trace of it reaching the gateway; a fresh client is tried then. A
	// gateway that refuses or fails a connection fails the test at once.
	for attempt := 1; ; attempt++ {
		c, err := tryDialGo(t, url, auth)
		if err == nil {
			return c
		}
		if attempt == 3 || !errors.Is(err, errNoConnect) {
			t.Fatalf("connect to %s: %v", url, err)
		}
		t.Logf("connect to %s, attempt %d: %v; retrying with a new client", url, attempt, err)
	}
}

var errNoConnect = errors.New("no connect event")

func tryDialGo(t *testing.T, url string, auth map[string]any) (*goClient, error) {
	o := cio.DefaultOptions()
	o.SetTransports(types.NewSet[transports.TransportCtor](cio.WebSocket))
	o.SetReconnection(false)
	o.SetForceNew(true)
	if auth != nil {
		o.SetAuth(auth)
	}
	c := &goClient{t: t, events: make(chan []any, 64), joined: make(chan map[string]any, 16)}
	connected := make(chan struct{}, 1)
	failed := make(chan error, 1)
	sock, err := cio.Connect(url, o)
	if err != nil {
		return nil, err
	}
	c.sock = sock
	sock.On("connect", func(...any) { connected <- struct{}{} })
	sock.On("connect_error", func(a ...any) {
		err, _ := a[0].(error)
		failed <- err
	})
	sock.On("receive message", func(a ...any) { c.events <- a })
	sock.On("member joined", func(a ...any) {
		if m, ok := a[0].(map[string]any); ok {
			c.joined <- m
		}
	})
	t.Cleanup(func() { sock.Disconnect() })
	// The connection may have completed before the handler was registered.
	if sock.Connected() {
		return c, nil
	}
	select {
	case <-connected:
		return c, nil
	case err := <-failed:
		return nil, fmt.Errorf("connect_error: %w", err)
	case <-time.After(5 * time.Second):
		sock.Disconnect()
		return nil, errNoConnect
	}
}

// call emits event with args and returns the ack's payload.
func (c *goClient) call(event string, args ...any) map[string]any {
	c.t.Helper()
	got := make(chan []any, 1)
	c.sock.Timeout(10*time.Second).Emit(event, append(args, func(a []any, err error) {
		if err != nil {
			c.t.Errorf("%s: %v", event, err)
		}
		got <- a
	})...)
	a := <-got
	if len(a) == 0 {
		c.t.Fatalf("%s: no ack", event)
	}
	m, ok := a[0].(map[string]any)
	if !ok {
		c.t.Fatalf("%s: ack %v is not an object", event, a)
	}
	return m
}

func (c *goClient) mustOK(event string, args ...any) map[string]any {
	c.t.Helper()
	m := c.call(event, args...)
	if m["ok"] != true {
		c.t.Fatalf("%s %v: ack %v", event, args, m)
	}
	return m
}

func (c *goClient) nextMessage() []any {
	c.t.Helper()
	select {
	case a := <-c.events:
		return a
	case <-time.After(10 * time.Second):
		c.t.Fatal("no receive message within 10s")
	}
	return nil
}

func token(t *testing.T, sub string) string {
	t.Helper()
	return signedToken(t, sub, time.Now().Add(time.Hour))
}

// TestTwoGatewaysShareRooms connects clients to two gateways in front of one
// rooms service: messages cross from one gateway to the other in both
// directions, and each gateway keeps a single upstream
// subscription for the room however many of its sockets are in it.
func TestTwoGatewaysShareRooms(t *testing.T) {
	s := startStack(t)
	_, url1 := s.gateway("127.0.0.1:0")
	_, url2 := s.gateway("127.0.0.1:0")
	room := fmt.Sprintf("shared-%d", time.Now().UnixNano())

	alice := dialGo(t, url1+"/secure", map[string]any{"token": token(t, "alice")})
	// The Go client's polling transport does not deliver client emits to any
	// server in v3.0.6, so Go clients use websocket; the npm client covers
	// polling.
	bob := dialGo(t, url2+"/secure", map[string]any{"token": token(t, "bob")})
	carol := dialGo(t, url2+"/secure", map[string]any{"token": token(t, "carol")})
	alice.mustOK("join", room)
	bob.mustOK("join", room)
	carol.mustOK("join", room)

	tests := []struct {
		name     string
		from     *goClient
		to       []*goClient
		fromUser string
	}{
		{"gateway 1 to gateway 2", alice, []*goClient{bob, carol}, "alice"},
		{"gateway 2 to both", bob, []*goClient{alice, carol}, "bob"},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			text := fmt.Sprintf("hello %d", i)
			ack := tt.from.mustOK("send message", room, map[string]any{"text": text})
			for _, c := range tt.to {
				a := c.nextMessage()
				msg, _ := a[0].(map[string]any)
				meta, _ := a[1].(map[string]any)
				if msg["text"] != text || meta["from"] != tt.fromUser || meta["room"] != room || meta["offset"] != ack["offset"] {
					t.Fatalf("got %v %v, want text %q from %s at offset %v", msg, meta, text, tt.fromUser, ack["offset"])
				}
			}
			select {
			case a := <-tt.from.events:
				t.Fatalf("sender received its own message: %v", a)
			default:
			}
		})
	}

	// Each gateway subscribed to the room once, whatever its socket count.
	m := s.roomsMetric(t, "parley_rooms_subscriptions")
	if m != 2 {
		t.Errorf("rooms service has %v subscriptions open, want 2 (one per gateway)", m)
	}
}
