package e2e

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/gorilla/websocket"
)

// rawSocket is a websocket client speaking Engine.IO 4 and socket.io frames
// by hand, so a test can send exactly the CONNECT a client would.
type rawSocket struct {
	t  *testing.T
	ws *websocket.Conn
}

func dialRaw(t *testing.T, url string) *rawSocket {
	t.Helper()
	ws, _, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(url, "http")+"/socket.io/?EIO=4&transport=websocket", nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ws.Close() })
	r := &rawSocket{t: t, ws: ws}
	r.read("0{")
	return r
}

// read returns the next frame starting with one of prefixes, answering pings.
func (r *rawSocket) read(prefixes ...string) string {
	r.t.Helper()
	for {
		r.ws.SetReadDeadline(time.Now().Add(10 * time.Second))
		_, b, err := r.ws.ReadMessage()
		if err != nil {
			r.t.Fatalf("waiting for %q: %v", prefixes, err)
		}
		if string(b) == "2" {
			r.send("3")
			continue
		}
		for _, p := range prefixes {
			if strings.HasPrefix(string(b), p) {
				return string(b)
			}
		}
	}
}

func (r *rawSocket) send(frame string) {
	r.t.Helper()
	if err := r.ws.WriteMessage(websocket.TextMessage, []byte(frame)); err != nil {
		r.t.Fatal(err)
	}
}

// connect sends the CONNECT of namespace nsp ("" for "/") with auth (nil for
// none) and returns the reply: the CONNECT ("40...") or the CONNECT_ERROR
// ("44...") packet's JSON payload.
func (r *rawSocket) connect(nsp string, auth map[string]any) (ok bool, payload map[string]any) {
	r.t.Helper()
	head := "40"
	if nsp != "" {
		head += nsp + ","
	}
	frame := head
	if auth != nil {
		b, _ := json.Marshal(auth)
		frame += string(b)
	}
	r.send(frame)
	frame = r.read(head, "44"+strings.TrimPrefix(head, "40"))
	if err := json.Unmarshal([]byte(frame[len(head):]), &payload); err != nil {
		r.t.Fatalf("frame %s: %v", frame, err)
	}
	return strings.HasPrefix(frame, "40"), payload
}

func signedToken(t *testing.T, sub string, exp time.Time) string {
	t.Helper()
	s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{"sub": sub, "exp": exp.Unix()}).SignedString([]byte(jwtSecret))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestRecoveryChecksTheToken drops a signed-in /chat socket, waits until the
// gateway has saved its session, and reconnects with the session's id and
// each kind of token: a restored session must pass the same checks as a
// fresh connect, and the owner's valid token restores it.
func TestRecoveryChecksTheToken(t *testing.T) {
	s := startStack(t)
	gw, url := s.gateway("127.0.0.1:0")
	publish := s.publisher(t, "/chat", "general")
	tests := []struct {
		name string
		auth map[string]any // besides pid and offset
		ok   bool
		code string // of a refusal
	}{
		{name: "no token", auth: map[string]any{}, code: "missing_token"},
		{name: "expired token", auth: map[string]any{"token": signedToken(t, "rita", time.Now().Add(-time.Minute))}, code: "invalid_token"},
		{name: "another user's token", auth: map[string]any{"token": token(t, "mallory")}, code: "invalid_token"},
		{name: "the owner's token", auth: map[string]any{"token": token(t, "rita")}, ok: true},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			first := dialRaw(t, url)
			ok, hello := first.connect("/chat", map[string]any{"token": token(t, "rita")})
			if !ok {
				t.Fatalf("first connect refused: %v", hello)
			}
			pid, _ := hello["pid"].(string)
			if pid == "" {
				t.Fatalf("no pid in %v: connection state recovery is off", hello)
			}
			// The client's offset is the last argument of the last message it got.
			publish("hello")
			var args []any
			frame := first.read(`42/chat,["receive message"`)
			if err := json.Unmarshal([]byte(strings.TrimPrefix(frame, "42/chat,")), &args); err != nil {
				t.Fatalf("frame %s: %v", frame, err)
			}
			offset, _ := args[len(args)-1].(string)
			first.ws.Close()
			waitLog(t, gw.Log, "session saved for recovery", i+1)

			again := dialRaw(t, url)
			auth := map[string]any{"pid": pid, "offset": offset}
			for k, v := range tt.auth {
				auth[k] = v
			}
			ok, reply := again.connect("/chat", auth)
			if ok != tt.ok {
				t.Fatalf("reconnect accepted = %v (%v), want %v", ok, reply, tt.ok)
			}
			if tt.ok && reply["sid"] != hello["sid"] {
				t.Fatalf("restored as %v, want the session's socket id %v", reply["sid"], hello["sid"])
			}
			if !tt.ok {
				data, _ := reply["data"].(map[string]any)
				if reply["message"] != "unauthorized" || data["code"] != tt.code {
					t.Fatalf("refusal %v, want unauthorized with code %s", reply, tt.code)
				}
			}
		})
	}
}

// waitLog waits, bounded, until log() holds at least n lines containing msg.
func waitLog(t *testing.T, log func() string, msg string, n int) {
	t.Helper()
	eventually(t, 10*time.Second, func() error {
		if strings.Count(log(), msg) < n {
			return fmt.Errorf("%q not logged %d times within 10s", msg, n)
		}
		return nil
	})
}
