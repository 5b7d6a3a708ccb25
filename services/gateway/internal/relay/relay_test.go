package relay

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/zishang520/socket.io/parsers/engine/v3/packet"
	"github.com/zishang520/socket.io/servers/engine/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	roomsv1 "github.com/parleyhq/parley/proto/parley/rooms/v1"
	"github.com/parleyhq/parley/services/gateway/internal/wire"
)

var key = Key{Namespace: "/", Room: "r"}

// fakeRooms serves one room's live events from a channel and its history
// from a function the test controls. Other methods are not called.
type fakeRooms struct {
	roomsv1.RoomsServiceClient
	events  chan *roomsv1.Event
	history func(context.Context, *roomsv1.GetHistoryRequest) (*roomsv1.GetHistoryResponse, error)
}

func (f *fakeRooms) Subscribe(ctx context.Context, _ *roomsv1.SubscribeRequest, _ ...grpc.CallOption) (grpc.ServerStreamingClient[roomsv1.SubscribeResponse], error) {
	return &fakeStream{ctx: ctx, events: f.events}, nil
}

func (f *fakeRooms) GetHistory(ctx context.Context, req *roomsv1.GetHistoryRequest, _ ...grpc.CallOption) (*roomsv1.GetHistoryResponse, error) {
	return f.history(ctx, req)
}

type fakeStream struct {
	grpc.ClientStream
	ctx    context.Context
	events chan *roomsv1.Event
}

func (s *fakeStream) Header() (metadata.MD, error) { return metadata.MD{}, nil }

func (s *fakeStream) Recv() (*roomsv1.SubscribeResponse, error) {
	select {
	case <-s.ctx.Done():
		return nil, s.ctx.Err()
	case ev := <-s.events:
		return &roomsv1.SubscribeResponse{Event: ev}, nil
	}
}

// socket records what a member is written, packet by packet.
type socket struct{ packets chan string }

func newSocket() *socket { return &socket{packets: make(chan string, 1000)} }

func (s *socket) Write(r io.Reader, _ *packet.Options, done engine.SendCallback) engine.Socket {
	b, _ := io.ReadAll(r)
	s.packets <- string(b)
	done(nil)
	return nil
}

// next returns the offset of the next message packet s is written, skipping
// other packets.
func (s *socket) next(t *testing.T) uint64 {
	t.Helper()
	timeout := time.After(5 * time.Second)
	for {
		select {
		case p := <-s.packets:
			var args []json.RawMessage
			if !strings.HasPrefix(p, `2["receive message"`) || json.Unmarshal([]byte(p[1:]), &args) != nil {
				continue
			}
			var meta wire.Meta
			if err := json.Unmarshal(args[2], &meta); err != nil {
				t.Fatalf("packet %s: %v", p, err)
			}
			return meta.Offset
		case <-timeout:
			t.Fatal("no message delivered within 5s")
		}
	}
}

func (s *socket) quiet(t *testing.T) {
	t.Helper()
	select {
	case p := <-s.packets:
		t.Fatalf("unexpected packet %s", p)
	default:
	}
}

func message(off uint64, session string) *roomsv1.Message {
	return &roomsv1.Message{Namespace: key.Namespace, Room: key.Room, Offset: off, Payload: `"m"`, SessionId: session, CreateTime: timestamppb.Now()}
}

func messageEvent(off uint64) *roomsv1.Event {
	return &roomsv1.Event{Namespace: key.Namespace, Room: key.Room, Kind: &roomsv1.Event_Message{Message: message(off, "")}}
}

type noMetrics struct{}

func (noMetrics) Delivered(time.Duration, int) {}

func newRelay(t *testing.T, rooms roomsv1.RoomsServiceClient, opts Options) (*Relay, *Room) {
	t.Helper()
	r := New(rooms, slog.New(slog.DiscardHandler), noMetrics{}, opts)
	t.Cleanup(r.Close)
	rm, err := r.Acquire(t.Context(), key)
	if err != nil {
		t.Fatal(err)
	}
	return r, rm
}

func newMember(id string, s *socket, slow func()) *Member {
	return &Member{ID: id, User: "u-" + id, Out: wire.NewConn(s, "k-"+id, wire.DefaultQueueBytes, slow), Removed: func(string) {}}
}

