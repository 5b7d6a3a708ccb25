package edge

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
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	roomsv1 "github.com/parleyhq/parley/proto/parley/rooms/v1"
)

// handlerCase is one event sent by a socket of alice in namespace "/".
type handlerCase struct {
	name    string
	ns      Namespace
	limits  *Limits
	in      []string // rooms the socket is in beforehand
	fail    map[string]error
	acquire []error // the relay's answers to the next Acquire calls
	event   string
	args    []any
	code    Code // "" for {ok: true}
	check   func(t *testing.T, ack map[string]any, rooms *fakeRooms, rel *fakeRelay, c *client)
}

func runHandlerCases(t *testing.T, tests []handlerCase) {
	t.Helper()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ns := tt.ns
			if ns.Name == "" {
				ns = Namespace{Name: "/"}
			}
			limits := testLimits
			if tt.limits != nil {
				limits = *tt.limits
			}
			rooms, rel := &fakeRooms{fail: tt.fail}, newFakeRelay()
			c := newTestClient(t, ns, limits, rooms, rel)
			for _, r := range tt.in {
				rel.in(c, r)
			}
			rel.acquire = tt.acquire
			ack := emit(t, c, tt.event, tt.args...)
			if got := ackCode(t, ack); got != tt.code {
				t.Fatalf("ack %v: code %q, want %q", ack, got, tt.code)
			}
			if tt.check != nil {
				tt.check(t, ack, rooms, rel, c)
			}
		})
	}
}

// badRooms are room arguments every room event refuses.
var badRooms = []struct {
	name string
	args []any
}{
	{"no room", nil},
	{"room not a string", []any{42.0}},
	{"empty room", []any{""}},
	{"room too long", []any{strings.Repeat("a", 129)}},
	{"room with a space", []any{"a b"}},
	{"room with a no-break space", []any{"room\u00a0x"}},
	{"room with a zero-width space", []any{"room\u200bx"}},
	{"room with a direction override", []any{"room\u202ex"}},
}

func TestRoomArgumentErrors(t *testing.T) {
	var tests []handlerCase
	for _, event := range []string{"join", "leave", "switch room", "send message", "history", "members"} {
		for _, b := range badRooms {
			args := b.args
			if len(args) > 0 {
				args = append(args, "msg")
			}
			tests = append(tests, handlerCase{
				name: event + "/" + b.name, event: event, args: args, code: CodeInvalidArgument,
				check: func(t *testing.T, _ map[string]any, rooms *fakeRooms, _ *fakeRelay, _ *client) {
					if len(rooms.calls) > 0 {
						t.Errorf("rooms service called with a bad room: %v", rooms.calls)
					}
				},
			})
		}
		tests = append(tests, handlerCase{
			name: event + "/room outside the namespace pattern", ns: Namespace{Name: "/", RoomPattern: "^team-"},
			event: event, args: []any{"lobby", "msg"}, code: CodeInvalidArgument,
		})
	}
	runHandlerCases(t, tests)
}

