package cli

import (
	"errors"
	"flag"
	"io"
	"strings"
	"testing"
	"time"
)

func TestEnvName(t *testing.T) {
	if got := EnvName("PARLEY_ROOMS_", "data-dir"); got != "PARLEY_ROOMS_DATA_DIR" {
		t.Errorf("EnvName = %q, want PARLEY_ROOMS_DATA_DIR", got)
	}
}

func TestParse(t *testing.T) {
	type values struct {
		listen  string
		timeout time.Duration
	}
	tests := []struct {
		name    string
		args    []string
		env     map[string]string
		want    values
		wantErr string
	}{
		{name: "defaults", want: values{":1", time.Second}},
		{name: "env sets defaults", env: map[string]string{"TEST_LISTEN": ":2", "TEST_CALL_TIMEOUT": "1m"}, want: values{":2", time.Minute}},
		{name: "flag beats env", args: []string{"--listen", ":3"}, env: map[string]string{"TEST_LISTEN": ":2"}, want: values{":3", time.Second}},
		{name: "bad env value", env: map[string]string{"TEST_CALL_TIMEOUT": "soon"}, wantErr: "TEST_CALL_TIMEOUT: parse error"},
		{name: "bad flag value", args: []string{"--call-timeout", "soon"}, wantErr: `invalid value "soon" for flag -call-timeout: parse error`},
		{name: "positional argument", args: []string{"--listen", ":3", "extra"}, wantErr: `unexpected arguments: ["extra"]`},
		{name: "help", args: []string{"--help"}, wantErr: flag.ErrHelp.Error()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got values
			fs := NewFlagSet("test", "TEST_", "Usage: test [flags]", io.Discard)
			fs.StringVar(&got.listen, "listen", ":1", "listen address")
			fs.DurationVar(&got.timeout, "call-timeout", time.Second, "deadline of each call")
			var gotErr string
			if err := fs.Parse(tt.args, func(k string) string { return tt.env[k] }); err != nil {
				gotErr = err.Error()
			}
			switch {
			case gotErr != tt.wantErr:
				t.Errorf("error %q, want %q", gotErr, tt.wantErr)
			case gotErr == "" && got != tt.want:
				t.Errorf("parsed %+v, want %+v", got, tt.want)
			}
		})
	}
}

// TestUsage checks the whole --help text: the header, the note on the
// environment, and each flag's variable beside its usage.
func TestUsage(t *testing.T) {
	var out strings.Builder
	fs := NewFlagSet("test", "TEST_", "Usage: test [flags]\n\nA test command.", &out)
	fs.String("data-dir", "./data", "where data goes")
	err := fs.Parse([]string{"--help"}, func(string) string { return "" })
	if !errors.Is(err, flag.ErrHelp) {
		t.Fatalf("err = %v, want flag.ErrHelp", err)
	}
	want := "Usage: test [flags]\n\nA test command.\nEvery flag may also be set by the environment variable named beside it.\n\n" +
		"  -data-dir string\n    \twhere data goes (env TEST_DATA_DIR) (default \"./data\")\n"
	if out.String() != want {
		t.Errorf("--help printed\n%s\nwant\n%s", out.String(), want)
	}
}
