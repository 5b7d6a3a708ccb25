// Package roomsclient opens the gateway's one gRPC connection to the rooms
// service, carrying the service credential on every call.
package roomsclient

import (
	"context"
	"fmt"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	// Registers the client side of gRPC health checking, which
	// serviceConfig turns on.
	_ "google.golang.org/grpc/health"
	"google.golang.org/grpc/resolver"
	"google.golang.org/grpc/resolver/manual"

	"github.com/parleyhq/parley/services/kit/requestid"
)

// token is a per-RPC credential sending "authorization: Bearer <token>".
type token string

func (t token) GetRequestMetadata(context.Context, ...string) (map[string]string, error) {
	return map[string]string{"authorization": "Bearer " + string(t)}, nil
}

// The rooms service is reached over plaintext on a trusted network (or
// loopback); the token still authenticates the gateway.
func (t token) RequireTransportSecurity() bool { return false }

// Flow-control windows of the connection to the rooms service: a stream
// (a room's subscription, the publish stream) may have a megabyte in flight,
// the connection four, plenty for a gateway next to its rooms service.
const (
	streamWindow = 1 << 20
	connWindow   = 4 << 20
)

// serviceConfig spreads calls over every address of the rooms service
// (replicas on Redis) that its health service says is serving, so that a
// replica that stops is left as soon as it says so, not when calls to it fail.
const serviceConfig = `{
	"loadBalancingConfig": [{"round_robin": {}}],
	"healthCheckConfig": {"serviceName": ""}
}`

// Dial returns a client connection to addr authenticated with serviceToken.
// addr is one host:port, several separated by commas, or a gRPC target such
// as dns:///rooms.internal:50051 whose name resolves to every replica. It
// connects lazily and reconnects on its own.
func Dial(addr, serviceToken string) (*grpc.ClientConn, error) {
	// gRPC's default backs off to two minutes between attempts, but every
	// moment the gateway is cut off from the rooms service its sockets can
	// neither send nor keep their sessions' lease: retry at least once a
	// second.
	reconnect := grpc.ConnectParams{
		Backoff:           backoff.Config{BaseDelay: 100 * time.Millisecond, Multiplier: 1.6, Jitter: 0.2, MaxDelay: time.Second},
		MinConnectTimeout: 5 * time.Second,
	}
	target, opts := addr, []grpc.DialOption(nil)
	if addrs := strings.Split(addr, ","); len(addrs) > 1 {
		r := manual.NewBuilderWithScheme("parley-rooms")
		state := resolver.State{}
		for _, a := range addrs {
			state.Addresses = append(state.Addresses, resolver.Address{Addr: strings.TrimSpace(a)})
		}
		r.InitialState(state)
		target, opts = r.Scheme()+":///rooms", append(opts, grpc.WithResolvers(r))
	}
	conn, err := grpc.NewClient(target, append(opts,
		grpc.WithDefaultServiceConfig(serviceConfig),
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithPerRPCCredentials(token(serviceToken)),
		grpc.WithChainUnaryInterceptor(passRequestIDUnary),
		grpc.WithChainStreamInterceptor(passRequestIDStream),
		grpc.WithConnectParams(reconnect),
		// Fixed flow-control windows, as the rooms service sets: gRPC's
		// default sizes them by pinging the peer whenever data arrives,
		// a ping and its answer for nearly every chat message.
		grpc.WithInitialWindowSize(streamWindow),
		grpc.WithInitialConnWindowSize(connWindow),
	)...)
	if err != nil {
		return nil, fmt.Errorf("rooms service %s: %w", addr, err)
	}
	return conn, nil
}

// passRequestIDUnary and passRequestIDStream send the id of the client event
// a call serves, if any, so that the rooms service logs it with the call.
func passRequestIDUnary(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
	return invoker(withRequestID(ctx), method, req, reply, cc, opts...)
}

func passRequestIDStream(ctx context.Context, desc *grpc.StreamDesc, cc *grpc.ClientConn, method string, streamer grpc.Streamer, opts ...grpc.CallOption) (grpc.ClientStream, error) {
	return streamer(withRequestID(ctx), desc, cc, method, opts...)
}

func withRequestID(ctx context.Context) context.Context {
	if id := requestid.From(ctx); id != "" {
		return metadata.AppendToOutgoingContext(ctx, requestid.Metadata, id)
	}
	return ctx
}
