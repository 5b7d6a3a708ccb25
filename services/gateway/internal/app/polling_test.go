package app

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/zishang520/socket.io/servers/engine/v3"
	"github.com/zishang520/socket.io/servers/socket/v3"
)

func TestValidPayload(t *testing.T) {
	tests := []struct {
		payload string
		want    bool
	}{
		{"4hello", true},
		{"40", true},
		{"42[\"x\"]\x1e3\x1ebAQID", true},
		{"6", true},
		{"", true},
		{"abc", false},
		{"4hello\x1e", false},
		{"\x1e4", false},
		{"7", false},
		{"4a\x1e\x1e4b", false},
	}
	for _, tt := range tests {
		if got := validPayload([]byte(tt.payload)); got != tt.want {
			t.Errorf("validPayload(%q) = %v, want %v", tt.payload, got, tt.want)
		}
	}
}

// pollingServers are the Engine.IO servers checkPolling guards: the
// fixture's plain Engine.IO echo and a socket.io server on the gateway's
// wiring (socketOptions), each serving at the returned base URL.
var pollingServers = []struct {
	name  string
	start func(t *testing.T) string
}{
	{"engine.io", func(t *testing.T) string {
		eio := engineEcho()
		t.Cleanup(func() { eio.Close() })
		return serve(t, checkPolling(eio, func() engine.BaseServer { return eio }, 1e6))
	}},
	{"socket.io", func(t *testing.T) string {
		var draining atomic.Bool
		opts := socketOptions(Config{PingInterval: time.Minute, PingTimeout: time.Minute}, &draining)
		io := socket.NewServer(nil, opts)
		t.Cleanup(func() { io.Close(nil) })
		return serve(t, checkPolling(io.ServeHandler(nil), io.Engine, opts.MaxHttpBufferSize()))
	}},
}

func serve(t *testing.T, h http.Handler) string {
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv.URL + "/?EIO=4&transport=polling"
}

// pollingSession is one Engine.IO v4 long-polling session, spoken raw.
type pollingSession struct {
	t   *testing.T
	url string // with the session's sid
}

func openSession(t *testing.T, base string) pollingSession {
	t.Helper()
	status, body := send(t, http.MethodGet, base, "")
	var open struct{ SID string }
	if status != http.StatusOK || !strings.HasPrefix(body, "0") || json.Unmarshal([]byte(body[1:]), &open) != nil {
		t.Fatalf("handshake: %d %q", status, body)
	}
	return pollingSession{t: t, url: base + "&sid=" + open.SID}
}

func (s pollingSession) poll() (int, string) { return send(s.t, http.MethodGet, s.url, "") }

func (s pollingSession) post(payload string) (int, string) {
	return send(s.t, http.MethodPost, s.url, payload)
}

