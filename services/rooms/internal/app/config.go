package app

import (
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/parleyhq/parley/services/kit/cli"
	"github.com/parleyhq/parley/services/kit/logging"
	"github.com/parleyhq/parley/services/kit/profiling"
	"github.com/parleyhq/parley/services/rooms/internal/server"
	"github.com/parleyhq/parley/services/rooms/internal/store/redis"
)

// envPrefix is put before a flag's upper-cased name to form its environment
// variable: --data-dir is PARLEY_ROOMS_DATA_DIR.
const envPrefix = "PARLEY_ROOMS_"

// Config is everything the rooms service can be told at start.
type Config struct {
	Listen        string
	MetricsListen string
	PprofListen   string
	DataDir       string
	SQLiteSync    string
	RedisURL      string
	RedisPrefix   string
	ServiceToken  string
	AdminToken    string
	LogFormat     string
	LogLevel      string
	RateLimit     float64
	RateBurst     int
	SweepInterval time.Duration
	// LeaseCheckInterval is how often sessions of lapsed leases are ended.
	LeaseCheckInterval time.Duration
	// LeaseGrace is how long after start no lease is taken as lapsed.
	LeaseGrace      time.Duration
	ShutdownTimeout time.Duration
	Limits          server.Limits
}

// parseConfig reads flags from args, each defaulting to its environment
// variable, then to the built-in default. It returns flag.ErrHelp for --help.
func parseConfig(args []string, getenv func(string) string, out io.Writer) (Config, error) {
	c := Config{Limits: server.DefaultLimits()}
	fs := cli.NewFlagSet("rooms", envPrefix, "Usage: rooms [flags]\n\nParley rooms service: rooms, membership and message history over gRPC.", out)
	fs.StringVar(&c.Listen, "listen", ":50051", "gRPC listen address")
	fs.StringVar(&c.MetricsListen, "metrics-listen", ":9091", "HTTP listen address for /metrics and /healthz")
	fs.StringVar(&c.DataDir, "data-dir", "./parley-data", "directory of the embedded SQLite store, created on first start")
	fs.StringVar(&c.SQLiteSync, "sqlite-synchronous", "normal", "SQLite synchronous mode: normal (acknowledged messages survive a process crash) or full (they also survive a power loss, at the cost of an fsync per write)")
	fs.StringVar(&c.RedisURL, "redis-url", "", "keep rooms in Redis 7 instead of SQLite (redis://[user:password@]host:port/db, rediss:// for TLS; with ?master_name=NAME the host is a Sentinel, more with &addr=host:port; a Cluster node, or several as ?addr=host:port&addr=..., names its Cluster); replicas sharing it and --redis-prefix serve the same rooms")
	fs.StringVar(&c.RedisPrefix, "redis-prefix", redis.DefaultPrefix, "prefix of every Redis key and channel the service uses (no braces)")
	fs.StringVar(&c.ServiceToken, "service-token", "", "bearer token of gateways and internal services (required)")
	fs.StringVar(&c.AdminToken, "admin-token", "", "bearer token of operators, needed by AdminService (required)")
	profiling.AddFlag(fs.FlagSet, &c.PprofListen)
	logging.AddFlags(fs.FlagSet, &c.LogFormat, &c.LogLevel)
	fs.Float64Var(&c.RateLimit, "rate-limit", 20000, "requests per second allowed to each credential (a stream counts once)")
	fs.IntVar(&c.RateBurst, "rate-burst", 2000, "requests a credential may make at once above --rate-limit")
	fs.DurationVar(&c.SweepInterval, "sweep-interval", time.Minute, "how often expired history and deduplication keys are removed")
	fs.DurationVar(&c.LeaseCheckInterval, "lease-check-interval", 5*time.Second, "how often sessions whose lease (KeepLease) was not kept are ended")
	fs.DurationVar(&c.LeaseGrace, "lease-grace", time.Minute, "how long after start no lease is taken as lapsed, so that gateways can keep theirs again after an outage")
	fs.DurationVar(&c.ShutdownTimeout, "shutdown-timeout", 10*time.Second, "how long shutdown waits for calls in flight before cutting them")
	l := &c.Limits
	fs.IntVar(&l.MaxPayloadBytes, "max-payload-bytes", l.MaxPayloadBytes, "largest message payload accepted by Publish")
	fs.IntVar(&l.DefaultPageSize, "default-page-size", l.DefaultPageSize, "ListRooms/ListMembers page size when the request sets none")
	fs.IntVar(&l.MaxPageSize, "max-page-size", l.MaxPageSize, "largest ListRooms/ListMembers page")
	fs.IntVar(&l.DefaultHistoryPage, "default-history-page", l.DefaultHistoryPage, "GetHistory limit when the request sets none")
	fs.IntVar(&l.MaxHistoryPage, "max-history-page", l.MaxHistoryPage, "largest GetHistory page")
	historyMax := uint(l.DefaultHistoryMaxMessages)
	fs.UintVar(&historyMax, "history-max-messages", historyMax, "messages a room keeps when its options set no history_max_messages")
	fs.DurationVar(&l.DedupeWindow, "dedupe-window", l.DedupeWindow, "how long a client_message_id makes publish retries idempotent")
	fs.IntVar(&l.SubscriberBuffer, "subscriber-buffer", l.SubscriberBuffer, "events a subscriber may have queued before its stream is ended (it resumes from its last offset)")

	if err := fs.Parse(args, getenv); err != nil {
		return c, err
	}
	l.DefaultHistoryMaxMessages = uint32(historyMax)
	return c, c.validate()
}

func (c Config) validate() error {
	var errs []error
	if c.ServiceToken == "" || c.AdminToken == "" {
		errs = append(errs, errors.New("--service-token and --admin-token are required"))
	} else if c.ServiceToken == c.AdminToken {
		errs = append(errs, errors.New("--service-token and --admin-token must differ"))
	}
	if c.SQLiteSync != "normal" && c.SQLiteSync != "full" {
		errs = append(errs, fmt.Errorf("--sqlite-synchronous %q: want normal or full", c.SQLiteSync))
	}
	if err := logging.CheckFormat(c.LogFormat); err != nil {
		errs = append(errs, err)
	}
	l := c.Limits
	for _, p := range []struct {
		name string
		v    int
	}{
		{"max-payload-bytes", l.MaxPayloadBytes}, {"default-page-size", l.DefaultPageSize}, {"max-page-size", l.MaxPageSize},
		{"default-history-page", l.DefaultHistoryPage}, {"max-history-page", l.MaxHistoryPage}, {"subscriber-buffer", l.SubscriberBuffer},
		{"rate-burst", c.RateBurst},
	} {
		if p.v <= 0 {
			errs = append(errs, fmt.Errorf("--%s must be positive", p.name))
		}
	}
	if c.RateLimit <= 0 || c.SweepInterval <= 0 || c.LeaseCheckInterval <= 0 || c.LeaseGrace < 0 || c.ShutdownTimeout <= 0 || l.DedupeWindow <= 0 {
		errs = append(errs, errors.New("--rate-limit, --sweep-interval, --lease-check-interval, --shutdown-timeout and --dedupe-window must be positive"))
	}
	return errors.Join(errs...)
}
