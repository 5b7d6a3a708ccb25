package edge

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/zishang520/socket.io/parsers/engine/v3/packet"
	"github.com/zishang520/socket.io/servers/engine/v3"
	"github.com/zishang520/socket.io/servers/socket/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	roomsv1 "github.com/parleyhq/parley/proto/parley/rooms/v1"
	"github.com/parleyhq/parley/services/gateway/internal/relay"
)

// fakeRooms answers the RPCs the handlers make from fixed data, records the
// calls, and fails the methods named in fail.
type fakeRooms struct {
	roomsv1.RoomsServiceClient
	fail map[string]error
	// busy counts the next calls of a method refused as unavailable.
	busy map[string]int
	// stored is what TakeSession returns; room what GetRoom returns.
	stored []byte
	room   *roomsv1.Room

	mu      sync.Mutex
	calls   []string
	last    any      // the last request
	saved   [][]byte // the records SaveSessions was given
	batches []int    // how many records each SaveSessions call had
	// gate, if set, holds each SaveSessions call, once it has sent on
	// entered, until gate can receive.
	gate, entered chan struct{}
	created       []*roomsv1.CreateRoomRequest
}

func (f *fakeRooms) call(method string, req any) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, method)
	f.last = req
	if f.busy[method] > 0 {
		f.busy[method]--
		return status.Error(codes.Unavailable, "busy")
	}
	return f.fail[method]
}

func (f *fakeRooms) count(method string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for _, m := range f.calls {
		if m == method {
			n++
		}
	}
	return n
}

func (f *fakeRooms) called(method string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Contains(f.calls, method)
}

var stamp = timestamppb.New(time.UnixMilli(1700000000000))

func (f *fakeRooms) CreateRoom(_ context.Context, req *roomsv1.CreateRoomRequest, _ ...grpc.CallOption) (*roomsv1.CreateRoomResponse, error) {
	err := f.call("CreateRoom", req)
	f.mu.Lock()
	f.created = append(f.created, req)
	f.mu.Unlock()
	return &roomsv1.CreateRoomResponse{}, err
}

func (f *fakeRooms) JoinRoom(_ context.Context, req *roomsv1.JoinRoomRequest, _ ...grpc.CallOption) (*roomsv1.JoinRoomResponse, error) {
	resp := &roomsv1.JoinRoomResponse{Room: &roomsv1.Room{Name: req.GetRoom(), LastOffset: 7}}
	if req.GetHistoryLimit() > 0 {
		resp.Messages = fakeHistory(req.GetRoom())
	}
	if req.GetMembersLimit() > 0 {
		resp.Members = fakeMembers()
	}
	return resp, f.call("JoinRoom", req)
}

func fakeHistory(room string) []*roomsv1.Message {
	return []*roomsv1.Message{
		{Room: room, Offset: 6, Sender: "bob", Payload: `{"text":"hi"}`, CreateTime: stamp},
		{Room: room, Offset: 7, Sender: "svc", Payload: "plain text", ClientMessageId: "c-7", CreateTime: stamp},
	}
}

func fakeMembers() []*roomsv1.Member {
	return []*roomsv1.Member{{UserId: "alice", Online: true}, {UserId: "bob"}}
}

func (f *fakeRooms) EndSession(_ context.Context, req *roomsv1.EndSessionRequest, _ ...grpc.CallOption) (*roomsv1.EndSessionResponse, error) {
	return &roomsv1.EndSessionResponse{Member: &roomsv1.Member{UserId: req.GetUserId()}}, f.call("EndSession", req)
}

func (f *fakeRooms) LeaveRoom(_ context.Context, req *roomsv1.LeaveRoomRequest, _ ...grpc.CallOption) (*roomsv1.LeaveRoomResponse, error) {
	return &roomsv1.LeaveRoomResponse{}, f.call("LeaveRoom", req)
}

