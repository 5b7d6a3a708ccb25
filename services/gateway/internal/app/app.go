// Package app wires the gateway together: configuration, logging, the gRPC
// connection to the rooms service, the relay, the socket.io server with
// Parley's namespaces, and the HTTP server for socket.io, /healthz and
// /metrics. It runs them until the context ends, then shuts them down in order.
package app

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/zishang520/socket.io/servers/socket/v3"
	"github.com/zishang520/socket.io/v3/pkg/types"
	"golang.org/x/sync/errgroup"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	roomsv1 "github.com/parleyhq/parley/proto/parley/rooms/v1"
	"github.com/parleyhq/parley/services/gateway/internal/admin"
	"github.com/parleyhq/parley/services/gateway/internal/adminui"
	"github.com/parleyhq/parley/services/gateway/internal/edge"
	"github.com/parleyhq/parley/services/gateway/internal/relay"
	"github.com/parleyhq/parley/services/gateway/internal/roomsclient"
	"github.com/parleyhq/parley/services/gateway/internal/transport"
	"github.com/parleyhq/parley/services/gateway/internal/web"
	"github.com/parleyhq/parley/services/gateway/internal/wire"
	"github.com/parleyhq/parley/services/kit/logging"
	"github.com/parleyhq/parley/services/kit/profiling"
)

// Run runs the gateway until ctx is done; `token` as the first argument
// prints a client token instead.
func Run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) > 0 && args[0] == "token" {
		return runToken(args[1:], getenv, stdout)
	}
	if len(args) > 0 && args[0] == "hash-password" {
		return runHashPassword(os.Stdin, stdout)
	}
	cfg, err := parseConfig(args, getenv, stdout)
	if err != nil {
		return err
	}
	log, err := logging.New(cfg.LogFormat, cfg.LogLevel, stderr)
	if err != nil {
		return err
	}
	if cfg.ProtocolFixture {
		return runProtocolFixture(ctx, cfg, log)
	}

	conn, err := roomsclient.Dial(cfg.RoomsAddr, cfg.ServiceToken)
	if err != nil {
		return err
	}
	defer conn.Close()
	rooms := roomsclient.NewPublisher(roomsv1.NewRoomsServiceClient(conn))
	defer rooms.Close()
	health := healthpb.NewHealthClient(conn)

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	metrics := newMetrics(reg)
	rel := relay.New(rooms, log, metrics, relay.Options{Replay: 256, Backlog: cfg.CatchUpBacklog, PresenceMax: edge.PresenceLimits(cfg.Namespaces)})
	defer rel.Close()

	var (
		adm      *admin.Server
		observer edge.Observer
	)
	if a := cfg.AdminUI; a.Enabled() {
		adm, err = admin.New(admin.Config{
			Namespace: a.Namespace, Credentials: admin.Credentials{Username: a.Username, PasswordHash: a.PasswordHash},
			ReadOnly: a.ReadOnly, ServerID: a.ServerID, Rooms: rooms, Log: log.With("component", "admin-ui"), MaxReport: a.MaxReport,
		})
		if err != nil {
			return err
		}
		observer = adm
	}
	gw, err := edge.New(edge.Config{
		Namespaces: cfg.Namespaces, Tokens: cfg.Tokens, Limits: cfg.Limits,
		RecoveryWindow: cfg.RecoveryWindow, LeaseTTL: cfg.LeaseTTL, Rooms: rooms, Relay: rel, Log: log, Metrics: metrics,
		Observer: observer,
	})
	if err != nil {
		return err
	}
	if err := setupWithRetry(ctx, gw.Setup, log); err != nil {
		return err
	}
	if adm != nil {
		if err := setupWithRetry(ctx, adm.Setup, log); err != nil {
			return err
		}
	}

	var draining atomic.Bool
	opts := socketOptions(cfg, &draining)
	opts.SetAdapter(gw.Adapter())
	io := socket.NewServer(nil, opts)
	gw.Attach(io)
	if adm != nil {
		adm.Attach(io, gw)
	}

	mux := http.NewServeMux()
	mux.Handle("/socket.io/", checkPolling(io.ServeHandler(nil), io.Engine, opts.MaxHttpBufferSize()))
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}))
	if cfg.Web {
		opts := web.Options{Namespace: cfg.WebNamespace, DevTokenTTL: 12 * time.Hour}
		if cfg.DevTokens {
			opts.DevSecret = cfg.Tokens.Secrets[0]
			log.Warn("development sign-in is on: anyone can get a token for any display name (--dev-tokens)")
		}
		mux.Handle("/", web.Handler(opts))
	}
	if adm != nil {
		mux.Handle("/admin/", http.StripPrefix("/admin", adminui.Handler()))
	}
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		hctx, cancel := context.WithTimeout(r.Context(), time.Second)
		defer cancel()
		resp, err := health.Check(hctx, &healthpb.HealthCheckRequest{Service: roomsv1.RoomsService_ServiceDesc.ServiceName})
		if draining.Load() || err != nil || resp.GetStatus() != healthpb.HealthCheckResponse_SERVING {
			http.Error(w, "not ready: rooms service unreachable or gateway shutting down", http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "ok")
	})

	var lc net.ListenConfig
	lis, err := lc.Listen(ctx, "tcp", cfg.Listen)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	// net/http's own errors, such as a handler's panic it recovers, belong
	// in the gateway's log.
	plis, err := profiling.Listen(ctx, cfg.PprofListen)
	if err != nil {
		lis.Close()
		return err
	}
	httpSrv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second, ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelError)}
	log.Info("gateway serving", "addr", lis.Addr().String(), "pprof_addr", profiling.Addr(plis), "rooms_addr", cfg.RoomsAddr, "namespaces", namespaceNames(cfg.Namespaces))

	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error {
		gw.Maintain(gctx)
		return nil
	})
	g.Go(func() error { return profiling.Serve(gctx, plis, log) })
	// The Admin UI's reports go on until the sockets are closed, so that
	// the UIs see them go (see admin.Server.Run).
	actx, stopAdmin := context.WithCancel(context.WithoutCancel(ctx))
	defer stopAdmin()
	if adm != nil {
		g.Go(func() error {
			adm.Run(actx)
			return nil
		})
		log.Info("admin UI enabled", "namespace", cfg.AdminUI.Namespace, "server_id", cfg.AdminUI.ServerID, "readonly", cfg.AdminUI.ReadOnly)
	}
	g.Go(func() error {
		if err := httpSrv.Serve(lis); !errors.Is(err, http.ErrServerClosed) {
			return fmt.Errorf("http server: %w", err)
		}
		return nil
	})
	g.Go(func() error {
		<-gctx.Done()
		log.Info("gateway shutting down")
		// New handshakes are refused first; then every socket is closed
		// with "transport close", so clients reconnect (to this gateway's
		// successor or another one behind the balancer).
		draining.Store(true)
		io.Close(nil)
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cfg.ShutdownTimeout)
		defer cancel()
		// Closed sockets are being saved for recovery and their sessions
		// ended: let those calls land before the connection goes.
		if err := gw.Wait(sctx); err != nil {
			log.Error("shutdown: rooms service calls still pending", "err", err)
		}
		stopAdmin()
		return httpSrv.Shutdown(sctx)
	})
	if err := g.Wait(); err != nil {
		return err
	}
	log.Info("gateway stopped")
	return nil
}

