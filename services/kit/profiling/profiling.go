// Package profiling serves Go's runtime profiles (net/http/pprof) for an
// operator who turns them on with --pprof-listen: on a listener of their
// own, never on a service's public or metrics address, and off by default.
package profiling

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"time"
)

// AddFlag registers --pprof-listen, the address to serve profiles on.
func AddFlag(fs *flag.FlagSet, addr *string) {
	fs.StringVar(addr, "pprof-listen", "", "serve Go runtime profiles (/debug/pprof/) on this address, e.g. 127.0.0.1:6060; off when empty. Profiles reveal internals: keep it on loopback or a private network")
}

// Handler serves the profiles under /debug/pprof/.
func Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	return mux
}

// Listen opens addr for Serve; with addr empty, profiling is off and it
// returns nil.
func Listen(ctx context.Context, addr string) (net.Listener, error) {
	if addr == "" {
		return nil, nil
	}
	var lc net.ListenConfig
	lis, err := lc.Listen(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("pprof listen: %w", err)
	}
	return lis, nil
}

// Serve serves the profiles on lis until ctx ends; with lis nil it returns
// at once. Profiles in progress are cut at shutdown: nothing depends on them.
func Serve(ctx context.Context, lis net.Listener, log *slog.Logger) error {
	if lis == nil {
		return nil
	}
	srv := &http.Server{Handler: Handler(), ReadHeaderTimeout: 5 * time.Second, ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelError)}
	stop := context.AfterFunc(ctx, func() { srv.Close() })
	defer stop()
	if err := srv.Serve(lis); !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("pprof server: %w", err)
	}
	return nil
}

// Addr is lis's address for a log line, or "off".
func Addr(lis net.Listener) string {
	if lis == nil {
		return "off"
	}
	return lis.Addr().String()
}
