package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/parleyhq/parley/bench/internal/report"
	"github.com/parleyhq/parley/bench/internal/server"
	"github.com/parleyhq/parley/bench/internal/suite"
	"github.com/parleyhq/parley/services/kit/cli"
)

const header = `Usage: parley-bench [flags]

Runs the workloads of issue #9 (W1, W2, the W3 rate sweep, C5k, a connect
storm) against the Node reference server (bench/node, after npm ci) and
Parley (.tmp/bin/rooms and .tmp/bin/gateway, after make build), one at a
time, and writes the comparison with a latency chart.`

const envPrefix = "BENCH_"

type options struct {
	root, outDir, results      string
	runs                       int
	warmup, duration, drainMax time.Duration
	quick                      bool
	sweep, workloads, servers  string
	gatewayFlags, roomsFlags   string
	pprof                      string
	logLevel                   string
	reportOnly                 bool
}

func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	var o options
	fs := cli.NewFlagSet("parley-bench", envPrefix, header, stderr)
	fs.StringVar(&o.root, "root", ".", "the repository's root")
	fs.StringVar(&o.outDir, "out-dir", "docs", "directory to write performance.md and performance-latency.svg to")
	fs.StringVar(&o.results, "results", ".tmp/bench/results.json", "file of every run's raw results, under --root")
	fs.IntVar(&o.runs, "runs", 3, "runs of each workload on each server; figures are their medians")
	fs.DurationVar(&o.warmup, "warmup", 3*time.Second, "sending before each measured window")
	fs.DurationVar(&o.duration, "duration", 10*time.Second, "each measured window")
	fs.DurationVar(&o.drainMax, "drain-max", 10*time.Second, "longest wait, once sending stops, for the expected deliveries")
	fs.BoolVar(&o.quick, "quick", false, "a smoke run: 1 run, 1 s warm-up, 3 s windows, sweep 1,3,6, written to .tmp/bench (overrides only flags left unset)")
	fs.StringVar(&o.sweep, "sweep", "1,2,3,4,5,6,8,12,16", "W3's messages per second per client, rising; a server's sweep stops once saturated")
	fs.StringVar(&o.workloads, "workloads", "W1,W2,W3,C5k,storm", "workloads to run")
	fs.StringVar(&o.servers, "servers", "node,parley,parley-redis", "servers to run, in the order each run starts them: node, parley, parley-redis (Parley on a redis-server) and parley-cluster (on a Redis Cluster of three primaries), the last two W1 and W2 only")
	fs.StringVar(&o.gatewayFlags, "gateway-flags", "", "extra flags of Parley's gateway, space-separated, after the benchmark's own")
	fs.StringVar(&o.roomsFlags, "rooms-flags", "", "extra flags of Parley's rooms service, space-separated, after the benchmark's own")
	fs.StringVar(&o.pprof, "pprof", "", "workload (e.g. W1) during whose first measured window Parley's processes are CPU-profiled into .tmp/bench/; W1-connect profiles its connect instead")
	fs.StringVar(&o.logLevel, "log-level", "info", "log level: debug, info, warn or error")
	fs.BoolVar(&o.reportOnly, "report-only", false, "run nothing: write the table and documents again from --results")
	if err := fs.Parse(args, getenv); err != nil {
		return err
	}
	if o.quick {
		o.applyQuick(fs.FlagSet, getenv)
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(o.logLevel)); err != nil {
		return fmt.Errorf("--log-level: %w", err)
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))
	cfg, err := o.config()
	if err != nil {
		return err
	}
	if err := suite.EnsureDirs(cfg); err != nil {
		return err
	}

	started, finished := time.Now(), time.Now()
	var runs []suite.Run
	var runErr error
	if o.reportOnly {
		if runs, err = readJSON(o.underRoot(o.results)); err != nil {
			return err
		}
		if fi, err := os.Stat(o.underRoot(o.results)); err == nil {
			finished = fi.ModTime()
		}
		// What the runs say of how they ran, rather than this invocation's flags.
		cfg.Runs = 0
		for _, r := range runs {
			cfg.Runs = max(cfg.Runs, r.Run)
			if r.Phase != nil {
				cfg.Duration = r.Phase.Window.Round(time.Second)
			}
		}
	} else {
		runs, runErr = suite.RunAll(ctx, log, cfg)
		finished = time.Now()
		log.Info("done", "took", finished.Sub(started).Round(time.Second))
		if err := writeJSON(o.underRoot(o.results), runs); err != nil {
			return err
		}
	}
	rows := report.Table(runs)
	fmt.Fprintln(stdout)
	if err := report.WriteText(stdout, rows); err != nil {
		return err
	}
	doc := report.Doc{
		Machine: report.ReadMachine(ctx), Date: finished, Runs: cfg.Runs, Warmup: cfg.Warmup, Duration: cfg.Duration,
		Quick: o.quick, Chart: "performance-latency.svg", Command: o.command(),
	}
	if err := o.writeDocs(doc, rows, runs); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "\nwrote %s\n", filepath.Join(o.underRoot(o.outDir), "performance.md"))
	if runErr != nil {
		return runErr
	}
	if report.Failed(rows) || report.LayoutsFailed(report.Layouts(runs)) {
		return errors.New("the comparison failed: see FAIL above")
	}
	return nil
}

