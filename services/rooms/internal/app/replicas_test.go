package app_test

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"

	roomsv1 "github.com/parleyhq/parley/proto/parley/rooms/v1"
	"github.com/parleyhq/parley/services/kit/redistest"
	"github.com/parleyhq/parley/services/rooms/internal/roomstest"
)

// events reads a subscription into a channel until it ends.
func events(stream grpc.ServerStreamingClient[roomsv1.SubscribeResponse]) <-chan *roomsv1.Event {
	ch := make(chan *roomsv1.Event, 1024)
	go func() {
		defer close(ch)
		for {
			resp, err := stream.Recv()
			if err != nil {
				return
			}
			ch <- resp.GetEvent()
		}
	}()
	return ch
}

// TestReplicasOnRedis runs two rooms-service processes on one real Redis
// server, then on a real three-node Redis Cluster: a subscriber of either
// replica sees, in offset order and once each, the messages published
// through both, and the presence events of both; after SIGKILL of one
// replica under load, the other has every publish it acknowledged, and its
// subscriber saw each of them.
func TestReplicasOnRedis(t *testing.T) {
	bin := roomstest.Build(t)
	for _, tt := range []struct {
		name  string
		start func(t *testing.T) string
	}{
		{"server", func(t *testing.T) string { return "redis://" + redistest.Start(t) }},
		{"cluster", func(t *testing.T) string { return redistest.StartCluster(t).URL() }},
	} {
		t.Run(tt.name, func(t *testing.T) { testReplicasOnRedis(t, bin, tt.start(t)) })
	}
}

func testReplicasOnRedis(t *testing.T, bin, redisURL string) {
	a := roomstest.Start(t, bin, t.TempDir(), "--redis-url", redisURL)
	b := roomstest.Start(t, bin, t.TempDir(), "--redis-url", redisURL)
	ca, cb := dial(t, a.GRPCAddr), dial(t, b.GRPCAddr)
	ctx := procCtx(t)
	if _, err := cb.CreateRoom(ctx, &roomsv1.CreateRoomRequest{Namespace: "/", Room: "r"}); err != nil {
		t.Fatal(err)
	}
	subscribeTo := func(c roomsv1.RoomsServiceClient) <-chan *roomsv1.Event {
		stream, err := c.Subscribe(ctx, &roomsv1.SubscribeRequest{Rooms: []*roomsv1.RoomSubscription{{Namespace: "/", Room: "r"}}})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := stream.Header(); err != nil {
			t.Fatal(err)
		}
		return events(stream)
	}
	subA, subB := subscribeTo(ca), subscribeTo(cb)

	for _, c := range []roomsv1.RoomsServiceClient{ca, cb} {
		user := fmt.Sprintf("u-%p", c)
		if _, err := c.JoinRoom(ctx, &roomsv1.JoinRoomRequest{Namespace: "/", Room: "r", UserId: user, SessionId: "s"}); err != nil {
			t.Fatal(err)
		}
	}
	const perReplica = 100
	var wg sync.WaitGroup
	for _, c := range []roomsv1.RoomsServiceClient{ca, cb} {
		wg.Go(func() {
			for i := range perReplica {
				if _, err := c.Publish(ctx, &roomsv1.PublishRequest{Namespace: "/", Room: "r", Payload: fmt.Sprintf(`"%p-%d"`, c, i)}); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()

	// next reads what a subscriber is sent until it has the messages up to
	// offset upTo, failing on a message out of order or twice.
	next := func(name string, sub <-chan *roomsv1.Event, last *uint64, upTo uint64) (joined int) {
		t.Helper()
		timeout := time.After(deadline)
		for *last < upTo {
			select {
			case ev, ok := <-sub:
				if !ok {
					t.Fatalf("%s: subscription ended at offset %d", name, *last)
				}
				switch {
				case ev.GetMemberJoined() != nil:
					joined++
				case ev.GetMessage() != nil:
					if off := ev.GetMessage().GetOffset(); off != *last+1 {
						t.Fatalf("%s: offset %d after %d", name, off, *last)
					}
					*last++
				}
			case <-timeout:
				t.Fatalf("%s: stuck at offset %d of %d", name, *last, upTo)
			}
		}
		return joined
	}
	var lastA, lastB uint64
	if n := next("subscriber of a", subA, &lastA, 2*perReplica); n != 2 {
		t.Errorf("subscriber of a saw %d members join, want 2", n)
	}
	if n := next("subscriber of b", subB, &lastB, 2*perReplica); n != 2 {
		t.Errorf("subscriber of b saw %d members join, want 2", n)
	}

	// b dies while publishing; what it acknowledged is on a.
	var (
		mu    sync.Mutex
		acked []uint64
	)
	published := make(chan struct{})
	var once sync.Once
	wg.Go(func() {
		for i := 0; ; i++ {
			resp, err := cb.Publish(ctx, &roomsv1.PublishRequest{Namespace: "/", Room: "r", Payload: fmt.Sprintf(`"late-%d"`, i)})
			if err != nil {
				return
			}
			mu.Lock()
			acked = append(acked, resp.GetOffset())
			mu.Unlock()
			if i == 50 {
				once.Do(func() { close(published) })
			}
		}
	})
	<-published
	b.Kill()
	wg.Wait()
	highest := acked[len(acked)-1]
	next("subscriber of a after the kill", subA, &lastA, highest)
	history, err := ca.GetHistory(ctx, &roomsv1.GetHistoryRequest{Namespace: "/", Room: "r", Limit: 1000,
		Cursor: &roomsv1.GetHistoryRequest_AfterOffset{AfterOffset: 2 * perReplica}})
	if err != nil {
		t.Fatal(err)
	}
	stored := map[uint64]bool{}
	for _, m := range history.GetMessages() {
		stored[m.GetOffset()] = true
	}
	for _, off := range acked {
		if !stored[off] {
			t.Errorf("acknowledged offset %d is not in a's history", off)
		}
	}
	t.Logf("%d publishes acknowledged by b before it was killed", len(acked))
}
