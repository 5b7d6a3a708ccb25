package edge

import (
	"context"

	roomsv1 "github.com/parleyhq/parley/proto/parley/rooms/v1"
	"github.com/parleyhq/parley/services/gateway/internal/wire"
)

// sendResult is the ack of `send message`.
type sendResult struct {
	ID     string `json:"id"`
	Offset uint64 `json:"offset"`
	TS     int64  `json:"ts"`
}

// send publishes the message. The other members get it through the relay;
// the sender's socket gets only the ack.
func (c *client) send(ctx context.Context, req sendRequest) (sendResult, error) {
	if !c.joined(req.Room) {
		return sendResult{}, errorf(CodePermissionDenied, "join room %q before sending to it", req.Room)
	}
	resp, err := c.g.cfg.Rooms.Publish(ctx, &roomsv1.PublishRequest{
		Namespace: c.ns.Name, Room: req.Room, Sender: c.user, Payload: string(req.Payload),
		ClientMessageId: req.ClientID, SessionId: c.id,
	})
	if err != nil {
		return sendResult{}, err
	}
	return sendResult{
		ID: wire.MessageID(req.ClientID, resp.GetOffset()), Offset: resp.GetOffset(),
		TS: resp.GetCreateTime().AsTime().UnixMilli(),
	}, nil
}

// historyResult is the ack of `history`.
type historyResult struct {
	Messages []wire.Message `json:"messages"`
	HasMore  bool           `json:"has_more"`
}

func (c *client) history(ctx context.Context, req historyRequest) (historyResult, error) {
	if !c.joined(req.Room) {
		return historyResult{}, errorf(CodePermissionDenied, "join room %q before reading its history", req.Room)
	}
	q := &roomsv1.GetHistoryRequest{Namespace: c.ns.Name, Room: req.Room, Limit: req.Limit}
	switch {
	case req.Before != nil:
		q.Cursor = &roomsv1.GetHistoryRequest_BeforeOffset{BeforeOffset: *req.Before}
	case req.After != nil:
		q.Cursor = &roomsv1.GetHistoryRequest_AfterOffset{AfterOffset: *req.After}
	}
	resp, err := c.g.cfg.Rooms.GetHistory(ctx, q)
	if err != nil {
		return historyResult{}, err
	}
	return historyResult{Messages: wire.NewMessages(resp.GetMessages()), HasMore: resp.GetHasMore()}, nil
}
