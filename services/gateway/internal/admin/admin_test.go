package admin

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/zishang520/socket.io/servers/socket/v3"
	"golang.org/x/crypto/bcrypt"
)

func TestSignIn(t *testing.T) {
	hash, err := bcrypt.GenerateFromPassword([]byte("right password"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	a, err := newAuthenticator(Credentials{Username: "admin", PasswordHash: string(hash)})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	a.now = func() time.Time { return now }
	session := a.session()
	a.now = func() time.Time { return now.Add(-2 * sessionTTL) }
	expired := a.session()
	a.now = func() time.Time { return now }
	for _, bad := range []string{"right password", string(hash) + "x", string(hash[:59])} {
		if _, err := newAuthenticator(Credentials{Username: "admin", PasswordHash: bad}); err == nil {
			t.Errorf("%q was accepted as a bcrypt hash", bad)
		}
	}

	tests := []struct {
		name        string
		auth        map[string]any
		wantErr     bool
		wantSession bool
	}{
		{name: "password", auth: map[string]any{"username": "admin", "password": "right password"}, wantSession: true},
		{name: "wrong password", auth: map[string]any{"username": "admin", "password": "wrong"}, wantErr: true},
		{name: "wrong user", auth: map[string]any{"username": "root", "password": "right password"}, wantErr: true},
		{name: "nothing", auth: map[string]any{}, wantErr: true},
		{name: "nil auth", auth: nil, wantErr: true},
		{name: "not strings", auth: map[string]any{"username": 1, "password": true}, wantErr: true},
		{name: "session", auth: map[string]any{"sessionId": session}},
		{name: "expired session", auth: map[string]any{"sessionId": expired}, wantErr: true},
		{name: "forged session", auth: map[string]any{"sessionId": session[:len(session)-2] + "AA"}, wantErr: true},
		{name: "garbage session", auth: map[string]any{"sessionId": "x.y.z"}, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := a.check(tt.auth)
			if (err != nil) != tt.wantErr {
				t.Fatalf("check: err %v, want error %v", err, tt.wantErr)
			}
			if tt.wantErr && !errors.Is(err, errInvalid) {
				t.Errorf("refused with %q, want %q (the UI shows that one)", err, errInvalid)
			}
			if (got != "") != tt.wantSession {
				t.Errorf("session %q, want one: %v", got, tt.wantSession)
			}
			if got != "" && !a.valid(got) {
				t.Errorf("the session handed out, %q, is not accepted", got)
			}
		})
	}
}

func TestSessionsCrossGatewaysConfiguredAlike(t *testing.T) {
	hash, _ := bcrypt.GenerateFromPassword([]byte("right password"), bcrypt.MinCost)
	one, _ := newAuthenticator(Credentials{Username: "admin", PasswordHash: string(hash)})
	two, _ := newAuthenticator(Credentials{Username: "admin", PasswordHash: string(hash)})
	renamed, _ := newAuthenticator(Credentials{Username: "other", PasswordHash: string(hash)})
	s := one.session()
	if !two.valid(s) {
		t.Error("a gateway with the same credentials refused another's session")
	}
	if renamed.valid(s) {
		t.Error("a session outlived a change of username")
	}
}

func TestSignInAttemptsAreLimited(t *testing.T) {
	hash, _ := bcrypt.GenerateFromPassword([]byte("right password"), bcrypt.MinCost)
	a, _ := newAuthenticator(Credentials{Username: "admin", PasswordHash: string(hash)})
	limited := 0
	for range attemptBurst + 5 {
		if _, err := a.check(map[string]any{"username": "admin", "password": "guess"}); err != nil && !errors.Is(err, errInvalid) {
			limited++
		}
	}
	if limited == 0 {
		t.Errorf("%d password attempts at once were all checked", attemptBurst+5)
	}
}

func TestOutboxBatchesInOrder(t *testing.T) {
	o := newOutbox(100)
	ev := func(s string) json.RawMessage { return json.RawMessage(`["` + s + `"]`) }
	o.event(ev("a"))
	o.event(ev("b"))
	o.send(&report{Fetch: "f1"})
	o.event(ev(strings.Repeat("c", 40)))
	o.event(ev(strings.Repeat("d", 40)))
	o.event(ev(strings.Repeat("e", 200))) // alone, too big for any batch

	var got []string
	for range 5 {
		r, _, ok := o.next("me")
		if !ok {
			t.Fatal("outbox closed")
		}
		if r.From != "me" {
			t.Errorf("report from %q", r.From)
		}
		switch {
		case r.Fetch != "":
			got = append(got, "fetch:"+r.Fetch)
		default:
			var names []string
			for _, e := range r.Events {
				var v []string
				json.Unmarshal(e, &v)
				names = append(names, v[0][:1])
			}
			got = append(got, strings.Join(names, ""))
		}
	}
	want := []string{"ab", "fetch:f1", "c", "d", "e"}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("reports %q, want %q", got, want)
	}
	o.event(ev("f"))
	o.close()
	o.event(ev("g"))
	if r, _, ok := o.next("me"); !ok || len(r.Events) != 1 {
		t.Errorf("after close, next returned %v, %v; want the event queued before", r, ok)
	}
	if _, _, ok := o.next("me"); ok {
		t.Error("next returned a report pushed after close")
	}
}

