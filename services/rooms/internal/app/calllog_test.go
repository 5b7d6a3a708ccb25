package app

import (
	"context"
	"encoding/json"
	"log/slog"
	"net"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"
)

func TestLogCalls(t *testing.T) {
	const method = "/parley.rooms.v1.RoomsService/GetRoom"
	tests := []struct {
		name  string
		level slog.Level
		err   error
		id    string         // the caller's x-request-id, if any
		want  map[string]any // the record's fields but its times; nil: nothing logged
	}{
		{name: "success at info", level: slog.LevelInfo},
		{name: "success at debug", level: slog.LevelDebug, want: map[string]any{
			"level": "DEBUG", "msg": "finished call", "protocol": "grpc", "grpc.component": "server",
			"grpc.service": "parley.rooms.v1.RoomsService", "grpc.method": "GetRoom", "grpc.method_type": "unary",
			"peer.address": "192.0.2.1:4242", "grpc.code": "OK",
		}},
		{name: "a gateway's request id", level: slog.LevelDebug, id: "sock_-1.a:12", want: map[string]any{
			"level": "DEBUG", "msg": "finished call", "protocol": "grpc", "grpc.component": "server",
			"grpc.service": "parley.rooms.v1.RoomsService", "grpc.method": "GetRoom", "grpc.method_type": "unary",
			"peer.address": "192.0.2.1:4242", "grpc.code": "OK", "request_id": "sock_-1.a:12",
		}},
		{name: "a request id that is no id", level: slog.LevelDebug, id: "forged\nline", want: map[string]any{
			"level": "DEBUG", "msg": "finished call", "protocol": "grpc", "grpc.component": "server",
			"grpc.service": "parley.rooms.v1.RoomsService", "grpc.method": "GetRoom", "grpc.method_type": "unary",
			"peer.address": "192.0.2.1:4242", "grpc.code": "OK",
		}},
		{name: "refused", level: slog.LevelInfo, err: status.Error(codes.NotFound, "no such room"), want: map[string]any{
			"level": "INFO", "msg": "finished call", "protocol": "grpc", "grpc.component": "server",
			"grpc.service": "parley.rooms.v1.RoomsService", "grpc.method": "GetRoom", "grpc.method_type": "unary",
			"peer.address": "192.0.2.1:4242", "grpc.code": "NotFound", "grpc.error": "rpc error: code = NotFound desc = no such room",
		}},
		{name: "failed at error", level: slog.LevelError, err: status.Error(codes.Internal, "boom"), want: map[string]any{
			"level": "ERROR", "msg": "finished call", "protocol": "grpc", "grpc.component": "server",
			"grpc.service": "parley.rooms.v1.RoomsService", "grpc.method": "GetRoom", "grpc.method_type": "unary",
			"peer.address": "192.0.2.1:4242", "grpc.code": "Internal", "grpc.error": "rpc error: code = Internal desc = boom",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out strings.Builder
			log := slog.New(slog.NewJSONHandler(&out, &slog.HandlerOptions{Level: tt.level}))
			ctx := peer.NewContext(t.Context(), &peer.Peer{Addr: &net.TCPAddr{IP: net.IPv4(192, 0, 2, 1), Port: 4242}})
			if tt.id != "" {
				ctx = metadata.NewIncomingContext(ctx, metadata.Pairs("x-request-id", tt.id))
			}
			handler := func(context.Context, any) (any, error) { return "response", tt.err }
			resp, err := logUnary(log)(ctx, "request", &grpc.UnaryServerInfo{FullMethod: method}, handler)
			if resp != "response" || err != tt.err {
				t.Errorf("interceptor returned %v, %v; want the handler's response, %v", resp, err, tt.err)
			}
			if tt.want == nil {
				if out.Len() != 0 {
					t.Errorf("logged %s; want nothing", out.String())
				}
				return
			}
			var got map[string]any
			if err := json.Unmarshal([]byte(out.String()), &got); err != nil {
				t.Fatalf("log %q: %v", out.String(), err)
			}
			for _, k := range []string{"time", "grpc.start_time", "grpc.time_ms"} {
				if _, ok := got[k]; !ok {
					t.Errorf("log has no %s field", k)
				}
			}
			ignore := cmpopts.IgnoreMapEntries(func(k string, _ any) bool {
				return k == "time" || k == "grpc.start_time" || k == "grpc.time_ms"
			})
			if d := cmp.Diff(tt.want, got, ignore); d != "" {
				t.Errorf("log mismatch (-want +got):\n%s", d)
			}
		})
	}
}
