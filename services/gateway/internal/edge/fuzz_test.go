package edge

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/zishang520/socket.io/servers/socket/v3"

	"github.com/parleyhq/parley/services/gateway/internal/wire"
)

// FuzzEvent sends any event name with any JSON arguments, as a client may:
// the socket must answer with exactly one well-formed ack whose code is one
// clients are told about, and never panic. The fakes do not fail, so an
// internal error, which is what a handler's panic becomes, is a failure too.
// Each event is sent as the library's decoder hands it over and, when
// wire.DecodeEvent decodes it, as Parley's parser does.
func FuzzEvent(f *testing.F) {
	seeds := []struct{ event, args string }{
		{"join", `["lobby"]`},
		{"join", `[""]`},
		{"join", `["room\u200bx"]`},
		{"leave", `[42]`},
		{"switch room", `[null]`},
		{"send message", `["lobby",{"text":"hi"},{"id":"m-1"}]`},
		{"send message", `["lobby","hi",{"id":5}]`},
		{"send message", `["lobby"]`},
		{"history", `["lobby",{"before":5,"limit":10}]`},
		{"history", `["lobby",{"before":1e300,"after":-1}]`},
		{"history", `["lobby",[1,2]]`},
		{"members", `[["lobby"]]`},
		{"rooms", `[]`},
		{"", `[]`},
		{"dance", `[{"a":{"b":[1,2,{"c":null}]}}]`},
	}
	for _, s := range seeds {
		f.Add(s.event, s.args)
	}
	known := map[Code]bool{"": true, CodeInvalidArgument: true, CodeNotFound: true, CodePermissionDenied: true,
		CodeResourceExhausted: true, CodeUnavailable: true, CodeUnimplemented: true}
	f.Fuzz(func(t *testing.T, event, rawArgs string) {
		var args []any
		if json.Unmarshal([]byte(rawArgs), &args) != nil {
			return // socket.io hands handlers decoded JSON only
		}
		forms := [][]any{args}
		name, _ := json.Marshal(event)
		if inner := strings.TrimSpace(rawArgs)[1:]; strings.TrimSpace(inner) != "]" {
			if p, ok := wire.DecodeEvent([]byte("2[" + string(name) + "," + inner)); ok {
				forms = append(forms, p.Data.([]any)[1:])
			}
		}
		for _, args := range forms {
			checkEvent(t, event, rawArgs, args, known)
		}
	})
}

// checkEvent sends event with args to a fresh socket and checks its ack.
func checkEvent(t *testing.T, event, rawArgs string, args []any, known map[Code]bool) {
	t.Helper()
	rel := newFakeRelay()
	c := newTestClient(t, Namespace{Name: "/", CreateRooms: true}, testLimits, &fakeRooms{}, rel)
	rel.in(c, "lobby")
	acks := 0
	var ack []any
	c.onEvent(event, append(args, socket.Ack(func(a []any, _ error) { acks, ack = acks+1, a })))
	if acks != 1 || len(ack) != 1 {
		t.Fatalf("%q %s: %d acks %v", event, rawArgs, acks, ack)
	}
	b, err := json.Marshal(ack[0])
	if err != nil {
		t.Fatalf("%q %s: ack does not encode: %v", event, rawArgs, err)
	}
	var got struct {
		OK    *bool `json:"ok"`
		Error *struct {
			Code    Code   `json:"code"`
			Message string `json:"message"`
		} `json:"error"`
	}
	if err := json.Unmarshal(b, &got); err != nil || got.OK == nil {
		t.Fatalf("%q %s: ack %s", event, rawArgs, b)
	}
	if !*got.OK && (got.Error == nil || !known[got.Error.Code] || got.Error.Code == "" || got.Error.Message == "") {
		t.Fatalf("%q %s: error ack %s", event, rawArgs, b)
	}
}
