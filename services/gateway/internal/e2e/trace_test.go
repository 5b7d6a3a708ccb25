package e2e

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"
)

// logLines returns the JSON log lines of log whose msg is msg.
func logLines(log, msg string) []map[string]any {
	var out []map[string]any
	for _, l := range strings.Split(log, "\n") {
		var m map[string]any
		if json.Unmarshal([]byte(l), &m) == nil && m["msg"] == msg {
			out = append(out, m)
		}
	}
	return out
}

// TestEventTracedThroughBothLogs follows one client event by its request id:
// the gateway logs the join it handled with an id made of the socket id and
// the event's number, and the rooms service logs the JoinRoom call the join
// caused with the same id; the auto-join of the connection is logged with
// the socket id and number 0.
func TestEventTracedThroughBothLogs(t *testing.T) {
	s := startStack(t)
	gw, url := s.gateway("127.0.0.1:0")
	c := dialGo(t, url+"/", nil)
	room := fmt.Sprintf("traced-%d", time.Now().UnixNano())
	c.mustOK("join", room)

	var id string
	eventually(t, 10*time.Second, func() error {
		for _, l := range logLines(gw.Log(), "event handled") {
			if l["event"] == "join" && l["outcome"] == "ok" {
				id, _ = l["request_id"].(string)
				return nil
			}
		}
		return fmt.Errorf("no \"event handled\" line for the join in the gateway's log")
	})
	sid, n, ok := strings.Cut(id, ":")
	if !ok || sid == "" || n == "" {
		t.Fatalf("request id %q is not socket id:number", id)
	}
	for _, want := range []string{id, sid + ":0"} {
		eventually(t, 10*time.Second, func() error {
			var others []any
			for _, l := range logLines(s.rooms.Log(), "finished call") {
				if l["grpc.method"] != "JoinRoom" {
					continue
				}
				if l["request_id"] == want {
					return nil
				}
				others = append(others, l["request_id"])
			}
			return fmt.Errorf("no JoinRoom call logged with request id %q; JoinRoom calls had %v", want, others)
		})
	}
}