// TestCatchUpDoesNotHoldUpTheRoom joins a member far behind the room while
// its history read is blocked, and checks that the room's live member keeps
// receiving meanwhile, and that the late member then gets every message once,
// in order, merged from history and what arrived during the read.
func TestCatchUpDoesNotHoldUpTheRoom(t *testing.T) {
	entered, release := make(chan struct{}), make(chan struct{})
	var stored uint64
	var reading sync.Once
	rooms := &fakeRooms{events: make(chan *roomsv1.Event), history: func(ctx context.Context, req *roomsv1.GetHistoryRequest) (*roomsv1.GetHistoryResponse, error) {
		reading.Do(func() { close(entered) })
		select {
		case <-release:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		resp := &roomsv1.GetHistoryResponse{}
		for off := req.GetAfterOffset() + 1; off <= stored; off++ {
			resp.Messages = append(resp.Messages, message(off, ""))
		}
		return resp, nil
	}}
	r, rm := newRelay(t, rooms, Options{Replay: 4, Backlog: 100})
	var once sync.Once
	unblock := func() { once.Do(func() { close(release) }) }
	t.Cleanup(unblock) // runs before the relay closes, should the test fail

	liveSock := newSocket()
	if _, err := r.Add(t.Context(), rm, newMember("live", liveSock, nil), 0, 0); err != nil {
		t.Fatal(err)
	}
	publish := func(off uint64) {
		stored = off
		select {
		case rooms.events <- messageEvent(off):
		case <-time.After(5 * time.Second):
			t.Fatalf("message %d not taken: the room is held up", off)
		}
	}
	for off := uint64(1); off <= 10; off++ {
		publish(off)
		if got := liveSock.next(t); got != off {
			t.Fatalf("live member got %d, want %d", got, off)
		}
	}

	lateSock := newSocket()
	added := make(chan uint64, 1)
	go func() {
		reached, err := r.Add(context.Background(), rm, newMember("late", lateSock, nil), 0, 10)
		if err != nil {
			t.Error(err)
		}
		added <- reached
	}()
	<-entered
	// The history read is blocked: the room must go on.
	publish(11)
	if got := liveSock.next(t); got != 11 {
		t.Fatalf("live member got %d while a join read history, want 11", got)
	}
	lateSock.quiet(t)
	unblock() // the read now returns 1..11: 11 also waits in the backlog
	if reached := <-added; reached != 11 {
		t.Fatalf("Add reached %d, want 11", reached)
	}
	publish(12)
	for want := uint64(1); want <= 12; want++ {
		if got := lateSock.next(t); got != want {
			t.Fatalf("late member got %d, want %d", got, want)
		}
	}
	if got := liveSock.next(t); got != 12 {
		t.Fatalf("live member got %d, want 12", got)
	}
	lateSock.quiet(t)
}

func TestAddFromReplayRingNeedsNoRead(t *testing.T) {
	rooms := &fakeRooms{events: make(chan *roomsv1.Event), history: func(context.Context, *roomsv1.GetHistoryRequest) (*roomsv1.GetHistoryResponse, error) {
		t.Error("history read although the replay ring reaches back far enough")
		return &roomsv1.GetHistoryResponse{}, nil
	}}
	r, rm := newRelay(t, rooms, Options{Replay: 8, Backlog: 100})
	first := newSocket()
	if _, err := r.Add(t.Context(), rm, newMember("a", first, nil), 0, 0); err != nil {
		t.Fatal(err)
	}
	for off := uint64(1); off <= 5; off++ {
		rooms.events <- &roomsv1.Event{Namespace: "/", Room: "r", Kind: &roomsv1.Event_Message{Message: message(off, "b")}}
		first.next(t)
	}
	// b published 1..5 itself and joined having seen 2: it gets none back.
	second := newSocket()
	if reached, err := r.Add(t.Context(), rm, newMember("b", second, nil), 2, 2); err != nil || reached != 5 {
		t.Fatalf("Add = %d, %v; want 5", reached, err)
	}
	third := newSocket()
	if _, err := r.Add(t.Context(), rm, newMember("c", third, nil), 2, 2); err != nil {
		t.Fatal(err)
	}
	for want := uint64(3); want <= 5; want++ {
		if got := third.next(t); got != want {
			t.Fatalf("got %d, want %d", got, want)
		}
	}
	second.quiet(t)
}

func TestCatchingUpMemberThatFallsTooFarBehindIsFailed(t *testing.T) {
	entered, release := make(chan struct{}), make(chan struct{})
	rooms := &fakeRooms{events: make(chan *roomsv1.Event), history: func(ctx context.Context, _ *roomsv1.GetHistoryRequest) (*roomsv1.GetHistoryResponse, error) {
		close(entered)
		<-release
		return &roomsv1.GetHistoryResponse{}, nil
	}}
	r, rm := newRelay(t, rooms, Options{Replay: 1, Backlog: 3})
	slow := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		r.Add(context.Background(), rm, newMember("late", newSocket(), func() { close(slow) }), 0, 5)
	}()
	<-entered
	for off := uint64(6); off <= 10; off++ {
		rooms.events <- messageEvent(off)
	}
	select {
	case <-slow:
	case <-time.After(5 * time.Second):
		t.Fatal("a member whose backlog overflowed was not failed")
	}
	close(release)
	<-done
}

