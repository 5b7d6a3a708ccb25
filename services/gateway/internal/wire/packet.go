package wire

import (
	"encoding/json"
	"fmt"
	"strings"
)

// Packet is an encoded socket.io packet, shared by every socket it goes to.
type Packet struct {
	text string
}

// Event encodes a socket.io EVENT packet (no ack id, no binary) to namespace
// nsp: "2", the namespace unless it is "/", then the JSON array of the event
// name and its arguments.
func Event(nsp, name string, args ...any) (Packet, error) {
	data, err := json.Marshal(append([]any{name}, args...))
	if err != nil {
		return Packet{}, fmt.Errorf("encode %q: %w", name, err)
	}
	var b strings.Builder
	eventHeader(&b, nsp)
	b.Write(data)
	return Packet{text: b.String()}, nil
}

func eventHeader(b *strings.Builder, nsp string) {
	b.WriteByte('2')
	if nsp != "/" {
		b.WriteString(nsp)
		b.WriteByte(',')
	}
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
	var b strings.Builder
	b.Grow(len(nsp) + len(m.Msg) + len(meta) + 24)
	eventHeader(&b, nsp)
	b.WriteString(`["` + EventMessage + `",`)
	b.Write(m.Msg)
	b.WriteByte(',')
	b.Write(meta)
	return MessagePacket{Room: m.Room, Offset: m.Offset, Session: session, open: b.String()}
}

// text completes p with a socket's position, which EncodePosition keeps free
// of characters JSON would escape (keys are base64url).
func (p MessagePacket) text(position string) string {
	return p.open + `,"` + position + `"]`
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