func TestJoin(t *testing.T) {
	notFound := status.Error(codes.NotFound, "room not found")
	oneRoom := testLimits
	oneRoom.MaxRooms = 1
	runHandlerCases(t, []handlerCase{
		{name: "joins and acks the room's state", event: "join", args: []any{"lobby"},
			check: func(t *testing.T, ack map[string]any, rooms *fakeRooms, rel *fakeRelay, c *client) {
				if !slices.Equal(rooms.calls, []string{"JoinRoom"}) {
					t.Errorf("rooms service calls %v, want one JoinRoom", rooms.calls)
				}
				want := `{"members":[{"online":true,"user":"alice"},{"online":false,"user":"bob"}],` +
					`"messages":[{"from":"bob","id":"6","msg":{"text":"hi"},"offset":6,"room":"lobby","ts":1700000000000},` +
					`{"from":"svc","id":"c-7","msg":"plain text","offset":7,"room":"lobby","ts":1700000000000}],` +
					`"offset":7,"ok":true,"room":"lobby"}`
				if got, _ := json.Marshal(ack); string(got) != want {
					t.Errorf("ack\n got %s\nwant %s", got, want)
				}
				if rel.held("lobby") != 1 || rel.member("lobby") != c.member || !c.joined("lobby") {
					t.Error("the socket is not in the room's delivery")
				}
			}},
		{name: "join again keeps one reference", in: []string{"lobby"}, event: "join", args: []any{"lobby"},
			check: func(t *testing.T, _ map[string]any, _ *fakeRooms, rel *fakeRelay, _ *client) {
				if rel.held("lobby") != 1 {
					t.Errorf("references = %d, want 1", rel.held("lobby"))
				}
			}},
		{name: "room limit", limits: &oneRoom, in: []string{"a"}, event: "join", args: []any{"b"}, code: CodeResourceExhausted},
		{name: "unknown room", acquire: []error{notFound}, event: "join", args: []any{"nowhere"}, code: CodeNotFound,
			check: func(t *testing.T, _ map[string]any, rooms *fakeRooms, _ *fakeRelay, _ *client) {
				if rooms.called("CreateRoom") {
					t.Error("created a room in a namespace that does not allow it")
				}
			}},
		{name: "unknown room is created where allowed", ns: Namespace{Name: "/", CreateRooms: true}, acquire: []error{notFound},
			event: "join", args: []any{"new"},
			check: func(t *testing.T, _ map[string]any, rooms *fakeRooms, rel *fakeRelay, _ *client) {
				if !rooms.called("CreateRoom") || rel.held("new") != 1 {
					t.Error("room not created and subscribed")
				}
			}},
		{name: "created room still being subscribed by an earlier join", ns: Namespace{Name: "/", CreateRooms: true},
			acquire: []error{notFound, notFound, notFound}, event: "join", args: []any{"new"},
			check: func(t *testing.T, _ map[string]any, _ *fakeRooms, rel *fakeRelay, _ *client) {
				if rel.held("new") != 1 {
					t.Error("room not subscribed")
				}
			}},
		{name: "room deleted as soon as created", ns: Namespace{Name: "/", CreateRooms: true},
			acquire: []error{notFound, notFound, notFound, notFound}, event: "join", args: []any{"new"}, code: CodeNotFound},
		{name: "created room deleted when empty where configured", ns: Namespace{Name: "/", CreateRooms: true, EmptyRoomTTL: "10m"},
			acquire: []error{notFound}, event: "join", args: []any{"new"},
			check: func(t *testing.T, _ map[string]any, rooms *fakeRooms, _ *fakeRelay, _ *client) {
				if len(rooms.created) != 1 || rooms.created[0].GetOptions().GetDeleteWhenEmpty().AsDuration() != 10*time.Minute {
					t.Errorf("created %v, want one room deleted after 10m empty", rooms.created)
				}
			}},
		{name: "refused by the rooms service", fail: map[string]error{"JoinRoom": status.Error(codes.PermissionDenied, "private room")},
			event: "join", args: []any{"vip"}, code: CodePermissionDenied,
			check: func(t *testing.T, ack map[string]any, _ *fakeRooms, rel *fakeRelay, c *client) {
				if rel.held("vip") != 0 || c.joined("vip") {
					t.Error("a refused join kept its relay reference")
				}
				if msg := ack["error"].(map[string]any)["message"]; msg != "private room" {
					t.Errorf("message %q, want the rooms service's", msg)
				}
			}},
		{name: "rooms service down", fail: map[string]error{"JoinRoom": status.Error(codes.Unavailable, "connection refused 127.0.0.1:1")},
			event: "join", args: []any{"lobby"}, code: CodeUnavailable},
		{name: "rooms service fails", fail: map[string]error{"JoinRoom": status.Error(codes.Internal, "disk full")},
			event: "join", args: []any{"lobby"}, code: CodeInternal,
			check: func(t *testing.T, ack map[string]any, _ *fakeRooms, _ *fakeRelay, _ *client) {
				if msg := ack["error"].(map[string]any)["message"]; msg != "internal error" {
					t.Errorf("internal detail %q reached the client", msg)
				}
			}},
	})
}