// applyQuick shortens what was left at its default, by flag or environment.
func (o *options) applyQuick(fs *flag.FlagSet, getenv func(string) string) {
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	quick := map[string]func(){
		"runs":     func() { o.runs = 1 },
		"warmup":   func() { o.warmup = time.Second },
		"duration": func() { o.duration = 3 * time.Second },
		"sweep":    func() { o.sweep = "1,3,6" },
		"out-dir":  func() { o.outDir = ".tmp/bench" },
	}
	for name, apply := range quick {
		if !set[name] && getenv(cli.EnvName(envPrefix, name)) == "" {
			apply()
		}
	}
}

func (o *options) config() (suite.Config, error) {
	root, err := filepath.Abs(o.root)
	if err != nil {
		return suite.Config{}, err
	}
	var rates []float64
	for f := range strings.SplitSeq(o.sweep, ",") {
		r, err := strconv.ParseFloat(strings.TrimSpace(f), 64)
		if err != nil || r <= 0 {
			return suite.Config{}, fmt.Errorf("--sweep %q: want positive numbers, comma-separated", o.sweep)
		}
		rates = append(rates, r)
	}
	want := map[string]bool{}
	for w := range strings.SplitSeq(o.workloads, ",") {
		want[strings.TrimSpace(w)] = true
	}
	var workloads []suite.Workload
	for _, w := range suite.Workloads(rates) {
		if want[w.Name] {
			workloads = append(workloads, w)
			delete(want, w.Name)
		}
	}
	if len(want) > 0 {
		return suite.Config{}, fmt.Errorf("--workloads %q: unknown workload(s) %v", o.workloads, want)
	}
	if w := strings.TrimSuffix(o.pprof, "-connect"); o.pprof != "" && !strings.Contains(","+o.workloads+",", ","+w+",") {
		return suite.Config{}, fmt.Errorf("--pprof %q: not among --workloads %q", o.pprof, o.workloads)
	}
	var servers []string
	for s := range strings.SplitSeq(o.servers, ",") {
		if s = strings.TrimSpace(s); s != "node" && s != "parley" && s != "parley-redis" && s != "parley-cluster" {
			return suite.Config{}, fmt.Errorf("--servers %q: want node, parley, parley-redis and/or parley-cluster", o.servers)
		}
		servers = append(servers, s)
	}
	if o.runs < 1 {
		return suite.Config{}, fmt.Errorf("--runs %d: want at least 1", o.runs)
	}
	tmp := filepath.Join(root, ".tmp", "bench")
	return suite.Config{
		Servers: servers,
		Server: server.Options{
			Root: root, LogDir: filepath.Join(tmp, "logs"),
			GatewayFlags: strings.Fields(o.gatewayFlags), RoomsFlags: strings.Fields(o.roomsFlags),
		},
		Workloads: workloads, Runs: o.runs, Warmup: o.warmup, Duration: o.duration, DrainMax: o.drainMax,
		ProfileWorkload: o.pprof, ProfileDir: tmp,
	}, nil
}

// underRoot resolves a relative path against --root.
func (o *options) underRoot(path string) string {
	if filepath.IsAbs(path) {
		return path
	}
	return filepath.Join(o.root, path)
}

// command is how the documented run was made, for its readers to repeat.
func (o *options) command() string {
	c := "make bench"
	if o.quick {
		c = "BENCH_QUICK=1 " + c
	}
	if o.gatewayFlags != "" {
		c += fmt.Sprintf(" BENCH_GATEWAY_FLAGS=%q", o.gatewayFlags)
	}
	if o.roomsFlags != "" {
		c += fmt.Sprintf(" BENCH_ROOMS_FLAGS=%q", o.roomsFlags)
	}
	return c
}

func (o *options) writeDocs(doc report.Doc, rows []report.Row, runs []suite.Run) error {
	dir := o.underRoot(o.outDir)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	md, err := os.Create(filepath.Join(dir, "performance.md"))
	if err != nil {
		return err
	}
	if err := report.WriteMarkdown(md, doc, rows, runs); err != nil {
		md.Close()
		return err
	}
	if err := md.Close(); err != nil {
		return err
	}
	svg, err := os.Create(filepath.Join(dir, doc.Chart))
	if err != nil {
		return err
	}
	if err := report.WriteChart(svg, report.Sweep(runs)); err != nil {
		svg.Close()
		return err
	}
	return svg.Close()
}

func readJSON(path string) ([]suite.Run, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var runs []suite.Run
	if err := json.Unmarshal(b, &runs); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return runs, nil
}

func writeJSON(path string, runs []suite.Run) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	b, err := json.MarshalIndent(runs, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}
