// Package suite runs make bench's workloads against each server, one server
// at a time, interleaved run by run, each run on a freshly started server,
// and keeps every run's measurements.
package suite

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"syscall"
	"time"

	"github.com/parleyhq/parley/bench/internal/loadgen"
	"github.com/parleyhq/parley/bench/internal/server"
)

// Workload is one of the workloads.
type Workload struct {
	Name   string
	Layout loadgen.Layout
	// Rates are the messages per second each client sends, one phase each;
	// none for a connect storm.
	Rates []float64
	// Sweep stops at the first rate the server cannot sustain (SweepLimit).
	Sweep bool
	// OnRedis: Parley on Redis runs it too, to compare with Parley on
	// SQLite.
	OnRedis bool
}

// SweepLimit is the p99 latency at or above which a server is saturated.
const SweepLimit = 100 * time.Millisecond

// connectConcurrency bounds the connections in flight, so a connect storm
// measures the server, not the kernel's listen backlog.
const connectConcurrency = 200

// Workloads returns the workloads, with the rate sweep of W3.
func Workloads(sweep []float64) []Workload {
	rooms := func(n int, event string) loadgen.Layout {
		return loadgen.Layout{Clients: n, RoomSize: 10, RoomPrefix: "r", JoinEvent: event}
	}
	return []Workload{
		{Name: "W1", Layout: rooms(1000, "switch room"), Rates: []float64{1}, OnRedis: true},
		{Name: "W2", Layout: loadgen.Layout{Clients: 1000, RoomSize: 1000, RoomPrefix: "big", JoinEvent: "switch room"}, Rates: []float64{20.0 / 1000}, OnRedis: true},
		{Name: "W3", Layout: rooms(1000, "switch room"), Rates: sweep, Sweep: true},
		// Every client stays in the default room1 too, as under make run.
		{Name: "C5k", Layout: rooms(5000, "join"), Rates: []float64{0.2}},
		{Name: "storm", Layout: rooms(1000, "switch room")},
	}
}

// Config is how the suite runs.
type Config struct {
	// Servers are the servers compared ("node", "parley", and
	// "parley-redis" and "parley-cluster": Parley on Redis and on a Redis
	// Cluster, for the workloads OnRedis), in the order each run starts
	// them.
	Servers   []string
	Server    server.Options
	Workloads []Workload
	Runs      int
	Warmup    time.Duration
	Duration  time.Duration // each measured window
	DrainMax  time.Duration
	// ProfileWorkload names the workload during whose first run's measured
	// window Parley's processes are profiled, into ProfileDir; empty: none.
	// A name with the suffix "-connect" profiles that workload's connect
	// instead, which a workload without rates always does.
	ProfileWorkload string
	ProfileDir      string
}

// drainQuiet is how long a drain waits without a new delivery before it
// takes the rest as lost.
const drainQuiet = 2 * time.Second

// Run is one workload run on one server (one step of a sweep).
type Run struct {
	Server   string
	Workload string
	Run      int     // 1-based
	Rate     float64 // messages per second per client; 0 for a connect storm
	Clients  int
	Err      string `json:",omitempty"` // why the run failed before measuring

	ConnectCPU  time.Duration // server CPU from the first connect to the last join's ack
	ConnectWall time.Duration
	IdleRSS     int64 // bytes, the started server before any connection
	LoadedRSS   int64 // bytes, at the end of the measured window (after connecting, for a storm)
	RSSByProc   map[string]int64

	WindowCPU time.Duration // server CPU in the measured window
	CPUByProc map[string]time.Duration
	// GeneratorCPU is the load generator's CPU in the measured window, and
	// OtherCPU what everything else on the machine used meanwhile: with 2
	// cores shared, either makes latencies worse than the server's own.
	GeneratorCPU, OtherCPU time.Duration
	Phase                  *loadgen.PhaseResult `json:",omitempty"`
	Stats                  loadgen.Stats
}

// CPUPerDelivery is the server CPU of the measured window over the
// deliveries within it.
func (r Run) CPUPerDelivery() time.Duration {
	if r.Phase == nil || r.Phase.WindowDeliveries == 0 {
		return 0
	}
	return r.WindowCPU / time.Duration(r.Phase.WindowDeliveries)
}

// RSSPerConn is the memory the connections added, per connection, in bytes.
func (r Run) RSSPerConn() float64 {
	if r.Clients == 0 {
		return 0
	}
	return float64(r.LoadedRSS-r.IdleRSS) / float64(r.Clients)
}

