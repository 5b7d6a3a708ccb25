package e2e

import (
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"net/http"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/zishang520/socket.io/clients/engine/v3/transports"
	cio "github.com/zishang520/socket.io/clients/socket/v3"
	"github.com/zishang520/socket.io/v3/pkg/types"
	"golang.org/x/crypto/bcrypt"

	"github.com/parleyhq/parley/services/kit/proctest"
)

const adminPassword = "e2e-admin-password"

// adminFlags turn the Admin UI on with adminPassword for gateways with the
// given ids, all with one hash, as a deployment's gateways are configured
// alike (a session one hands out is good on the others).
func adminFlags(t *testing.T, ids ...string) [][]string {
	t.Helper()
	hash, err := bcrypt.GenerateFromPassword([]byte(adminPassword), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	var flags [][]string
	for _, id := range ids {
		flags = append(flags, []string{"--admin-ui-username", "admin", "--admin-ui-password-hash", string(hash), "--admin-ui-server-id", id})
	}
	return flags
}

// adminEvent is one event the Admin UI was sent.
type adminEvent struct {
	name string
	args []any
}

// adminClient is a socket.io client on the admin namespace, as the UI is,
// recording what it is sent.
type adminClient struct {
	t      *testing.T
	sock   *cio.Socket
	events chan adminEvent
}

// dialAdmin connects to url's admin namespace with auth, as the UI does,
// and fails the test if the gateway refuses (refusals are read off the
// wire instead: see TestAdminUIProtocol). Like dialGo, it tries a fresh
// client when the Go client's connection never completes.
func dialAdmin(t *testing.T, url string, auth map[string]any) *adminClient {
	t.Helper()
	for attempt := 1; ; attempt++ {
		a, err := tryDialAdmin(t, url, auth)
		if err == nil {
			return a
		}
		if !errors.Is(err, errNoConnect) {
			t.Fatalf("admin namespace of %s: %v", url, err)
		}
		if attempt == 5 {
			t.Fatalf("admin namespace of %s: %v", url, err)
		}
		t.Logf("admin namespace of %s, attempt %d: %v; retrying with a new client", url, attempt, err)
	}
}

// signIn connects a UI to url with the right password.
func signIn(t *testing.T, url string) *adminClient {
	t.Helper()
	return dialAdmin(t, url, map[string]any{"username": "admin", "password": adminPassword})
}

func tryDialAdmin(t *testing.T, url string, auth map[string]any) (*adminClient, error) {
	o := cio.DefaultOptions()
	o.SetTransports(types.NewSet[transports.TransportCtor](cio.WebSocket))
	o.SetReconnection(false)
	o.SetForceNew(true)
	o.SetAuth(auth)
	a := &adminClient{t: t, events: make(chan adminEvent, 1024)}
	connected := make(chan struct{}, 1)
	refused := make(chan string, 1)
	sock, err := cio.Connect(url+"/admin", o)
	if err != nil {
		return nil, err
	}
	a.sock = sock
	sock.OnAny(func(args ...any) {
		name, _ := args[0].(string)
		a.events <- adminEvent{name, args[1:]}
	})
	sock.On("connect", func(...any) { connected <- struct{}{} })
	sock.On("connect_error", func(args ...any) {
		err, _ := args[0].(error)
		refused <- fmt.Sprint(err)
	})
	t.Cleanup(func() { sock.Disconnect() })
	select {
	case <-connected:
		return a, nil
	case msg := <-refused:
		return nil, fmt.Errorf("refused: %s", msg)
	case <-time.After(5 * time.Second):
		sock.Disconnect()
		return nil, errNoConnect
	}
}

// await returns the first event named name for which match is true,
// skipping the others, or fails after 10 s.
func (a *adminClient) await(name string, match func(args []any) bool) []any {
	a.t.Helper()
	return a.awaitWithin(name, 10*time.Second, match)
}

func (a *adminClient) awaitWithin(name string, limit time.Duration, match func(args []any) bool) []any {
	a.t.Helper()
	deadline := time.After(limit)
	for {
		select {
		case e := <-a.events:
			if e.name == name && (match == nil || match(e.args)) {
				return e.args
			}
		case <-deadline:
			a.t.Fatalf("admin UI: no matching %q within %v", name, limit)
		}
	}
}

// socketsByID reads an all_sockets list: socket id -> its rooms.
func socketsByID(t *testing.T, args []any) map[string][]string {
	t.Helper()
	list, ok := args[0].([]any)
	if !ok {
		t.Fatalf("all_sockets: %v is not a list", args)
	}
	out := map[string][]string{}
	for _, s := range list {
		m, _ := s.(map[string]any)
		id, _ := m["id"].(string)
		var rooms []string
		rs, _ := m["rooms"].([]any)
		for _, r := range rs {
			rooms = append(rooms, fmt.Sprint(r))
		}
		out[id] = rooms
		if hs, _ := m["handshake"].(map[string]any); hs != nil {
			if h, _ := hs["headers"].(map[string]any); h["cookie"] != nil && h["cookie"] != "(hidden)" {
				t.Errorf("socket %s: its cookie header reached the UI: %v", id, h["cookie"])
			}
		}
	}
	return out
}

// TestAdminUIProtocol speaks the Admin UI's protocol to two gateways of one
// deployment with a socket.io client, as the UI does: sign-in and refusal,
// the sockets of both gateways in one list, their events, joins, leaves and
// disconnects carried out by the gateway that holds the socket, stats of
// both, and a session that signs in again on the other gateway.
func TestAdminUIProtocol(t *testing.T) {
	s := startStack(t)
	flags := adminFlags(t, "gw-one", "gw-two")
	_, url1 := s.gateway("127.0.0.1:0", flags[0]...)
	_, url2 := s.gateway("127.0.0.1:0", flags[1]...)

	// Refusals are read off the wire, packet by packet.
	for _, auth := range []string{
		`{"username":"admin","password":"wrong"}`,
		`{"username":"root","password":"` + adminPassword + `"}`,
		`{"sessionId":"AAAAAGsJeQk.forged"}`,
		`{}`,
		``,
	} {
		c, _ := openPolling(t, url1+"/socket.io/?EIO=4&transport=polling")
		c.post("40/admin," + auth)
		var buf []string
		if got, want := c.next(&buf), `44/admin,{"data":{"code":"unauthenticated"},"message":"invalid credentials"}`; got != want {
			t.Errorf("auth %s: got %q, want %q", auth, got, want)
		}
	}

	ann := dialGo(t, url1+"/", nil)
	bob := dialGo(t, url2+"/", nil)
	ui := signIn(t, url1)
	session, _ := ui.await("session", nil)[0].(string)
	if session == "" {
		t.Fatal("no session handed out")
	}
	config := ui.await("config", nil)[0].(map[string]any)
	if features := fmt.Sprint(config["supportedFeatures"]); features != "[JOIN LEAVE DISCONNECT MJOIN MLEAVE MDISCONNECT AGGREGATED_EVENTS ALL_EVENTS]" {
		t.Errorf("supportedFeatures %s", features)
	}
	all := socketsByID(t, ui.await("all_sockets", nil))
	for _, c := range []*goClient{ann, bob} {
		if rooms := all[c.sock.Id()]; !slices.Equal(rooms, []string{c.sock.Id(), "room1"}) {
			t.Errorf("all_sockets: socket %s has rooms %v, want its own and room1 (list: %v)", c.sock.Id(), rooms, all)
		}
	}
	servers := map[string]bool{}
	for len(servers) < 2 {
		stats := ui.await("server_stats", nil)[0].(map[string]any)
		servers[fmt.Sprint(stats["serverId"])] = true
	}
	if !servers["gw-one"] || !servers["gw-two"] {
		t.Errorf("server_stats from %v, want gw-one and gw-two", servers)
	}

	// What happens on the other gateway reaches the UI.
	cid := dialGo(t, url2+"/", nil)
	ui.await("socket_connected", func(a []any) bool { return a[0].(map[string]any)["id"] == cid.sock.Id() })
	cid.mustOK("join", "admin-lobby")
	ui.await("event_received", func(a []any) bool {
		return a[1] == cid.sock.Id() && fmt.Sprint(a[2]) == "[join admin-lobby]"
	})
	ui.await("room_joined", func(a []any) bool { return a[1] == "admin-lobby" && a[2] == cid.sock.Id() })

	// The UI's actions, carried out by the gateway holding the socket.
	ui.sock.Emit("join", "/", "moved-here", bob.sock.Id())
	ui.await("room_joined", func(a []any) bool { return a[1] == "moved-here" && a[2] == bob.sock.Id() })
	ui.sock.Emit("leave", "/", "moved-here", bob.sock.Id())
	ui.await("room_left", func(a []any) bool { return a[1] == "moved-here" && a[2] == bob.sock.Id() })
	annID := ann.sock.Id() // a client forgets its id once disconnected
	gone := make(chan string, 1)
	ann.sock.On("disconnect", func(a ...any) { gone <- fmt.Sprint(a[0]) })
	ui.sock.Emit("_disconnect", "/", false, ann.sock.Id())
	select {
	case reason := <-gone:
		if reason != "io server disconnect" {
			t.Errorf("ann disconnected with %q, want io server disconnect", reason)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("ann was not disconnected by the admin UI")
	}
	ui.await("socket_disconnected", func(a []any) bool { return a[1] == annID })
	if !bob.sock.Connected() {
		t.Error("bob was disconnected too")
	}

	// The session signs the UI in on the other gateway, which lists the
	// sockets left.
	ui2 := dialAdmin(t, url2, map[string]any{"sessionId": session}) // a session of the other gateway
	all = socketsByID(t, ui2.await("all_sockets", nil))
	if _, ok := all[annID]; ok || all[bob.sock.Id()] == nil || all[cid.sock.Id()] == nil {
		t.Errorf("all_sockets after the disconnect: %v, want bob and cid, not ann", all)
	}
}

// watched is two gateways of one deployment with the UI on ("gw-one" and
// "gw-two"), a chat socket on each, ann's and bob's, and a UI signed in to
// the first that lists both.
type watched struct {
	url1, url2   string
	second       *proctest.Process
	annID, bobID string
	ui           *adminClient
}

func watchTwo(t *testing.T, s *stack) watched {
	t.Helper()
	flags := adminFlags(t, "gw-one", "gw-two")
	w := watched{}
	_, w.url1 = s.gateway("127.0.0.1:0", flags[0]...)
	w.second, w.url2 = s.gateway("127.0.0.1:0", flags[1]...)
	w.annID = dialGo(t, w.url1+"/", nil).sock.Id()
	w.bobID = dialGo(t, w.url2+"/", nil).sock.Id()
	w.ui = signIn(t, w.url1)
	if all := socketsByID(t, w.ui.await("all_sockets", nil)); all[w.annID] == nil || all[w.bobID] == nil {
		t.Fatalf("all_sockets %v, want ann and bob", all)
	}
	return w
}

// TestAdminUIWhenAGatewayStops stops one of two gateways: terminated, it
// reports its sockets going as they go; killed (SIGKILL, so it says
// nothing), the UI on the other gateway takes its sockets off within
// seconds. Either way the other gateway's sockets stay.
func TestAdminUIWhenAGatewayStops(t *testing.T) {
	for _, tt := range []struct {
		name   string
		stop   func(*proctest.Process)
		reason string
		within time.Duration
	}{
		{name: "SIGTERM", stop: func(p *proctest.Process) { p.Terminate(t) }, reason: "server shutting down", within: 5 * time.Second},
		{name: "SIGKILL", stop: func(p *proctest.Process) { p.Kill() }, reason: "gateway unreachable", within: 20 * time.Second},
	} {
		t.Run(tt.name, func(t *testing.T) {
			w := watchTwo(t, startStack(t))
			second, url1, ui, annID, bobID := w.second, w.url1, w.ui, w.annID, w.bobID

			start := time.Now()
			tt.stop(second)
			got := ui.awaitWithin("socket_disconnected", tt.within, func(a []any) bool { return a[1] == bobID })
			if got[2] != tt.reason {
				t.Errorf("bob's socket left the UI for %q, want %q", got[2], tt.reason)
			}
			ui.awaitWithin("room_left", 5*time.Second, func(a []any) bool { return a[1] == "room1" && a[2] == bobID })
			t.Logf("the stopped gateway's socket left the UI %v after the signal", time.Since(start).Round(100*time.Millisecond))

			// Ann's gateway still reports, and her socket stays.
			ui.await("server_stats", func(a []any) bool { return a[0].(map[string]any)["serverId"] == "gw-one" })
			ui2 := signIn(t, url1)
			if all := socketsByID(t, ui2.await("all_sockets", nil)); all[annID] == nil || all[bobID] != nil {
				t.Errorf("all_sockets after the stop: %v, want ann alone", all)
			}
			for {
				select {
				case e := <-ui.events:
					if e.name == "socket_disconnected" && e.args[1] == annID {
						t.Fatal("ann's socket was taken off the UI too")
					}
				default:
					return
				}
			}
		})
	}
}

// TestAdminUIThroughARoomsServiceRestart kills the rooms service, which
// carries the gateways' reports, and starts it again after longer than a
// gateway counts as alive: no socket leaves the UI meanwhile, and once it
// is back the UI hears from both gateways again and of new sockets.
func TestAdminUIThroughARoomsServiceRestart(t *testing.T) {
	s := startStack(t, "--listen", freeAddr(t))
	w := watchTwo(t, s)
	url2, ui := w.url2, w.ui

	s.restartRooms(func(p *proctest.Process) {
		p.Kill()
		time.Sleep(8 * time.Second) // longer than a silent gateway is kept
	})
	for _, id := range []string{"gw-one", "gw-two"} {
		ui.awaitWithin("server_stats", 20*time.Second, func(a []any) bool { return a[0].(map[string]any)["serverId"] == id })
	}
	cid := dialGo(t, url2+"/", nil)
	ui.await("socket_connected", func(a []any) bool { return a[0].(map[string]any)["id"] == cid.sock.Id() })
	// Reports come in order, so by now any removal would have arrived.
	time.Sleep(3 * time.Second)
	for {
		select {
		case e := <-ui.events:
			if e.name == "socket_disconnected" {
				t.Fatalf("a socket left the UI across the restart: %v", e.args)
			}
		default:
			return
		}
	}
}

// uiView follows what a UI shows of the sockets: the list it was sent,
// then each connect and disconnect, as the UI's store applies them.
type uiView struct {
	ui      *adminClient
	sockets map[string]bool
}

// newView waits for the UI's all_sockets and follows it from there.
func newView(t *testing.T, ui *adminClient) *uiView {
	v := &uiView{ui: ui, sockets: map[string]bool{}}
	for id := range socketsByID(t, ui.await("all_sockets", nil)) {
		v.sockets[id] = true
	}
	return v
}

// catchUp applies what the UI has been sent so far.
func (v *uiView) catchUp() {
	for {
		select {
		case e := <-v.ui.events:
			switch e.name {
			case "socket_connected":
				id, _ := e.args[0].(map[string]any)["id"].(string)
				v.sockets[id] = true
			case "socket_disconnected":
				id, _ := e.args[1].(string)
				delete(v.sockets, id)
			}
		default:
			return
		}
	}
}

// TestAdminUIUnderChurn connects and disconnects sockets on two gateways
// while they chat, with one UI watching from the start (connected as the
// second gateway is still starting) and one that connects half way: in the
// end each UI shows exactly the sockets the gateways hold, whatever order
// the reports, the lists and the events of the two gateways crossed in.
func TestAdminUIUnderChurn(t *testing.T) {
	s := startStack(t)
	flags := adminFlags(t, "gw-one", "gw-two")
	_, url1 := s.gateway("127.0.0.1:0", flags[0]...)
	_, url2 := s.gateway("127.0.0.1:0", flags[1]...)
	urls := []string{url1, url2}
	first := signIn(t, url1)
	views := []*uiView{newView(t, first)}

	rng := rand.New(rand.NewPCG(1, 2))
	live := map[string]*goClient{}
	const steps = 60
	for i := range steps {
		if i == steps/2 {
			second := signIn(t, url2)
			views = append(views, newView(t, second))
		}
		if len(live) > 0 && rng.IntN(3) == 0 {
			for id, c := range live {
				c.sock.Disconnect()
				delete(live, id)
				break
			}
			continue
		}
		c := dialGo(t, urls[rng.IntN(2)]+"/", nil)
		live[c.sock.Id()] = c
		c.sock.Emit("send message", "room1", fmt.Sprintf("step %d", i))
		for _, v := range views {
			v.catchUp()
		}
	}
	// What the gateways hold, as a UI that connects now is told. (Not
	// what the clients hold: the Go client now and then goes on taking
	// itself for connected after the gateway saw its connection close, or
	// gives up on a connection the gateway completed.)
	last := signIn(t, url1)
	truth := socketsByID(t, last.await("all_sockets", nil))
	want := slices.Sorted(maps.Keys(truth))
	for i, v := range views {
		eventually(t, 10*time.Second, func() error {
			v.catchUp()
			var extra, missing []string
			for id := range v.sockets {
				if truth[id] == nil {
					extra = append(extra, id)
				}
			}
			for _, id := range want {
				if !v.sockets[id] {
					missing = append(missing, id)
				}
			}
			if len(extra)+len(missing) > 0 {
				return fmt.Errorf("UI %d shows %d sockets, the gateways hold %d: shown but not held %v, held but not shown %v", i+1, len(v.sockets), len(want), extra, missing)
			}
			return nil
		})
	}
	t.Logf("%d sockets connected at the end (%d held by clients), shown alike by both UIs", len(want), len(live))
}

// TestAdminUIInBrowser drives the official Admin UI, served by the first of
// two gateways, in headless Chromium (test/node/adminui.mjs): a wrong
// password is refused; signed in, it lists a chat socket of each gateway and
// both gateways as servers, and disconnecting one socket from its page
// disconnects that client only. The screenshots are kept in
// services/gateway/test/node/output/admin-ui (docs/admin-ui.md shows one).
func TestAdminUIInBrowser(t *testing.T) {
	dir, node := nodeDir(t)
	chromium := chromiumPath(t)
	s := startStack(t)
	flags := adminFlags(t, "gateway-1", "gateway-2")
	_, url1 := s.gateway("127.0.0.1:0", flags[0]...)
	_, url2 := s.gateway("127.0.0.1:0", flags[1]...)
	resp, err := http.Get(url1 + "/admin/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /admin/: %s; the UI is bundled into the gateway by make web", resp.Status)
	}
	sc := runScript(t, dir, node, "adminui.mjs", 2*time.Minute,
		"ADMIN_URL="+url1+"/admin/", "SERVER_URL="+url1, "ADMIN_USER=admin", "ADMIN_PASSWORD="+adminPassword,
		"GATEWAY_URL="+url1, "GATEWAY_URL_2="+url2, "CHROMIUM="+chromium,
		"SCREENSHOT_DIR="+filepath.Join(dir, "output", "admin-ui"))
	for _, step := range []string{"REFUSED", "SIGNEDIN", "LISTED"} {
		sc.expect(step)
	}
	if n := sc.expect("SERVERS"); n != "2" {
		t.Errorf("the Servers view lists %s gateways, want 2", n)
	}
	if reason := sc.expect("DISCONNECTED"); reason != "io server disconnect" {
		t.Errorf("the disconnected client saw %q, want io server disconnect", reason)
	}
	sc.expect("OK")
}
