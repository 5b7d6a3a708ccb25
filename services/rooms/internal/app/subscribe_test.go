package app_test

import (
	"context"
	"fmt"
	"io"
	"strings"
	"sync"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	roomsv1 "github.com/parleyhq/parley/proto/parley/rooms/v1"
	"github.com/parleyhq/parley/services/rooms/internal/app"
	"github.com/parleyhq/parley/services/rooms/internal/server"
)

// TestSubscribeResumeUnderConcurrentPublish publishes thousands of messages from
// several goroutines while one subscriber keeps dropping its stream and
// resuming from the last offset it saw, and another stays subscribed live. Both
// must see every offset exactly once, in order.
func TestSubscribeResumeUnderConcurrentPublish(t *testing.T) {
	const publishers, perPublisher = 4, 750
	const total = publishers * perPublisher
	s := startServer(t)
	mustCreate(t, s, "/", "busy", &roomsv1.RoomOptions{HistoryMaxMessages: total})
	mustJoin(t, s, "/", "busy", "alice", "")
	room := &roomsv1.RoomSubscription{Namespace: "/", Room: "busy"}

	liveCtx, cancelLive := context.WithCancel(svcCtx(t))
	defer cancelLive()
	live := subscribe(t, liveCtx, s, room)

	var wg sync.WaitGroup
	for p := range publishers {
		wg.Go(func() {
			for i := range perPublisher {
				_, err := s.rooms.Publish(svcCtx(t), &roomsv1.PublishRequest{
					Namespace: "/", Room: "busy", Sender: "alice", Payload: fmt.Sprintf(`"p%d-%d"`, p, i),
				})
				if err != nil {
					t.Errorf("publish: %v", err)
					return
				}
			}
		})
	}

	check := func(name string, seen map[string]bool, last *uint64, ev *roomsv1.Event) {
		t.Helper()
		m := ev.GetMessage()
		if m == nil {
			t.Fatalf("%s: got non-message event %v", name, ev)
		}
		if m.GetOffset() != *last+1 {
			t.Fatalf("%s: got offset %d after %d", name, m.GetOffset(), *last)
		}
		if seen[m.GetPayload()] {
			t.Fatalf("%s: payload %s delivered twice", name, m.GetPayload())
		}
		seen[m.GetPayload()] = true
		*last = m.GetOffset()
	}

	var resumer sync.WaitGroup
	resumer.Go(func() {
		seen := map[string]bool{}
		var last uint64
		for resumes := 0; last < total; resumes++ {
			ctx, cancel := context.WithCancel(svcCtx(t))
			stream := subscribe(t, ctx, s, &roomsv1.RoomSubscription{Namespace: "/", Room: "busy", AfterOffset: after(last)})
			// Read a varying number of events, then drop the stream mid-flow.
			for n := 0; n < 97+resumes*13 && last < total; n++ {
				resp, err := stream.Recv()
				if err != nil {
					t.Errorf("resumer recv after offset %d: %v", last, err)
					cancel()
					return
				}
				check("resumer", seen, &last, resp.GetEvent())
			}
			cancel()
		}
		if len(seen) != total {
			t.Errorf("resumer saw %d distinct messages, want %d", len(seen), total)
		}
	})

	seen := map[string]bool{}
	var last uint64
	for last < total {
		resp, err := live.Recv()
		if err != nil {
			t.Fatalf("live recv after offset %d: %v", last, err)
		}
		check("live", seen, &last, resp.GetEvent())
	}
	wg.Wait()
	resumer.Wait()
}

// TestIdempotentPublish retries a publish with the same client message id and
// expects the first offset back and nothing stored twice.
func TestIdempotentPublish(t *testing.T) {
	s := startServer(t)
	mustCreate(t, s, "/", "r", nil)
	mustJoin(t, s, "/", "r", "alice", "")
	req := &roomsv1.PublishRequest{Namespace: "/", Room: "r", Sender: "alice", Payload: `"hi"`, ClientMessageId: "c-1"}

	first, err := s.rooms.Publish(svcCtx(t), req)
	if err != nil {
		t.Fatal(err)
	}
	mustPublish(t, s, "/", "r", "alice", `"other"`)
	for range 3 {
		again, err := s.rooms.Publish(svcCtx(t), req)
		if err != nil {
			t.Fatal(err)
		}
		if again.GetOffset() != first.GetOffset() || !again.GetDuplicate() || !again.GetCreateTime().AsTime().Equal(first.GetCreateTime().AsTime()) {
			t.Fatalf("retry got offset %d duplicate %v time %v; want offset %d duplicate true time %v",
				again.GetOffset(), again.GetDuplicate(), again.GetCreateTime().AsTime(), first.GetOffset(), first.GetCreateTime().AsTime())
		}
	}
	hist, err := s.rooms.GetHistory(svcCtx(t), &roomsv1.GetHistoryRequest{Namespace: "/", Room: "r"})
	if err != nil {
		t.Fatal(err)
	}
	if n := len(hist.GetMessages()); n != 2 {
		t.Fatalf("history has %d messages, want 2", n)
	}
	// The same id in another room is a different message.
	mustCreate(t, s, "/", "r2", nil)
	mustJoin(t, s, "/", "r2", "alice", "")
	other, err := s.rooms.Publish(svcCtx(t), &roomsv1.PublishRequest{Namespace: "/", Room: "r2", Sender: "alice", Payload: `"hi"`, ClientMessageId: "c-1"})
	if err != nil {
		t.Fatal(err)
	}
	if other.GetDuplicate() {
		t.Fatal("same client message id in another room was treated as a duplicate")
	}
}