func TestLeaveAndSwitch(t *testing.T) {
	runHandlerCases(t, []handlerCase{
		{name: "leave", in: []string{"lobby"}, event: "leave", args: []any{"lobby"},
			check: func(t *testing.T, ack map[string]any, rooms *fakeRooms, rel *fakeRelay, c *client) {
				if len(ack) != 1 {
					t.Errorf("ack %v, want {ok: true}", ack)
				}
				if c.joined("lobby") || rel.held("lobby") != 0 || !rooms.called("EndSession") || !rooms.called("LeaveRoom") {
					t.Errorf("not left: calls %v", rooms.calls)
				}
			}},
		{name: "leave a room not joined", event: "leave", args: []any{"lobby"}, code: CodeNotFound},
		{name: "leave fails upstream", in: []string{"lobby"}, fail: map[string]error{"EndSession": errors.New("boom")},
			event: "leave", args: []any{"lobby"}, code: CodeInternal},
		{name: "switch leaves every other room", in: []string{"a", "b"}, event: "switch room", args: []any{"c"},
			check: func(t *testing.T, ack map[string]any, _ *fakeRooms, rel *fakeRelay, c *client) {
				if ack["room"] != "c" || c.joined("a") || c.joined("b") || !c.joined("c") || rel.held("a")+rel.held("b") != 0 {
					t.Errorf("after switch: rooms %v, ack %v", c.rooms, ack)
				}
			}},
		{name: "switch to an invalid name keeps the rooms", in: []string{"a"}, event: "switch room", args: []any{"room\u200bx"}, code: CodeInvalidArgument,
			check: func(t *testing.T, _ map[string]any, rooms *fakeRooms, _ *fakeRelay, c *client) {
				if !c.joined("a") || len(rooms.calls) > 0 {
					t.Errorf("rooms %v, calls %v", c.rooms, rooms.calls)
				}
			}},
		{name: "switch to an unknown room", in: []string{"a"}, acquire: []error{status.Error(codes.NotFound, "no room")},
			event: "switch room", args: []any{"gone"}, code: CodeNotFound},
	})
}

func TestSendMessage(t *testing.T) {
	runHandlerCases(t, []handlerCase{
		{name: "publishes and acks", in: []string{"lobby"}, event: "send message", args: []any{"lobby", map[string]any{"text": "hi"}},
			check: func(t *testing.T, ack map[string]any, rooms *fakeRooms, _ *fakeRelay, _ *client) {
				if ack["id"] != "8" || ack["offset"] != 8.0 || ack["ts"] != 1700000000000.0 {
					t.Errorf("ack %v", ack)
				}
				req := rooms.last.(*roomsv1.PublishRequest)
				if req.GetPayload() != `{"text":"hi"}` || req.GetSender() != "alice" || req.GetSessionId() != "sock1" {
					t.Errorf("published %v", req)
				}
			}},
		{name: "client id is the message id", in: []string{"lobby"}, event: "send message", args: []any{"lobby", "hi", map[string]any{"id": "m-1"}},
			check: func(t *testing.T, ack map[string]any, rooms *fakeRooms, _ *fakeRelay, _ *client) {
				if ack["id"] != "m-1" || rooms.last.(*roomsv1.PublishRequest).GetClientMessageId() != "m-1" {
					t.Errorf("ack %v", ack)
				}
			}},
		{name: "raw JSON is stored as sent", in: []string{"lobby"}, event: "send message",
			args: []any{"lobby", json.RawMessage(`{"z":1, "a":"<&>"}`), json.RawMessage(`{"id":"m-2"}`)},
			check: func(t *testing.T, ack map[string]any, rooms *fakeRooms, _ *fakeRelay, _ *client) {
				req := rooms.last.(*roomsv1.PublishRequest)
				if req.GetPayload() != `{"z":1, "a":"<&>"}` || req.GetClientMessageId() != "m-2" || ack["id"] != "m-2" {
					t.Errorf("published %v, ack %v", req, ack)
				}
			}},
		{name: "raw options not an object", in: []string{"lobby"}, event: "send message", args: []any{"lobby", "hi", json.RawMessage(`["m-1"]`)}, code: CodeInvalidArgument},
		{name: "raw id not a string", in: []string{"lobby"}, event: "send message", args: []any{"lobby", "hi", json.RawMessage(`{"id":5}`)}, code: CodeInvalidArgument},
		{name: "raw message too large", in: []string{"lobby"}, event: "send message", args: []any{"lobby", json.RawMessage(`["` + strings.Repeat("x", 61) + `"]`)}, code: CodeResourceExhausted},
		{name: "not joined", event: "send message", args: []any{"lobby", "hi"}, code: CodePermissionDenied},
		{name: "no message", in: []string{"lobby"}, event: "send message", args: []any{"lobby"}, code: CodeInvalidArgument},
		{name: "options not an object", in: []string{"lobby"}, event: "send message", args: []any{"lobby", "hi", "id"}, code: CodeInvalidArgument},
		{name: "id not a string", in: []string{"lobby"}, event: "send message", args: []any{"lobby", "hi", map[string]any{"id": 5.0}}, code: CodeInvalidArgument},
		{name: "id too long", in: []string{"lobby"}, event: "send message", args: []any{"lobby", "hi", map[string]any{"id": strings.Repeat("x", 129)}}, code: CodeInvalidArgument},
		{name: "message too large", in: []string{"lobby"}, event: "send message", args: []any{"lobby", strings.Repeat("x", 63)}, code: CodeResourceExhausted,
			check: func(t *testing.T, _ map[string]any, rooms *fakeRooms, _ *fakeRelay, _ *client) {
				if rooms.called("Publish") {
					t.Error("published an oversized message")
				}
			}},
		{name: "read-only room", in: []string{"lobby"}, fail: map[string]error{"Publish": status.Error(codes.PermissionDenied, "read-only")},
			event: "send message", args: []any{"lobby", "hi"}, code: CodePermissionDenied},
		{name: "payload over the service's limit", in: []string{"lobby"}, fail: map[string]error{"Publish": status.Error(codes.ResourceExhausted, "too big")},
			event: "send message", args: []any{"lobby", "hi"}, code: CodeResourceExhausted},
	})
}