func TestOutboxDropsPastItsBound(t *testing.T) {
	o := newOutbox(32 << 10)
	big := json.RawMessage(`"` + strings.Repeat("x", 1<<20-8) + `"`)
	for range 6 {
		o.event(big)
	}
	if _, dropped, _ := o.next("me"); dropped != 2 {
		t.Errorf("dropped %d of 6 one-MiB events, want 2 past the %d-byte bound", dropped, maxQueued)
	}
}

func TestHandshakeHidesSecrets(t *testing.T) {
	h := NewHandshake(&socket.Handshake{
		Headers: map[string]any{
			"Cookie": []string{"sid=1"}, "Authorization": []string{"Bearer x"}, "User-Agent": []string{"test"},
			"X-Forwarded-For": []string{"203.0.113.7, 10.0.0.1"}, "Accept": []string{"a", "b"},
		},
		Query:   map[string]any{"EIO": []string{"4"}, "token": []string{"jwt"}, "access_key": "k"},
		Address: "127.0.0.1:5000",
		Url:     "/socket.io/?EIO=4&token=jwt",
	})
	tests := []struct{ what, got, want string }{
		{"cookie", str(h.Headers["cookie"]), "(hidden)"},
		{"authorization", str(h.Headers["authorization"]), "(hidden)"},
		{"user-agent", str(h.Headers["user-agent"]), "test"},
		{"accept", str(h.Headers["accept"]), "[a b]"},
		{"token", str(h.Query["token"]), "(hidden)"},
		{"access_key", str(h.Query["access_key"]), "(hidden)"},
		{"EIO", str(h.Query["EIO"]), "4"},
		{"address", h.Address, "203.0.113.7"},
		{"url", h.URL, "/socket.io/?EIO=4&token=%28hidden%29"},
	}
	for _, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("%s: %q, want %q", tt.what, tt.got, tt.want)
		}
	}
}

func str(v any) string {
	if s, ok := v.(string); ok {
		return s
	}
	b, _ := json.Marshal(v)
	return strings.NewReplacer(`"`, "", ",", " ").Replace(string(b))
}

// recorder is a UI's socket that records what it is sent.
type recorder struct{ sent []string }

func (r *recorder) Emit(ev string, args ...any) error {
	b, _ := json.Marshal(args)
	r.sent = append(r.sent, ev+" "+string(b))
	return nil
}

func TestSilentGatewaysSocketsLeaveTheUI(t *testing.T) {
	hash, _ := bcrypt.GenerateFromPassword([]byte("right password"), bcrypt.MinCost)
	now := time.Now()
	sock := func(id string, rooms ...string) json.RawMessage {
		return mustJSON(Socket{ID: id, Nsp: "/", Rooms: append([]string{id}, rooms...)})
	}
	tests := []struct {
		name     string
		selfSeen time.Duration // ago
		want     []string
	}{
		{name: "the dead gateway's sockets go", selfSeen: time.Second, want: []string{ // sorted
			`room_left ["/","a","a","` + timestamp(now) + `"]`,
			`room_left ["/","lobby","a","` + timestamp(now) + `"]`,
			`socket_disconnected ["/","a","gateway unreachable","` + timestamp(now) + `"]`,
		}},
		{name: "nothing goes while the bus is down", selfSeen: 2 * aliveFor},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := New(Config{Namespace: "/admin", ServerID: "me", Log: slog.New(slog.DiscardHandler), Credentials: Credentials{Username: "admin", PasswordHash: string(hash)}})
			if err != nil {
				t.Fatal(err)
			}
			ui := &recorder{}
			s.uis[&viewer{sock: ui, ready: true}] = struct{}{}
			s.gateways = map[string]time.Time{"me": now.Add(-tt.selfSeen), "dead": now.Add(-2 * aliveFor), "alive": now}
			s.own("dead", sock("a", "lobby", "gone"))
			s.own("dead", sock("b"))
			s.own("alive", sock("c"))
			// b recovered on the live gateway; a left a room.
			s.track("alive", []json.RawMessage{mustJSON("socket_connected"), sock("b")})
			s.track("dead", []json.RawMessage{mustJSON("room_left"), mustJSON("/"), mustJSON("gone"), mustJSON("a")})

			s.forgetSilent(now)
			slices.Sort(ui.sent)
			if strings.Join(ui.sent, "\n") != strings.Join(tt.want, "\n") {
				t.Errorf("the UI was sent\n%s\nwant\n%s", strings.Join(ui.sent, "\n"), strings.Join(tt.want, "\n"))
			}
		})
	}
}

