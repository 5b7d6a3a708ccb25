package fanout

import (
	"errors"
	"testing"

	roomsv1 "github.com/parleyhq/parley/proto/parley/rooms/v1"
	"github.com/parleyhq/parley/services/rooms/internal/store"
)

func msg(room string, off uint64) *roomsv1.Event {
	return &roomsv1.Event{Namespace: "/", Room: room, Kind: &roomsv1.Event_Message{
		Message: &roomsv1.Message{Namespace: "/", Room: room, Offset: off},
	}}
}

func key(room string) store.RoomKey { return store.RoomKey{Namespace: "/", Name: room} }

func TestBroadcastRoutesByRoom(t *testing.T) {
	h := NewHub()
	a, err := h.Subscribe([]store.RoomKey{key("a")}, 8)
	if err != nil {
		t.Fatal(err)
	}
	ab, err := h.Subscribe([]store.RoomKey{key("a"), key("b")}, 8)
	if err != nil {
		t.Fatal(err)
	}
	h.Broadcast(msg("a", 1))
	h.Broadcast(msg("b", 1))
	h.Broadcast(msg("c", 1))

	tests := []struct {
		name string
		sub  *Subscription
		want []string
	}{
		{"one room", a, []string{"a"}},
		{"two rooms", ab, []string{"a", "b"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := len(tt.sub.Events()); got != len(tt.want) {
				t.Fatalf("buffered %d events, want %d", got, len(tt.want))
			}
			for _, room := range tt.want {
				if ev := <-tt.sub.Events(); ev.GetRoom() != room {
					t.Errorf("got event for room %q, want %q", ev.GetRoom(), room)
				}
			}
		})
	}
	if n := h.Subscriptions(); n != 2 {
		t.Errorf("Subscriptions() = %d, want 2", n)
	}
}

func TestSlowSubscriberEndsAlone(t *testing.T) {
	h := NewHub()
	slow, _ := h.Subscribe([]store.RoomKey{key("a")}, 2)
	fast, _ := h.Subscribe([]store.RoomKey{key("a")}, 100)
	for i := uint64(1); i <= 10; i++ {
		h.Broadcast(msg("a", i))
	}
	select {
	case <-slow.Done():
	default:
		t.Fatal("slow subscriber not ended")
	}
	if !errors.Is(slow.Err(), ErrOverflow) {
		t.Errorf("slow.Err() = %v, want ErrOverflow", slow.Err())
	}
	if fast.Err() != nil {
		t.Errorf("fast.Err() = %v, want nil", fast.Err())
	}
	for i := uint64(1); i <= 10; i++ {
		if ev := <-fast.Events(); ev.GetMessage().GetOffset() != i {
			t.Fatalf("fast got offset %d, want %d", ev.GetMessage().GetOffset(), i)
		}
	}
	if got := len(slow.Events()); got != 2 {
		t.Errorf("slow buffered %d events, want its capacity 2", got)
	}
}

func TestDropAndClose(t *testing.T) {
	h := NewHub()
	s, _ := h.Subscribe([]store.RoomKey{key("a"), key("b")}, 8)
	s.Drop(key("a"))
	h.Broadcast(msg("a", 1))
	h.Broadcast(msg("b", 1))
	if ev := <-s.Events(); ev.GetRoom() != "b" || len(s.Events()) != 0 {
		t.Fatalf("after Drop got room %q and %d more events, want only room b", ev.GetRoom(), len(s.Events()))
	}
	s.Close()
	s.Close()
	if n := h.Subscriptions(); n != 0 {
		t.Errorf("Subscriptions() after Close = %d, want 0", n)
	}
	h.Broadcast(msg("b", 2))
	if len(s.Events()) != 0 {
		t.Error("closed subscription still receives events")
	}
}

func TestHubClose(t *testing.T) {
	h := NewHub()
	s, _ := h.Subscribe([]store.RoomKey{key("a")}, 8)
	h.Close()
	<-s.Done()
	if !errors.Is(s.Err(), ErrClosed) {
		t.Errorf("Err() = %v, want ErrClosed", s.Err())
	}
	if _, err := h.Subscribe([]store.RoomKey{key("a")}, 8); !errors.Is(err, ErrClosed) {
		t.Errorf("Subscribe after Close: err = %v, want ErrClosed", err)
	}
}

func TestInterrupt(t *testing.T) {
	h := NewHub()
	before, err := h.Subscribe([]store.RoomKey{key("a")}, 8)
	if err != nil {
		t.Fatal(err)
	}
	h.Interrupt()
	select {
	case <-before.Done():
	default:
		t.Fatal("a subscription outlived Interrupt")
	}
	if err := before.Err(); !errors.Is(err, ErrInterrupted) {
		t.Errorf("Err = %v, want ErrInterrupted", err)
	}
	after, err := h.Subscribe([]store.RoomKey{key("a")}, 8)
	if err != nil {
		t.Fatalf("Subscribe after Interrupt: %v", err)
	}
	h.Broadcast(msg("a", 1))
	select {
	case ev := <-after.Events():
		if ev.GetMessage().GetOffset() != 1 {
			t.Errorf("got %v", ev)
		}
	default:
		t.Error("a subscription made after Interrupt got nothing")
	}
}
