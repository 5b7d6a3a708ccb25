package app

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/zishang520/socket.io/servers/engine/v3"
	"github.com/zishang520/socket.io/servers/engine/v3/config"
	"github.com/zishang520/socket.io/servers/socket/v3"
	"github.com/zishang520/socket.io/v3/pkg/types"

	"github.com/parleyhq/parley/services/gateway/internal/transport"
)

// runProtocolFixture serves the namespaces and handlers the socket.io
// protocol test suite expects, on the gateway's own socket.io server wiring
// (socketOptions), and the Engine.IO echo server the Engine.IO suite expects
// at /engine.io/, so that both suites can be pointed at Parley's stack. It
// needs no rooms service.
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

	eio := engineEcho()
	defer eio.Close()
	mux := http.NewServeMux()
	mux.Handle("/socket.io/", checkPolling(io.ServeHandler(nil), io.Engine, opts.MaxHttpBufferSize()))
	mux.Handle("/engine.io/", checkPolling(eio, func() engine.BaseServer { return eio }, 1e6))
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

// engineEcho is the plain Engine.IO server the Engine.IO protocol test suite
// expects at /engine.io/: the same timings and limits, every message sent
// back as it came (text as text, binary as binary).
func engineEcho() engine.Server {
	opts := config.DefaultServerOptions()
	opts.SetPingInterval(300 * time.Millisecond)
	opts.SetPingTimeout(200 * time.Millisecond)
	opts.SetMaxHttpBufferSize(1e6)
	opts.SetCors(&types.Cors{Origin: "*"})
	opts.SetTransports(types.NewSet(engine.Polling, transport.WebSocket))
	eio := engine.NewServer(opts)
	eio.On("connection", func(args ...any) {
		s := args[0].(engine.Socket)
		s.On("message", func(args ...any) {
			if data, ok := args[0].(io.Reader); ok {
				s.Send(data, nil, nil)
			}
		})
	})
	return eio
}
