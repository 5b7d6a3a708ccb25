package app

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/parleyhq/parley/proto/rules"
	"github.com/parleyhq/parley/services/gateway/internal/admin"
	"github.com/parleyhq/parley/services/gateway/internal/edge"
	"github.com/parleyhq/parley/services/gateway/internal/wire"
	"github.com/parleyhq/parley/services/kit/cli"
	"github.com/parleyhq/parley/services/kit/logging"
	"github.com/parleyhq/parley/services/kit/profiling"
)

const envPrefix = "PARLEY_GATEWAY_"

// Config is everything the gateway can be told at start.
type Config struct {
	Listen        string
	PprofListen   string
	RoomsAddr     string
	ServiceToken  string
	JWTSecret     string
	JWTPublicKeys string
	// Tokens are the keys read from --jwt-secret and --jwt-public-keys.
	Tokens          edge.Tokens
	ConfigFile      string
	CORSOrigins     string
	AllowEIO3       bool
	PingInterval    time.Duration
	PingTimeout     time.Duration
	RecoveryWindow  time.Duration
	LeaseTTL        time.Duration
	CatchUpBacklog  int // live messages held for a socket catching up
	ShutdownTimeout time.Duration
	ProtocolFixture bool
	Web             bool
	WebNamespace    string
	DevTokens       bool
	AdminUI         AdminUIConfig
	LogFormat       string
	LogLevel        string
	Limits          edge.Limits
	Namespaces      []edge.Namespace
}

// AdminUIConfig configures the socket.io Admin UI (package admin): on when
// a username and password hash are set.
type AdminUIConfig struct {
	Username     string
	PasswordHash string
	Namespace    string
	ReadOnly     bool
	ServerID     string
	MaxReport    int
}

// Enabled reports whether the Admin UI is configured.
func (a AdminUIConfig) Enabled() bool { return a.Username != "" || a.PasswordHash != "" }

// fileConfig is the JSON file given with --config.
type fileConfig struct {
	Namespaces []edge.Namespace `json:"namespaces"`
}

// defaultNamespaces serve the classic socket.io chat with no set-up: "/"
// without sign-in, every socket in room1, rooms created on first join and
// deleted after ten minutes empty.
func defaultNamespaces() []edge.Namespace {
	return []edge.Namespace{{Name: "/", DefaultRooms: []string{"room1"}, CreateRooms: true, EmptyRoomTTL: "10m"}}
}

