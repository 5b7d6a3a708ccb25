package relay

import (
	"context"
	"errors"
	"io"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	roomsv1 "github.com/parleyhq/parley/proto/parley/rooms/v1"
	"github.com/parleyhq/parley/services/gateway/internal/wire"
)

// run keeps the room's upstream subscription open until ctx ends, resuming
// after the last offset dispatched whenever the stream breaks.
func (r *Relay) run(ctx context.Context, rm *Room) {
	registered := false
	backoff := 100 * time.Millisecond
	for ctx.Err() == nil {
		sub := &roomsv1.RoomSubscription{Namespace: rm.key.Namespace, Room: rm.key.Room}
		if registered {
			after := rm.lastDelivered()
			sub.AfterOffset = &after
		}
		stream, err := r.rooms.Subscribe(ctx, &roomsv1.SubscribeRequest{Rooms: []*roomsv1.RoomSubscription{sub}})
		if err == nil {
			err = awaitRegistered(stream)
		}
		if err == nil && !registered {
			registered = true
			close(rm.ready)
		}
		if err == nil {
			backoff = 100 * time.Millisecond
			err = r.pump(rm, stream)
		}
		if ctx.Err() != nil {
			break
		}
		if code := status.Code(err); errors.Is(err, errRoomDeleted) || code == codes.NotFound || code == codes.PermissionDenied {
			if registered {
				r.end(rm)
			} else {
				r.fail(rm, err)
			}
			return
		}
		r.log.Warn("room subscription interrupted; resuming", "namespace", rm.key.Namespace, "room", rm.key.Room, "err", err)
		select {
		case <-ctx.Done():
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 5*time.Second)
	}
	if !registered {
		r.fail(rm, ErrClosed)
	}
}

// end takes a deleted room out of service: a join from now on subscribes
// afresh (to the room created again, if it is), and every member is removed,
// as if it had been kicked, so that no socket stays in a room that no longer
// delivers anything.
func (r *Relay) end(rm *Room) {
	r.mu.Lock()
	r.forget(rm)
	r.mu.Unlock()
	rm.mu.Lock()
	rm.ended = true
	members := rm.members
	rm.members = map[*Member]*position{}
	rm.mu.Unlock()
	for m := range members {
		m.Out.DropPos(rm.key.Room)
		go m.Removed(rm.key.Room)
	}
}

func (rm *Room) lastDelivered() uint64 {
	rm.mu.Lock()
	defer rm.mu.Unlock()
	return rm.delivered
}

// awaitRegistered waits for the response headers the rooms service sends once
// the subscription is registered. A stream refused before that (an unknown
// room, say) ends without headers, and its status comes from Recv.
func awaitRegistered(stream grpc.ServerStreamingClient[roomsv1.SubscribeResponse]) error {
	md, err := stream.Header()
	if err != nil {
		return err
	}
	if md == nil {
		if _, err := stream.Recv(); err != nil {
			return err
		}
		return errors.New("subscription sent events before its headers")
	}
	return nil
}

// errRoomDeleted ends a room's subscription for good.
var errRoomDeleted = errors.New("room deleted")

// pump dispatches the events of one upstream stream until it ends.
func (r *Relay) pump(rm *Room, stream grpc.ServerStreamingClient[roomsv1.SubscribeResponse]) error {
	for {
		resp, err := stream.Recv()
		if err == io.EOF {
			return errors.New("subscription ended")
		}
		if err != nil {
			return err
		}
		if _, deleted := resp.GetEvent().GetKind().(*roomsv1.Event_RoomDeleted); deleted {
			return errRoomDeleted
		}
		r.dispatch(rm, resp.GetEvent())
	}
}

func (r *Relay) dispatch(rm *Room, ev *roomsv1.Event) {
	switch k := ev.GetKind().(type) {
	case *roomsv1.Event_Message:
		m := k.Message
		if sockets, ok := r.dispatchMessage(rm, wire.EncodeMessage(rm.key.Namespace, wire.NewMessage(m), m.GetSessionId())); ok {
			r.metrics.Delivered(time.Since(m.GetCreateTime().AsTime()), sockets)
		}
	case *roomsv1.Event_MemberJoined:
		r.presence(rm, wire.EventMemberJoined, k.MemberJoined.GetUserId(), +1)
	case *roomsv1.Event_MemberLeft:
		user := k.MemberLeft.GetUserId()
		r.presence(rm, wire.EventMemberLeft, user, -1)
		// The user's own sockets here stop receiving the room: a removed
		// member must not go on reading it.
		rm.mu.Lock()
		for m := range rm.members {
			if m.User == user {
				delete(rm.members, m)
				m.Out.DropPos(rm.key.Room)
				go m.Removed(rm.key.Room)
			}
		}
		rm.mu.Unlock()
	case *roomsv1.Event_HistoryGap:
		r.log.Warn("messages expired before delivery", "namespace", rm.key.Namespace, "room", rm.key.Room,
			"from", k.HistoryGap.GetFromOffset(), "to", k.HistoryGap.GetToOffset())
	}
}

// dispatchMessage hands a message to every member that does not have it yet:
// written at once to live members, held for members catching up. It reports
// false for a message already dispatched.
func (r *Relay) dispatchMessage(rm *Room, p wire.MessagePacket) (sockets int, ok bool) {
	rm.mu.Lock()
	defer rm.mu.Unlock()
	if p.Offset <= rm.delivered {
		return 0, false
	}
	rm.delivered = p.Offset
	rm.recent = append(rm.recent, p)
	if len(rm.recent) > r.opts.Replay {
		rm.recent = rm.recent[len(rm.recent)-r.opts.Replay:]
	}
	for m, pos := range rm.members {
		switch {
		case pos.catching && len(pos.backlog) >= r.opts.Backlog:
			m.Out.Fail()
		case pos.catching:
			pos.backlog = append(pos.backlog, p)
		case p.Offset > pos.seen && deliver(m, p, false):
			sockets++
		}
	}
	return sockets, true
}

// presence counts a member joining (delta +1) or leaving (-1) and tells the
// room's sockets. A user's own sockets are not told of its join — only the
// socket joining can be in the room then, and its join ack says so — but are
// told of its leaving whatever the room's size, so that one that is kicked
// from a room too big for presence events learns why the room went quiet.
func (r *Relay) presence(rm *Room, event, user string, delta int) {
	rm.mu.Lock()
	defer rm.mu.Unlock()
	rm.size = max(rm.size+delta, 0)
	limit, limited := r.opts.PresenceMax[rm.key.Namespace]
	quiet := limited && rm.size > limit
	if quiet && delta > 0 {
		// Nobody is told of a join to a quiet room: returning here keeps a
		// connect storm into a big room from scanning its members per join.
		return
	}
	p, err := wire.Event(rm.key.Namespace, event, wire.Presence{Room: rm.key.Room, User: user})
	if err != nil {
		r.log.Error("encoding presence event failed", "event", event, "err", err)
		return
	}
	for m := range rm.members {
		own := m.User == user
		if (own && delta < 0) || (!own && !quiet) {
			m.Out.Write(p)
		}
	}
}
