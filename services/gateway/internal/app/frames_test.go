package app

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/parleyhq/parley/services/kit/proctest"
)

const (
	// answerWait bounds how long the gateway may take to answer a payload
	// or close the session.
	answerWait = 2 * time.Second
	// settleWait bounds how long a session's goroutines may outlive its
	// client.
	settleWait = 5 * time.Second
)

// probe asks to connect to a namespace the gateway does not serve. A live
// session refuses it in any state, after every packet sent before it, so its
// answer shows that the gateway has handled the payload.
const probe, probeAnswer = "40/probe,", "44/probe,"

// fuzzNamespaces are the namespaces of the fuzzed gateway: the classic chat,
// and one that needs a token.
const fuzzNamespaces = `{"namespaces": [
	{"name": "/", "default_rooms": ["room1"], "create_rooms": true, "empty_room_ttl": "1m"},
	{"name": "/chat", "auth": true, "default_rooms": ["general"], "create_rooms": true}
]}`

const (
	fuzzServiceToken = "fuzz-service-token"
	fuzzSecret       = "fuzz-jwt-secret"
)

// FuzzFrames sends any Engine.IO payload to a running gateway: Run's HTTP
// server, socket.io server and namespaces, in this process, in front of a
// real rooms service. The payload's packets are separated by the record
// separator, as in a long-polling body; over WebSocket each packet is a
// message, and a "b" packet (base64) a binary one. Whatever it holds, the
// gateway must answer a probe sent after it or close the session within
// answerWait, log nothing at ERROR (where it reports panics it recovers),
// and, once the client has gone, count no socket as connected and end every
// goroutine the session started.
func FuzzFrames(f *testing.F) {
	gw := startFuzzGateway(f)
	seeds := []string{
		"",
		"40",
		`40{"token":"x"}`,
		"40\x1e42[\"join\",\"room1\"]",
		"40\x1e421[\"join\",\"lobby\"]\x1e422[\"send message\",\"lobby\",\"hello\"]\x1e423[\"history\",\"lobby\",{\"limit\":5}]" +
			"\x1e424[\"members\",\"lobby\"]\x1e425[\"rooms\"]\x1e426[\"switch room\",\"room1\"]\x1e427[\"leave\",\"lobby\"]",
		"40/chat,{\"token\":\"" + gw.token + "\"}\x1e42/chat,1[\"send message\",\"general\",{\"text\":\"hi\"},{\"id\":\"m-1\"}]",
		`40/chat,{"token":"bad"}`,
		"40/chat,",
		`40{"pid":"nobody","offset":"1"}`,
		"40\x1e43[]",
		"40\x1e431[\"late\"]",
		"40\x1e4299999999999999999999[\"rooms\"]",
		"40\x1e42-1[\"rooms\"]",
		"40\x1e451-[\"send message\",\"room1\",{\"_placeholder\":true,\"num\":0}]\x1ebAQID",
		"40\x1e451-[\"join\",{\"_placeholder\":true,\"num\":5}]\x1ebAQID",
		"40\x1e452-[\"dance\"]\x1eb",
		"40\x1e4599999999999-[\"dance\"]",
		"40\x1e42[",
		"40\x1e42" + strings.Repeat("[", 5000) + strings.Repeat("]", 5000),
		"40\x1e42[\"join\",\"" + strings.Repeat("a", 300) + "\"]",
		"40\x1e42[\"send message\",\"room1\",1e999]",
		"40\x1e41\x1e40\x1e42[\"rooms\"]",
		"41",
		"40/nope,",
		"40nope",
		"4",
		"4{}",
		"2", "3", "2probe", "3probe", "5", "6", "1", "0", "7",
		"\x00\x00",
		"\xff\xfe",
		"42\xff[\"x\"]",
		"bAQID",
		"b!!",
	}
	for _, s := range seeds {
		f.Add(false, []byte(s))
		f.Add(true, []byte(s))
	}
	f.Fuzz(func(t *testing.T, polling bool, payload []byte) {
		before := len(goroutines())
		logged := gw.log.errorCount()
		if polling {
			gw.poll(t, payload)
		} else {
			gw.websocket(t, payload)
		}
		gw.awaitNoSockets(t)
		awaitGoroutines(t, before)
		if errs := gw.log.errorsSince(logged); len(errs) > 0 {
			t.Fatalf("the gateway logged errors:\n%s", strings.Join(errs, "\n"))
		}
	})
}

// fuzzGateway is a gateway run by Run in this process.
type fuzzGateway struct {
	base    string // http://host:port/socket.io/?EIO=4
	metrics string // http://host:port/metrics
	// hc closes each connection after its request, so that none is left
	// for the goroutine count.
	hc    *http.Client
	log   *logSink
	token string // a token for /chat
}

