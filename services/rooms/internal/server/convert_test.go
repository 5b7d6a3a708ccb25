package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/parleyhq/parley/services/rooms/internal/store"
)

func TestErrStatus(t *testing.T) {
	tests := []struct {
		err  error
		want codes.Code
	}{
		{fmt.Errorf("get room: %w", store.ErrNotFound), codes.NotFound},
		{fmt.Errorf("publish: %w", store.ErrReadOnly), codes.PermissionDenied},
		{fmt.Errorf("publish: %w: dial tcp: connection refused", store.ErrUnavailable), codes.Unavailable},
		{context.DeadlineExceeded, codes.DeadlineExceeded},
		{errors.New("disk I/O error"), codes.Internal},
	}
	for _, tt := range tests {
		got := status.Code(errStatus(t.Context(), slog.New(slog.DiscardHandler), "op", tt.err))
		if got != tt.want {
			t.Errorf("errStatus(%v) = %v, want %v", tt.err, got, tt.want)
		}
	}
}
