package server

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	roomsv1 "github.com/parleyhq/parley/proto/parley/rooms/v1"
	"github.com/parleyhq/parley/services/rooms/internal/fanout"
	"github.com/parleyhq/parley/services/rooms/internal/store"
)

// catchUpPage is how many stored messages one store read fetches while a
// subscription replays history or fills a gap.
const catchUpPage = 500

// Subscribe registers with the hub (and, on Redis, has the rooms watched)
// before it reads anything from the store, so every message is either in the
// store read or in the subscription's buffer.
// Per room it remembers the last offset delivered: a live message at or below
// it is a duplicate (already replayed) and is skipped; one beyond the next
// offset means earlier ones were not seen, and the gap is filled from the
// store before it is delivered. The store hands each room's messages to the
// hub in offset order (store.Committed), so that fill costs a store read only
// where order was lost, which parley_rooms_subscription_gap_fills_total counts.
func (s *Rooms) Subscribe(req *roomsv1.SubscribeRequest, stream grpc.ServerStreamingServer[roomsv1.SubscribeResponse]) error {
	ctx := stream.Context()
	keys := make([]store.RoomKey, 0, len(req.GetRooms()))
	after := make(map[store.RoomKey]*uint64, len(req.GetRooms()))
	for _, r := range req.GetRooms() {
		k := roomKey(r.GetNamespace(), r.GetRoom())
		if _, dup := after[k]; dup {
			return status.Errorf(codes.InvalidArgument, "room %s%s listed twice", k.Namespace, k.Name)
		}
		keys = append(keys, k)
		after[k] = r.AfterOffset
	}

	if s.d.Watch != nil {
		release, err := s.d.Watch(ctx, keys)
		if err != nil {
			s.d.Log.WarnContext(ctx, "subscribe: rooms not watched", "error", err)
			return status.Error(codes.Unavailable, "the rooms service cannot follow the rooms now; retry")
		}
		defer release()
	}
	fs, err := s.d.Hub.Subscribe(keys, s.d.Limits.SubscriberBuffer)
	if err != nil {
		return status.Error(codes.Unavailable, "service is shutting down")
	}
	defer fs.Close()
	s.d.Metrics.subscriptions.Inc()
	defer s.d.Metrics.subscriptions.Dec()

	last := make(map[store.RoomKey]uint64, len(keys))
	for _, k := range keys {
		room, err := s.d.Store.GetRoom(ctx, k)
		if err != nil {
			return errStatus(ctx, s.d.Log, "subscribe", err)
		}
		last[k] = room.LastOffset
		if a := after[k]; a != nil {
			last[k] = min(*a, room.LastOffset)
		}
	}
	if err := stream.SendHeader(metadata.MD{}); err != nil {
		return err
	}

	sub := &subscriber{s: s, stream: stream, last: last}
	for _, k := range keys {
		if after[k] == nil {
			continue
		}
		if err := sub.catchUp(ctx, k, 0); err != nil {
			return sub.end(err)
		}
	}
	return sub.end(sub.live(ctx, fs))
}

type subscriber struct {
	s      *Rooms
	stream grpc.ServerStreamingServer[roomsv1.SubscribeResponse]
	last   map[store.RoomKey]uint64
}

// errRoomsGone ends a subscription whose rooms were all deleted.
var errRoomsGone = errors.New("all rooms deleted")

func (sub *subscriber) live(ctx context.Context, fs *fanout.Subscription) error {
	for {
		// An ended subscription may still hold buffered events, but something
		// after them was lost: stop now so the caller resumes from the store.
		select {
		case <-fs.Done():
			return fs.Err()
		default:
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-fs.Done():
			return fs.Err()
		case ev := <-fs.Events():
			k := roomKey(ev.GetNamespace(), ev.GetRoom())
			switch kind := ev.GetKind().(type) {
			case *roomsv1.Event_Message:
				off := kind.Message.GetOffset()
				if off <= sub.last[k] {
					continue
				}
				if off > sub.last[k]+1 {
					sub.s.d.Metrics.gapFills.Inc()
					if err := sub.catchUp(ctx, k, off-1); err != nil {
						return err
					}
					if off <= sub.last[k] {
						continue
					}
				}
				if err := sub.send(ev); err != nil {
					return err
				}
				sub.last[k] = off
			case *roomsv1.Event_RoomDeleted:
				if err := sub.send(ev); err != nil {
					return err
				}
				fs.Drop(k)
				delete(sub.last, k)
				if len(sub.last) == 0 {
					return errRoomsGone
				}
			default:
				if err := sub.send(ev); err != nil {
					return err
				}
			}
		}
	}
}

