package e2e

import (
	"strings"
	"testing"
)

// TestMessageKeptAsSent sends a chat message over a raw websocket and reads
// it at another member: its JSON must arrive exactly as the sender wrote it
// (key order, characters JSON may escape, a number no float holds), not
// decoded and encoded again on the way.
func TestMessageKeptAsSent(t *testing.T) {
	s := startStack(t)
	_, url := s.gateway("127.0.0.1:0")
	alice, bob := dialRaw(t, url), dialRaw(t, url)
	for _, r := range []*rawSocket{alice, bob} {
		if ok, payload := r.connect("", nil); !ok {
			t.Fatalf("connect refused: %v", payload)
		}
	}
	const msg = `{"z":1,"a":"<b>&\u00e9","n":12345678901234567890}`
	alice.send(`421["send message","room1",` + msg + `]`)
	if ack := alice.read("431"); !strings.Contains(ack, `"ok":true`) {
		t.Fatalf("ack %s", ack)
	}
	got := bob.read(`42["receive message"`)
	if !strings.HasPrefix(got, `42["receive message",`+msg+`,`) {
		t.Fatalf("bob received %s; want the message as sent: %s", got, msg)
	}
}