func TestHistory(t *testing.T) {
	cursor := func(want ...string) func(*testing.T, map[string]any, *fakeRooms, *fakeRelay, *client) {
		return func(t *testing.T, ack map[string]any, rooms *fakeRooms, _ *fakeRelay, _ *client) {
			req := rooms.last.(*roomsv1.GetHistoryRequest)
			got := strings.Join(strings.Fields(req.String()), " ")
			for _, w := range want {
				if !strings.Contains(got, w) {
					t.Errorf("request %s, want %s", got, w)
				}
			}
			if ms, _ := ack["messages"].([]any); len(ms) != 2 || ack["has_more"] != true {
				t.Errorf("ack %v", ack)
			}
		}
	}
	runHandlerCases(t, []handlerCase{
		{name: "latest", in: []string{"lobby"}, event: "history", args: []any{"lobby"}, check: cursor(`room:"lobby"`)},
		{name: "before", in: []string{"lobby"}, event: "history", args: []any{"lobby", map[string]any{"before": 5.0, "limit": 10.0}}, check: cursor("limit:10", "before_offset:5")},
		{name: "after", in: []string{"lobby"}, event: "history", args: []any{"lobby", map[string]any{"after": 3.0}}, check: cursor("after_offset:3")},
		{name: "raw options", in: []string{"lobby"}, event: "history", args: []any{"lobby", json.RawMessage(`{"before":5,"limit":10}`)}, check: cursor("limit:10", "before_offset:5")},
		{name: "raw options not an object", in: []string{"lobby"}, event: "history", args: []any{"lobby", json.RawMessage(`[5]`)}, code: CodeInvalidArgument},
		{name: "null options", in: []string{"lobby"}, event: "history", args: []any{"lobby", nil}},
		{name: "not joined", event: "history", args: []any{"lobby"}, code: CodePermissionDenied},
		{name: "options not an object", in: []string{"lobby"}, event: "history", args: []any{"lobby", 5.0}, code: CodeInvalidArgument},
		{name: "before and after", in: []string{"lobby"}, event: "history", args: []any{"lobby", map[string]any{"before": 5.0, "after": 1.0}}, code: CodeInvalidArgument},
		{name: "negative", in: []string{"lobby"}, event: "history", args: []any{"lobby", map[string]any{"before": -1.0}}, code: CodeInvalidArgument},
		{name: "fraction", in: []string{"lobby"}, event: "history", args: []any{"lobby", map[string]any{"after": 1.5}}, code: CodeInvalidArgument},
		{name: "not a number", in: []string{"lobby"}, event: "history", args: []any{"lobby", map[string]any{"limit": "10"}}, code: CodeInvalidArgument},
		{name: "limit over the API's page", in: []string{"lobby"}, event: "history", args: []any{"lobby", map[string]any{"limit": 1001.0}}, code: CodeInvalidArgument},
		{name: "limit at the API's page", in: []string{"lobby"}, event: "history", args: []any{"lobby", map[string]any{"limit": 1000.0}}},
		{name: "rooms service down", in: []string{"lobby"}, fail: map[string]error{"GetHistory": status.Error(codes.DeadlineExceeded, "slow")},
			event: "history", args: []any{"lobby"}, code: CodeUnavailable},
	})
}

