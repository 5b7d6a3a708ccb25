package wire

import (
	"encoding/json"
	"fmt"
	"slices"
)

// Packet is an encoded socket.io packet, shared by every socket it goes to.
type Packet struct {
	text []byte
}

// Event encodes a socket.io EVENT packet (no ack id, no binary) to namespace
// nsp: "2", the namespace unless it is "/", then the JSON array of the event
// name and its arguments.
func Event(nsp, name string, args ...any) (Packet, error) {
	data, err := json.Marshal(append([]any{name}, args...))
	if err != nil {
		return Packet{}, fmt.Errorf("encode %q: %w", name, err)
	}
	return Packet{text: append(appendEventHeader(make([]byte, 0, len(nsp)+2+len(data)), nsp), data...)}, nil
}

func appendEventHeader(b []byte, nsp string) []byte {
	b = append(b, '2')
	if nsp != "/" {
		b = append(b, nsp...)
		b = append(b, ',')
	}
	return b
}

// MessagePacket is a "receive message" packet encoded once, except for its
// last argument: the recovery position, which is each socket's own.
type MessagePacket struct {
	Room    string
	Offset  uint64
	Session string // the publishing socket, which does not get its own message
	open    string // the packet up to the offsets argument
}

// EncodeMessage encodes the "receive message" packet of m to namespace nsp.
func EncodeMessage(nsp string, m Message, session string) MessagePacket {
	meta, _ := json.Marshal(m.Meta) // strings and numbers always encode
	b := make([]byte, 0, len(nsp)+len(m.Msg)+len(meta)+24)
	b = appendEventHeader(b, nsp)
	b = append(b, `["`+EventMessage+`",`...)
	b = append(b, m.Msg...)
	b = append(b, ',')
	b = append(b, meta...)
	return MessagePacket{Room: m.Room, Offset: m.Offset, Session: session, open: string(b)}
}

// appendText appends to b p's text completed with a socket's position (see
// EncodePosition), which is free of characters JSON would escape (keys are
// base64url, room names query-escaped). b grows at most once.
func (p MessagePacket) appendText(b []byte, key string, places []place) []byte {
	n := len(p.open) + len(key) + 5
	for _, pl := range places {
		n += len(pl.escaped) + 21
	}
	b = slices.Grow(b, n)
	b = append(b, p.open...)
	b = append(b, ',', '"')
	b = appendPosition(b, key, places)
	return append(b, '"', ']')
}

// Names of the events the gateway sends to clients.
const (
	EventMessage      = "receive message"
	EventMemberJoined = "member joined"
	EventMemberLeft   = "member left"
)

// Presence is the argument of "member joined" and "member left".
type Presence struct {
	Room string `json:"room"`
	User string `json:"user"`
}