// TestSlowSubscriberDoesNotStallOthers leaves one subscriber unread while a
// burst is published: publishers and the other subscriber carry on, and the
// slow one is ended with RESOURCE_EXHAUSTED and then resumes from its last
// offset without losing anything.
func TestSlowSubscriberDoesNotStallOthers(t *testing.T) {
	const total = 2000
	s := startServer(t, func(l *server.Limits, _ *app.GRPCOptions) { l.SubscriberBuffer = 8 })
	mustCreate(t, s, "/", "r", &roomsv1.RoomOptions{HistoryMaxMessages: total})
	mustJoin(t, s, "/", "r", "alice", "")
	room := &roomsv1.RoomSubscription{Namespace: "/", Room: "r"}
	slow := subscribe(t, svcCtx(t), s, room)
	fast := subscribe(t, svcCtx(t), s, room)

	payload := `"` + strings.Repeat("x", 2048) + `"`
	// The fast subscriber is one that is never more than half its buffer
	// behind: the publisher waits for it, and never for the slow one.
	ahead := make(chan struct{}, 4)
	published := make(chan struct{})
	go func() {
		defer close(published)
		for range total {
			select {
			case ahead <- struct{}{}:
			case <-t.Context().Done():
				return
			}
			if _, err := s.rooms.Publish(svcCtx(t), &roomsv1.PublishRequest{Namespace: "/", Room: "r", Sender: "alice", Payload: payload}); err != nil {
				t.Errorf("publish: %v", err)
				return
			}
		}
	}()
	for want := uint64(1); want <= total; want++ {
		resp, err := fast.Recv()
		if err != nil {
			t.Fatalf("fast subscriber: %v", err)
		}
		if got := resp.GetEvent().GetMessage().GetOffset(); got != want {
			t.Fatalf("fast subscriber got offset %d, want %d", got, want)
		}
		<-ahead
	}
	<-published

	var last uint64
	for {
		resp, err := slow.Recv()
		if err != nil {
			if status.Code(err) != codes.ResourceExhausted {
				t.Fatalf("slow subscriber ended with %v, want ResourceExhausted", err)
			}
			break
		}
		if got := resp.GetEvent().GetMessage().GetOffset(); got != last+1 {
			t.Fatalf("slow subscriber got offset %d after %d", got, last)
		}
		last++
	}
	if last >= total {
		t.Fatalf("slow subscriber received all %d messages; it was never cut off", last)
	}
	resumed := subscribe(t, svcCtx(t), s, &roomsv1.RoomSubscription{Namespace: "/", Room: "r", AfterOffset: after(last)})
	for last < total {
		resp, err := resumed.Recv()
		if err != nil {
			t.Fatalf("resumed subscriber: %v", err)
		}
		if got := resp.GetEvent().GetMessage().GetOffset(); got != last+1 {
			t.Fatalf("resumed subscriber got offset %d after %d", got, last)
		}
		last++
	}
}

