package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/zishang520/socket.io/servers/socket/v3"
)

// runProtocolFixture serves the namespaces and handlers the socket.io
// protocol test suite expects, on the gateway's own socket.io server wiring
// (socketOptions), so that the suite can be pointed at Parley's socket.io
// stack. It needs no rooms service.
func runProtocolFixture(ctx context.Context, cfg Config, log *slog.Logger) error {
	// The suite's timings and limits.
	cfg.PingInterval, cfg.PingTimeout = 300*time.Millisecond, 200*time.Millisecond
	cfg.CORSOrigins = "*"
	var draining atomic.Bool
	opts := socketOptions(cfg, &draining)
	opts.SetMaxHttpBufferSize(1e6)
	opts.SetConnectionStateRecovery(nil)
	io := socket.NewServer(nil, opts)

	io.Of("/", nil).On("connection", func(args ...any) {
		s := args[0].(*socket.Socket)
		s.Emit("auth", s.Handshake().Auth)
		s.On("message", func(args ...any) { s.Emit("message-back", args...) })
		s.On("message-with-ack", func(args ...any) {
			if ack, ok := args[len(args)-1].(socket.Ack); ok {
				ack(args[:len(args)-1], nil)
			}
		})
	})
	io.Of("/custom", nil).On("connection", func(args ...any) {
		s := args[0].(*socket.Socket)
		s.Emit("auth", s.Handshake().Auth)
	})

	mux := http.NewServeMux()
	mux.Handle("/socket.io/", io.ServeHandler(nil))
	var lc net.ListenConfig
	lis, err := lc.Listen(ctx, "tcp", cfg.Listen)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	log.Info("protocol fixture serving", "addr", lis.Addr().String())
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(lis) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	io.Close(nil)
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cfg.ShutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
