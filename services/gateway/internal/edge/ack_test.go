package edge

import (
	"encoding/json"
	"errors"
	"fmt"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

func TestToError(t *testing.T) {
	tests := []struct {
		err      error
		code     Code
		sameText bool // the ack carries the error's own message
	}{
		{errorf(CodeInvalidArgument, "bad room"), CodeInvalidArgument, true},
		{fmt.Errorf("join: %w", errorf(CodeResourceExhausted, "too many")), CodeResourceExhausted, false},
		{status.Error(codes.InvalidArgument, "invalid room"), CodeInvalidArgument, true},
		{status.Error(codes.AlreadyExists, "exists"), CodeInvalidArgument, true},
		{status.Error(codes.NotFound, "join room: not found"), CodeNotFound, true},
		{status.Error(codes.PermissionDenied, "private"), CodePermissionDenied, true},
		{status.Error(codes.ResourceExhausted, "full"), CodeResourceExhausted, true},
		{status.Error(codes.Unimplemented, "not yet"), CodeUnimplemented, true},
		{status.Error(codes.Unavailable, "connection refused 10.0.0.1"), CodeUnavailable, false},
		{status.Error(codes.DeadlineExceeded, "slow"), CodeUnavailable, false},
		{status.Error(codes.Unauthenticated, "bad service token"), CodeInternal, false},
		{status.Error(codes.Internal, "disk full"), CodeInternal, false},
		{errors.New("boom"), CodeInternal, false},
	}
	for _, tt := range tests {
		t.Run(tt.err.Error(), func(t *testing.T) {
			e := toError(tt.err)
			if e.Code != tt.code {
				t.Errorf("code = %q, want %q", e.Code, tt.code)
			}
			if st, ok := status.FromError(tt.err); ok && tt.sameText && e.Message != st.Message() {
				t.Errorf("message = %q, want the status message %q", e.Message, st.Message())
			}
			if tt.code == CodeInternal && e.Message != "internal error" {
				t.Errorf("internal detail %q reached the client", e.Message)
			}
		})
	}
}

func TestAckJSON(t *testing.T) {
	tests := []struct {
		name string
		ack  Ack
		want string
	}{
		{"no result", Ack{}, `{"ok":true}`},
		{"empty result", Ack{Result: struct{}{}}, `{"ok":true}`},
		{"result fields beside ok", Ack{Result: sendResult{ID: "a", Offset: 2, TS: 3}}, `{"ok":true,"id":"a","offset":2,"ts":3}`},
		{"error", Ack{Result: sendResult{}, Err: errorf(CodeNotFound, "not in room %q", "r")}, `{"ok":false,"error":{"code":"not_found","message":"not in room \"r\""}}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := json.Marshal(tt.ack)
			if err != nil || string(got) != tt.want {
				t.Fatalf("json = %s, %v; want %s", got, err, tt.want)
			}
		})
	}
	if _, err := json.Marshal(Ack{Result: []int{1}}); err == nil {
		t.Fatal("a result that is not an object was encoded")
	}
}
