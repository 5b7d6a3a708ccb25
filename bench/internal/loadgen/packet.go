package loadgen

import (
	"bytes"
	"strconv"
)

// kind is what a websocket frame from the server is, as far as the generator
// cares: one Engine.IO 4 packet, and within a message packet one socket.io v5
// packet of namespace "/".
type kind int

const (
	kindOther kind = iota
	kindPing
	kindClose        // Engine.IO close, or socket.io disconnect
	kindConnect      // socket.io CONNECT: 40{"sid":...,"pid":...}
	kindConnectError // socket.io CONNECT_ERROR
	kindAck          // 43<id>[...]
	kindMessage      // 42["receive message",...]
	kindPresence     // 42["member joined",...] or 42["member left",...]
	kindEvent        // any other event
)

const (
	prefixMessage  = `42["receive message",`
	prefixPresence = `42["member `
)

// classify reads only the first bytes of a frame: most frames are messages,
// and everything past the prefix is parsed only when needed.
func classify(p []byte) kind {
	if len(p) == 0 {
		return kindOther
	}
	switch p[0] {
	case '1':
		return kindClose
	case '2':
		return kindPing
	case '4':
	default:
		return kindOther
	}
	if len(p) < 2 {
		return kindOther
	}
	switch p[1] {
	case '0':
		return kindConnect
	case '1':
		return kindClose
	case '3':
		return kindAck
	case '4':
		return kindConnectError
	case '2':
		switch {
		case bytes.HasPrefix(p, []byte(prefixMessage)):
			return kindMessage
		case bytes.HasPrefix(p, []byte(prefixPresence)):
			return kindPresence
		}
		return kindEvent
	}
	return kindOther
}

// ackID parses the id of an ack packet, 43<id>[...].
func ackID(p []byte) (int, bool) {
	i := 2
	for i < len(p) && p[i] >= '0' && p[i] <= '9' {
		i++
	}
	id, err := strconv.Atoi(string(p[2:i]))
	return id, err == nil
}

// message is the payload the generator sends and reads back:
// {"s":<sender>,"q":<message id>,"t":<ns since the generator started>}.
type message struct {
	sender, id, sent int64
}

// parseMessage reads a "receive message" packet: the message object, its
// first argument, and the recovery position if the server sends one as the
// last argument (Parley does; Node's reference server sends only the
// message). position aliases p. The message object is flat, with numbers
// only, so its end is its first '}'.
func parseMessage(p []byte) (m message, position []byte, ok bool) {
	rest := p[len(prefixMessage):]
	rest = bytes.TrimLeft(rest, " ")
	if len(rest) == 0 || rest[0] != '{' {
		return message{}, nil, false
	}
	end := bytes.IndexByte(rest, '}')
	if end < 0 {
		return message{}, nil, false
	}
	objEnd := len(p) - len(rest) + end
	var seen int
	obj := rest[1:end]
	for len(obj) > 0 {
		q := bytes.IndexByte(obj, '"')
		if q < 0 || q+3 > len(obj) || obj[q+2] != '"' {
			break
		}
		key := obj[q+1]
		obj = obj[q+3:]
		obj = bytes.TrimLeft(obj, " :")
		n := 0
		for n < len(obj) && (obj[n] == '-' || obj[n] >= '0' && obj[n] <= '9') {
			n++
		}
		v, err := strconv.ParseInt(string(obj[:n]), 10, 64)
		if err != nil {
			return message{}, nil, false
		}
		obj = obj[n:]
		switch key {
		case 's':
			m.sender, seen = v, seen|1
		case 'q':
			m.id, seen = v, seen|2
		case 't':
			m.sent, seen = v, seen|4
		}
	}
	if seen != 7 {
		return message{}, nil, false
	}
	// The position never holds a quote (Parley keeps it free of characters
	// JSON would escape), so the last string argument is what lies between
	// the last two quotes.
	if bytes.HasSuffix(p, []byte(`"]`)) {
		body := p[:len(p)-2]
		if i := bytes.LastIndexByte(body, '"'); i >= 0 && i > objEnd {
			position = body[i+1:]
		}
	}
	return m, position, true
}

// appendSend appends the "send message" packet of m to room.
func appendSend(b []byte, room string, m message) []byte {
	b = append(b, `42["send message","`...)
	b = append(b, room...)
	b = append(b, `",{"s":`...)
	b = strconv.AppendInt(b, m.sender, 10)
	b = append(b, `,"q":`...)
	b = strconv.AppendInt(b, m.id, 10)
	b = append(b, `,"t":`...)
	b = strconv.AppendInt(b, m.sent, 10)
	return append(b, "}]"...)
}
