package e2e

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/gorilla/websocket"
)

// pollingClient speaks raw Engine.IO v4 long-polling, so the test sees the
// exact packets on the wire.
type pollingClient struct {
	t    *testing.T
	base string
	sid  string
}

func (c *pollingClient) get() []string {
	c.t.Helper()
	resp, err := http.Get(c.base + "&sid=" + c.sid)
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		c.t.Fatalf("GET: %d %s", resp.StatusCode, b)
	}
	return strings.Split(string(b), "\x1e")
}

func (c *pollingClient) post(packets ...string) {
	c.t.Helper()
	resp, err := http.Post(c.base+"&sid="+c.sid, "text/plain;charset=UTF-8", strings.NewReader(strings.Join(packets, "\x1e")))
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	if b, _ := io.ReadAll(resp.Body); resp.StatusCode != http.StatusOK || string(b) != "ok" {
		c.t.Fatalf("POST: %d %s", resp.StatusCode, b)
	}
}

// openPacket is the Engine.IO handshake's first packet.
type openPacket struct {
	SID          string   `json:"sid"`
	Upgrades     []string `json:"upgrades"`
	PingInterval int      `json:"pingInterval"`
	PingTimeout  int      `json:"pingTimeout"`
	MaxPayload   int      `json:"maxPayload"`
}

// openPolling starts a long-polling session at base, a URL ending in
// "?EIO=4&transport=polling", and returns its client and open packet.
func openPolling(t *testing.T, base string) (*pollingClient, openPacket) {
	t.Helper()
	resp, err := http.Get(base)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	var open openPacket
	if !strings.HasPrefix(string(body), "0") || json.Unmarshal(body[1:], &open) != nil || open.SID == "" {
		t.Fatalf("open packet %q", body)
	}
	return &pollingClient{t: t, base: base, sid: open.SID}, open
}

// next returns the next packet, polling as needed.
func (c *pollingClient) next(buf *[]string) string {
	c.t.Helper()
	for len(*buf) == 0 {
		*buf = c.get()
	}
	p := (*buf)[0]
	*buf = (*buf)[1:]
	return p
}

// TestProtocolFixture runs the gateway in --protocol-fixture mode and checks
// the handshake and the echo handlers the socket.io protocol test suite
// relies on, packet by packet.
func TestProtocolFixture(t *testing.T) {
	addr := freeAddr(t)
	startProc(t, "fixture", binaries(t)["gateway"], "protocol fixture serving",
		"--protocol-fixture", "--listen", addr, "--log-format", "json")
	c, open := openPolling(t, "http://"+addr+"/socket.io/?EIO=4&transport=polling")
	if open.PingInterval != 300 || open.PingTimeout != 200 || open.MaxPayload != 1e6 || len(open.Upgrades) != 1 || open.Upgrades[0] != "websocket" {
		t.Fatalf("handshake %+v, want ping 300/200, maxPayload 1e6, upgrades [websocket]", open)
	}
	var buf []string

	c.post(`40{"token":"123"}`)
	if p := c.next(&buf); !strings.HasPrefix(p, `40{"sid":"`) {
		t.Fatalf("CONNECT reply %q", p)
	}
	if p := c.next(&buf); p != `42["auth",{"token":"123"}]` {
		t.Fatalf("auth echo %q", p)
	}
	tests := []struct {
		send string
		want []string
	}{
		{`42["message",1,"2",{"3":[true]}]`, []string{`42["message-back",1,"2",{"3":[true]}]`}},
		{`421["message-with-ack",1,"2",{"3":[false]}]`, []string{`431[1,"2",{"3":[false]}]`}},
		{`40/custom,{"x":1}`, []string{`40/custom,{"sid":"`, `42/custom,["auth",{"x":1}]`}},
		{`40/random,`, []string{`44/random,{"message":"Invalid namespace"}`}},
	}
	for _, tt := range tests {
		c.post(tt.send)
		for _, want := range tt.want {
			if p := c.next(&buf); !strings.HasPrefix(p, want) {
				t.Fatalf("sent %s: got %q, want %q", tt.send, p, want)
			}
		}
	}
}