func TestMemberLeftRemovesTheUsersSockets(t *testing.T) {
	rooms := &fakeRooms{events: make(chan *roomsv1.Event)}
	r, rm := newRelay(t, rooms, Options{Replay: 4, Backlog: 10})
	removed := make(chan string, 1)
	kicked, other := newSocket(), newSocket()
	m := newMember("k", kicked, nil)
	m.Removed = func(room string) { removed <- room }
	for _, mem := range []*Member{m, newMember("o", other, nil)} {
		if _, err := r.Add(t.Context(), rm, mem, 0, 0); err != nil {
			t.Fatal(err)
		}
	}
	rooms.events <- &roomsv1.Event{Namespace: "/", Room: "r", Kind: &roomsv1.Event_MemberLeft{MemberLeft: &roomsv1.MemberLeft{UserId: m.User}}}
	if room := <-removed; room != "r" {
		t.Fatalf("removed from %q", room)
	}
	for _, s := range []*socket{kicked, other} {
		if p := <-s.packets; p != `2["member left",{"room":"r","user":"u-k"}]` {
			t.Fatalf("packet %s", p)
		}
	}
	rooms.events <- messageEvent(1)
	if got := other.next(t); got != 1 {
		t.Fatalf("got %d", got)
	}
	kicked.quiet(t)
}

// creatingRooms refuses subscriptions to its room with NotFound until the
// room is created.
type creatingRooms struct {
	fakeRooms
	mu      sync.Mutex
	exists  bool
	streams int
}

func (f *creatingRooms) Subscribe(ctx context.Context, req *roomsv1.SubscribeRequest, opts ...grpc.CallOption) (grpc.ServerStreamingClient[roomsv1.SubscribeResponse], error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.exists {
		// The refusal takes a round trip, long enough for the other
		// joiners to wait on the same subscription.
		time.Sleep(10 * time.Millisecond)
		return nil, status.Error(codes.NotFound, "room not found")
	}
	f.streams++
	return f.fakeRooms.Subscribe(ctx, req, opts...)
}

func (f *creatingRooms) create() {
	f.mu.Lock()
	f.exists = true
	f.mu.Unlock()
}

