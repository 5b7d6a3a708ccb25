package wire

import (
	"encoding/json"
	"reflect"
	"testing"

	"github.com/zishang520/socket.io/parsers/socket/v3/parser"
	"github.com/zishang520/socket.io/v3/pkg/types"
)

// libraryDecode decodes text with the library's own decoder.
func libraryDecode(text string) (*parser.Packet, error) {
	return decodeWith(parser.NewDecoder(), text)
}

func decodeWith(d parser.Decoder, text string) (*parser.Packet, error) {
	var got *parser.Packet
	d.On("decoded", func(args ...any) { got = args[0].(*parser.Packet) })
	err := d.Add(types.NewStringBuffer([]byte(text)))
	return got, err
}

// plain turns the raw JSON arguments DecodeEvent leaves into the values the
// library decodes them to.
func plain(t testing.TB, p *parser.Packet) *parser.Packet {
	t.Helper()
	args, ok := p.Data.([]any)
	if !ok {
		return p
	}
	out := make([]any, len(args))
	for i, a := range args {
		if raw, ok := a.(json.RawMessage); ok {
			var v any
			if err := json.Unmarshal(raw, &v); err != nil {
				t.Fatalf("argument %d: %q is not JSON: %v", i, raw, err)
			}
			a = v
		}
		out[i] = a
	}
	q := *p
	q.Data = out
	return &q
}

// sameAsLibrary checks that what DecodeEvent made of text is what the
// library's decoder makes of it, raw arguments aside.
func sameAsLibrary(t testing.TB, text string, p *parser.Packet) {
	t.Helper()
	want, err := libraryDecode(text)
	if err != nil {
		t.Fatalf("%q: decoded here, but the library refuses it: %v", text, err)
	}
	if got := plain(t, p); !reflect.DeepEqual(got, want) {
		t.Fatalf("%q: decoded %#v here, the library %#v", text, got, want)
	}
}

func TestDecodeEvent(t *testing.T) {
	id := func(v uint64) *uint64 { return &v }
	tests := []struct {
		name string
		text string
		want *parser.Packet // nil: left to the library
	}{
		{"chat message", `2["send message","room1",{"text":"hi","n":1},{"id":"m-1"}]`,
			&parser.Packet{Type: parser.EVENT, Nsp: "/", Data: []any{"send message", "room1", json.RawMessage(`{"text":"hi","n":1}`), json.RawMessage(`{"id":"m-1"}`)}}},
		{"ack id", `212["join","room1"]`,
			&parser.Packet{Type: parser.EVENT, Nsp: "/", Data: []any{"join", "room1"}, Id: id(12)}},
		{"namespace and ack id", `2/chat,7["history","r",{"limit":5}]`,
			&parser.Packet{Type: parser.EVENT, Nsp: "/chat", Data: []any{"history", "r", json.RawMessage(`{"limit":5}`)}, Id: id(7)}},
		{"namespace, no ack", `2/chat,["rooms"]`,
			&parser.Packet{Type: parser.EVENT, Nsp: "/chat", Data: []any{"rooms"}}},
		{"scalars", `2["e",1.5,-2,true,false,null,"\u00e9\n"]`,
			&parser.Packet{Type: parser.EVENT, Nsp: "/", Data: []any{"e", 1.5, -2.0, true, false, nil, "é\n"}}},
		{"array argument, spaces", `2[ "e" , [1, {"a" : 2}] ]`,
			&parser.Packet{Type: parser.EVENT, Nsp: "/", Data: []any{"e", json.RawMessage(`[1, {"a" : 2}]`)}}},
		{"largest ack id kept", `29999999999999999999["e"]`,
			&parser.Packet{Type: parser.EVENT, Nsp: "/", Data: []any{"e"}, Id: id(9999999999999999999)}},

		{"connect", `0/chat,{"token":"x"}`, nil},
		{"ack", `31["ok"]`, nil},
		{"binary event", `51-["e",{"_placeholder":true,"num":0}]`, nil},
		{"numeric event name", `2[1,"a"]`, nil},
		{"reserved event name", `2["disconnect"]`, nil},
		{"empty array", `2[]`, nil},
		{"not an array", `2{"a":1}`, nil},
		{"trailing text", `2["e"]x`, nil},
		{"space before the array", `2 ["e"]`, nil},
		{"invalid JSON", `2["e",{]`, nil},
		{"invalid UTF-8", "2[\"e\",{\"t\":\"\xff\"}]", nil},
		{"twenty-digit ack id", `212345678901234567890["e"]`, nil},
		{"namespace without comma", `2/chat`, nil},
		{"number out of range", `2["e",1e999]`, nil},
		{"only a type", `2`, nil},
		{"empty", ``, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := DecodeEvent([]byte(tt.text))
			if tt.want == nil {
				if ok {
					t.Fatalf("decoded %#v, want it left to the library", got)
				}
				return
			}
			if !ok {
				t.Fatal("left to the library, want it decoded here")
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("decoded %#v, want %#v", got, tt.want)
			}
			sameAsLibrary(t, tt.text, got)
		})
	}
}

// FuzzDecodeEvent checks that whatever DecodeEvent decodes, the library's
// decoder decodes the same way.
func FuzzDecodeEvent(f *testing.F) {
	for _, s := range []string{
		`2["send message","room1",{"text":"hi"},{"id":"m-1"}]`, `2/chat,7["history","r",{"limit":5}]`,
		`2["e",1.5,-2,true,null,"\u00e9"]`, `2["disconnect"]`, `2[1]`, `29999999999999999999["e"]`,
		`2/a,b,["e"]`, `2["e"] `, "2[\"e\",\"\xff\"]", `0/chat,{}`, `51-["e",{"_placeholder":true,"num":0}]`,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if p, ok := DecodeEvent([]byte(s)); ok {
			sameAsLibrary(t, s, p)
		}
	})
}

// TestDecoderHandsTheRestToTheLibrary checks the decoder socket.io gets:
// events decoded here, everything else by the library, and once a binary
// packet began, events too, since its attachments may follow.
func TestDecoderHandsTheRestToTheLibrary(t *testing.T) {
	d := Parser{}.NewDecoder()
	p, err := decodeWith(d, `2["e",{"a":1}]`)
	if err != nil || p == nil {
		t.Fatalf("event: %v, %v", p, err)
	}
	if _, raw := p.Data.([]any)[1].(json.RawMessage); !raw {
		t.Fatalf("event decoded by the library: %#v", p.Data)
	}
	p, err = decodeWith(d, `0/chat,{"token":"x"}`)
	if err != nil || p == nil || p.Type != parser.CONNECT || p.Nsp != "/chat" {
		t.Fatalf("connect: %#v, %v", p, err)
	}
	if _, err := decodeWith(d, `2["e"]x`); err != nil {
		t.Fatalf("an event the library reads: %v", err)
	}
	if _, err := decodeWith(d, `3`); err == nil {
		t.Fatal("an invalid packet was accepted")
	}

	d = Parser{}.NewDecoder()
	if p, err := decodeWith(d, `51-["e",{"_placeholder":true,"num":0}]`); err != nil || p != nil {
		t.Fatalf("binary event header: %#v, %v", p, err)
	}
	// A text packet before the attachment is refused by the library's
	// decoder, which is gathering the binary event.
	if _, err := decodeWith(d, `2["e",{"a":1}]`); err == nil {
		t.Fatal("a text packet amid a binary event's attachments was accepted")
	}
}
