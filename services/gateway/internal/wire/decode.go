package wire

import (
	"bytes"
	"encoding/json"
	"sync/atomic"
	"unicode/utf8"

	"github.com/zishang520/socket.io/parsers/socket/v3/parser"
	"github.com/zishang520/socket.io/v3/pkg/types"
)

// Parser is the socket.io parser the gateway gives the library: the
// library's own, except that a text EVENT packet, most of what clients send,
// is decoded here. The library decodes every argument into maps and slices,
// which the gateway then encodes again to store a message; here an object or
// array argument stays the JSON text the client sent (a json.RawMessage),
// and is stored as it came. Every packet this decoder is not sure to read
// exactly as the library would goes to the library's decoder, so the two
// differ only in that one respect.
type Parser struct{}

var _ parser.Parser = Parser{}

// NewEncoder returns the library's encoder.
func (Parser) NewEncoder() parser.Encoder { return parser.NewEncoder() }

// NewDecoder returns a decoder for one connection.
func (Parser) NewDecoder() parser.Decoder { return &decoder{Decoder: parser.NewDecoder()} }

// decoder wraps the library's, whose events (the "decoded" packets the
// library listens for) it emits too.
type decoder struct {
	parser.Decoder
	// binary is set once the client sent the header of a binary packet, or
	// data in any form but the text buffer the transports hand over (which
	// may be an attachment): the library's decoder may then be gathering a
	// binary packet's attachments, and must see every packet from then on.
	binary atomic.Bool
}

func (d *decoder) Add(data any) error {
	if !d.binary.Load() {
		if text, ok := data.(*types.StringBuffer); ok {
			b := text.Bytes()
			if p, ok := DecodeEvent(b); ok {
				d.Emit("decoded", p)
				return nil
			}
			if len(b) > 0 && (b[0] == '0'+byte(parser.BINARY_EVENT) || b[0] == '0'+byte(parser.BINARY_ACK)) {
				d.binary.Store(true)
			}
		} else {
			d.binary.Store(true)
		}
	}
	return d.Decoder.Add(data)
}

// Limits of the library's decoder, which refuses packets past them.
const (
	maxNamespaceBytes = parser.DefaultMaxNamespaceLength
	// maxAckIDDigits: every id of up to this many digits fits a uint64.
	maxAckIDDigits = 19
)

// DecodeEvent decodes the text of a socket.io EVENT packet without binary
// attachments ("2", the namespace unless it is "/", the ack id if any, then
// the JSON array of the event name and its arguments), or reports false for
// any other text, and for any it does not decode exactly as the library's
// decoder does but for objects and arrays, which it leaves as
// json.RawMessage. text is not retained.
func DecodeEvent(text []byte) (*parser.Packet, bool) {
	if len(text) < 2 || text[0] != '0'+byte(parser.EVENT) {
		return nil, false
	}
	rest := text[1:]
	nsp := "/"
	if rest[0] == '/' {
		i := bytes.IndexByte(rest, ',')
		if i < 0 || i > maxNamespaceBytes {
			return nil, false
		}
		nsp = string(rest[:i])
		rest = rest[i+1:]
	}
	var id *uint64
	n, v := 0, uint64(0)
	for ; n < len(rest) && rest[n] >= '0' && rest[n] <= '9'; n++ {
		if n == maxAckIDDigits {
			return nil, false
		}
		v = v*10 + uint64(rest[n]-'0')
	}
	if n > 0 {
		id = &v
		rest = rest[n:]
	}
	// Invalid UTF-8 is left to the library, which replaces it: raw text
	// kept as it came must be valid for the websocket text frames it goes on
	// in.
	if len(rest) == 0 || rest[0] != '[' || !utf8.Valid(rest) {
		return nil, false
	}
	args, ok := decodeArgs(rest)
	if !ok {
		return nil, false
	}
	return &parser.Packet{Type: parser.EVENT, Nsp: nsp, Data: args, Id: id}, true
}

// decodeArgs decodes a JSON array whose first element is an event name
// socket.io allows, with the library's types for strings, numbers, booleans
// and null and the raw text of objects and arrays.
func decodeArgs(array []byte) ([]any, bool) {
	var raw []json.RawMessage
	if err := json.Unmarshal(array, &raw); err != nil || len(raw) == 0 {
		return nil, false
	}
	args := make([]any, len(raw))
	for i, r := range raw {
		switch r[0] {
		case '{', '[':
			args[i] = r
		default:
			// json.RawMessage holds its value with no space around it, so
			// its first byte says what it is; a scalar decodes into any as
			// the library decodes it.
			var v any
			if err := json.Unmarshal(r, &v); err != nil {
				return nil, false
			}
			args[i] = v
		}
	}
	name, ok := args[0].(string)
	if !ok || parser.ReservedEvents.Has(name) {
		return nil, false
	}
	return args, true
}
