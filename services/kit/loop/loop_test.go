package loop

import (
	"context"
	"testing"
	"time"
)

func TestEveryRunsUntilCanceled(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	calls := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		Every(ctx, time.Millisecond, func(context.Context) { calls <- struct{}{} })
	}()
	for range 3 {
		select {
		case <-calls:
		case <-time.After(5 * time.Second):
			t.Fatal("job not called")
		}
	}
	cancel()
	for {
		select {
		case <-calls: // a tick that raced the cancel
		case <-done:
			return
		case <-time.After(5 * time.Second):
			t.Fatal("Every did not return after its context ended")
		}
	}
}
