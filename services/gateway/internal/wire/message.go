// Package wire is the only place that knows socket.io packet text. It defines
// the message format clients receive — live, in join acks and in history
// pages — encodes each event packet once for every socket it goes to, and
// writes packets to a socket through a bounded queue that also carries the
// socket's recovery offsets.
package wire

import (
	"encoding/json"
	"strconv"

	roomsv1 "github.com/parleyhq/parley/proto/parley/rooms/v1"
)

// Meta is what a client is told about a message besides its body: the second
// argument of "receive message".
type Meta struct {
	Room   string `json:"room"`
	ID     string `json:"id"`
	Offset uint64 `json:"offset"`
	From   string `json:"from"`
	TS     int64  `json:"ts"`
}

// Message is a message as clients see it: {msg, room, id, offset, from, ts}
// in join acks and history pages, and (msg, meta) as "receive message".
type Message struct {
	Msg json.RawMessage `json:"msg"`
	Meta
}

// NewMessage converts a stored message to what clients see.
func NewMessage(m *roomsv1.Message) Message {
	return Message{Msg: payload(m.GetPayload()), Meta: Meta{
		Room: m.GetRoom(), ID: MessageID(m.GetClientMessageId(), m.GetOffset()), Offset: m.GetOffset(),
		From: m.GetSender(), TS: m.GetCreateTime().AsTime().UnixMilli(),
	}}
}

// NewMessages converts a page of stored messages; an empty page is an empty
// list, never null.
func NewMessages(ms []*roomsv1.Message) []Message {
	out := make([]Message, 0, len(ms))
	for _, m := range ms {
		out = append(out, NewMessage(m))
	}
	return out
}

// MessageID is the id a message is known by to clients: the publisher's
// client message id, or its offset when it gave none.
func MessageID(clientID string, offset uint64) string {
	if clientID != "" {
		return clientID
	}
	return strconv.FormatUint(offset, 10)
}

// payload is a body as clients get it: gateways publish JSON, which is passed
// on as is; other publishers may not, and their text is passed on as a string
// rather than breaking the packet.
func payload(p string) json.RawMessage {
	if json.Valid([]byte(p)) {
		return json.RawMessage(p)
	}
	b, _ := json.Marshal(p) // a string always encodes
	return b
}
