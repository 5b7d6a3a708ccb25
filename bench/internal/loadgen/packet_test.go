package loadgen

import (
	"testing"
)

func TestClassify(t *testing.T) {
	tests := []struct {
		in   string
		want kind
	}{
		{``, kindOther},
		{`0{"sid":"a"}`, kindOther},
		{`2`, kindPing},
		{`1`, kindClose},
		{`41`, kindClose},
		{`40{"sid":"x","pid":"y"}`, kindConnect},
		{`44{"message":"unauthorized"}`, kindConnectError},
		{`431[{"ok":true}]`, kindAck},
		{`42["receive message",{"s":1}]`, kindMessage},
		{`42["member joined",{"room":"r","user":"u"}]`, kindPresence},
		{`42["member left",{"room":"r","user":"u"}]`, kindPresence},
		{`42["other",1]`, kindEvent},
		{`6`, kindOther},
	}
	for _, tt := range tests {
		if got := classify([]byte(tt.in)); got != tt.want {
			t.Errorf("classify(%q) = %v, want %v", tt.in, got, tt.want)
		}
	}
}

func TestAckID(t *testing.T) {
	tests := []struct {
		in     string
		want   int
		wantOK bool
	}{
		{`431[{"ok":true}]`, 1, true},
		{`43127[]`, 127, true},
		{`43[]`, 0, false},
	}
	for _, tt := range tests {
		got, ok := ackID([]byte(tt.in))
		if got != tt.want || ok != tt.wantOK {
			t.Errorf("ackID(%q) = %d, %v; want %d, %v", tt.in, got, ok, tt.want, tt.wantOK)
		}
	}
}

func TestParseMessage(t *testing.T) {
	tests := []struct {
		name         string
		in           string
		want         message
		wantPosition string
		wantOK       bool
	}{
		{name: "node: the message only", in: `42["receive message",{"s":3,"q":17,"t":123456789}]`,
			want: message{3, 17, 123456789}, wantOK: true},
		{name: "parley: meta and position",
			in:   `42["receive message",{"s":3,"q":17,"t":5},{"room":"r1","id":"x","offset":9,"from":"guest-a","ts":1},"k3y|r1=9"]`,
			want: message{3, 17, 5}, wantPosition: "k3y|r1=9", wantOK: true},
		{name: "parley: meta, no position", in: `42["receive message",{"s":1,"q":2,"t":3},{"room":"r1","offset":9}]`,
			want: message{1, 2, 3}, wantOK: true},
		{name: "keys reordered and spaced", in: `42["receive message", {"t": 5, "q": 2, "s": 1}]`,
			want: message{1, 2, 5}, wantOK: true},
		{name: "a key missing", in: `42["receive message",{"s":1,"q":2}]`},
		{name: "not an object", in: `42["receive message","hello"]`},
		{name: "not a number", in: `42["receive message",{"s":"a","q":2,"t":3}]`},
		{name: "unterminated", in: `42["receive message",{"s":1`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, position, ok := parseMessage([]byte(tt.in))
			if ok != tt.wantOK || got != tt.want || string(position) != tt.wantPosition {
				t.Errorf("parseMessage = %+v, %q, %v; want %+v, %q, %v", got, position, ok, tt.want, tt.wantPosition, tt.wantOK)
			}
		})
	}
}

func TestAppendSendRoundTrip(t *testing.T) {
	m := message{sender: 42, id: 1 << 40, sent: 987654321}
	b := appendSend(nil, "r7", m)
	if want := `42["send message","r7",{"s":42,"q":1099511627776,"t":987654321}]`; string(b) != want {
		t.Fatalf("appendSend = %s, want %s", b, want)
	}
	// What the server sends back has the same object after another name.
	back := append([]byte(`42["receive message",`), b[len(`42["send message","r7",`):]...)
	got, _, ok := parseMessage(back)
	if !ok || got != m {
		t.Errorf("parsed back %+v, %v; want %+v", got, ok, m)
	}
}

func TestParseMessageDoesNotAllocate(t *testing.T) {
	p := []byte(`42["receive message",{"s":3,"q":17,"t":5},{"room":"r1","offset":9},"k3y|r1=9"]`)
	if n := testing.AllocsPerRun(100, func() { parseMessage(p) }); n != 0 {
		t.Errorf("parseMessage allocates %v times a message", n)
	}
}
