package app_test

import (
	"context"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

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

// BenchmarkPublishSubscribed measures publishes as the gateway makes them
// (members with sessions and client message ids, from many goroutines into
// one room, so that they share commits) with one live subscriber that must
// receive them all. Beside ns/op it reports the process's CPU time per
// publish, client side included, and the gaps the subscriber filled from
// the store.
func BenchmarkPublishSubscribed(b *testing.B) {
	const senders = 16
	s := startServer(b)
	mustCreate(b, s, "/", "bench", nil)
	for i := range senders {
		mustJoin(b, s, "/", "bench", fmt.Sprintf("u%d", i), fmt.Sprintf("s%d", i))
	}
	ctx, cancel := context.WithCancel(svcCtx(b))
	defer cancel()
	stream := subscribe(b, ctx, s, &roomsv1.RoomSubscription{Namespace: "/", Room: "bench"})
	// The subscriber stores the last offset it got, then reads the offset
	// awaited; the benchmark stores that, then reads the last offset: one of
	// them sees the other's store, so the end is never missed.
	var last, want atomic.Uint64
	var once sync.Once
	received := make(chan struct{})
	go func() {
		for {
			resp, err := stream.Recv()
			if err != nil {
				return
			}
			last.Store(resp.GetEvent().GetMessage().GetOffset())
			if w := want.Load(); w != 0 && last.Load() >= w {
				once.Do(func() { close(received) })
			}
		}
	}()

	var sender atomic.Int64
	cpu := cpuTime(b)
	b.SetParallelism(senders / runtime.GOMAXPROCS(0))
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		n := sender.Add(1) - 1
		user, session := fmt.Sprintf("u%d", n%senders), fmt.Sprintf("s%d", n%senders)
		for i := 0; pb.Next(); i++ {
			_, err := s.rooms.Publish(ctx, &roomsv1.PublishRequest{
				Namespace: "/", Room: "bench", Sender: user, SessionId: session,
				Payload: `{"text":"a message of typical length for a chat room"}`, ClientMessageId: fmt.Sprintf("%s-%d", session, i),
			})
			if err != nil {
				b.Error(err)
				return
			}
		}
	})
	room, err := s.rooms.GetRoom(ctx, &roomsv1.GetRoomRequest{Namespace: "/", Room: "bench"})
	if err != nil {
		b.Fatal(err)
	}
	want.Store(room.GetRoom().GetLastOffset())
	if last.Load() < want.Load() {
		select {
		case <-received:
		case <-time.After(deadline):
			b.Fatalf("the subscriber got up to offset %d of %d", last.Load(), want.Load())
		}
	}
	b.StopTimer()
	b.ReportMetric(float64((cpuTime(b)-cpu).Nanoseconds())/float64(b.N), "cpu-ns/op")
	b.ReportMetric(s.counter(b, "parley_rooms_subscription_gap_fills_total")/float64(b.N), "gapfills/op")
}

// cpuTime is the CPU time this process has used, user and system.
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