func TestMembersAndRooms(t *testing.T) {
	runHandlerCases(t, []handlerCase{
		{name: "members", in: []string{"lobby"}, event: "members", args: []any{"lobby"},
			check: func(t *testing.T, ack map[string]any, _ *fakeRooms, _ *fakeRelay, _ *client) {
				if got, _ := json.Marshal(ack["members"]); string(got) != `[{"online":true,"user":"alice"},{"online":false,"user":"bob"}]` {
					t.Errorf("members %s", got)
				}
			}},
		{name: "members of a room not joined", event: "members", args: []any{"lobby"}, code: CodePermissionDenied},
		{name: "members of a deleted room", in: []string{"lobby"}, fail: map[string]error{"ListMembers": status.Error(codes.NotFound, "no room")},
			event: "members", args: []any{"lobby"}, code: CodeNotFound},
		{name: "rooms lists public rooms", event: "rooms",
			check: func(t *testing.T, ack map[string]any, _ *fakeRooms, _ *fakeRelay, _ *client) {
				if got, _ := json.Marshal(ack["rooms"]); string(got) != `[{"members":3,"name":"lobby"}]` {
					t.Errorf("rooms %s", got)
				}
			}},
		{name: "rooms fails", fail: map[string]error{"ListRooms": status.Error(codes.Unauthenticated, "bad service token")}, event: "rooms", code: CodeInternal},
	})
}

func TestUnknownEventAndRateLimit(t *testing.T) {
	runHandlerCases(t, []handlerCase{
		{name: "unknown event", event: "dance", args: []any{"now"}, code: CodeUnimplemented},
	})
	limits := testLimits
	limits.EventRate, limits.EventBurst = 0.001, 2
	c := newTestClient(t, Namespace{Name: "/"}, limits, &fakeRooms{}, newFakeRelay())
	for i, want := range []Code{"", "", CodeResourceExhausted} {
		if got := ackCode(t, emit(t, c, "rooms")); got != want {
			t.Fatalf("event %d: code %q, want %q", i+1, got, want)
		}
	}
}

func TestEventsNotReadyInTime(t *testing.T) {
	limits := testLimits
	limits.CallTimeout = 1
	c := newTestClient(t, Namespace{Name: "/"}, limits, &fakeRooms{}, newFakeRelay())
	c.ready = make(chan struct{})
	if got := ackCode(t, emit(t, c, "rooms")); got != CodeUnavailable {
		t.Fatalf("code %q, want unavailable", got)
	}
}

