// Package loop runs the periodic jobs of Parley's services (sweeps, lease
// and session renewals) on a ticker until their context ends.
package loop

import (
	"context"
	"time"
)

// Every calls job every interval, the first time one interval from now, until
// ctx ends. A job that overruns delays the next call rather than overlapping
// it.
func Every(ctx context.Context, interval time.Duration, job func(context.Context)) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			job(ctx)
		}
	}
}
