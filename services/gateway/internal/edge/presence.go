package edge

import (
	"context"

	roomsv1 "github.com/parleyhq/parley/proto/parley/rooms/v1"
)

// member is a room member as clients see it.
type member struct {
	User   string `json:"user"`
	Online bool   `json:"online"`
}

type membersResult struct {
	Members []member `json:"members"`
}

func (c *client) members(ctx context.Context, req roomRequest) (membersResult, error) {
	if !c.joined(req.Room) {
		return membersResult{}, errorf(CodePermissionDenied, "join room %q before listing its members", req.Room)
	}
	ms, err := c.listMembers(ctx, req.Room)
	return membersResult{Members: ms}, err
}

// membersPage is how many members a join ack and the members event list: the
// room's first, by user id.
const membersPage = 100

// listMembers reads the room's first page of members with their presence.
func (c *client) listMembers(ctx context.Context, room string) ([]member, error) {
	resp, err := c.g.cfg.Rooms.ListMembers(ctx, &roomsv1.ListMembersRequest{Namespace: c.ns.Name, Room: room, PageSize: membersPage})
	if err != nil {
		return nil, err
	}
	return toMembers(resp.GetMembers()), nil
}

func toMembers(ms []*roomsv1.Member) []member {
	out := make([]member, 0, len(ms))
	for _, m := range ms {
		out = append(out, member{User: m.GetUserId(), Online: m.GetOnline()})
	}
	return out
}