// setupWithRetry creates the default rooms, waiting for the rooms service if
// it is still starting (as under `make run`, which starts both at once).
func setupWithRetry(ctx context.Context, setup func(context.Context) error, log *slog.Logger) error {
	delay := 100 * time.Millisecond
	for attempt := 1; ; attempt++ {
		sctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		err := setup(sctx)
		cancel()
		if err == nil {
			return nil
		}
		if ctx.Err() != nil || attempt == 30 {
			return fmt.Errorf("set up namespaces: %w", err)
		}
		log.Warn("rooms service not ready; retrying", "err", err, "attempt", attempt)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(delay):
		}
		delay = min(2*delay, 2*time.Second)
	}
}

// minFrameBytes is the smallest frame limit: any frame up to it is read, so
// that it can be answered.
const minFrameBytes = 1 << 20

func socketOptions(cfg Config, draining *atomic.Bool) *socket.ServerOptions {
	opts := socket.DefaultServerOptions()
	opts.SetPingInterval(cfg.PingInterval)
	opts.SetPingTimeout(cfg.PingTimeout)
	// Frames are allowed well past the message limit, to 1 MiB at least, so
	// that an oversized message reaches the handler and gets an error ack
	// instead of a transport close.
	opts.SetMaxHttpBufferSize(int64(max(minFrameBytes, 4*cfg.Limits.MaxMessageBytes+64<<10)))
	// Parley's websocket transport writes each socket's queued packets
	// with one system call (package transport).
	opts.SetTransports(types.NewSet(socket.Polling, transport.WebSocket))
	// Clients' events are decoded by Parley's parser, which keeps a
	// message's JSON as the client sent it (package wire).
	opts.SetParser(wire.Parser{})
	opts.SetAllowUpgrades(true)
	opts.SetAllowEIO3(cfg.AllowEIO3)
	opts.SetServeClient(false)
	csr := socket.DefaultConnectionStateRecovery()
	csr.SetMaxDisconnectionDuration(cfg.RecoveryWindow.Milliseconds())
	// A restored session passes the namespace middleware like a fresh
	// connect, so its token is checked again; its rooms come back through
	// the adapter, not the middleware's auto-join.
	csr.SetSkipMiddlewares(false)
	opts.SetConnectionStateRecovery(csr)
	if cfg.CORSOrigins != "" {
		var origins []string
		for _, o := range strings.Split(cfg.CORSOrigins, ",") {
			origins = append(origins, strings.TrimSpace(o))
		}
		var origin any = origins
		if len(origins) == 1 && origins[0] == "*" {
			origin = "*"
		}
		opts.SetCors(&types.Cors{Origin: origin, Credentials: origin != "*"})
	}
	opts.SetAllowRequest(func(*types.HttpContext) error {
		if draining.Load() {
			return errors.New("gateway shutting down")
		}
		return nil
	})
	return opts
}

func namespaceNames(ns []edge.Namespace) []string {
	names := make([]string, 0, len(ns))
	for _, n := range ns {
		names = append(names, n.Name)
	}
	return names
}
