package admin

import (
	"context"
	"encoding/json"
	"errors"
	"sync"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"

	roomsv1 "github.com/parleyhq/parley/proto/parley/rooms/v1"
)

// report is one message on the bus: one of its parts is set.
type report struct {
	From string `json:"from"`
	// Stats are the gateway's server_stats, every statsEvery; Watchers is
	// how many UIs it has connected.
	Stats    json.RawMessage `json:"stats,omitempty"`
	Watchers int             `json:"watchers,omitempty"`
	// Events are UI events, each the JSON array of its name and arguments.
	Events []json.RawMessage `json:"events,omitempty"`
	// Fetch asks every gateway for its sockets, answered with Sockets.
	Fetch   string      `json:"fetch,omitempty"`
	Sockets *socketList `json:"sockets,omitempty"`
	// Do is an action of a UI, for the gateways holding the sockets.
	Do *action `json:"do,omitempty"`
	// Offer asks every gateway to offer its sockets to every UI (see
	// receive).
	Offer bool `json:"offer,omitempty"`
}

// socketList is part of a gateway's answer to a fetch; Last marks its end.
type socketList struct {
	Fetch string            `json:"fetch"`
	List  []json.RawMessage `json:"list"`
	Last  bool              `json:"last"`
}

// action is a UI's join, leave or disconnect, on the sockets of a
// namespace that match a filter (see Sockets).
type action struct {
	Op     string `json:"op"`
	Nsp    string `json:"nsp"`
	Room   string `json:"room,omitempty"`
	Filter string `json:"filter,omitempty"`
	Close  bool   `json:"close,omitempty"`
}

func busRoomRequest(nsp string) *roomsv1.CreateRoomRequest {
	return &roomsv1.CreateRoomRequest{Namespace: nsp, Room: BusRoom, Options: &roomsv1.RoomOptions{
		Visibility:         roomsv1.Visibility_VISIBILITY_PRIVATE,
		ReadOnly:           true,
		HistoryMaxMessages: 100,
		HistoryRetention:   durationpb.New(time.Minute),
	}}
}

func alreadyExists(err error) bool { return status.Code(err) == codes.AlreadyExists }

// maxQueued bounds the bytes of reports waiting for the bus: a rooms service
// that is slow or down loses the admin view, not the gateway its memory.
const maxQueued = 4 << 20

// outbox holds the reports to publish, in order. Events that follow each
// other are published together, as many as fit in one report.
type outbox struct {
	max int
	mu  sync.Mutex
	// items are events (event set) or whole reports (rep set).
	items   []outItem
	bytes   int
	dropped int
	closed  bool
	wake    chan struct{}
}

type outItem struct {
	event json.RawMessage
	rep   *report
	size  int
}

func newOutbox(max int) *outbox { return &outbox{max: max, wake: make(chan struct{}, 1)} }

func (o *outbox) event(e json.RawMessage) { o.push(outItem{event: e, size: len(e) + 1}) }

func (o *outbox) send(r *report) { o.push(outItem{rep: r, size: 256}) }

func (o *outbox) push(it outItem) {
	o.mu.Lock()
	if o.closed || o.bytes+it.size > maxQueued {
		o.dropped++
		o.mu.Unlock()
		return
	}
	o.items = append(o.items, it)
	o.bytes += it.size
	o.mu.Unlock()
	select {
	case o.wake <- struct{}{}:
	default:
	}
}

func (o *outbox) close() {
	o.mu.Lock()
	o.closed = true
	o.mu.Unlock()
	select {
	case o.wake <- struct{}{}:
	default:
	}
}

// next waits for the next report to publish; false once closed and empty.
// It also returns how many reports were dropped since the last call.
func (o *outbox) next(from string) (*report, int, bool) {
	for {
		o.mu.Lock()
		if o.closed && len(o.items) == 0 {
			o.mu.Unlock()
			return nil, 0, false
		}
		if len(o.items) > 0 {
			r := o.take(from)
			dropped := o.dropped
			o.dropped = 0
			o.mu.Unlock()
			return r, dropped, true
		}
		o.mu.Unlock()
		<-o.wake
	}
}

// take removes the next report from the queue: a whole one, or the events
// at the head of the queue that fit in one.
func (o *outbox) take(from string) *report {
	if it := o.items[0]; it.rep != nil {
		o.items = o.items[1:]
		o.bytes -= it.size
		it.rep.From = from
		return it.rep
	}
	r := &report{From: from}
	size := 64 + len(from)
	n := 0
	for _, it := range o.items {
		if it.rep != nil || (n > 0 && size+it.size > o.max) {
			break
		}
		r.Events = append(r.Events, it.event)
		size += it.size
		n++
	}
	for _, it := range o.items[:n] {
		o.bytes -= it.size
	}
	o.items = o.items[n:]
	return r
}

// publish sends the outbox's reports to the bus, one at a time so that they
// arrive in order, until the outbox is closed and empty or ctx ends.
func (s *Server) publish(ctx context.Context) {
	warned := time.Time{}
	for {
		r, dropped, ok := s.out.next(s.cfg.ServerID)
		if !ok || ctx.Err() != nil {
			return
		}
		payload, err := json.Marshal(r)
		if err == nil {
			pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			_, err = s.cfg.Rooms.Publish(pctx, &roomsv1.PublishRequest{Namespace: s.cfg.Namespace, Room: BusRoom, Payload: string(payload)})
			cancel()
		}
		if (err != nil || dropped > 0) && ctx.Err() == nil && time.Since(warned) > time.Minute {
			warned = time.Now()
			s.cfg.Log.Warn("admin UI reports lost", "err", err, "dropped", dropped)
		}
	}
}

// follow reads the bus until ctx ends, subscribing again after any
// failure: reports are of the moment, and those missed meanwhile are not
// asked for again.
func (s *Server) follow(ctx context.Context) {
	backoff := 100 * time.Millisecond
	for ctx.Err() == nil {
		err := s.followOnce(ctx)
		if ctx.Err() != nil {
			return
		}
		if status.Code(err) == codes.NotFound || errors.Is(err, errBusDeleted) {
			// Deleted by hand: it is needed, so it is made again.
			if err := s.Setup(ctx); err != nil {
				s.cfg.Log.Warn("admin UI bus room could not be created", "err", err)
			}
		} else {
			s.cfg.Log.Warn("admin UI bus subscription ended; following again", "err", err, "retry_in", backoff)
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 2*time.Second)
	}
}

var errBusDeleted = errors.New("the admin bus room was deleted")

func (s *Server) followOnce(ctx context.Context) error {
	stream, err := s.cfg.Rooms.Subscribe(ctx, &roomsv1.SubscribeRequest{
		Rooms: []*roomsv1.RoomSubscription{{Namespace: s.cfg.Namespace, Room: BusRoom}},
	})
	if err != nil {
		return err
	}
	for {
		resp, err := stream.Recv()
		if err != nil {
			return err
		}
		switch ev := resp.GetEvent(); {
		case ev.GetMessage() != nil:
			var r report
			if err := json.Unmarshal([]byte(ev.GetMessage().GetPayload()), &r); err != nil {
				s.cfg.Log.Warn("admin UI bus: unreadable report", "offset", ev.GetMessage().GetOffset(), "err", err)
				continue
			}
			s.receive(&r)
		case ev.GetRoomDeleted() != nil:
			return errBusDeleted
		}
	}
}