func (f *fakeRooms) GetHistory(_ context.Context, req *roomsv1.GetHistoryRequest, _ ...grpc.CallOption) (*roomsv1.GetHistoryResponse, error) {
	return &roomsv1.GetHistoryResponse{HasMore: true, Messages: fakeHistory(req.GetRoom())}, f.call("GetHistory", req)
}

func (f *fakeRooms) ListMembers(_ context.Context, req *roomsv1.ListMembersRequest, _ ...grpc.CallOption) (*roomsv1.ListMembersResponse, error) {
	return &roomsv1.ListMembersResponse{Members: fakeMembers()}, f.call("ListMembers", req)
}

func (f *fakeRooms) Publish(_ context.Context, req *roomsv1.PublishRequest, _ ...grpc.CallOption) (*roomsv1.PublishResponse, error) {
	return &roomsv1.PublishResponse{Offset: 8, CreateTime: stamp}, f.call("Publish", req)
}

func (f *fakeRooms) ListRooms(_ context.Context, req *roomsv1.ListRoomsRequest, _ ...grpc.CallOption) (*roomsv1.ListRoomsResponse, error) {
	return &roomsv1.ListRoomsResponse{Rooms: []*roomsv1.Room{
		{Name: "lobby", MemberCount: 3},
		{Name: "secret", MemberCount: 1, Options: &roomsv1.RoomOptions{Visibility: roomsv1.Visibility_VISIBILITY_PRIVATE}},
	}}, f.call("ListRooms", req)
}

func (f *fakeRooms) SaveSessions(_ context.Context, req *roomsv1.SaveSessionsRequest, _ ...grpc.CallOption) (*roomsv1.SaveSessionsResponse, error) {
	err := f.call("SaveSessions", req)
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.gate != nil {
		f.mu.Unlock()
		f.entered <- struct{}{}
		<-f.gate
		f.mu.Lock()
	}
	f.batches = append(f.batches, len(req.GetSessions()))
	for _, r := range req.GetSessions() {
		f.saved = append(f.saved, r.GetData())
	}
	return &roomsv1.SaveSessionsResponse{}, err
}

func (f *fakeRooms) TakeSession(_ context.Context, req *roomsv1.TakeSessionRequest, _ ...grpc.CallOption) (*roomsv1.TakeSessionResponse, error) {
	return &roomsv1.TakeSessionResponse{Data: f.stored}, f.call("TakeSession", req)
}

func (f *fakeRooms) GetRoom(_ context.Context, req *roomsv1.GetRoomRequest, _ ...grpc.CallOption) (*roomsv1.GetRoomResponse, error) {
	return &roomsv1.GetRoomResponse{Room: f.room}, f.call("GetRoom", req)
}

// fakeRelay hands out one Room per key, counts references and members;
// acquire holds the errors of the next Acquire calls, in order.
type fakeRelay struct {
	mu      sync.Mutex
	acquire []error
	addErr  error
	onAdd   func() // runs inside Add, as a concurrent disconnect would
	subs    map[relay.Key]*relay.Room
	refs    map[*relay.Room]int
	members map[*relay.Room]*relay.Member
}

func newFakeRelay() *fakeRelay {
	return &fakeRelay{subs: map[relay.Key]*relay.Room{}, refs: map[*relay.Room]int{}, members: map[*relay.Room]*relay.Member{}}
}

func (r *fakeRelay) sub(k relay.Key) *relay.Room {
	if r.subs[k] == nil {
		r.subs[k] = &relay.Room{}
	}
	return r.subs[k]
}

func (r *fakeRelay) Acquire(_ context.Context, k relay.Key) (*relay.Room, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.acquire) > 0 {
		err := r.acquire[0]
		r.acquire = r.acquire[1:]
		if err != nil {
			return nil, err
		}
	}
	rm := r.sub(k)
	r.refs[rm]++
	return rm, nil
}

func (r *fakeRelay) Release(rm *relay.Room) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.refs[rm]--
}

