package app

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"

	"github.com/parleyhq/parley/services/kit/requestid"
)

// logUnary and logStream log each finished call at logLevel of its code,
// with the message and fields of go-grpc-middleware's logging interceptor.
// That interceptor formats every call's fields (peer address, start time)
// before it knows whether the call is logged; these build a record only for
// a call the logger keeps, since a busy service makes thousands of
// successful calls a second and logs none of them.
func logUnary(log *slog.Logger) grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		start := time.Now()
		resp, err := handler(ctx, req)
		logCall(ctx, log, info.FullMethod, "unary", start, err)
		return resp, err
	}
}

func logStream(log *slog.Logger) grpc.StreamServerInterceptor {
	return func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
		start := time.Now()
		err := handler(srv, ss)
		typ := "bidi_stream"
		switch {
		case !info.IsClientStream:
			typ = "server_stream"
		case !info.IsServerStream:
			typ = "client_stream"
		}
		logCall(ss.Context(), log, info.FullMethod, typ, start, err)
		return err
	}
}

func logCall(ctx context.Context, log *slog.Logger, fullMethod, typ string, start time.Time, err error) {
	if errors.Is(err, io.EOF) {
		err = nil
	}
	code := status.Code(err)
	level := logLevel(code)
	if !log.Enabled(ctx, level) {
		return
	}
	service, method, _ := strings.Cut(strings.TrimPrefix(fullMethod, "/"), "/")
	attrs := make([]slog.Attr, 0, 12)
	attrs = append(attrs,
		slog.String("protocol", "grpc"),
		slog.String("grpc.component", "server"),
		slog.String("grpc.service", service),
		slog.String("grpc.method", method),
		slog.String("grpc.method_type", typ),
	)
	if p, ok := peer.FromContext(ctx); ok {
		attrs = append(attrs, slog.String("peer.address", p.Addr.String()))
	}
	attrs = append(attrs, slog.String("grpc.start_time", start.Format(time.RFC3339)))
	if d, ok := ctx.Deadline(); ok {
		attrs = append(attrs, slog.String("grpc.request.deadline", d.Format(time.RFC3339)))
	}
	// The gateway names the client event a call serves; another caller's
	// id is logged only if it looks like one.
	if ids := metadata.ValueFromIncomingContext(ctx, requestid.Metadata); len(ids) == 1 && requestid.Valid(ids[0]) {
		attrs = append(attrs, slog.String("request_id", ids[0]))
	}
	attrs = append(attrs, slog.String("grpc.code", code.String()))
	if err != nil {
		attrs = append(attrs, slog.String("grpc.error", err.Error()))
	}
	ms := float64(time.Since(start).Microseconds()) / 1000
	attrs = append(attrs, slog.String("grpc.time_ms", strconv.FormatFloat(ms, 'f', -1, 64)))
	log.LogAttrs(ctx, level, "finished call", attrs...)
}
