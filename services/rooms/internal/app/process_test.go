package app_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	roomsv1 "github.com/parleyhq/parley/proto/parley/rooms/v1"
	"github.com/parleyhq/parley/services/rooms/internal/roomstest"
)

func dial(t *testing.T, addr string) roomsv1.RoomsServiceClient {
	t.Helper()
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return roomsv1.NewRoomsServiceClient(conn)
}

func procCtx(t *testing.T) context.Context { return withToken(t.Context(), roomstest.ServiceToken) }

// TestAcknowledgedPublishesSurviveKill publishes concurrently, kills the
// process with SIGKILL mid-stream, restarts it on the same data directory and
// checks that every publish that was acknowledged is in the history, and that
// offsets carry on without reuse.
func TestAcknowledgedPublishesSurviveKill(t *testing.T) {
	bin := roomstest.Build(t)
	dataDir := t.TempDir()
	p := roomstest.Start(t, bin, dataDir)
	c := dial(t, p.GRPCAddr)
	if _, err := c.CreateRoom(procCtx(t), &roomsv1.CreateRoomRequest{Namespace: "/", Room: "durable"}); err != nil {
		t.Fatal(err)
	}

	var mu sync.Mutex
	acked := map[uint64]string{}
	var wg sync.WaitGroup
	killAt := make(chan struct{})
	var once sync.Once
	for w := range 4 {
		wg.Go(func() {
			for i := 0; ; i++ {
				payload := fmt.Sprintf(`"w%d-%d"`, w, i)
				resp, err := c.Publish(procCtx(t), &roomsv1.PublishRequest{Namespace: "/", Room: "durable", Payload: payload})
				if err != nil {
					return // the process is gone
				}
				mu.Lock()
				acked[resp.GetOffset()] = payload
				n := len(acked)
				mu.Unlock()
				if n >= 300 {
					once.Do(func() { close(killAt) })
				}
			}
		})
	}
	<-killAt
	p.Kill()
	wg.Wait()

	p2 := roomstest.Start(t, bin, dataDir)
	c2 := dial(t, p2.GRPCAddr)
	stored := map[uint64]string{}
	var cursor uint64
	for {
		resp, err := c2.GetHistory(procCtx(t), &roomsv1.GetHistoryRequest{Namespace: "/", Room: "durable", Cursor: &roomsv1.GetHistoryRequest_AfterOffset{AfterOffset: cursor}, Limit: 1000})
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range resp.GetMessages() {
			stored[m.GetOffset()] = m.GetPayload()
			cursor = m.GetOffset()
		}
		if !resp.GetHasMore() {
			break
		}
	}
	for off, payload := range acked {
		if stored[off] != payload {
			t.Errorf("acknowledged offset %d: stored %q, want %q", off, stored[off], payload)
		}
	}
	for off := uint64(1); off <= cursor; off++ {
		if _, ok := stored[off]; !ok {
			t.Errorf("offset %d missing below the last stored offset %d", off, cursor)
		}
	}
	next, err := c2.Publish(procCtx(t), &roomsv1.PublishRequest{Namespace: "/", Room: "durable", Payload: `"after restart"`})
	if err != nil {
		t.Fatal(err)
	}
	if next.GetOffset() != cursor+1 {
		t.Errorf("first offset after restart = %d, want %d", next.GetOffset(), cursor+1)
	}
	t.Logf("%d publishes acknowledged before the kill, %d stored", len(acked), len(stored))
}

// TestGracefulShutdown sends SIGTERM to a service with an open subscription
// and an open publish stream: the subscriber is told to resume (UNAVAILABLE,
// with its offset), the publisher to publish on a new stream, and the process
// exits cleanly.
func TestGracefulShutdown(t *testing.T) {
	// A stream left open would hold the shutdown for a minute, longer than
	// Terminate waits.
	p := roomstest.Start(t, roomstest.Build(t), t.TempDir(), "--shutdown-timeout", "1m")
	c := dial(t, p.GRPCAddr)
	if _, err := c.CreateRoom(procCtx(t), &roomsv1.CreateRoomRequest{Namespace: "/", Room: "r"}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Publish(procCtx(t), &roomsv1.PublishRequest{Namespace: "/", Room: "r", Payload: `"1"`}); err != nil {
		t.Fatal(err)
	}
	stream, err := c.Subscribe(procCtx(t), &roomsv1.SubscribeRequest{Rooms: []*roomsv1.RoomSubscription{{Namespace: "/", Room: "r", AfterOffset: after(0)}}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := stream.Recv(); err != nil {
		t.Fatal(err)
	}
	pubs, err := c.PublishStream(procCtx(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := pubs.Send(&roomsv1.PublishStreamRequest{Id: 7, Publish: &roomsv1.PublishRequest{Namespace: "/", Room: "r", Payload: `"2"`}}); err != nil {
		t.Fatal(err)
	}
	if resp, err := pubs.Recv(); err != nil || resp.GetId() != 7 || resp.GetPublished().GetOffset() != 2 {
		t.Fatalf("publish on a stream: %v, %v", resp, err)
	}
	health, err := http.Get("http://" + p.MetricsAddr + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	health.Body.Close()
	if health.StatusCode != http.StatusOK {
		t.Errorf("/healthz status %d, want 200", health.StatusCode)
	}
	resp, err := http.Get("http://" + p.MetricsAddr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(body), "parley_rooms_subscriptions 1") {
		t.Errorf("/metrics does not show the open subscription:\n%s", body)
	}

	code := p.Terminate(t)
	_, err = stream.Recv()
	for err == nil { // the subscription's live message at offset 2
		_, err = stream.Recv()
	}
	if status.Code(err) != codes.Unavailable || !strings.Contains(err.Error(), "/r=2") {
		t.Errorf("subscription ended with %v, want Unavailable naming offset /r=2", err)
	}
	// An open publish stream must not hold the shutdown up to its deadline.
	if _, err := pubs.Recv(); status.Code(err) != codes.Unavailable || !strings.Contains(err.Error(), "shutting down") {
		t.Errorf("publish stream ended with %v, want Unavailable saying the service is shutting down", err)
	}
	if code != 0 {
		t.Errorf("exit code %d, want 0\n%s", code, p.Log())
	}
	if !strings.Contains(p.Log(), "rooms service stopped") {
		t.Errorf("log lacks the clean stop:\n%s", p.Log())
	}
}