func parseConfig(args []string, getenv func(string) string, out io.Writer) (Config, error) {
	c := Config{}
	fs := cli.NewFlagSet("gateway", envPrefix, "Usage: gateway [flags]\n       gateway token [--jwt-secret S] [--ttl D] USER\n       gateway hash-password < password-file\n\nParley gateway: socket.io v4 clients in, rooms service RPCs out.", out)
	fs.StringVar(&c.Listen, "listen", ":3000", "HTTP listen address (socket.io at /socket.io/, /healthz, /metrics)")
	fs.StringVar(&c.RoomsAddr, "rooms-addr", "localhost:50051", "gRPC address of the rooms service: host:port, several separated by commas (replicas on Redis), or a target such as dns:///rooms:50051")
	fs.StringVar(&c.ServiceToken, "service-token", "", "service credential for the rooms service (required)")
	fs.StringVar(&c.JWTSecret, "jwt-secret", "", "HS256 secrets of client tokens, comma-separated: all are accepted, the first signs (rotate by putting the new one first, then dropping the old); a namespace with auth needs this or --jwt-public-keys")
	fs.StringVar(&c.JWTPublicKeys, "jwt-public-keys", "", "PEM file of an identity provider's public keys, RSA (RS256) or P-256 ECDSA (ES256), that client tokens may be signed with")
	fs.StringVar(&c.ConfigFile, "config", "", `JSON file of namespaces: {"namespaces":[{"name":"/","auth":false,"default_rooms":["room1"],"room_pattern":"","create_rooms":true,"empty_room_ttl":"10m","presence_max_members":100}]}; without it, "/" serves the classic chat`)
	fs.StringVar(&c.CORSOrigins, "cors-origins", "", "comma-separated origins allowed to connect from browsers on other origins (* for any); empty allows same-origin only")
	fs.BoolVar(&c.AllowEIO3, "allow-eio3", false, "also accept socket.io v2 clients (Engine.IO protocol 3)")
	fs.DurationVar(&c.PingInterval, "ping-interval", 25*time.Second, "Engine.IO ping interval")
	fs.DurationVar(&c.PingTimeout, "ping-timeout", 20*time.Second, "Engine.IO ping timeout")
	fs.DurationVar(&c.RecoveryWindow, "recovery-window", 2*time.Minute, "how long a disconnected client can reconnect and get its rooms and missed messages back (connection state recovery)")
	fs.DurationVar(&c.LeaseTTL, "lease-ttl", 30*time.Second, "how long this gateway's sessions stay live in the rooms service once it stops renewing them (it died): its users go offline, and its guests leave their rooms, that long after")
	fs.IntVar(&c.Limits.SendQueueBytes, "send-queue-bytes", wire.DefaultQueueBytes, "bytes that may wait to be written to one socket before it is disconnected as too slow (at least twice --max-message-bytes)")
	fs.IntVar(&c.CatchUpBacklog, "catch-up-backlog", 1024, "live messages held for a socket while it catches up from history (joining late, recovering) before it is disconnected as too slow")
	fs.DurationVar(&c.ShutdownTimeout, "shutdown-timeout", 10*time.Second, "how long shutdown waits for connections to close")
	fs.BoolVar(&c.Web, "web", true, "serve the chat page at /")
	fs.StringVar(&c.WebNamespace, "web-namespace", "/chat", "namespace the chat page connects to (it should require auth)")
	fs.BoolVar(&c.DevTokens, "dev-tokens", false, "DEVELOPMENT ONLY: let the chat page sign anyone in under a display name, with a token signed by --jwt-secret")
	a := &c.AdminUI
	fs.StringVar(&a.Username, "admin-ui-username", "", "username of the socket.io Admin UI; with --admin-ui-password-hash, serves the UI at /admin/ and its namespace (off by default)")
	fs.StringVar(&a.PasswordHash, "admin-ui-password-hash", "", "bcrypt hash of the Admin UI's password (make one with `gateway hash-password`)")
	fs.StringVar(&a.Namespace, "admin-ui-namespace", "/admin", "namespace the Admin UI connects to; every gateway of a deployment needs the same")
	fs.BoolVar(&a.ReadOnly, "admin-ui-readonly", false, "let the Admin UI watch but not disconnect sockets or move them between rooms")
	fs.StringVar(&a.ServerID, "admin-ui-server-id", admin.DefaultServerID(), "name of this gateway in the Admin UI; unique per gateway")
	fs.IntVar(&a.MaxReport, "admin-ui-max-report-bytes", 32<<10, "largest report a gateway publishes for the Admin UI; below the rooms service's --max-payload-bytes")
	fs.BoolVar(&c.ProtocolFixture, "protocol-fixture", false, "serve only what the protocol test suites expect: the socket.io echo namespaces / and /custom, and an Engine.IO echo server at /engine.io/ (ping 300ms/200ms, maxPayload 1e6, any origin), for conformance runs; needs no rooms service")
	profiling.AddFlag(fs.FlagSet, &c.PprofListen)
	logging.AddFlags(fs.FlagSet, &c.LogFormat, &c.LogLevel)
	l := &c.Limits
	fs.IntVar(&l.MaxMessageBytes, "max-message-bytes", 16<<10, "largest \"send message\" payload, JSON-encoded (larger: error ack resource_exhausted)")
	fs.Float64Var(&l.EventRate, "event-rate", 20, "events per second one socket may send, sustained")
	fs.IntVar(&l.EventBurst, "event-burst", 50, "events one socket may send at once")
	fs.IntVar(&l.MaxRooms, "max-rooms", 16, "rooms one socket may be in")
	fs.IntVar(&l.HistoryOnJoin, "history-on-join", 50, "messages returned in a join ack")
	fs.Float64Var(&l.CreateRate, "create-room-rate", 0.2, "rooms one user may create per second by joining, sustained, in namespaces that allow it (beyond: resource_exhausted)")
	fs.IntVar(&l.CreateBurst, "create-room-burst", 10, "rooms one user may create at once")
	fs.Uint64Var(&l.RecoveryMaxMessages, "recovery-max-messages", 1000, "most messages one room may replay to a reconnecting client; further behind, its session is not restored and it reads history itself")
	fs.DurationVar(&l.CallTimeout, "call-timeout", 5*time.Second, "deadline of each call to the rooms service")

	if err := fs.Parse(args, getenv); err != nil {
		return c, err
	}
	for secret := range strings.SplitSeq(c.JWTSecret, ",") {
		if secret = strings.TrimSpace(secret); secret != "" {
			c.Tokens.Secrets = append(c.Tokens.Secrets, []byte(secret))
		}
	}
	if c.JWTPublicKeys != "" {
		b, err := os.ReadFile(c.JWTPublicKeys)
		if err == nil {
			c.Tokens.PublicKeys, err = edge.ParsePublicKeys(b)
		}
		if err != nil {
			return c, fmt.Errorf("--jwt-public-keys: %w", err)
		}
	}
	c.Namespaces = defaultNamespaces()
	if c.ConfigFile != "" {
		b, err := os.ReadFile(c.ConfigFile)
		if err != nil {
			return c, fmt.Errorf("--config: %w", err)
		}
		var fc fileConfig
		dec := json.NewDecoder(strings.NewReader(string(b)))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&fc); err != nil {
			return c, fmt.Errorf("--config %s: %w", c.ConfigFile, err)
		}
		c.Namespaces = fc.Namespaces
	}
	return c, c.validate()
}