// When the bus comes back, the first report may be this gateway's own: the
// others, silent only because the bus was down, must be given time to
// report again before their sockets are taken off.
func TestBusBackGivesTheOthersTime(t *testing.T) {
	hash, _ := bcrypt.GenerateFromPassword([]byte("right password"), bcrypt.MinCost)
	s, err := New(Config{Namespace: "/admin", ServerID: "me", Log: slog.New(slog.DiscardHandler), Credentials: Credentials{Username: "admin", PasswordHash: string(hash)}})
	if err != nil {
		t.Fatal(err)
	}
	ui := &recorder{}
	s.uis[&viewer{sock: ui, ready: true}] = struct{}{}
	outage := time.Now().Add(-3 * aliveFor)
	s.gateways = map[string]time.Time{"me": outage, "other": outage}
	s.own("other", mustJSON(Socket{ID: "a", Nsp: "/", Rooms: []string{"a"}}))

	s.receive(&report{From: "me", Stats: mustJSON(map[string]any{"serverId": "me"})})
	s.forgetSilent(time.Now())
	for _, sent := range ui.sent {
		if strings.HasPrefix(sent, "socket_disconnected") {
			t.Fatalf("the other gateway's socket was taken off as soon as the bus came back: %s", sent)
		}
	}
}

// sockets is a gateway's own sockets, for tests.
type sockets []Socket

func (ss sockets) Sockets() []Socket                          { return ss }
func (ss sockets) Counts() (map[string]int, int)              { return map[string]int{"/": len(ss)}, 0 }
func (sockets) Disconnect(string, string, bool)               {}
func (sockets) Join(context.Context, string, string, string)  {}
func (sockets) Leave(context.Context, string, string, string) {}

// A gateway whose sockets left the UIs for its silence, back again, has its
// sockets asked for, and every gateway answers such a request to all UIs.
func TestAGatewayBackIsAskedForItsSockets(t *testing.T) {
	hash, _ := bcrypt.GenerateFromPassword([]byte("right password"), bcrypt.MinCost)
	s, err := New(Config{Namespace: "/admin", ServerID: "me", Log: slog.New(slog.DiscardHandler), Credentials: Credentials{Username: "admin", PasswordHash: string(hash)}})
	if err != nil {
		t.Fatal(err)
	}
	s.sockets = sockets{{ID: "mine", Nsp: "/", Rooms: []string{"mine"}}}
	ui := &recorder{}
	s.uis[&viewer{sock: ui, ready: true}] = struct{}{}
	s.gateways = map[string]time.Time{"me": time.Now(), "other": time.Now()}

	s.receive(&report{From: "back", Stats: mustJSON(map[string]any{"serverId": "back"})})
	if r, _, _ := s.out.next("me"); !r.Offer {
		t.Fatalf("after a report of a gateway not known, published %+v, want a request for sockets", r)
	}
	s.receive(&report{From: "back", Stats: mustJSON(map[string]any{"serverId": "back"})})
	s.receive(&report{From: "other", Offer: true})
	r, _, _ := s.out.next("me")
	if r.Offer || r.Sockets == nil || r.Sockets.Fetch != "" || len(r.Sockets.List) != 1 {
		t.Fatalf("after a known gateway's report and a request, published %+v, want only this gateway's sockets for every UI", r)
	}
	// Offered back through the bus, the sockets reach the UI once.
	s.receive(r)
	s.receive(r)
	if len(ui.sent) != 3 || !strings.HasPrefix(ui.sent[2], `socket_connected [{"id":"mine"`) {
		t.Errorf("the UI was sent %q, want two stats and the offered socket once", ui.sent)
	}
}
