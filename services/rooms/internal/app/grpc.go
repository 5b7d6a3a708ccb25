package app

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"buf.build/go/protovalidate"
	grpcprom "github.com/grpc-ecosystem/go-grpc-middleware/providers/prometheus"
	"github.com/grpc-ecosystem/go-grpc-middleware/v2/interceptors"
	grpcauth "github.com/grpc-ecosystem/go-grpc-middleware/v2/interceptors/auth"
	grpcvalidate "github.com/grpc-ecosystem/go-grpc-middleware/v2/interceptors/protovalidate"
	"github.com/grpc-ecosystem/go-grpc-middleware/v2/interceptors/ratelimit"
	"github.com/grpc-ecosystem/go-grpc-middleware/v2/interceptors/recovery"
	"github.com/grpc-ecosystem/go-grpc-middleware/v2/interceptors/selector"
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/time/rate"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/reflection"
	reflectionv1 "google.golang.org/grpc/reflection/grpc_reflection_v1"
	reflectionv1alpha "google.golang.org/grpc/reflection/grpc_reflection_v1alpha"
	"google.golang.org/grpc/status"

	"github.com/parleyhq/parley/proto/apidesc"
	roomsv1 "github.com/parleyhq/parley/proto/parley/rooms/v1"
	"github.com/parleyhq/parley/services/rooms/internal/auth"
	"github.com/parleyhq/parley/services/rooms/internal/server"
)

// GRPCOptions configure NewGRPCServer.
type GRPCOptions struct {
	ServiceToken, AdminToken string
	RateLimit                float64
	RateBurst                int
	MaxPayloadBytes          int
}

// NewGRPCServer builds the rooms service's gRPC server: the interceptor chain
// (metrics, logging, auth, rate limit, validation, recovery — the same for
// unary and streaming calls), the two Parley services, health and reflection.
// Health and reflection are open; everything else needs a credential. It sets
// d.CheckPublish to the checks the interceptors make of a unary call, for each
// request of a publish stream.
func NewGRPCServer(log *slog.Logger, reg prometheus.Registerer, opts GRPCOptions, d *server.Deps) (*grpc.Server, *health.Server, error) {
	validator, err := protovalidate.New()
	if err != nil {
		return nil, nil, fmt.Errorf("protovalidate: %w", err)
	}
	metrics := grpcprom.NewServerMetrics(grpcprom.WithServerHandlingTimeHistogram(
		grpcprom.WithHistogramBuckets([]float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5}),
	))
	if err := reg.Register(metrics); err != nil {
		return nil, nil, fmt.Errorf("register grpc metrics: %w", err)
	}
	tokens := auth.NewTokens(opts.ServiceToken, opts.AdminToken, "/"+roomsv1.AdminService_ServiceDesc.ServiceName+"/")
	limiter := newRoleLimiter(opts.RateLimit, opts.RateBurst)
	recoverOpts := []recovery.Option{recovery.WithRecoveryHandlerContext(server.PanicHandler(log))}
	needsAuth := selector.MatchFunc(func(_ context.Context, c interceptors.CallMeta) bool {
		return c.Service != healthpb.Health_ServiceDesc.ServiceName &&
			!strings.HasPrefix(c.Service, "grpc.reflection.")
	})
	// Calls that end sessions only lower the load, and refusing them would
	// leave members online after their sockets are gone (a disconnect storm
	// is exactly when a gateway's bucket runs dry).
	limited := selector.MatchFunc(func(ctx context.Context, c interceptors.CallMeta) bool {
		return needsAuth.Match(ctx, c) && c.FullMethod() != roomsv1.RoomsService_EndSession_FullMethodName &&
			c.FullMethod() != roomsv1.RoomsService_LeaveRoom_FullMethodName
	})

	notPublishStream := selector.MatchFunc(func(_ context.Context, c interceptors.CallMeta) bool {
		return c.FullMethod() != roomsv1.RoomsService_PublishStream_FullMethodName
	})
	d.CheckPublish = func(ctx context.Context, p *roomsv1.PublishRequest) error {
		if err := limiter.Limit(ctx); err != nil {
			return status.Error(codes.ResourceExhausted, err.Error())
		}
		if err := validator.Validate(p); err != nil {
			return status.Error(codes.InvalidArgument, err.Error())
		}
		return nil
	}

	srv := grpc.NewServer(
		grpc.ChainUnaryInterceptor(
			metrics.UnaryServerInterceptor(),
			logUnary(log),
			selector.UnaryServerInterceptor(grpcauth.UnaryServerInterceptor(tokens.AuthFunc), needsAuth),
			selector.UnaryServerInterceptor(ratelimit.UnaryServerInterceptor(limiter), limited),
			grpcvalidate.UnaryServerInterceptor(validator),
			recovery.UnaryServerInterceptor(recoverOpts...),
		),
		grpc.ChainStreamInterceptor(
			metrics.StreamServerInterceptor(),
			logStream(log),
			selector.StreamServerInterceptor(grpcauth.StreamServerInterceptor(tokens.AuthFunc), needsAuth),
			selector.StreamServerInterceptor(ratelimit.StreamServerInterceptor(limiter), limited),
			// A publish stream checks each request itself (CheckPublish):
			// refusing one here would end the stream for every request on it.
			selector.StreamServerInterceptor(grpcvalidate.StreamServerInterceptor(validator), notPublishStream),
			recovery.StreamServerInterceptor(recoverOpts...),
		),
		// Room for the largest payload plus the rest of a PublishRequest.
		grpc.MaxRecvMsgSize(opts.MaxPayloadBytes+16<<10),
		grpc.KeepaliveParams(keepalive.ServerParameters{Time: 30 * time.Second, Timeout: 10 * time.Second}),
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: 10 * time.Second, PermitWithoutStream: true}),
		// Calls run on long-lived workers whose stacks have already grown to
		// fit the store's deep call chains: a goroutine per call grows its
		// stack anew each time, a twentieth of the CPU of a connect storm.
		// Calls beyond the workers busy at once still get a goroutine each.
		grpc.NumStreamWorkers(callWorkers),
		// Fixed flow-control windows: gRPC's default sizes them by pinging
		// the peer whenever data arrives, which at chat rates was a ping
		// and its answer, two writes and two wake-ups, per message each
		// way.
		grpc.InitialWindowSize(streamWindow),
		grpc.InitialConnWindowSize(connWindow),
	)
	roomsv1.RegisterRoomsServiceServer(srv, server.NewRooms(d))
	roomsv1.RegisterAdminServiceServer(srv, server.NewAdmin(d))
	hs := health.NewServer()
	healthpb.RegisterHealthServer(srv, hs)
	for _, name := range []string{"", roomsv1.RoomsService_ServiceDesc.ServiceName, roomsv1.AdminService_ServiceDesc.ServiceName} {
		hs.SetServingStatus(name, healthpb.HealthCheckResponse_SERVING)
	}
	desc, err := apidesc.NewResolver()
	if err != nil {
		return nil, nil, err
	}
	refl := reflection.NewServerV1(reflection.ServerOptions{Services: srv, DescriptorResolver: desc})
	reflectionv1.RegisterServerReflectionServer(srv, refl)
	// grpcurl and most tools still ask the v1alpha service first.
	reflectionv1alpha.RegisterServerReflectionServer(srv, reflection.NewServer(reflection.ServerOptions{Services: srv, DescriptorResolver: desc}))
	metrics.InitializeMetrics(srv)
	return srv, hs, nil
}