func (r *fakeRelay) Add(_ context.Context, rm *relay.Room, m *relay.Member, seen, upTo uint64) (uint64, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.addErr != nil {
		return 0, r.addErr
	}
	r.members[rm] = m
	if r.onAdd != nil {
		r.mu.Unlock()
		r.onAdd()
		r.mu.Lock()
	}
	return max(seen, upTo), nil
}

func (r *fakeRelay) SetSize(*relay.Room, int) {}

func (r *fakeRelay) Remove(rm *relay.Room, _ *relay.Member) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.members, rm)
}

// held is the references on the room of that name in "/".
func (r *fakeRelay) held(room string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.refs[r.sub(relay.Key{Namespace: "/", Room: room})]
}

// member is who the room of that name in "/" delivers to.
func (r *fakeRelay) member(room string) *relay.Member {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.members[r.sub(relay.Key{Namespace: "/", Room: room})]
}

// in puts c in room, as a join would have.
func (r *fakeRelay) in(c *client, room string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	rm := r.sub(c.roomKey(room))
	r.refs[rm] = 1
	c.rooms[room] = &joined{sub: rm, offset: 1, epoch: "e1"}
}

type nopMetrics struct{}

func (nopMetrics) Event(string, string)  {}
func (nopMetrics) Connected(string, int) {}
func (nopMetrics) Dropped()              {}

type discard struct{}

func (discard) Write(io.Reader, *packet.Options, engine.SendCallback) engine.Socket { return nil }

var testLimits = Limits{
	MaxMessageBytes: 64, EventRate: 1000, EventBurst: 1000, MaxRooms: 2,
	HistoryOnJoin: 2, CallTimeout: 5 * time.Second, SendQueueBytes: 1024, RecoveryMaxMessages: 1000,
	CreateRate: 1000, CreateBurst: 1000,
}

// newTestClient returns a connected socket of user alice in ns, with no
// network: the rooms service and the relay are fakes.
func newTestClient(t *testing.T, ns Namespace, limits Limits, rooms *fakeRooms, rel *fakeRelay) *client {
	t.Helper()
	g, err := New(Config{
		Namespaces: []Namespace{ns}, Tokens: Tokens{Secrets: [][]byte{[]byte("secret")}}, Limits: limits, RecoveryWindow: time.Minute,
		Rooms: rooms, Relay: rel, Log: slog.New(slog.DiscardHandler), Metrics: nopMetrics{},
	})
	if err != nil {
		t.Fatal(err)
	}
	c := g.newClientOn(&g.cfg.Namespaces[0], "sock1", "alice", "key1", discard{}, func() {})
	close(c.ready)
	return c
}

// emit sends an event with an ack callback, as a client would, and returns
// the ack as the client reads it.
func emit(t *testing.T, c *client, event string, args ...any) map[string]any {
	t.Helper()
	var got []any
	c.onEvent(event, append(args, socket.Ack(func(a []any, _ error) { got = a })))
	if len(got) != 1 {
		t.Fatalf("%s: ack has %d arguments, want 1", event, len(got))
	}
	b, err := json.Marshal(got[0])
	if err != nil {
		t.Fatalf("%s: ack does not encode: %v", event, err)
	}
	var ack map[string]any
	if err := json.Unmarshal(b, &ack); err != nil {
		t.Fatal(err)
	}
	return ack
}

// ackCode is the ack's error code, or "" for {ok: true}.
func ackCode(t *testing.T, ack map[string]any) Code {
	t.Helper()
	switch ack["ok"] {
	case true:
		if _, has := ack["error"]; has {
			t.Fatalf("ok ack with an error: %v", ack)
		}
		return ""
	case false:
		e, _ := ack["error"].(map[string]any)
		code, _ := e["code"].(string)
		if msg, _ := e["message"].(string); code == "" || msg == "" {
			t.Fatalf("error ack without code and message: %v", ack)
		}
		return Code(code)
	}
	t.Fatalf("ack without ok: %v", ack)
	return ""
}
