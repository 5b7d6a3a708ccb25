package relay

import (
	"context"
	"fmt"

	roomsv1 "github.com/parleyhq/parley/proto/parley/rooms/v1"
	"github.com/parleyhq/parley/services/gateway/internal/wire"
)

// catchPage is how many stored messages one history read brings a member
// forward.
const catchPage = 500

// catchUp brings m from pos.seen to live delivery, the one way a member behind
// the room is caught up (a late join, a recovered session). m is already
// registered with pos.catching set, so the room's live messages for it wait in
// pos.backlog; history is read page by page with no lock held, so the room's
// other members are never held up by a call to the rooms service. Once the
// pages reach the backlog (or the end of the room), the two are merged by
// offset — a message in both is sent once — and m goes live.
//
// Nothing falls between: m was registered before the first read, so a message
// dispatched before that is stored by the time it is read, and one dispatched
// after is in the backlog.
func (r *Relay) catchUp(ctx context.Context, rm *Room, m *Member, pos *position) (uint64, error) {
	seen := pos.seen
	for {
		resp, err := r.rooms.GetHistory(ctx, &roomsv1.GetHistoryRequest{
			Namespace: rm.key.Namespace, Room: rm.key.Room, Limit: catchPage,
			Cursor: &roomsv1.GetHistoryRequest_AfterOffset{AfterOffset: seen},
		})
		if err != nil {
			rm.mu.Lock()
			if rm.members[m] == pos {
				delete(rm.members, m)
			}
			rm.mu.Unlock()
			return seen, fmt.Errorf("catch up %s in %s after %d: %w", rm.key.Room, rm.key.Namespace, seen, err)
		}
		msgs := resp.GetMessages()
		for _, msg := range msgs {
			if msg.GetOffset() > seen {
				deliver(m, wire.EncodeMessage(rm.key.Namespace, wire.NewMessage(msg), msg.GetSessionId()), true)
				seen = msg.GetOffset()
			}
		}

		rm.mu.Lock()
		if rm.members[m] != pos {
			// Removed meanwhile (left, kicked, disconnected).
			rm.mu.Unlock()
			return seen, nil
		}
		reached := len(pos.backlog) > 0 && pos.backlog[0].Offset <= seen+1
		if reached || len(msgs) == 0 || !resp.GetHasMore() {
			for _, p := range pos.backlog {
				if p.Offset > seen {
					deliver(m, p, true)
					seen = p.Offset
				}
			}
			pos.seen, pos.catching, pos.backlog = max(seen, pos.seen), false, nil
			seen = pos.seen
			rm.mu.Unlock()
			return seen, nil
		}
		rm.mu.Unlock()
	}
}