// callWorkers is how many goroutines serve calls before a call gets a
// goroutine of its own: enough for the calls that wait on a group commit
// together under a connect storm.
const callWorkers = 64

// Flow-control windows of each connection: a stream (a gateway's publish
// stream, a room's subscription) may have a megabyte in flight, the
// connection four, plenty for gateways on the same network.
const (
	streamWindow = 1 << 20
	connWindow   = 4 << 20
)

// logLevel keeps successful and caller-canceled calls (a busy service makes
// thousands a second) out of the info log, shows refused calls at info and
// failures at error.
func logLevel(c codes.Code) slog.Level {
	switch c {
	case codes.OK, codes.Canceled:
		return slog.LevelDebug
	case codes.Internal, codes.Unknown, codes.DataLoss, codes.Unimplemented:
		return slog.LevelError
	case codes.Unavailable, codes.DeadlineExceeded, codes.ResourceExhausted:
		return slog.LevelWarn
	}
	return slog.LevelInfo
}

// roleLimiter gives each credential its own token bucket so an admin can still
// get in while gateways saturate theirs.
type roleLimiter struct {
	service, admin *rate.Limiter
}

func newRoleLimiter(perSecond float64, burst int) *roleLimiter {
	return &roleLimiter{
		service: rate.NewLimiter(rate.Limit(perSecond), burst),
		admin:   rate.NewLimiter(rate.Limit(perSecond), burst),
	}
}

func (l *roleLimiter) Limit(ctx context.Context) error {
	lim := l.service
	if auth.RoleFrom(ctx) == auth.RoleAdmin {
		lim = l.admin
	}
	if !lim.Allow() {
		return fmt.Errorf("rate limit of the %s credential exceeded", auth.RoleFrom(ctx))
	}
	return nil
}