func startFuzzGateway(f *testing.F) *fuzzGateway {
	dir := f.TempDir()
	_, line := proctest.Start(f, proctest.Cmd{
		Name: "rooms service", Path: proctest.Build(f, "github.com/parleyhq/parley/services/rooms/cmd/rooms"),
		Args: []string{
			"--listen", "127.0.0.1:0", "--metrics-listen", "127.0.0.1:0", "--data-dir", filepath.Join(dir, "rooms"),
			"--log-format", "json", "--service-token", fuzzServiceToken, "--admin-token", "fuzz-admin-token",
		},
		Ready: "rooms service serving",
	})
	roomsAddr, _ := line["grpc_addr"].(string)
	config := filepath.Join(dir, "gateway.json")
	if err := os.WriteFile(config, []byte(fuzzNamespaces), 0o600); err != nil {
		f.Fatal(err)
	}
	noEnv := func(string) string { return "" }

	var token strings.Builder
	if err := Run(f.Context(), []string{"token", "--jwt-secret", fuzzSecret, "fuzzer"}, noEnv, &token, io.Discard); err != nil {
		f.Fatal(err)
	}

	sink := &logSink{serving: make(chan string, 1)}
	stopped := make(chan struct{})
	var runErr error
	go func() {
		defer close(stopped)
		runErr = Run(f.Context(), []string{
			"--listen", "127.0.0.1:0", "--rooms-addr", roomsAddr, "--service-token", fuzzServiceToken,
			"--jwt-secret", fuzzSecret, "--config", config, "--web=false", "--log-format", "json",
		}, noEnv, io.Discard, sink)
	}()
	f.Cleanup(func() {
		<-stopped
		if runErr != nil {
			f.Errorf("gateway: %v", runErr)
		}
	})
	select {
	case addr := <-sink.serving:
		gw := &fuzzGateway{
			base: "http://" + addr + "/socket.io/?EIO=4", metrics: "http://" + addr + "/metrics",
			hc:  &http.Client{Transport: &http.Transport{DisableKeepAlives: true}},
			log: sink, token: strings.TrimSpace(token.String()),
		}
		// The goroutines the gateway starts once, after it logs that it
		// serves or on first use (such as its publish stream), are up
		// after a first session that publishes, so that no input is
		// charged with them.
		gw.warmUp(f)
		return gw
	case <-stopped:
		f.Fatalf("gateway stopped before serving: %v", runErr)
	case <-time.After(30 * time.Second):
		f.Fatal("gateway did not start serving")
	}
	return nil
}

// websocket opens a WebSocket session and sends payload's packets, then the
// probe.
func (g *fuzzGateway) websocket(t testing.TB, payload []byte) {
	ctx, cancel := context.WithTimeout(t.Context(), answerWait)
	defer cancel()
	url := "ws" + strings.TrimPrefix(g.base, "http") + "&transport=websocket"
	ws, _, err := websocket.DefaultDialer.DialContext(ctx, url, nil)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	defer ws.Close()
	deadline, _ := ctx.Deadline()
	ws.SetReadDeadline(deadline)
	ws.SetWriteDeadline(deadline)
	if _, open, err := ws.ReadMessage(); err != nil || !bytes.HasPrefix(open, []byte("0{")) {
		t.Fatalf("open packet %q: %v", open, err)
	}
	for _, p := range append(bytes.Split(payload, []byte{'\x1e'}), []byte(probe)) {
		kind := websocket.TextMessage
		if b, ok := bytes.CutPrefix(p, []byte("b")); ok {
			if data, err := base64.StdEncoding.DecodeString(string(b)); err == nil {
				kind, p = websocket.BinaryMessage, data
			}
		}
		if ws.WriteMessage(kind, p) != nil {
			break // the gateway closed the session; reading tells how
		}
	}
	for {
		_, msg, err := ws.ReadMessage()
		var ne net.Error
		switch {
		case errors.As(err, &ne) && ne.Timeout():
			t.Fatalf("payload %q: no answer and no close within %v", payload, answerWait)
		case err != nil, bytes.HasPrefix(msg, []byte(probeAnswer)):
			return
		}
	}
}

// warmUp connects, sends a message and waits for its ack.
func (g *fuzzGateway) warmUp(t testing.TB) {
	ctx, cancel := context.WithTimeout(t.Context(), answerWait)
	defer cancel()
	ws, _, err := websocket.DefaultDialer.DialContext(ctx, "ws"+strings.TrimPrefix(g.base, "http")+"&transport=websocket", nil)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	defer ws.Close()
	deadline, _ := ctx.Deadline()
	ws.SetReadDeadline(deadline)
	for _, p := range []string{"40", `421["send message","room1","warm up"]`} {
		if err := ws.WriteMessage(websocket.TextMessage, []byte(p)); err != nil {
			t.Fatalf("warm-up: %v", err)
		}
	}
	for {
		_, msg, err := ws.ReadMessage()
		if err != nil {
			t.Fatalf("warm-up: no ack to a message: %v", err)
		}
		if bytes.HasPrefix(msg, []byte("431")) {
			return
		}
	}
}