// Losses says what a run lost or got wrong, empty when it delivered every
// message exactly once to exactly its room.
func (r Run) Losses() string {
	if r.Err != "" {
		return r.Err
	}
	if r.Phase == nil {
		return ""
	}
	p := r.Phase
	var s string
	add := func(n int64, what string) {
		if n > 0 {
			if s != "" {
				s += ", "
			}
			s += fmt.Sprintf("%d %s", n, what)
		}
	}
	add(p.Lost, "lost")
	add(p.Duplicated, "duplicated")
	add(p.Misdelivered, "misdelivered")
	return s
}

// Saturated says whether a sweep step is beyond what the server sustains.
func (r Run) Saturated() bool {
	return r.Losses() != "" || r.Phase == nil || r.Phase.P99 >= SweepLimit
}

// RunAll runs every workload cfg.Runs times on each server, interleaving
// servers, and returns every run, failed ones included. It stops early only
// when ctx ends.
func RunAll(ctx context.Context, log *slog.Logger, cfg Config) ([]Run, error) {
	if err := checkOpenFiles(cfg.Workloads); err != nil {
		return nil, err
	}
	var runs []Run
	for _, w := range cfg.Workloads {
		for i := 1; i <= cfg.Runs; i++ {
			for _, srv := range cfg.Servers {
				if err := ctx.Err(); err != nil {
					return runs, err
				}
				if (srv == "parley-redis" || srv == "parley-cluster") && !w.OnRedis {
					continue
				}
				log.Info("run", "workload", w.Name, "server", srv, "run", i, "of", cfg.Runs)
				got := runOne(ctx, log, cfg, w, srv, i)
				for _, r := range got {
					log.Info("result", summary(r)...)
				}
				runs = append(runs, got...)
			}
		}
	}
	return runs, nil
}

func summary(r Run) []any {
	out := []any{"workload", r.Workload, "server", r.Server, "run", r.Run}
	if r.Rate > 0 {
		out = append(out, "rate", r.Rate)
	}
	if r.Err != "" {
		return append(out, "err", r.Err)
	}
	out = append(out, "connect_cpu", r.ConnectCPU.Round(time.Millisecond), "rss_per_conn_kb", int(r.RSSPerConn()/1024))
	if p := r.Phase; p != nil {
		out = append(out, "deliveries_per_s", int(p.DeliveriesPerSec), "cpu_per_delivery", r.CPUPerDelivery(),
			"p50", p.P50, "p99", p.P99, "max", p.Max, "lost", p.Lost, "dup", p.Duplicated,
			"generator_cpu", r.GeneratorCPU, "other_cpu", r.OtherCPU)
	}
	if r.Stats.Reconnects > 0 || r.Stats.Dropped > 0 {
		out = append(out, "reconnects", r.Stats.Reconnects, "recovered", r.Stats.Recovered,
			"not_recovered", r.Stats.NotRecovered, "dropped", r.Stats.Dropped)
	}
	return out
}

