package logging

import (
	"encoding/json"
	"flag"
	"strings"
	"testing"
)

func TestNew(t *testing.T) {
	tests := []struct {
		name    string
		format  string
		level   string
		want    string // what the warning logged below starts with
		wantErr string
	}{
		{name: "json", format: "json", level: "info", want: `{"time":`},
		{name: "text", format: "text", level: "debug", want: "time="},
		{name: "level filters", format: "text", level: "error", want: ""},
		{name: "bad level", format: "json", level: "loud", wantErr: `--log-level: slog: level string "loud": unknown name`},
		{name: "bad format", format: "xml", level: "info", wantErr: `--log-format "xml": want text or json`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out strings.Builder
			log, err := New(tt.format, tt.level, &out)
			if tt.wantErr != "" {
				if err == nil || err.Error() != tt.wantErr {
					t.Fatalf("err = %v, want %s", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			log.Warn("disk nearly full", "free", "1%")
			if !strings.HasPrefix(out.String(), tt.want) || (tt.want == "") != (out.Len() == 0) {
				t.Errorf("logged %q, want it to start with %q", out.String(), tt.want)
			}
			if tt.format == "json" {
				var line map[string]any
				if err := json.Unmarshal([]byte(out.String()), &line); err != nil || line["msg"] != "disk nearly full" || line["free"] != "1%" {
					t.Errorf("logged %q (%v), want one JSON record with msg and free", out.String(), err)
				}
			}
		})
	}
}

func TestAddFlags(t *testing.T) {
	var format, level string
	fs := flag.NewFlagSet("test", flag.ContinueOnError)
	AddFlags(fs, &format, &level)
	if err := fs.Parse(nil); err != nil {
		t.Fatal(err)
	}
	if format != "text" || level != "info" {
		t.Errorf("defaults %q, %q, want text, info", format, level)
	}
	if err := fs.Parse([]string{"--log-format", "json", "--log-level", "debug"}); err != nil {
		t.Fatal(err)
	}
	if format != "json" || level != "debug" {
		t.Errorf("parsed %q, %q, want json, debug", format, level)
	}
	if _, err := New(format, level, &strings.Builder{}); err != nil {
		t.Errorf("New refuses the flags' values: %v", err)
	}
}