// catchUp sends stored messages of room k after the last delivered offset, up to
// and including upTo (0: everything stored). A HistoryGap event stands for
// messages the store no longer has.
func (sub *subscriber) catchUp(ctx context.Context, k store.RoomKey, upTo uint64) error {
	for {
		from := sub.last[k]
		msgs, err := sub.s.d.Store.History(ctx, store.HistoryQuery{Room: k, Mode: store.HistoryAfter, Offset: from, Limit: catchUpPage})
		if err != nil {
			return fmt.Errorf("catch up %s%s after %d: %w", k.Namespace, k.Name, from, err)
		}
		for _, m := range msgs {
			if upTo != 0 && m.Offset > upTo {
				return nil
			}
			if m.Offset > sub.last[k]+1 {
				if err := sub.send(gapEvent(k, sub.last[k], m.Offset-1)); err != nil {
					return err
				}
			}
			if err := sub.send(messageEvent(toProtoMessage(m))); err != nil {
				return err
			}
			sub.last[k] = m.Offset
		}
		if len(msgs) < catchUpPage || (upTo != 0 && sub.last[k] >= upTo) {
			if upTo != 0 && sub.last[k] < upTo {
				// The store has nothing up to upTo: those messages were trimmed
				// or purged before we could read them.
				if err := sub.send(gapEvent(k, sub.last[k], upTo)); err != nil {
					return err
				}
				sub.last[k] = upTo
			}
			return nil
		}
	}
}

// gapEvent says that room k's messages after from up to and including to can
// no longer be replayed.
func gapEvent(k store.RoomKey, from, to uint64) *roomsv1.Event {
	return &roomsv1.Event{Namespace: k.Namespace, Room: k.Name, Kind: &roomsv1.Event_HistoryGap{
		HistoryGap: &roomsv1.HistoryGap{FromOffset: from, ToOffset: to},
	}}
}

func (sub *subscriber) send(ev *roomsv1.Event) error {
	return sub.stream.Send(&roomsv1.SubscribeResponse{Event: ev})
}

// end turns why a subscription stopped into the status its caller sees and
// counts it.
func (sub *subscriber) end(err error) error {
	reason, st := "error", err
	switch {
	case errors.Is(err, errRoomsGone):
		reason, st = "rooms_deleted", nil
	case errors.Is(err, fanout.ErrOverflow):
		reason = "overflow"
		st = status.Errorf(codes.ResourceExhausted, "subscriber fell behind; resubscribe with after_offset %s", sub.offsets())
	case errors.Is(err, fanout.ErrInterrupted):
		reason = "interrupted"
		st = status.Errorf(codes.Unavailable, "live events were interrupted; resubscribe with after_offset %s", sub.offsets())
	case errors.Is(err, fanout.ErrClosed):
		reason = "shutdown"
		st = status.Errorf(codes.Unavailable, "service is shutting down; resubscribe with after_offset %s", sub.offsets())
	case errors.Is(err, context.Canceled), status.Code(err) == codes.Canceled:
		reason, st = "client", status.Error(codes.Canceled, "subscription canceled")
	case errors.Is(err, context.DeadlineExceeded), status.Code(err) == codes.DeadlineExceeded:
		reason, st = "client", status.Error(codes.DeadlineExceeded, "subscription deadline reached")
	case status.Code(err) == codes.Unknown:
		st = errStatus(sub.stream.Context(), sub.s.d.Log, "subscribe", err)
	}
	sub.s.d.Metrics.ended.WithLabelValues(reason).Inc()
	return st
}

// offsets lists the last delivered offset per room, for the caller to resume.
func (sub *subscriber) offsets() string {
	parts := make([]string, 0, len(sub.last))
	for k, off := range sub.last {
		parts = append(parts, fmt.Sprintf("%s%s=%d", k.Namespace, k.Name, off))
	}
	return strings.Join(parts, ",")
}