func (c Config) validate() error {
	var errs []error
	if c.ServiceToken == "" && !c.ProtocolFixture {
		errs = append(errs, errors.New("--service-token is required"))
	}
	if c.DevTokens && len(c.Tokens.Secrets) == 0 {
		errs = append(errs, errors.New("--dev-tokens needs --jwt-secret"))
	}
	if a := c.AdminUI; a.Enabled() {
		if a.Username == "" || a.PasswordHash == "" {
			errs = append(errs, errors.New("the Admin UI needs both --admin-ui-username and --admin-ui-password-hash"))
		}
		for _, ns := range c.Namespaces {
			if ns.Name == a.Namespace {
				errs = append(errs, fmt.Errorf("--admin-ui-namespace %s is also a chat namespace", a.Namespace))
			}
		}
		if !strings.HasPrefix(a.Namespace, "/") || len(a.Namespace) < 2 {
			errs = append(errs, fmt.Errorf("--admin-ui-namespace %q: a namespace such as /admin", a.Namespace))
		}
		if a.MaxReport < 4<<10 {
			errs = append(errs, errors.New("--admin-ui-max-report-bytes must be at least 4096"))
		}
	}
	if err := logging.CheckFormat(c.LogFormat); err != nil {
		errs = append(errs, err)
	}
	l := c.Limits
	if l.MaxMessageBytes <= 0 || l.EventRate <= 0 || l.EventBurst <= 0 || l.MaxRooms <= 0 || l.HistoryOnJoin < 0 || l.HistoryOnJoin > rules.MaxHistoryPage || l.RecoveryMaxMessages == 0 || l.CreateRate <= 0 || l.CreateBurst <= 0 || l.CallTimeout <= 0 || l.SendQueueBytes < 2*l.MaxMessageBytes || c.CatchUpBacklog <= 0 || c.RecoveryWindow < time.Second || c.LeaseTTL < time.Second || c.LeaseTTL > time.Hour {
		errs = append(errs, fmt.Errorf("limits must be positive (--history-on-join at most %d, --send-queue-bytes at least twice --max-message-bytes, --recovery-window at least 1s, --lease-ttl from 1s to 1h)", rules.MaxHistoryPage))
	}
	return errors.Join(errs...)
}
