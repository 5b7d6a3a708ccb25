package e2e

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	roomsv1 "github.com/parleyhq/parley/proto/parley/rooms/v1"
)

// gatewayMetric sums the samples of a gateway metric whose line starts with
// prefix (a name, optionally with labels).
func gatewayMetric(t *testing.T, url, prefix string) float64 {
	t.Helper()
	resp, err := http.Get(url + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var sum float64
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "#") || !strings.HasPrefix(line, prefix) {
			continue
		}
		f, err := strconv.ParseFloat(line[strings.LastIndexByte(line, ' ')+1:], 64)
		if err != nil {
			t.Fatalf("metric line %q: %v", line, err)
		}
		sum += f
	}
	return sum
}

func healthz(t *testing.T, url string) int {
	t.Helper()
	resp, err := http.Get(url + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

// TestHealthAndMetrics checks that /healthz follows the rooms service's
// reachability and that /metrics counts connections, events and deliveries
// (one per receiving socket, none to the sender).
func TestHealthAndMetrics(t *testing.T) {
	s := startStack(t)
	_, url := s.gateway("127.0.0.1:0")
	if code := healthz(t, url); code != http.StatusOK {
		t.Fatalf("/healthz = %d with the rooms service up, want 200", code)
	}
	c, d := dialGo(t, url+"/", nil), dialGo(t, url+"/", nil)
	c.mustOK("join", "metrics-room")
	d.mustOK("join", "metrics-room")
	c.call("no such event")
	c.mustOK("send message", "metrics-room", "counted")
	d.nextMessage()
	eventually(t, 5*time.Second, func() error {
		if got := gatewayMetric(t, url, "parley_gateway_deliveries_total"); got != 1 {
			return fmt.Errorf("parley_gateway_deliveries_total = %v, want 1", got)
		}
		return nil
	})
	for _, m := range []struct {
		prefix string
		want   float64
	}{
		{`parley_gateway_connections{namespace="/"}`, 2},
		{`parley_gateway_events_total{event="join",result="ok"}`, 2},
		{`parley_gateway_events_total{event="send message",result="ok"}`, 1},
		{`parley_gateway_events_total{event="unknown",result="unimplemented"}`, 1},
		{`parley_gateway_fanout_latency_seconds_count`, 1},
	} {
		if got := gatewayMetric(t, url, m.prefix); got != m.want {
			t.Errorf("%s = %v, want %v", m.prefix, got, m.want)
		}
	}
	s.rooms.Kill()
	if code := healthz(t, url); code != http.StatusServiceUnavailable {
		t.Fatalf("/healthz = %d with the rooms service down, want 503", code)
	}
}

// TestSlowClientIsDisconnected joins a raw websocket client that then stops
// reading while a burst is published to its room: the gateway must cut it
// off once its send queue is full, and keep delivering to a healthy member.
func TestSlowClientIsDisconnected(t *testing.T) {
	s := startStack(t)
	_, url := s.gateway("127.0.0.1:0")
	room := fmt.Sprintf("slow-%d", time.Now().UnixNano())

	ws, _, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(url, "http")+"/socket.io/?EIO=4&transport=websocket", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.Close()
	read := func(prefix string) {
		t.Helper()
		for {
			ws.SetReadDeadline(time.Now().Add(10 * time.Second))
			_, b, err := ws.ReadMessage()
			if err != nil {
				t.Fatalf("waiting for %q: %v", prefix, err)
			}
			if strings.HasPrefix(string(b), prefix) {
				return
			}
		}
	}
	read("0{")
	ws.WriteMessage(websocket.TextMessage, []byte("40"))
	read("40{")
	ws.WriteMessage(websocket.TextMessage, []byte(`421["join",`+strconvQuote(room)+`]`))
	read("431[")

	healthy := dialGo(t, url+"/", nil)
	healthy.mustOK("join", room)
	publish := s.publisher(t, "/", room)
	big := strings.Repeat("x", 16<<10)
	const total = 2000
	for i := range total {
		publish(fmt.Sprintf("%d %s", i, big))
	}
	for i := range total {
		a := healthy.nextMessage()
		if msg, _ := a[0].(string); !strings.HasPrefix(msg, strconv.Itoa(i)+" ") {
			t.Fatalf("healthy client got message %.20q, want number %d", msg, i)
		}
	}
	eventually(t, 10*time.Second, func() error {
		if gatewayMetric(t, url, "parley_gateway_send_queue_drops_total") < 1 {
			return errors.New("the slow client was never disconnected")
		}
		return nil
	})
}

func strconvQuote(s string) string { return strconv.Quote(s) }

// TestMaxRoomsPerSocket fills a socket's room allowance (room1 counts) and
// expects the next join to be refused with resource_exhausted.
func TestMaxRoomsPerSocket(t *testing.T) {
	s := startStack(t)
	_, url := s.gateway("127.0.0.1:0", "--max-rooms", "3")
	c := dialGo(t, url+"/", nil)
	c.mustOK("join", "cap-a")
	c.mustOK("join", "cap-b")
	a := c.call("join", "cap-c")
	if errObj, _ := a["error"].(map[string]any); a["ok"] != false || errObj["code"] != "resource_exhausted" {
		t.Fatalf("fourth room: ack %v, want ok:false resource_exhausted", a)
	}
	c.mustOK("join", "cap-b") // rejoining a room it is in is not a new room
	c.mustOK("leave", "cap-a")
	c.mustOK("join", "cap-c")
}

// TestServerManagedRooms checks that a join is a request the rooms service
// may refuse, and that each refusal reaches the client as its error code.
func TestServerManagedRooms(t *testing.T) {
	s := startStack(t)
	_, url := s.gateway("127.0.0.1:0")
	admin := s.roomsClient(t)
	ctx := s.serviceCtx(t)
	for _, r := range []*roomsv1.CreateRoomRequest{
		{Namespace: "/secure", Room: "vip", Options: &roomsv1.RoomOptions{Visibility: roomsv1.Visibility_VISIBILITY_PRIVATE}},
		{Namespace: "/secure", Room: "duo", Options: &roomsv1.RoomOptions{MaxMembers: 1}},
	} {
		if _, err := admin.CreateRoom(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := admin.AddMember(ctx, &roomsv1.AddMemberRequest{Namespace: "/secure", Room: "vip", UserId: "alice"}); err != nil {
		t.Fatal(err)
	}
	alice := dialGo(t, url+"/secure", map[string]any{"token": token(t, "alice")})
	bob := dialGo(t, url+"/secure", map[string]any{"token": token(t, "bob")})
	alice.mustOK("join", "vip")
	alice.mustOK("join", "duo")
	tests := []struct {
		room, code string
	}{
		{"vip", "permission_denied"},  // private, bob was not added
		{"duo", "resource_exhausted"}, // full
		{"missing-but-creatable", ""}, // /secure may create rooms
	}
	for _, tt := range tests {
		a := bob.call("join", tt.room)
		errObj, _ := a["error"].(map[string]any)
		if tt.code == "" && a["ok"] != true || tt.code != "" && errObj["code"] != tt.code {
			t.Errorf("bob joins %s: ack %v, want code %q", tt.room, a, tt.code)
		}
	}
}

// TestKickedMemberStopsReceiving kicks a member through the rooms service:
// the member's socket is told (member left, with its own user id), gets no
// further messages of the room, and may no longer read or write it.
func TestKickedMemberStopsReceiving(t *testing.T) {
	s := startStack(t)
	_, url := s.gateway("127.0.0.1:0")
	alice := dialGo(t, url+"/secure", map[string]any{"token": token(t, "alice")})
	bob := dialGo(t, url+"/secure", map[string]any{"token": token(t, "bob")})
	left := make(chan map[string]any, 4)
	bob.sock.On("member left", func(a ...any) {
		if m, ok := a[0].(map[string]any); ok {
			left <- m
		}
	})
	carol := dialGo(t, url+"/secure", map[string]any{"token": token(t, "carol")})
	alice.mustOK("join", "kick-room")
	bob.mustOK("join", "kick-room")
	carol.mustOK("join", "kick-room")

	if _, err := s.roomsClient(t).KickMember(s.serviceCtx(t), &roomsv1.KickMemberRequest{Namespace: "/secure", Room: "kick-room", UserId: "bob"}); err != nil {
		t.Fatal(err)
	}
	select {
	case m := <-left:
		if m["user"] != "bob" || m["room"] != "kick-room" {
			t.Fatalf("member left %v, want bob in kick-room", m)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the kicked member's socket was not told")
	}
	alice.mustOK("send message", "kick-room", "after the kick")
	for _, event := range []string{"history", "send message"} {
		args := []any{"kick-room"}
		if event == "send message" {
			args = append(args, "still here?")
		}
		a := bob.call(event, args...)
		if errObj, _ := a["error"].(map[string]any); a["ok"] != false || errObj["code"] != "permission_denied" {
			t.Errorf("%s after the kick: ack %v, want permission_denied", event, a)
		}
	}
	// Messages published after the kick reach carol, never bob.
	carol.nextMessage()
	alice.mustOK("send message", "kick-room", "sync")
	if a := carol.nextMessage(); a[0] != "sync" {
		t.Fatalf("carol got %v, want sync", a)
	}
	select {
	case a := <-bob.events:
		t.Fatalf("kicked member received %v", a)
	default:
	}
}

// TestSlowRoomsServiceKeepsClientsConnected freezes the rooms service while a
// client sends a message: the event waits for the call timeout, but the
// socket's pings go on being answered meanwhile, so the client stays
// connected and gets its unavailable ack, and is served again once the
// service thaws. A ping missed while the call hangs would end the socket
// after 1.3 s, well within the call's 3 s; the timeout is not shorter so that
// a busy machine's scheduling delays do not pass for it.
func TestSlowRoomsServiceKeepsClientsConnected(t *testing.T) {
	s := startStack(t)
	_, url := s.gateway("127.0.0.1:0", "--ping-interval", "300ms", "--ping-timeout", "1s", "--call-timeout", "3s")
	c := dialRaw(t, url)
	if ok, reply := c.connect("", nil); !ok {
		t.Fatalf("connect refused: %v", reply)
	}
	if err := s.rooms.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	thaw := sync.OnceFunc(func() { s.rooms.Signal(syscall.SIGCONT) })
	t.Cleanup(thaw)
	c.send(`421["send message","room1","while frozen"]`)
	if ack := c.read("431["); !strings.Contains(ack, `"code":"unavailable"`) {
		t.Fatalf("ack %s, want unavailable", ack)
	}
	thaw()
	c.send(`422["send message","room1","thawed"]`)
	if ack := c.read("432["); !strings.HasPrefix(ack, `432[{"ok":true`) {
		t.Fatalf("ack %s after the service thawed", ack)
	}
}

// TestProfilesOnlyWhereAskedFor serves Go's profiles from both services
// with --pprof-listen, on their own address; without it, and on the
// gateway's public address in any case, there are none.
func TestProfilesOnlyWhereAskedFor(t *testing.T) {
	get := func(url string) int {
		t.Helper()
		resp, err := http.Get(url)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	s := startStack(t, "--pprof-listen", "127.0.0.1:0")
	_, on := s.gatewayReady("127.0.0.1:0", "--pprof-listen", "127.0.0.1:0")
	_, off := s.gatewayReady("127.0.0.1:0")
	for name, addr := range map[string]any{"rooms service": s.pprof, "gateway": on["pprof_addr"]} {
		if code := get(fmt.Sprintf("http://%s/debug/pprof/goroutine?debug=1", addr)); code != http.StatusOK {
			t.Errorf("%s profiles at %v: %d", name, addr, code)
		}
	}
	if off["pprof_addr"] != "off" {
		t.Errorf("gateway without --pprof-listen: pprof_addr %v", off["pprof_addr"])
	}
	for _, line := range []map[string]any{on, off} {
		if code := get(fmt.Sprintf("http://%s/debug/pprof/", line["addr"])); code == http.StatusOK {
			t.Errorf("profiles served on the gateway's public address %v", line["addr"])
		}
	}
	if code := get("http://" + s.metrics + "/debug/pprof/"); code == http.StatusOK {
		t.Errorf("profiles served on the rooms service's metrics address")
	}
}
