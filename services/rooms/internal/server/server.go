// Package server implements the rooms service's gRPC API (RoomsService and
// AdminService) on top of a store.Store and a fanout.Hub. It turns requests into
// store calls, store errors into gRPC status codes, and stored changes into
// events for live subscribers.
package server

import (
	"context"
	"log/slog"
	"runtime/debug"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	roomsv1 "github.com/parleyhq/parley/proto/parley/rooms/v1"
	"github.com/parleyhq/parley/services/rooms/internal/fanout"
	"github.com/parleyhq/parley/services/rooms/internal/store"
)

// Limits are the service's configurable bounds and defaults.
type Limits struct {
	MaxPayloadBytes           int           // largest accepted message payload
	DefaultPageSize           int           // ListRooms/ListMembers page when none is asked for
	MaxPageSize               int           // cap on any requested page size
	DefaultHistoryPage        int           // GetHistory limit when none is asked for
	MaxHistoryPage            int           // cap on GetHistory limit
	DefaultHistoryMaxMessages uint32        // messages a room keeps unless its options say otherwise
	DedupeWindow              time.Duration // how long a client_message_id makes retries idempotent
	SubscriberBuffer          int           // events a subscription may have queued before it is ended
}

// DefaultLimits are the documented defaults of the rooms service's flags.
func DefaultLimits() Limits {
	return Limits{
		MaxPayloadBytes:           64 << 10,
		DefaultPageSize:           100,
		MaxPageSize:               1000,
		DefaultHistoryPage:        50,
		MaxHistoryPage:            1000,
		DefaultHistoryMaxMessages: 10000,
		DedupeWindow:              10 * time.Minute,
		SubscriberBuffer:          1024,
	}
}

// Metrics are the service's own Prometheus metrics (RPC metrics come from the
// interceptor chain).
type Metrics struct {
	published     prometheus.Counter
	duplicates    prometheus.Counter
	subscriptions prometheus.Gauge
	ended         *prometheus.CounterVec
	gapFills      prometheus.Counter
}

// NewMetrics registers the service metrics with reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		published: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "parley_rooms_messages_published_total",
			Help: "Messages stored by Publish (retries of a stored message excluded).",
		}),
		duplicates: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "parley_rooms_publish_duplicates_total",
			Help: "Publishes answered from the deduplication window instead of stored again.",
		}),
		subscriptions: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "parley_rooms_subscriptions",
			Help: "Open Subscribe streams.",
		}),
		ended: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "parley_rooms_subscriptions_ended_total",
			Help: "Subscribe streams ended, by reason (client, overflow, shutdown, error, rooms_deleted).",
		}, []string{"reason"}),
		gapFills: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "parley_rooms_subscription_gap_fills_total",
			Help: "Live messages that reached a subscription ahead of an offset it had not delivered, so that the gap was read from the store first.",
		}),
	}
	reg.MustRegister(m.published, m.duplicates, m.subscriptions, m.ended, m.gapFills)
	return m
}

// Deps are what the servers need.
type Deps struct {
	Store   store.Store
	Hub     *fanout.Hub
	Limits  Limits
	Log     *slog.Logger
	Metrics *Metrics
	// Now is the clock; tests may replace it.
	Now func() time.Time
	// CheckPublish, if set, checks each request of a PublishStream as the
	// server's interceptors check a unary call (rate limit, validation),
	// returning a gRPC status error to refuse it.
	CheckPublish func(context.Context, *roomsv1.PublishRequest) error
	// Stopping is closed when the service shuts down; publish streams then
	// end once they have answered what they read. Nil: never.
	Stopping <-chan struct{}
	// Announce, if set, tells the service's other replicas of each event
	// broadcast here other than a message, which their store tells them of.
	Announce func(*roomsv1.Event)
	// Watch, if set, has the hub fed what other replicas publish to rooms,
	// from when it returns until release is called; Subscribe calls it
	// before it reads the store.
	Watch func(ctx context.Context, rooms []store.RoomKey) (release func(), err error)
	// Claim, if set, says whether this replica runs a periodic job (Sweep,
	// ExpireLeases) this time: replicas sharing a store take turns, one a
	// period, instead of each repeating the others' work.
	Claim func(ctx context.Context, job string, every time.Duration) bool
}

// claim says whether this replica runs job now.
func (d *Deps) claim(ctx context.Context, job string, every time.Duration) bool {
	return d.Claim == nil || d.Claim(ctx, job, every)
}

// broadcast hands ev to the local subscribers, then to the other replicas.
func (d *Deps) broadcast(ev *roomsv1.Event) {
	d.Hub.Broadcast(ev)
	if d.Announce != nil {
		d.Announce(ev)
	}
}

func (d *Deps) now() time.Time {
	if d.Now != nil {
		return d.Now()
	}
	return time.Now()
}

// PanicHandler logs a panic of a call's handler, with its stack, and returns
// the error the caller gets: the recovery interceptor's handler, and what a
// publish stream answers a request that panicked.
func PanicHandler(log *slog.Logger) func(ctx context.Context, p any) error {
	return func(ctx context.Context, p any) error {
		log.ErrorContext(ctx, "panic in handler", "panic", p, "stack", string(debug.Stack()))
		return status.Error(codes.Internal, "internal error")
	}
}
