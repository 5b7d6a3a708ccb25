package edge

import (
	"encoding/json"
	"fmt"
	"testing"

	"google.golang.org/protobuf/types/known/durationpb"

	roomsv1 "github.com/parleyhq/parley/proto/parley/rooms/v1"
)

// TestSaverBatchesAndKeepsTheLatestRecord holds the first SaveSessions call
// while more records arrive: they go out together in the next call, a
// socket's newer record replacing its older one, and a waiting save learns
// its outcome.
func TestSaverBatchesAndKeepsTheLatestRecord(t *testing.T) {
	rooms := &fakeRooms{gate: make(chan struct{}), entered: make(chan struct{}, 100)}
	c := newTestClient(t, Namespace{Name: "/"}, testLimits, rooms, newFakeRelay())
	s := c.g.saver
	req := func(key, data string) *roomsv1.SaveSessionRequest {
		return &roomsv1.SaveSessionRequest{Namespace: "/", SessionId: key, Data: []byte(data), Ttl: durationpb.New(60e9)}
	}
	s.save(req("first", "1"), false)
	<-rooms.entered // its call is held at the gate
	for i := range 50 {
		s.save(req(fmt.Sprintf("k%d", i%10), fmt.Sprintf("old %d", i)), false)
	}
	done := s.save(req("k3", "new"), true)
	close(rooms.gate)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if err := c.g.Wait(t.Context()); err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(rooms.batches) != "[1 10]" {
		t.Fatalf("calls of %v records, want [1 10]", rooms.batches)
	}
	saved := map[string]bool{}
	for _, d := range rooms.saved {
		saved[string(d)] = true
	}
	if !saved["new"] || saved["old 3"] || saved["old 43"] || !saved["old 49"] {
		t.Fatalf("saved %q", rooms.saved)
	}
}

// TestSaverSplitsLargeBatches queues more records than one call may carry.
func TestSaverSplitsLargeBatches(t *testing.T) {
	rooms := &fakeRooms{gate: make(chan struct{}), entered: make(chan struct{}, 100)}
	c := newTestClient(t, Namespace{Name: "/"}, testLimits, rooms, newFakeRelay())
	data, _ := json.Marshal(savedSession{SID: "s", User: "u", Rooms: map[string]savedPlace{"room1": {Offset: 1, Epoch: "e"}}})
	c.g.saver.save(&roomsv1.SaveSessionRequest{Namespace: "/", SessionId: "held", Data: data, Ttl: durationpb.New(60e9)}, false)
	<-rooms.entered
	const n = 1200
	for i := range n {
		c.g.saver.save(&roomsv1.SaveSessionRequest{Namespace: "/", SessionId: fmt.Sprint(i), Data: data, Ttl: durationpb.New(60e9)}, false)
	}
	close(rooms.gate)
	if err := c.g.Wait(t.Context()); err != nil {
		t.Fatal(err)
	}
	total := 0
	for _, b := range rooms.batches[1:] {
		if b > saveBatchRecords {
			t.Errorf("a call of %d records", b)
		}
		total += b
	}
	if total != n || len(rooms.batches) < 4 {
		t.Fatalf("calls %v: %d records in all, want %d in at least 3 calls", rooms.batches, total, n)
	}
}

// TestSaverForgetWaitsForTheCallInFlight checks that forgetting a session
// drops its queued record and returns only once a call already saving it has
// returned, so that a delete after it cannot be overtaken by the save.
func TestSaverForgetWaitsForTheCallInFlight(t *testing.T) {
	rooms := &fakeRooms{gate: make(chan struct{}), entered: make(chan struct{}, 10)}
	c := newTestClient(t, Namespace{Name: "/"}, testLimits, rooms, newFakeRelay())
	req := func(key, data string) *roomsv1.SaveSessionRequest {
		return &roomsv1.SaveSessionRequest{Namespace: "/", SessionId: key, Data: []byte(data), Ttl: durationpb.New(60e9)}
	}
	c.g.saver.save(req("x", "in flight"), false)
	<-rooms.entered
	waiting := c.g.saver.save(req("x", "queued"), true)
	forgotten := make(chan struct{})
	go func() {
		c.g.saver.forget(t.Context(), "/", "x")
		close(forgotten)
	}()
	if err := <-waiting; err == nil {
		t.Fatal("a forgotten record's waiter was told it was saved")
	}
	select {
	case <-forgotten:
		t.Fatal("forget returned while a call saving the session was in flight")
	default:
	}
	close(rooms.gate)
	<-forgotten
	if err := c.g.Wait(t.Context()); err != nil {
		t.Fatal(err)
	}
	if fmt.Sprintf("%q", rooms.saved) != `["in flight"]` {
		t.Fatalf("saved %q", rooms.saved)
	}
}