// TestHostileEventsAreCheap floods a socket with unknown events whose names
// are 10 KB long: each gets an unimplemented ack with a short message, they
// count against the socket's rate limit, and the log stays small.
func TestHostileEventsAreCheap(t *testing.T) {
	limits := testLimits
	limits.EventRate, limits.EventBurst = 0.001, 500
	c := newTestClient(t, Namespace{Name: "/"}, limits, &fakeRooms{}, newFakeRelay())
	var log strings.Builder
	c.g.cfg.Log = slog.New(slog.NewJSONHandler(&log, nil))
	name := strings.Repeat("é", 5<<10)
	codes := map[Code]int{}
	for range 1000 {
		ack := emit(t, c, name, "x")
		codes[ackCode(t, ack)]++
		if msg := ack["error"].(map[string]any)["message"].(string); len(msg) > 100 {
			t.Fatalf("ack message of %d bytes echoes the name", len(msg))
		}
	}
	if codes[CodeUnimplemented] != 500 || codes[CodeResourceExhausted] != 500 {
		t.Errorf("acks by code %v, want 500 unimplemented then 500 resource_exhausted", codes)
	}
	if lines := strings.Count(log.String(), "\n"); lines > 2*refusalLogBurst || log.Len() > 16<<10 {
		t.Errorf("1000 refusals logged %d lines, %d bytes", lines, log.Len())
	}
}

// TestOutageRefusalsAreSampled refuses a socket's sends as unavailable, as
// while the rooms service restarts: the log gets a bounded number of
// warnings (the outage is the operator's to see, once, not once per send),
// and none at error level.
func TestOutageRefusalsAreSampled(t *testing.T) {
	rooms := &fakeRooms{fail: map[string]error{"Publish": status.Error(codes.Unavailable, "connection refused")}}
	c := newTestClient(t, Namespace{Name: "/"}, testLimits, rooms, newFakeRelay())
	c.rooms["lobby"] = &joined{}
	var log strings.Builder
	c.g.cfg.Log = slog.New(slog.NewJSONHandler(&log, nil))
	for range 200 {
		if got := ackCode(t, emit(t, c, "send message", "lobby", "hi")); got != CodeUnavailable {
			t.Fatalf("code %q, want unavailable", got)
		}
	}
	if lines := strings.Count(log.String(), "\n"); lines > 2*refusalLogBurst {
		t.Errorf("200 refusals logged %d lines", lines)
	}
	if strings.Contains(log.String(), `"level":"ERROR"`) {
		t.Errorf("an outage's refusals logged as errors")
	}
}

// TestHandlerPanic has a handler panic: the client gets an internal error
// ack, without the panic's details, and the log gets the panic and its stack.
func TestHandlerPanic(t *testing.T) {
	c := newTestClient(t, Namespace{Name: "/"}, testLimits, &fakeRooms{}, newFakeRelay())
	var log strings.Builder
	c.g.cfg.Log = slog.New(slog.NewJSONHandler(&log, nil))
	var ack []any
	boom := func(*client, context.Context, []any) (any, error) { panic("boom") }
	c.handle("join", boom, []any{"lobby"}, socket.Ack(func(a []any, _ error) { ack = a }))
	if len(ack) != 1 {
		t.Fatalf("ack %v, want one argument", ack)
	}
	if a, ok := ack[0].(Ack); !ok || a.Err == nil || a.Err.Code != CodeInternal || a.Err.Message != "internal error" {
		t.Errorf("ack %+v, want internal error", ack[0])
	}
	if l := log.String(); !strings.Contains(l, `"level":"ERROR"`) || !strings.Contains(l, "handler panic: boom") || !strings.Contains(l, "TestHandlerPanic") {
		t.Errorf("log %s, want an error with the panic and its stack", l)
	}
}

// TestDisconnectDuringJoin disconnects the socket while its join is between
// the rooms service and the relay: the join is undone, in both, and the
// refusal, which the client caused, is not logged as an error.
func TestDisconnectDuringJoin(t *testing.T) {
	rooms, rel := &fakeRooms{}, newFakeRelay()
	c := newTestClient(t, Namespace{Name: "/"}, testLimits, rooms, rel)
	var log strings.Builder
	c.g.cfg.Log = slog.New(slog.NewJSONHandler(&log, nil))
	rel.onAdd = func() { c.disconnect("transport close") }
	if got := ackCode(t, emit(t, c, "join", "lobby")); got != CodeUnavailable {
		t.Fatalf("code %q, want unavailable", got)
	}
	if err := c.g.Wait(t.Context()); err != nil {
		t.Fatal(err)
	}
	if !rooms.called("LeaveRoom") || rel.held("lobby") != 0 || rel.member("lobby") != nil {
		t.Errorf("join not undone: calls %v, references %d", rooms.calls, rel.held("lobby"))
	}
	if strings.Contains(log.String(), `"level":"ERROR"`) {
		t.Errorf("logged as an error:\n%s", log.String())
	}
}

