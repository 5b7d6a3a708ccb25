package chat

import (
	"errors"
	"fmt"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

func TestToCode(t *testing.T) {
	tests := []struct {
		err      error
		code     string
		sameText bool // the ack carries the error's own message
	}{
		{errorf(codeInvalidArgument, "bad room"), codeInvalidArgument, true},
		{fmt.Errorf("join: %w", errorf(codeResourceExhausted, "too many")), codeResourceExhausted, false},
		{status.Error(codes.InvalidArgument, "invalid room"), codeInvalidArgument, true},
		{status.Error(codes.AlreadyExists, "exists"), codeInvalidArgument, true},
		{status.Error(codes.NotFound, "join room: not found"), codeNotFound, true},
		{status.Error(codes.PermissionDenied, "private"), codePermissionDenied, true},
		{status.Error(codes.ResourceExhausted, "full"), codeResourceExhausted, true},
		{status.Error(codes.Unavailable, "connection refused 10.0.0.1"), codeUnavailable, false},
		{status.Error(codes.DeadlineExceeded, "slow"), codeUnavailable, false},
		{status.Error(codes.Unauthenticated, "bad service token"), codeInternal, false},
		{status.Error(codes.Internal, "disk full"), codeInternal, false},
		{errors.New("boom"), codeInternal, false},
	}
	for _, tt := range tests {
		t.Run(tt.err.Error(), func(t *testing.T) {
			code, msg := toCode(tt.err)
			if code != tt.code {
				t.Errorf("code = %q, want %q", code, tt.code)
			}
			if st, ok := status.FromError(tt.err); ok && tt.sameText && msg != st.Message() {
				t.Errorf("message = %q, want the status message %q", msg, st.Message())
			}
			if !tt.sameText && (msg == tt.err.Error()) && tt.code == codeInternal {
				t.Errorf("internal detail %q leaked to the client", msg)
			}
		})
	}
}