// runOne starts a fresh server, connects the workload's clients and runs its
// phases; a failure is recorded in the returned runs, not returned.
func runOne(ctx context.Context, log *slog.Logger, cfg Config, w Workload, srvName string, i int) []Run {
	base := Run{Server: srvName, Workload: w.Name, Run: i, Clients: w.Layout.Clients}
	failed := func(err error) []Run {
		base.Err = err.Error()
		return []Run{base}
	}
	tag := fmt.Sprintf("%s-run%d", w.Name, i)
	connectOnly := cfg.ProfileWorkload == w.Name+"-connect"
	profile := srvName == "parley" && (cfg.ProfileWorkload == w.Name || connectOnly) && i == 1
	var srv *server.Server
	var err error
	switch srvName {
	case "node":
		srv, err = server.StartNode(ctx, log, cfg.Server, tag)
	case "parley-redis":
		srv, err = server.StartParleyOnRedis(ctx, log, cfg.Server, tag)
	case "parley-cluster":
		srv, err = server.StartParleyOnRedisCluster(ctx, log, cfg.Server, tag)
	default:
		srv, err = server.StartParley(ctx, log, cfg.Server, tag, profile)
	}
	if err != nil {
		return failed(err)
	}
	defer srv.Stop(log)

	idle, err := srv.Sample()
	if err != nil {
		return failed(err)
	}
	base.IdleRSS = idle.TotalRSS()
	connectProfiled := make(chan error, 1)
	if profile && (len(w.Rates) == 0 || connectOnly) {
		// A workload that only connects is profiled while it connects.
		go func() { connectProfiled <- srv.Profile(ctx, cfg.Duration, cfg.ProfileDir, w.Name+"-connect") }()
	} else {
		connectProfiled <- nil
	}
	start := time.Now()
	sess, err := loadgen.Connect(ctx, log, srv.Addr, w.Layout, connectConcurrency)
	if err != nil {
		if exit := srv.Exited(); exit != nil {
			err = fmt.Errorf("%w; %w", err, exit)
		}
		return failed(fmt.Errorf("connect: %w", err))
	}
	defer sess.Close()
	base.ConnectWall = time.Since(start)
	connected, err := srv.Sample()
	if err != nil {
		return failed(err)
	}
	base.ConnectCPU = connected.TotalCPU() - idle.TotalCPU()
	if err := <-connectProfiled; err != nil {
		log.Warn("profiling the connect failed", "workload", w.Name, "err", err)
	}
	if profile && connectOnly {
		profile = false // the windows run unprofiled
	} else if profile {
		if err := srv.HeapProfile(ctx, cfg.ProfileDir, w.Name+"-heap"); err != nil {
			log.Warn("profiling the heap failed", "workload", w.Name, "err", err)
		}
	}
	if len(w.Rates) == 0 {
		base.LoadedRSS, base.RSSByProc = connected.TotalRSS(), connected.RSS
		base.Stats = sess.Stats()
		return []Run{base}
	}

	var runs []Run
	for _, rate := range w.Rates {
		r := base
		r.Rate = rate
		var begin, end sample
		var sampleErr error
		profileDone := make(chan error, 1)
		spec := loadgen.PhaseSpec{
			Rate: rate * float64(w.Layout.Clients), Warmup: cfg.Warmup, Duration: cfg.Duration,
			DrainQuiet: drainQuiet, DrainMax: cfg.DrainMax,
			Begin: func() {
				begin, sampleErr = takeSample(srv)
				if profile {
					go func() {
						profileDone <- srv.Profile(ctx, cfg.Duration, cfg.ProfileDir, fmt.Sprintf("%s-%g", w.Name, rate))
					}()
				}
			},
			End: func() {
				var err error
				end, err = takeSample(srv)
				if sampleErr == nil {
					sampleErr = err
				}
			},
		}
		res, err := sess.Run(ctx, spec)
		if profile {
			if err := <-profileDone; err != nil {
				log.Warn("profile", "err", err)
			}
			profile = false
		}
		if err == nil {
			err = sampleErr
		}
		if exit := srv.Exited(); exit != nil {
			err = exit
		}
		if err != nil {
			r.Err = err.Error()
			return append(runs, r)
		}
		r.Phase = &res
		r.WindowCPU = end.server.TotalCPU() - begin.server.TotalCPU()
		r.CPUByProc = map[string]time.Duration{}
		for p, c := range end.server.CPU {
			r.CPUByProc[p] = c - begin.server.CPU[p]
		}
		r.GeneratorCPU = end.self - begin.self
		r.OtherCPU = max(end.busy-begin.busy-r.WindowCPU-r.GeneratorCPU, 0)
		r.LoadedRSS, r.RSSByProc = end.server.TotalRSS(), end.server.RSS
		r.Stats = sess.Stats()
		runs = append(runs, r)
		if w.Sweep && r.Saturated() {
			break
		}
	}
	return runs
}

// checkOpenFiles fails early when the generator may not open a socket per
// client. Go raises its own soft limit to the hard one at start, and the
// servers are started with theirs raised the same way.
func checkOpenFiles(workloads []Workload) error {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return err
	}
	for _, w := range workloads {
		if need := uint64(w.Layout.Clients) + 100; lim.Cur < need {
			return fmt.Errorf("%s needs %d open files, the limit is %d: raise it (ulimit -Hn)", w.Name, need, lim.Cur)
		}
	}
	return nil
}

// sample is the CPU and memory of everything at one moment.
type sample struct {
	server     server.Sample
	self, busy time.Duration // the generator's CPU; the whole machine's
}

func takeSample(srv *server.Server) (sample, error) {
	var s sample
	var err error
	if s.server, err = srv.Sample(); err != nil {
		return s, err
	}
	if s.self, err = server.SelfCPU(); err != nil {
		return s, err
	}
	s.busy, err = server.SystemBusy()
	return s, err
}

// EnsureDirs makes the directories the suite writes to.
func EnsureDirs(cfg Config) error {
	for _, d := range []string{cfg.Server.LogDir, cfg.ProfileDir} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return err
		}
	}
	return nil
}
