package app

import (
	"errors"
	"flag"
	"io"
	"strings"
	"testing"
	"time"
)

func TestParseConfig(t *testing.T) {
	tokens := []string{"--service-token", "s", "--admin-token", "a"}
	tests := []struct {
		name    string
		args    []string
		env     map[string]string
		check   func(t *testing.T, c Config)
		wantErr string
	}{
		{name: "defaults", args: tokens, check: func(t *testing.T, c Config) {
			if c.Listen != ":50051" || c.MetricsListen != ":9091" || c.Limits.MaxPayloadBytes != 64<<10 || c.Limits.DefaultHistoryMaxMessages != 10000 {
				t.Errorf("unexpected defaults: %+v", c)
			}
		}},
		{name: "env sets defaults", args: tokens, env: map[string]string{"PARLEY_ROOMS_LISTEN": ":7000", "PARLEY_ROOMS_DEDUPE_WINDOW": "1m"}, check: func(t *testing.T, c Config) {
			if c.Listen != ":7000" || c.Limits.DedupeWindow != time.Minute {
				t.Errorf("env not applied: listen %q dedupe %v", c.Listen, c.Limits.DedupeWindow)
			}
		}},
		{name: "flag beats env", args: append([]string{"--listen", ":8000"}, tokens...), env: map[string]string{"PARLEY_ROOMS_LISTEN": ":7000"}, check: func(t *testing.T, c Config) {
			if c.Listen != ":8000" {
				t.Errorf("listen = %q, want :8000", c.Listen)
			}
		}},
		{name: "tokens from env", env: map[string]string{"PARLEY_ROOMS_SERVICE_TOKEN": "s", "PARLEY_ROOMS_ADMIN_TOKEN": "a"}, check: func(t *testing.T, c Config) {
			if c.ServiceToken != "s" || c.AdminToken != "a" {
				t.Errorf("tokens not read from env")
			}
		}},
		{name: "tokens required", wantErr: "required"},
		{name: "tokens must differ", args: []string{"--service-token", "x", "--admin-token", "x"}, wantErr: "must differ"},
		{name: "bad env value", args: tokens, env: map[string]string{"PARLEY_ROOMS_MAX_PAGE_SIZE": "many"}, wantErr: "PARLEY_ROOMS_MAX_PAGE_SIZE"},
		{name: "non-positive limit", args: append([]string{"--max-payload-bytes", "0"}, tokens...), wantErr: "max-payload-bytes"},
		{name: "bad sync mode", args: append([]string{"--sqlite-synchronous", "off"}, tokens...), wantErr: "sqlite-synchronous"},
		{name: "stray argument", args: append(tokens, "extra"), wantErr: "unexpected arguments"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := parseConfig(tt.args, func(k string) string { return tt.env[k] }, io.Discard)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want it to mention %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tt.check(t, c)
		})
	}
}

func TestHelpNamesEnvVars(t *testing.T) {
	var out strings.Builder
	_, err := parseConfig([]string{"--help"}, func(string) string { return "" }, &out)
	if !errors.Is(err, flag.ErrHelp) {
		t.Fatalf("err = %v, want flag.ErrHelp", err)
	}
	for _, want := range []string{"-data-dir", "PARLEY_ROOMS_DATA_DIR", "PARLEY_ROOMS_SERVICE_TOKEN", "-max-payload-bytes"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("--help output lacks %q", want)
		}
	}
}
