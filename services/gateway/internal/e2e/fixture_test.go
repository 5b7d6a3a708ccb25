package e2e

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
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
	base := "http://" + addr + "/socket.io/?EIO=4&transport=polling"

	resp, err := http.Get(base)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	var open struct {
		SID          string   `json:"sid"`
		Upgrades     []string `json:"upgrades"`
		PingInterval int      `json:"pingInterval"`
		PingTimeout  int      `json:"pingTimeout"`
		MaxPayload   int      `json:"maxPayload"`
	}
	if !strings.HasPrefix(string(body), "0") || json.Unmarshal(body[1:], &open) != nil {
		t.Fatalf("handshake: %s", body)
	}
	if open.PingInterval != 300 || open.PingTimeout != 200 || open.MaxPayload != 1e6 || len(open.Upgrades) != 1 || open.Upgrades[0] != "websocket" {
		t.Fatalf("handshake %+v, want ping 300/200, maxPayload 1e6, upgrades [websocket]", open)
	}
	c := &pollingClient{t: t, base: base, sid: open.SID}
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