// TestConcurrentJoinsOfANewRoom acquires a room that does not exist yet from
// many goroutines at once, each creating it on NotFound and acquiring again,
// as joins do: every one must end up subscribed, through one stream.
func TestConcurrentJoinsOfANewRoom(t *testing.T) {
	for run := range 20 {
		rooms := &creatingRooms{fakeRooms: fakeRooms{events: make(chan *roomsv1.Event)}}
		r := New(rooms, slog.New(slog.DiscardHandler), noMetrics{}, Options{Replay: 4, Backlog: 10})
		const joiners = 100
		var wg sync.WaitGroup
		errs := make(chan error, joiners)
		for range joiners {
			wg.Go(func() {
				_, err := r.Acquire(t.Context(), key)
				if status.Code(err) == codes.NotFound {
					rooms.create()
					_, err = r.Acquire(t.Context(), key)
				}
				if err != nil {
					errs <- err
				}
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Errorf("run %d: join failed: %v", run, err)
		}
		if rooms.streams != 1 {
			t.Errorf("run %d: %d upstream streams, want 1", run, rooms.streams)
		}
		r.Close()
		if t.Failed() {
			return
		}
	}
}

// TestDeletedRoomIsLeftAndSubscribedAfresh deletes a room with a member: the
// member is removed, a later join of the room (created again) gets a new
// subscription that delivers, and the old one takes no one.
func TestDeletedRoomIsLeftAndSubscribedAfresh(t *testing.T) {
	rooms := &fakeRooms{events: make(chan *roomsv1.Event)}
	r, old := newRelay(t, rooms, Options{Replay: 4, Backlog: 10})
	removed := make(chan string, 1)
	a := newMember("a", newSocket(), nil)
	a.Removed = func(room string) { removed <- room }
	if _, err := r.Add(t.Context(), old, a, 0, 0); err != nil {
		t.Fatal(err)
	}
	rooms.events <- &roomsv1.Event{Namespace: "/", Room: "r", Kind: &roomsv1.Event_RoomDeleted{RoomDeleted: &roomsv1.RoomDeleted{}}}
	select {
	case <-removed:
	case <-time.After(5 * time.Second):
		t.Fatal("the member of a deleted room was not removed")
	}
	if _, err := r.Add(t.Context(), old, newMember("late", newSocket(), nil), 0, 0); status.Code(err) != codes.NotFound {
		t.Fatalf("Add to a deleted room: %v, want NotFound", err)
	}
	r.Release(old)

	again, err := r.Acquire(t.Context(), key)
	if err != nil || again == old {
		t.Fatalf("Acquire after deletion = %p, %v; want a new subscription", again, err)
	}
	defer r.Release(again)
	b := newSocket()
	if _, err := r.Add(t.Context(), again, newMember("b", b, nil), 0, 0); err != nil {
		t.Fatal(err)
	}
	rooms.events <- messageEvent(1)
	if got := b.next(t); got != 1 {
		t.Fatalf("got %d, want 1", got)
	}
}

// TestPresenceEventsStopInBigRooms checks that member joined and left events
// reach the room's sockets only while the room is within its namespace's
// presence limit, that a user who leaves a big room is still told, and that
// a user is not told of its own join.
func TestPresenceEventsStopInBigRooms(t *testing.T) {
	rooms := &fakeRooms{events: make(chan *roomsv1.Event)}
	r, rm := newRelay(t, rooms, Options{Replay: 4, Backlog: 10, PresenceMax: map[string]int{"/": 3}})
	a, b := newSocket(), newSocket()
	for _, mem := range []*Member{newMember("a", a, nil), newMember("b", b, nil)} {
		if _, err := r.Add(t.Context(), rm, mem, 0, 0); err != nil {
			t.Fatal(err)
		}
	}
	r.SetSize(rm, 1)
	presence := func(kind, user string) *roomsv1.Event {
		ev := &roomsv1.Event{Namespace: "/", Room: "r"}
		if kind == "joined" {
			ev.Kind = &roomsv1.Event_MemberJoined{MemberJoined: &roomsv1.MemberJoined{UserId: user}}
		} else {
			ev.Kind = &roomsv1.Event_MemberLeft{MemberLeft: &roomsv1.MemberLeft{UserId: user}}
		}
		return ev
	}
	next := func(s *socket) string {
		select {
		case p := <-s.packets:
			return p
		case <-time.After(5 * time.Second):
			t.Fatal("no packet within 5s")
			return ""
		}
	}
	var offset uint64
	steps := []struct {
		event   *roomsv1.Event
		wantA   string // "" when a gets no presence event
		wantB   string
		comment string
	}{
		{presence("joined", "u-a"), "", `2["member joined",{"room":"r","user":"u-a"}]`, "2 members; a is not told of its own join"},
		{presence("joined", "x"), `2["member joined",{"room":"r","user":"x"}]`, `2["member joined",{"room":"r","user":"x"}]`, "3 members: within the limit"},
		{presence("joined", "y"), "", "", "4 members: over it"},
		{presence("joined", "z"), "", "", "5 members"},
		{presence("left", "z"), "", "", "4 members"},
		{presence("left", "y"), `2["member left",{"room":"r","user":"y"}]`, `2["member left",{"room":"r","user":"y"}]`, "3 members again"},
		{presence("joined", "y"), "", "", "4 members again"},
		{presence("joined", "w"), "", "", "5 members"},
		{presence("left", "u-a"), `2["member left",{"room":"r","user":"u-a"}]`, "", "a leaves a big room and is told"},
	}
	for i, st := range steps {
		last := i == len(steps)-1
		rooms.events <- st.event
		offset++
		rooms.events <- messageEvent(offset)
		for _, s := range []struct {
			sock    *socket
			want    string
			message bool
		}{{a, st.wantA, !last}, {b, st.wantB, true}} {
			if s.want != "" {
				if p := next(s.sock); p != s.want {
					t.Fatalf("%s: packet %s, want %s", st.comment, p, s.want)
				}
			}
			if !s.message {
				continue
			}
			if p := next(s.sock); !strings.HasPrefix(p, `2["receive message"`) {
				t.Fatalf("%s: packet %s, want the message", st.comment, p)
			}
		}
	}
	a.quiet(t)
}
