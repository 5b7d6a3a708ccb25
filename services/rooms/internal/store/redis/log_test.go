package redis

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"testing"
)

func TestClientLogIsStructured(t *testing.T) {
	var out bytes.Buffer
	clientLog{slog.New(slog.NewJSONHandler(&out, nil))}.Printf(t.Context(), "redis: discarding bad PubSub connection: %s", "EOF")
	var line map[string]any
	if err := json.Unmarshal(out.Bytes(), &line); err != nil {
		t.Fatalf("not one JSON line: %q", out.String())
	}
	if line["level"] != "WARN" || line["msg"] != "redis client" || line["detail"] != "redis: discarding bad PubSub connection: EOF" {
		t.Errorf("logged %v", line)
	}
}
