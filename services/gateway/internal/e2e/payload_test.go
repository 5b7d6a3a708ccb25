package e2e

import (
	"strings"
	"testing"
)

// TestMessageKeptAsSent sends a chat message over each transport, by raw
// Engine.IO packets, and reads it at another member: its JSON must arrive
// exactly as the sender wrote it (key order, characters JSON may escape, a
// number no float holds), not decoded and encoded again on the way.
func TestMessageKeptAsSent(t *testing.T) {
	s := startStack(t)
	_, url := s.gateway("127.0.0.1:0")
	const msg = `{"z":1,"a":"<b>&\u00e9","n":12345678901234567890}`
	send := `421["send message","room1",` + msg + `]`
	senders := map[string]func(t *testing.T) (ack string){
		"websocket": func(t *testing.T) string {
			r := dialRaw(t, url)
			if ok, payload := r.connect("", nil); !ok {
				t.Fatalf("connect refused: %v", payload)
			}
			r.send(send)
			return r.read("431")
		},
		"polling": func(t *testing.T) string {
			c, _ := openPolling(t, url+"/socket.io/?EIO=4&transport=polling")
			var buf []string
			c.post("40")
			if p := c.next(&buf); !strings.HasPrefix(p, "40") {
				t.Fatalf("CONNECT reply %q", p)
			}
			c.post(send)
			for {
				if p := c.next(&buf); strings.HasPrefix(p, "431") {
					return p
				}
			}
		},
	}
	for name, sendOver := range senders {
		t.Run(name, func(t *testing.T) {
			bob := dialRaw(t, url)
			if ok, payload := bob.connect("", nil); !ok {
				t.Fatalf("connect refused: %v", payload)
			}
			if ack := sendOver(t); !strings.Contains(ack, `"ok":true`) {
				t.Fatalf("ack %s", ack)
			}
			got := bob.read(`42["receive message"`)
			if !strings.HasPrefix(got, `42["receive message",`+msg+`,`) {
				t.Fatalf("bob received %s; want the message as sent: %s", got, msg)
			}
		})
	}
}
