package edge

import (
	"encoding/json"

	"github.com/parleyhq/parley/proto/rules"
)

// Each event's arguments are decoded once, here, into a request whose every
// field is checked: handlers never look at raw arguments. An object or array
// argument arrives as the JSON text the client sent (see wire.Parser), or,
// from the library's own decoder, decoded: objectArg and jsonArg read both.

// roomRequest is the argument of join, leave, switch room and members.
type roomRequest struct {
	Room string
}

// sendRequest is `send message` (room, msg, {id}?).
type sendRequest struct {
	Room     string
	Payload  []byte // msg, JSON-encoded
	ClientID string // the idempotency key, if given
}

// historyRequest is `history` (room, {before?, after?, limit?}?).
type historyRequest struct {
	Room          string
	Before, After *uint64
	Limit         uint32
}

func (c *client) decodeNothing([]any) (struct{}, error) { return struct{}{}, nil }

func (c *client) decodeRoom(args []any) (roomRequest, error) {
	room, err := c.roomArg(args)
	return roomRequest{Room: room}, err
}

// roomArg reads the room name, the first argument of every room event, and
// checks it against the rooms service's rule and the namespace's pattern.
func (c *client) roomArg(args []any) (string, error) {
	if len(args) == 0 {
		return "", errorf(CodeInvalidArgument, "a room name is required")
	}
	room, ok := args[0].(string)
	if !ok || !rules.Room.Valid(room) {
		return "", errorf(CodeInvalidArgument, "the room must be a string of %d to %d characters without spaces or invisible characters",
			rules.Room.MinLen, rules.Room.MaxLen)
	}
	if c.ns.roomRE != nil && !c.ns.roomRE.MatchString(room) {
		return "", errorf(CodeInvalidArgument, "room name %q does not match %s", room, c.ns.RoomPattern)
	}
	return room, nil
}

func (c *client) decodeSend(args []any) (sendRequest, error) {
	room, err := c.roomArg(args)
	if err != nil {
		return sendRequest{}, err
	}
	if len(args) < 2 {
		return sendRequest{}, errorf(CodeInvalidArgument, "a message is required")
	}
	req := sendRequest{Room: room}
	if len(args) >= 3 {
		opts, ok := objectArg(args[2])
		if !ok {
			return sendRequest{}, errorf(CodeInvalidArgument, "the third argument must be an object such as {id}")
		}
		if id, ok := opts["id"]; ok {
			s, ok := id.(string)
			if !ok || s == "" || !rules.ClientMessageID.Valid(s) {
				return sendRequest{}, errorf(CodeInvalidArgument, "id must be a non-empty string of at most %d characters", rules.ClientMessageID.MaxLen)
			}
			req.ClientID = s
		}
	}
	payload, err := jsonArg(args[1])
	if err != nil {
		return sendRequest{}, errorf(CodeInvalidArgument, "the message is not JSON-encodable")
	}
	if max := c.g.cfg.Limits.MaxMessageBytes; len(payload) > max {
		return sendRequest{}, errorf(CodeResourceExhausted, "the message is %d bytes; the limit is %d", len(payload), max)
	}
	req.Payload = payload
	return req, nil
}

func (c *client) decodeHistory(args []any) (historyRequest, error) {
	room, err := c.roomArg(args)
	if err != nil {
		return historyRequest{}, err
	}
	req := historyRequest{Room: room}
	if len(args) < 2 || args[1] == nil {
		return req, nil
	}
	opts, ok := objectArg(args[1])
	if !ok {
		return req, errorf(CodeInvalidArgument, "the second argument must be an object {before?, after?, limit?}")
	}
	for _, f := range []string{"before", "after", "limit"} {
		v, ok := opts[f]
		if !ok || v == nil {
			continue
		}
		n, err := offsetArg(f, v)
		if err != nil {
			return req, err
		}
		switch f {
		case "before":
			req.Before = &n
		case "after":
			if req.Before != nil {
				return req, errorf(CodeInvalidArgument, "give before or after, not both")
			}
			req.After = &n
		case "limit":
			if n > uint64(rules.MaxHistoryPage) {
				return req, errorf(CodeInvalidArgument, "limit must be at most %d", rules.MaxHistoryPage)
			}
			req.Limit = uint32(n)
		}
	}
	return req, nil
}

// offsetArg reads a non-negative integer that JSON carried as a number.
func offsetArg(name string, v any) (uint64, error) {
	n, ok := v.(float64)
	if !ok || n < 0 || n != float64(uint64(n)) || n > 1<<53 {
		return 0, errorf(CodeInvalidArgument, "%s must be a non-negative integer", name)
	}
	return uint64(n), nil
}

// objectArg returns an object argument's fields, or false if v is not an
// object.
func objectArg(v any) (map[string]any, bool) {
	switch o := v.(type) {
	case map[string]any:
		return o, true
	case json.RawMessage:
		var m map[string]any
		if len(o) == 0 || o[0] != '{' || json.Unmarshal(o, &m) != nil {
			return nil, false
		}
		return m, true
	}
	return nil, false
}

// jsonArg returns an argument as JSON: as the client sent it if it came as
// raw JSON, encoded otherwise.
func jsonArg(v any) ([]byte, error) {
	if raw, ok := v.(json.RawMessage); ok {
		return raw, nil
	}
	return json.Marshal(v)
}