// TestEIO3AndCORS checks the transport options: socket.io v2 clients
// (Engine.IO 3) only with --allow-eio3, and cross-origin browsers only from
// the origins in --cors-origins.
func TestEIO3AndCORS(t *testing.T) {
	s := startStack(t)
	_, plain := s.gateway("127.0.0.1:0")
	_, open := s.gateway("127.0.0.1:0", "--allow-eio3", "--cors-origins", "http://app.example")

	get := func(url, origin string) (*http.Response, string) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodGet, url, nil)
		if origin != "" {
			req.Header.Set("Origin", origin)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		return resp, string(b)
	}

	if resp, body := get(plain+"/socket.io/?EIO=3&transport=polling", ""); resp.StatusCode != http.StatusBadRequest {
		t.Errorf("EIO=3 without --allow-eio3: %d %s, want 400", resp.StatusCode, body)
	}
	resp, body := get(open+"/socket.io/?EIO=3&transport=polling", "")
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, `:0{`) || !strings.Contains(body, `"sid":"`) {
		t.Errorf("EIO=3 with --allow-eio3: %d %q, want an Engine.IO 3 open packet", resp.StatusCode, body)
	}

	resp, _ = get(open+"/socket.io/?EIO=4&transport=polling", "http://app.example")
	if got := resp.Header.Get("Access-Control-Allow-Origin"); got != "http://app.example" {
		t.Errorf("allowed origin: Access-Control-Allow-Origin %q, want http://app.example", got)
	}
	wsURL := "ws" + strings.TrimPrefix(open, "http") + "/socket.io/?EIO=4&transport=websocket"
	for _, tt := range []struct {
		origin string
		ok     bool
	}{{"http://app.example", true}, {"http://evil.example", false}} {
		h := http.Header{"Origin": {tt.origin}}
		ws, resp, err := websocket.DefaultDialer.Dial(wsURL, h)
		if ws != nil {
			ws.Close()
		}
		if (err == nil) != tt.ok {
			status := 0
			if resp != nil {
				status = resp.StatusCode
			}
			t.Errorf("websocket from %s: err %v (status %d), want allowed=%v", tt.origin, err, status, tt.ok)
		}
	}
}

// TestEngineEchoFixture checks the plain Engine.IO echo server the
// --protocol-fixture serves at /engine.io/ for the Engine.IO test suite:
// its handshake, and text and binary messages sent back as they came.
func TestEngineEchoFixture(t *testing.T) {
	addr := freeAddr(t)
	startProc(t, "fixture", binaries(t)["gateway"], "protocol fixture serving",
		"--protocol-fixture", "--listen", addr, "--log-format", "json")
	c, open := openPolling(t, "http://"+addr+"/engine.io/?EIO=4&transport=polling")
	if open.PingInterval != 300 || open.PingTimeout != 200 || open.MaxPayload != 1e6 {
		t.Fatalf("open packet %+v, want ping 300/200 and maxPayload 1e6", open)
	}
	c.post("4hello", "bAQID")
	var buf []string
	for _, want := range []string{"4hello", "bAQID"} {
		got := c.next(&buf)
		for got == "2" { // a ping may come first
			got = c.next(&buf)
		}
		if got != want {
			t.Fatalf("echo %q, want %q", got, want)
		}
	}
}

// TestPollingPayloadClosesTheSession posts long-polling payloads that end
// the session to the gateway and to the fixture's plain Engine.IO server:
// one that is not Engine.IO packets (answered 400), one over the frame limit
// (413) and a close packet (200). Then polls are refused, except the poll a
// client sends along with its close packet, which is answered with a noop
// even when it arrives after the close.
func TestPollingPayloadClosesTheSession(t *testing.T) {
	s := startStack(t)
	_, gatewayURL := s.gateway("127.0.0.1:0")
	fixture := freeAddr(t)
	startProc(t, "fixture", binaries(t)["gateway"], "protocol fixture serving",
		"--protocol-fixture", "--listen", fixture, "--log-format", "json")
	type payload struct {
		name    string
		payload string
		status  int
		noop    bool // the next poll is answered with a noop
	}
	var tests []payload
	for _, base := range []string{gatewayURL + "/socket.io/", "http://" + fixture + "/engine.io/"} {
		for _, p := range []payload{
			{"malformed", "abc", http.StatusBadRequest, false},
			{"oversized", "4" + strings.Repeat("x", 1<<20+1), http.StatusRequestEntityTooLarge, false},
			{"close", "1", http.StatusOK, true},
		} {
			p.name = base + " " + p.name
			tests = append(tests, p)
		}
	}
	for _, tt := range tests {
		base := strings.Fields(tt.name)[0]
		t.Run(tt.name, func(t *testing.T) {
			c, _ := openPolling(t, base+"?EIO=4&transport=polling")
			url := c.base + "&sid=" + c.sid
			post, err := http.Post(url, "text/plain;charset=UTF-8", strings.NewReader(tt.payload))
			if err != nil {
				t.Fatal(err)
			}
			post.Body.Close()
			if post.StatusCode != tt.status {
				t.Fatalf("POST of a %s payload: %d, want %d", tt.name, post.StatusCode, tt.status)
			}
			if tt.noop {
				if p := c.get(); len(p) != 1 || p[0] != "6" {
					t.Fatalf("poll after the close: %q, want a noop", p)
				}
			}
			poll, err := http.Get(url)
			if err != nil {
				t.Fatal(err)
			}
			poll.Body.Close()
			if poll.StatusCode != http.StatusBadRequest {
				t.Fatalf("poll after a %s payload: %d, want 400", tt.name, poll.StatusCode)
			}
		})
	}
}
