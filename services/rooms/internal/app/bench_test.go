package app_test

import (
	"context"
	"testing"

	roomsv1 "github.com/parleyhq/parley/proto/parley/rooms/v1"
)

// BenchmarkPublish measures one Publish round trip through the whole server
// (interceptors, validation, SQLite commit, fan-out) on loopback.
func BenchmarkPublish(b *testing.B) {
	s := startServer(b)
	mustCreate(b, s, "/", "bench", nil)
	mustJoin(b, s, "/", "bench", "alice", "")
	req := &roomsv1.PublishRequest{Namespace: "/", Room: "bench", Sender: "alice", Payload: `{"text":"hello, room"}`}
	ctx := svcCtx(b)
	for b.Loop() {
		if _, err := s.rooms.Publish(ctx, req); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkPublishParallel measures publish throughput from concurrent callers
// into ten rooms.
func BenchmarkPublishParallel(b *testing.B) {
	s := startServer(b)
	rooms := []string{"r0", "r1", "r2", "r3", "r4", "r5", "r6", "r7", "r8", "r9"}
	for _, r := range rooms {
		mustCreate(b, s, "/", r, nil)
	}
	ctx := svcCtx(b)
	b.SetParallelism(4)
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			i++
			req := &roomsv1.PublishRequest{Namespace: "/", Room: rooms[i%len(rooms)], Payload: `{"text":"hello, room"}`}
			if _, err := s.rooms.Publish(ctx, req); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// BenchmarkPublishToSubscribers measures publish-to-receipt: each operation
// publishes one message and waits until all ten subscribers of the room have
// received it.
func BenchmarkPublishToSubscribers(b *testing.B) {
	const subscribers = 10
	s := startServer(b)
	mustCreate(b, s, "/", "bench", nil)
	ctx, cancel := context.WithCancel(svcCtx(b))
	defer cancel()
	received := make(chan uint64, subscribers*64)
	for range subscribers {
		stream := subscribe(b, ctx, s, &roomsv1.RoomSubscription{Namespace: "/", Room: "bench"})
		go func() {
			for {
				resp, err := stream.Recv()
				if err != nil {
					return
				}
				received <- resp.GetEvent().GetMessage().GetOffset()
			}
		}()
	}
	req := &roomsv1.PublishRequest{Namespace: "/", Room: "bench", Payload: `{"text":"hello, room"}`}
	for b.Loop() {
		resp, err := s.rooms.Publish(ctx, req)
		if err != nil {
			b.Fatal(err)
		}
		for range subscribers {
			if off := <-received; off != resp.GetOffset() {
				b.Fatalf("subscriber got offset %d, want %d", off, resp.GetOffset())
			}
		}
	}
	b.ReportMetric(float64(b.N*subscribers)/b.Elapsed().Seconds(), "deliveries/s")
}
