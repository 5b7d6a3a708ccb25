// Package fanout delivers room events to the live subscribers of one rooms
// service process. Publishers never wait on subscribers: each subscription has a
// bounded buffer, and one that fills up is ended (its owner resumes it from the
// last offset it delivered) instead of slowing anyone else down or growing memory.
package fanout

import (
	"errors"
	"sync"

	roomsv1 "github.com/parleyhq/parley/proto/parley/rooms/v1"
	"github.com/parleyhq/parley/services/rooms/internal/store"
)

var (
	// ErrOverflow ends a subscription whose buffer was full when an event arrived.
	ErrOverflow = errors.New("subscriber fell behind")
	// ErrClosed ends subscriptions when the hub shuts down.
	ErrClosed = errors.New("hub closed")
	// ErrInterrupted ends subscriptions when the hub may have missed events
	// (Interrupt).
	ErrInterrupted = errors.New("live events interrupted")
)

// Hub routes events to subscriptions by room.
type Hub struct {
	mu     sync.RWMutex
	rooms  map[store.RoomKey]map[*Subscription]struct{}
	subs   int
	closed bool
}

// NewHub returns an empty hub.
func NewHub() *Hub {
	return &Hub{rooms: make(map[store.RoomKey]map[*Subscription]struct{})}
}

// Subscription receives the events of a set of rooms until it ends.
type Subscription struct {
	hub    *Hub
	events chan *roomsv1.Event
	done   chan struct{}

	mu    sync.Mutex
	keys  map[store.RoomKey]struct{}
	err   error
	ended bool
}

// Subscribe registers a subscription to keys with room for buffer events. Once
// it returns, every event broadcast for those rooms reaches the subscription (or
// ends it with ErrOverflow).
func (h *Hub) Subscribe(keys []store.RoomKey, buffer int) (*Subscription, error) {
	s := &Subscription{
		hub:    h,
		events: make(chan *roomsv1.Event, buffer),
		done:   make(chan struct{}),
		keys:   make(map[store.RoomKey]struct{}, len(keys)),
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return nil, ErrClosed
	}
	for _, k := range keys {
		s.keys[k] = struct{}{}
		set := h.rooms[k]
		if set == nil {
			set = make(map[*Subscription]struct{})
			h.rooms[k] = set
		}
		set[s] = struct{}{}
	}
	h.subs++
	return s, nil
}

// Broadcast hands ev to every subscription of its room without blocking. The
// event is shared between subscribers and must not be modified afterwards.
func (h *Hub) Broadcast(ev *roomsv1.Event) {
	k := store.RoomKey{Namespace: ev.GetNamespace(), Name: ev.GetRoom()}
	h.mu.RLock()
	defer h.mu.RUnlock()
	for s := range h.rooms[k] {
		select {
		case s.events <- ev:
		default:
			s.end(ErrOverflow)
		}
	}
}

// Close ends every subscription with ErrClosed and refuses new ones.
func (h *Hub) Close() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.closed = true
	for _, set := range h.rooms {
		for s := range set {
			s.end(ErrClosed)
		}
	}
}

// Interrupt ends every subscription with ErrInterrupted, for a hub fed from
// outside the process that may have missed events: each owner resumes from
// the last offset it delivered. New subscriptions are accepted.
func (h *Hub) Interrupt() {
	h.mu.RLock()
	defer h.mu.RUnlock()
	for _, set := range h.rooms {
		for s := range set {
			s.end(ErrInterrupted)
		}
	}
}

// Subscriptions returns how many subscriptions are registered.
func (h *Hub) Subscriptions() int {
	h.mu.RLock()
	defer h.mu.RUnlock()
	return h.subs
}

// Events delivers the subscription's events in the order they were broadcast.
func (s *Subscription) Events() <-chan *roomsv1.Event { return s.events }

// Done is closed when the subscription has ended; Err then says why.
func (s *Subscription) Done() <-chan struct{} { return s.done }

// Err returns why the subscription ended, or nil while it is live.
func (s *Subscription) Err() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.err
}

// Drop stops delivery of one room's events, for example after it was deleted.
func (s *Subscription) Drop(k store.RoomKey) {
	s.hub.mu.Lock()
	defer s.hub.mu.Unlock()
	s.hub.remove(s, k)
	s.mu.Lock()
	delete(s.keys, k)
	s.mu.Unlock()
}

// Close unregisters the subscription. It is safe to call more than once.
func (s *Subscription) Close() {
	s.hub.mu.Lock()
	defer s.hub.mu.Unlock()
	s.mu.Lock()
	keys := s.keys
	s.keys = nil
	s.mu.Unlock()
	if keys == nil {
		return
	}
	for k := range keys {
		s.hub.remove(s, k)
	}
	s.hub.subs--
	s.end(ErrClosed)
}

// remove unlinks s from room k; the caller holds h.mu.
func (h *Hub) remove(s *Subscription, k store.RoomKey) {
	set := h.rooms[k]
	delete(set, s)
	if len(set) == 0 {
		delete(h.rooms, k)
	}
}

// end records the first reason the subscription stopped and signals Done. The
// events channel stays open so a concurrent Broadcast can never send on a
// closed channel.
func (s *Subscription) end(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ended {
		return
	}
	s.ended = true
	s.err = err
	close(s.done)
}
