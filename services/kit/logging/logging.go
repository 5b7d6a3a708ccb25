// Package logging builds the slog logger of Parley's service binaries from
// their --log-format and --log-level flags.
package logging

import (
	"flag"
	"fmt"
	"io"
	"log/slog"
)

// AddFlags defines --log-format (text or json, default text) and --log-level
// (default info) on fs, storing their values in format and level.
func AddFlags(fs *flag.FlagSet, format, level *string) {
	fs.StringVar(format, "log-format", "text", "log format: text or json")
	fs.StringVar(level, "log-level", "info", "log level: debug, info, warn or error")
}

// CheckFormat refuses a --log-format other than text or json. Services call
// it when validating their configuration, so that a bad format is reported
// together with every other configuration error.
func CheckFormat(format string) error {
	if format != "text" && format != "json" {
		return fmt.Errorf("--log-format %q: want text or json", format)
	}
	return nil
}

// New returns a logger that writes records at level and above to w, as text
// or as one JSON object a line (which tests and log shippers parse).
func New(format, level string, w io.Writer) (*slog.Logger, error) {
	if err := CheckFormat(format); err != nil {
		return nil, err
	}
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("--log-level: %w", err)
	}
	opts := &slog.HandlerOptions{Level: l}
	if format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return slog.New(slog.NewTextHandler(w, opts)), nil
}
