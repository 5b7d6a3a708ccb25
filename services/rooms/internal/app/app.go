// Package app wires the rooms service together: configuration, logging, the
// store, the fan-out hub, the gRPC server and the metrics/health HTTP server,
// and runs them until the context ends, then shuts them down in order.
package app

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"golang.org/x/sync/errgroup"
	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/parleyhq/parley/services/kit/logging"
	"github.com/parleyhq/parley/services/kit/profiling"
	"github.com/parleyhq/parley/services/rooms/internal/fanout"
	"github.com/parleyhq/parley/services/rooms/internal/server"
)

// Run runs the rooms service until ctx is done. args are the command-line
// arguments without the program name; getenv supplies flag defaults.
func Run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	cfg, err := parseConfig(args, getenv, stdout)
	if err != nil {
		return err
	}
	log, err := logging.New(cfg.LogFormat, cfg.LogLevel, stderr)
	if err != nil {
		return err
	}

	hub := fanout.NewHub()
	st, err := openStore(ctx, cfg, hub, log)
	if err != nil {
		return err
	}
	defer st.close()

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	stopping := make(chan struct{})
	deps := &server.Deps{Store: st, Hub: hub, Limits: cfg.Limits, Log: log, Metrics: server.NewMetrics(reg), Stopping: stopping, Announce: st.announce, Watch: st.watch, Claim: st.claim}
	grpcSrv, hs, err := NewGRPCServer(log, reg, GRPCOptions{
		ServiceToken:    cfg.ServiceToken,
		AdminToken:      cfg.AdminToken,
		RateLimit:       cfg.RateLimit,
		RateBurst:       cfg.RateBurst,
		MaxPayloadBytes: cfg.Limits.MaxPayloadBytes,
	}, deps)
	if err != nil {
		return err
	}

	var lc net.ListenConfig
	lis, err := lc.Listen(ctx, "tcp", cfg.Listen)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	mlis, err := lc.Listen(ctx, "tcp", cfg.MetricsListen)
	if err != nil {
		lis.Close()
		return fmt.Errorf("metrics listen: %w", err)
	}
	plis, err := profiling.Listen(ctx, cfg.PprofListen)
	if err != nil {
		lis.Close()
		mlis.Close()
		return err
	}
	httpSrv := &http.Server{Handler: httpHandler(reg, hs), ReadHeaderTimeout: 5 * time.Second}
	log.Info("rooms service serving",
		"grpc_addr", lis.Addr().String(), "metrics_addr", mlis.Addr().String(), "pprof_addr", profiling.Addr(plis), "store", st.where)

	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return grpcSrv.Serve(lis) })
	g.Go(func() error {
		if err := httpSrv.Serve(mlis); !errors.Is(err, http.ErrServerClosed) {
			return fmt.Errorf("metrics server: %w", err)
		}
		return nil
	})
	g.Go(func() error { return profiling.Serve(gctx, plis, log) })
	g.Go(func() error {
		server.Sweep(gctx, deps, cfg.SweepInterval)
		return nil
	})
	g.Go(func() error {
		server.ExpireLeases(gctx, deps, cfg.LeaseCheckInterval, cfg.LeaseGrace)
		return nil
	})
	g.Go(func() error {
		<-gctx.Done()
		log.Info("rooms service shutting down")
		hs.Shutdown()
		// Ending subscriptions and publish streams first lets GracefulStop
		// finish: open streams would otherwise hold it until the deadline.
		hub.Close()
		close(stopping)
		stopGRPC(grpcSrv, cfg.ShutdownTimeout)
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cfg.ShutdownTimeout)
		defer cancel()
		return httpSrv.Shutdown(sctx)
	})
	if err := g.Wait(); err != nil {
		return err
	}
	log.Info("rooms service stopped")
	return nil
}

// stopGRPC lets calls in flight finish for up to timeout, then cuts them.
func stopGRPC(srv *grpc.Server, timeout time.Duration) {
	done := make(chan struct{})
	go func() {
		srv.GracefulStop()
		close(done)
	}()
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case <-done:
	case <-t.C:
		srv.Stop()
		<-done
	}
}

func httpHandler(reg *prometheus.Registry, hs *health.Server) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		resp, err := hs.Check(r.Context(), &healthpb.HealthCheckRequest{})
		if err != nil || resp.GetStatus() != healthpb.HealthCheckResponse_SERVING {
			http.Error(w, "not serving", http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "ok")
	})
	return mux
}