// send is safe to call from any goroutine: it reports with Error.
func send(t *testing.T, method, url, body string) (int, string) {
	req, err := http.NewRequestWithContext(t.Context(), method, url, strings.NewReader(body))
	if err != nil {
		t.Error(err)
		return 0, ""
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Error(err)
		return 0, ""
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// pollingCase is a test case run on fresh sessions of each of
// pollingServers.
type pollingCase struct {
	name   string
	rounds int // of a race, so that its outcomes occur
	round  func(t *testing.T, s pollingSession)
}

func runPollingCases(t *testing.T, cases []pollingCase) {
	for _, srv := range pollingServers {
		t.Run(srv.name, func(t *testing.T) {
			base := srv.start(t)
			for _, c := range cases {
				t.Run(c.name, func(t *testing.T) {
					for range c.rounds {
						c.round(t, openSession(t, base))
					}
				})
			}
		})
	}
}

// TestPollingCloseAnswersPollWithNoop sends a close packet and a poll the
// way the Engine.IO protocol test suite does: the poll is answered with a
// noop in whichever order the server handles the two, and only the next
// poll is refused.
func TestPollingCloseAnswersPollWithNoop(t *testing.T) {
	sendClose := func(t *testing.T, s pollingSession) {
		if status, body := s.post("1"); status != http.StatusOK || body != "ok" {
			t.Errorf("close: %d %q, want 200 ok", status, body)
		}
	}
	checkPolls := func(t *testing.T, s pollingSession, status int, body string) {
		if status != http.StatusOK || body != "6" {
			t.Fatalf("poll sent with the close: %d %q, want 200 6", status, body)
		}
		if status, body := s.poll(); status != http.StatusBadRequest {
			t.Fatalf("poll after the close: %d %q, want 400", status, body)
		}
	}
	runPollingCases(t, []pollingCase{
		{"close first", 1, func(t *testing.T, s pollingSession) {
			sendClose(t, s)
			status, body := s.poll()
			checkPolls(t, s, status, body)
		}},
		{"together", 20, func(t *testing.T, s pollingSession) {
			var wg sync.WaitGroup
			wg.Go(func() { sendClose(t, s) })
			status, body := s.poll()
			wg.Wait()
			checkPolls(t, s, status, body)
		}},
	})
}

// TestPollingUpgradeRefusesLaterPoll upgrades a long-polling session to
// WebSocket the way the Engine.IO protocol test suite does and polls right
// after the upgrade packet: the poll is refused. A poll sent before the
// upgrade packet is answered with a noop.
func TestPollingUpgradeRefusesLaterPoll(t *testing.T) {
	runPollingCases(t, []pollingCase{
		{"after the upgrade packet", 20, func(t *testing.T, s pollingSession) {
			ws := upgradeProbe(t, s)
			defer ws.Close()
			if err := ws.WriteMessage(websocket.TextMessage, []byte("5")); err != nil {
				t.Fatal(err)
			}
			if status, body := s.poll(); status != http.StatusBadRequest {
				t.Fatalf("poll: %d %q, want 400", status, body)
			}
		}},
		{"before the upgrade packet", 1, func(t *testing.T, s pollingSession) {
			defer upgradeProbe(t, s).Close()
			if status, body := s.poll(); status != http.StatusOK || body != "6" {
				t.Fatalf("poll: %d %q, want 200 6", status, body)
			}
		}},
	})
}

// upgradeProbe opens a WebSocket for s and probes it, as a client does before it
// sends the upgrade packet.
func upgradeProbe(t *testing.T, s pollingSession) *websocket.Conn {
	t.Helper()
	url := "ws" + strings.TrimPrefix(strings.Replace(s.url, "transport=polling", "transport=websocket", 1), "http")
	ws, _, err := websocket.DefaultDialer.DialContext(t.Context(), url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := ws.WriteMessage(websocket.TextMessage, []byte("2probe")); err != nil {
		t.Fatal(err)
	}
	if _, msg, err := ws.ReadMessage(); err != nil || string(msg) != "3probe" {
		t.Fatalf("probe answer %q, %v", msg, err)
	}
	return ws
}

// TestUpgradeWriterLetsGoOfTheConnection checks that a websocket request's
// writer drops net/http's once the connection is hijacked, and that calls
// socket.io may still make on it then are answered safely.
func TestUpgradeWriterLetsGoOfTheConnection(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u := &upgradeWriter{w: w}
		conn, _, err := u.Hijack()
		if err != nil {
			t.Error(err)
			return
		}
		defer conn.Close()
		if u.w != nil {
			t.Error("the hijacked ResponseWriter is still held")
		}
		u.Header().Set("X", "y")
		u.WriteHeader(http.StatusOK)
		if _, err := u.Write([]byte("x")); !errors.Is(err, http.ErrHijacked) {
			t.Errorf("Write after hijack: %v", err)
		}
		if _, _, err := u.Hijack(); err == nil {
			t.Error("hijacked twice")
		}
	}))
	defer srv.Close()
	resp, err := http.Get(srv.URL)
	if err == nil {
		resp.Body.Close()
	}
}