// TestDisconnectEndsSessionsDespiteABusyService disconnects a signed-in
// socket while the rooms service refuses the first calls: its sessions are
// still ended, and nothing more.
func TestDisconnectEndsSessionsDespiteABusyService(t *testing.T) {
	rooms, rel := &fakeRooms{busy: map[string]int{"EndSession": 2}}, newFakeRelay()
	c := newTestClient(t, Namespace{Name: "/chat", Auth: true}, testLimits, rooms, rel)
	rel.in(c, "a")
	c.disconnect("transport close")
	if err := c.g.Wait(t.Context()); err != nil {
		t.Fatal(err)
	}
	if n := rooms.count("EndSession"); n != 3 || rooms.called("LeaveRoom") {
		t.Errorf("calls %v, want EndSession three times (twice refused) and no LeaveRoom", rooms.calls)
	}
}

// TestRoomCreationIsRateLimitedPerUser creates rooms by joining them until
// the user's allowance is spent, from two sockets of the same user: the next
// creation is refused, an existing room can still be joined, and another
// user can still create.
func TestRoomCreationIsRateLimitedPerUser(t *testing.T) {
	limits := testLimits
	limits.CreateRate, limits.CreateBurst, limits.MaxRooms = 0.001, 2, 10
	ns := Namespace{Name: "/", CreateRooms: true}
	rooms, rel := &fakeRooms{}, newFakeRelay()
	first := newTestClient(t, ns, limits, rooms, rel)
	second := first.g.newClientOn(&first.g.cfg.Namespaces[0], "sock2", "alice", "key2", discard{}, func() {})
	close(second.ready)
	other := first.g.newClientOn(&first.g.cfg.Namespaces[0], "sock3", "bob", "key3", discard{}, func() {})
	close(other.ready)
	notFound := status.Error(codes.NotFound, "no room")
	steps := []struct {
		c    *client
		room string
		new  bool
		want Code
	}{
		{first, "n1", true, ""},
		{second, "n2", true, ""},
		{first, "n3", true, CodeResourceExhausted},
		{second, "n4", true, CodeResourceExhausted},
		{first, "existing", false, ""},
		{other, "n5", true, ""},
	}
	for _, st := range steps {
		if st.new {
			rel.acquire = []error{notFound}
		}
		if got := ackCode(t, emit(t, st.c, "join", st.room)); got != st.want {
			t.Errorf("%s joins %s: code %q, want %q", st.c.user, st.room, got, st.want)
		}
	}
}

// TestJoinReadsTheRoomOnlyForAnAck checks that a join a client asked for
// reads the ack's history and members with the join, and that a namespace's
// default room, joined as the socket connects with no ack to show, reads
// neither.
func TestJoinReadsTheRoomOnlyForAnAck(t *testing.T) {
	rooms := &fakeRooms{}
	c := newTestClient(t, Namespace{Name: "/"}, testLimits, rooms, newFakeRelay())
	if err := c.autoJoin(t.Context(), "room1"); err != nil {
		t.Fatal(err)
	}
	if req := rooms.last.(*roomsv1.JoinRoomRequest); req.GetHistoryLimit() != 0 || req.GetMembersLimit() != 0 {
		t.Errorf("default room joined with history_limit %d, members_limit %d; want neither read", req.GetHistoryLimit(), req.GetMembersLimit())
	}
	emit(t, c, "join", "lobby")
	if req := rooms.last.(*roomsv1.JoinRoomRequest); req.GetHistoryLimit() != uint32(testLimits.HistoryOnJoin) || req.GetMembersLimit() != membersPage {
		t.Errorf("join event with history_limit %d, members_limit %d", req.GetHistoryLimit(), req.GetMembersLimit())
	}
}