// poll opens a long-polling session, posts payload and then the probe, and
// reads until the probe's answer or the session's end. Then it closes the
// session, and checks that it is gone.
func (g *fuzzGateway) poll(t testing.TB, payload []byte) {
	do := func(ctx context.Context, method, url string, body []byte) (int, string) {
		t.Helper()
		req, err := http.NewRequestWithContext(ctx, method, url, bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		resp, err := g.hc.Do(req)
		if err == nil {
			defer resp.Body.Close()
			var b []byte
			if b, err = io.ReadAll(resp.Body); err == nil {
				return resp.StatusCode, string(b)
			}
		}
		if ctx.Err() != nil {
			t.Fatalf("payload %q: no answer and no close within %v", payload, answerWait)
		}
		t.Fatalf("payload %q: %s: %v", payload, method, err)
		return 0, ""
	}
	ctx, cancel := context.WithTimeout(t.Context(), answerWait)
	defer cancel()
	code, body := do(ctx, http.MethodGet, g.base+"&transport=polling", nil)
	var open struct {
		SID string `json:"sid"`
	}
	if code != http.StatusOK || !strings.HasPrefix(body, "0") || json.Unmarshal([]byte(body[1:]), &open) != nil {
		t.Fatalf("open packet: %d %q", code, body)
	}
	url := g.base + "&transport=polling&sid=" + open.SID
	defer func() {
		ctx, cancel := context.WithTimeout(t.Context(), answerWait)
		defer cancel()
		do(ctx, http.MethodPost, url, []byte("1"))
		// The first poll after a close may get the noop a poll racing the
		// close is owed (checkPolling); the next must find no session.
		for polls := 1; ; polls++ {
			code, body := do(ctx, http.MethodGet, url, nil)
			if code != http.StatusOK || body == "1" || strings.HasSuffix(body, "\x1e1") {
				return
			}
			if body != "6" || polls > 1 {
				t.Fatalf("payload %q: session still open after the close packet: poll %d got %q", payload, polls, body)
			}
		}
	}()
	for _, p := range [][]byte{payload, []byte(probe)} {
		if code, _ := do(ctx, http.MethodPost, url, p); code != http.StatusOK {
			return // refused, and the session closed
		}
	}
	for {
		code, body := do(ctx, http.MethodGet, url, nil)
		if code != http.StatusOK {
			return
		}
		for p := range strings.SplitSeq(body, "\x1e") {
			if p == "1" || strings.HasPrefix(p, probeAnswer) {
				return
			}
		}
	}
}

// awaitNoSockets waits until the gateway counts no socket as connected.
func (g *fuzzGateway) awaitNoSockets(t *testing.T) {
	t.Helper()
	deadline := time.Now().Add(settleWait)
	for {
		connected := g.connected(t)
		if len(connected) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%v after the session, sockets still connected: %s", settleWait, strings.Join(connected, ", "))
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// connected returns the gateway's connection gauges that are not zero.
func (g *fuzzGateway) connected(t *testing.T) []string {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, g.metrics, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := g.hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	var gauges []string
	for line := range strings.Lines(string(b)) {
		if strings.HasPrefix(line, "parley_gateway_connections{") && !strings.HasSuffix(line, " 0\n") {
			gauges = append(gauges, strings.TrimSpace(line))
		}
	}
	return gauges
}

// awaitGoroutines waits until at most want goroutines run, as before the
// session: its goroutines end shortly after its client has gone.
func awaitGoroutines(t *testing.T, want int) {
	t.Helper()
	deadline := time.Now().Add(settleWait)
	for {
		gs := goroutines()
		if len(gs) <= want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d goroutines %v after the session, %d before:\n%s", len(gs), settleWait, want, strings.Join(gs, "\n\n"))
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// goroutines returns the stacks of the running goroutines but the socket.io
// library's timers. Each of those runs on a goroutine of its own until it
// fires or is stopped, and ends when it fires; a long-polling session closed
// while no GET is pending keeps its close timer for 30 seconds, the transport
// waiting for a GET that can no longer find the session.
func goroutines() []string {
	buf := make([]byte, 64<<10)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			buf = buf[:n]
			break
		}
		buf = make([]byte, 2*len(buf))
	}
	var gs []string
	for g := range strings.SplitSeq(string(buf), "\n\n") {
		if !strings.Contains(g, "socket.io/v3/pkg/utils.SetTimeout.func1") {
			gs = append(gs, g)
		}
	}
	return gs
}

// logSink is the gateway's stderr. It passes on the address the gateway
// serves on and keeps the lines logged at ERROR, and any that is not a JSON
// record. slog's JSON handler writes each record in one Write.
type logSink struct {
	serving chan string

	mu     sync.Mutex
	errors []string
}

func (s *logSink) Write(p []byte) (int, error) {
	var rec struct {
		Level string `json:"level"`
		Msg   string `json:"msg"`
		Addr  string `json:"addr"`
	}
	if json.Unmarshal(p, &rec) != nil || rec.Level == "ERROR" {
		s.mu.Lock()
		s.errors = append(s.errors, string(p))
		s.mu.Unlock()
	}
	if rec.Msg == "gateway serving" {
		s.serving <- rec.Addr
	}
	return len(p), nil
}

func (s *logSink) errorCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.errors)
}

func (s *logSink) errorsSince(n int) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.errors[n:]
}