// TestSubscribeEvents checks membership and deletion events and multi-room
// subscriptions.
func TestSubscribeEvents(t *testing.T) {
	s := startServer(t)
	mustCreate(t, s, "/", "a", nil)
	mustCreate(t, s, "/chat", "b", nil)
	stream := subscribe(t, svcCtx(t), s,
		&roomsv1.RoomSubscription{Namespace: "/", Room: "a"},
		&roomsv1.RoomSubscription{Namespace: "/chat", Room: "b"})

	mustJoin(t, s, "/", "a", "alice", "s1")
	mustJoin(t, s, "/", "a", "alice", "s2") // already a member: no event
	mustJoin(t, s, "/chat", "b", "bob", "")
	mustPublish(t, s, "/chat", "b", "bob", `"hello"`)
	if _, err := s.rooms.LeaveRoom(svcCtx(t), &roomsv1.LeaveRoomRequest{Namespace: "/chat", Room: "b", UserId: "bob"}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.rooms.KickMember(svcCtx(t), &roomsv1.KickMemberRequest{Namespace: "/", Room: "a", UserId: "alice"}); err != nil {
		t.Fatal(err)
	}
	for _, room := range []string{"a", "b"} {
		ns := map[string]string{"a": "/", "b": "/chat"}[room]
		if _, err := s.rooms.DeleteRoom(svcCtx(t), &roomsv1.DeleteRoomRequest{Namespace: ns, Room: room}); err != nil {
			t.Fatal(err)
		}
	}

	want := []string{
		"/ a joined alice",
		"/chat b joined bob",
		"/chat b message bob \"hello\"",
		"/chat b left bob false",
		"/ a left alice true",
		"/ a deleted",
		"/chat b deleted",
	}
	for i, w := range want {
		resp, err := stream.Recv()
		if err != nil {
			t.Fatalf("event %d: %v", i, err)
		}
		ev := resp.GetEvent()
		var got string
		switch k := ev.GetKind().(type) {
		case *roomsv1.Event_MemberJoined:
			got = fmt.Sprintf("%s %s joined %s", ev.GetNamespace(), ev.GetRoom(), k.MemberJoined.GetUserId())
		case *roomsv1.Event_MemberLeft:
			got = fmt.Sprintf("%s %s left %s %v", ev.GetNamespace(), ev.GetRoom(), k.MemberLeft.GetUserId(), k.MemberLeft.GetKicked())
		case *roomsv1.Event_Message:
			got = fmt.Sprintf("%s %s message %s %s", ev.GetNamespace(), ev.GetRoom(), k.Message.GetSender(), k.Message.GetPayload())
		case *roomsv1.Event_RoomDeleted:
			got = fmt.Sprintf("%s %s deleted", ev.GetNamespace(), ev.GetRoom())
		default:
			got = fmt.Sprintf("unexpected %v", ev)
		}
		if got != w {
			t.Fatalf("event %d = %q, want %q", i, got, w)
		}
	}
	// With every room deleted the stream ends cleanly.
	if _, err := stream.Recv(); err != io.EOF {
		t.Fatalf("after all rooms were deleted: Recv error %v, want io.EOF", err)
	}
}

// TestLivePublishesArriveInOffsetOrder publishes from many goroutines at once,
// so that publishes to one room share commits, while a subscriber stays live.
// The subscriber must get every message once and in offset order from the
// broadcasts alone: a message broadcast ahead of an earlier one looks like a
// gap, which the subscription fills with a store read.
func TestLivePublishesArriveInOffsetOrder(t *testing.T) {
	const publishers, perPublisher = 16, 100
	for _, tt := range []struct {
		name  string
		rooms int
	}{
		{"one room", 1},
		{"rooms sharing commits", 4},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s := startServer(t)
			var subs []*roomsv1.RoomSubscription
			for r := range tt.rooms {
				room := fmt.Sprintf("r%d", r)
				mustCreate(t, s, "/", room, nil)
				mustJoin(t, s, "/", room, "alice", "")
				subs = append(subs, &roomsv1.RoomSubscription{Namespace: "/", Room: room})
			}
			ctx, cancel := context.WithCancel(svcCtx(t))
			defer cancel()
			stream := subscribe(t, ctx, s, subs...)

			var wg sync.WaitGroup
			for p := range publishers {
				wg.Go(func() {
					for i := range perPublisher {
						_, err := s.rooms.Publish(svcCtx(t), &roomsv1.PublishRequest{
							Namespace: "/", Room: fmt.Sprintf("r%d", (p+i)%tt.rooms), Sender: "alice", Payload: fmt.Sprintf(`"p%d-%d"`, p, i),
						})
						if err != nil {
							t.Errorf("publish: %v", err)
							return
						}
					}
				})
			}

			last := map[string]uint64{}
			seen := map[string]bool{}
			for range publishers * perPublisher {
				resp, err := stream.Recv()
				if err != nil {
					t.Fatalf("recv after offsets %v: %v", last, err)
				}
				m := resp.GetEvent().GetMessage()
				room := resp.GetEvent().GetRoom()
				if m.GetOffset() != last[room]+1 {
					t.Fatalf("room %s: got offset %d after %d", room, m.GetOffset(), last[room])
				}
				if seen[m.GetPayload()] {
					t.Fatalf("payload %s delivered twice", m.GetPayload())
				}
				seen[m.GetPayload()] = true
				last[room] = m.GetOffset()
			}
			wg.Wait()
			if n := s.counter(t, "parley_rooms_subscription_gap_fills_total"); n != 0 {
				t.Errorf("the subscription filled %v gaps from the store; want none", n)
			}
		})
	}
}

// TestInterruptedSubscriptionsResume checks that a hub interrupted (on Redis:
// its feed of other replicas broke) ends subscriptions with UNAVAILABLE and
// the offsets to resume from.
func TestInterruptedSubscriptionsResume(t *testing.T) {
	s := startServer(t)
	mustCreate(t, s, "/", "r", nil)
	mustPublish(t, s, "/", "r", "", `"one"`)
	stream := subscribe(t, svcCtx(t), s, &roomsv1.RoomSubscription{Namespace: "/", Room: "r"})
	s.hub.Interrupt()
	_, err := stream.Recv()
	if st := status.Convert(err); st.Code() != codes.Unavailable || !strings.Contains(st.Message(), "after_offset /r=1") {
		t.Errorf("stream ended with %v, want UNAVAILABLE naming after_offset /r=1", err)
	}
}
