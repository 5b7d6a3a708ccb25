package suite

import (
	"testing"
	"time"

	"github.com/parleyhq/parley/bench/internal/loadgen"
)

func TestRunFigures(t *testing.T) {
	phase := func(lost, dup, mis int64, p99 time.Duration) *loadgen.PhaseResult {
		return &loadgen.PhaseResult{Lost: lost, Duplicated: dup, Misdelivered: mis, P99: p99, WindowDeliveries: 1000}
	}
	tests := []struct {
		name          string
		run           Run
		wantLosses    string
		wantSaturated bool
	}{
		{name: "clean", run: Run{Phase: phase(0, 0, 0, time.Millisecond)}},
		{name: "slow", run: Run{Phase: phase(0, 0, 0, SweepLimit)}, wantSaturated: true},
		{name: "lost and duplicated", run: Run{Phase: phase(3, 2, 0, time.Millisecond)}, wantLosses: "3 lost, 2 duplicated", wantSaturated: true},
		{name: "misdelivered", run: Run{Phase: phase(0, 0, 1, time.Millisecond)}, wantLosses: "1 misdelivered", wantSaturated: true},
		{name: "failed", run: Run{Err: "connect: refused"}, wantLosses: "connect: refused", wantSaturated: true},
		{name: "connect storm: no phase", run: Run{}, wantSaturated: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.run.Losses(); got != tt.wantLosses {
				t.Errorf("Losses = %q, want %q", got, tt.wantLosses)
			}
			if got := tt.run.Saturated(); got != tt.wantSaturated {
				t.Errorf("Saturated = %v, want %v", got, tt.wantSaturated)
			}
		})
	}
}

func TestPerUnitFigures(t *testing.T) {
	r := Run{
		Clients: 100, IdleRSS: 1 << 20, LoadedRSS: 1<<20 + 100*4096,
		WindowCPU: 50 * time.Millisecond, Phase: &loadgen.PhaseResult{WindowDeliveries: 1000},
	}
	if got := r.CPUPerDelivery(); got != 50*time.Microsecond {
		t.Errorf("CPUPerDelivery = %v, want 50µs", got)
	}
	if got := r.RSSPerConn(); got != 4096 {
		t.Errorf("RSSPerConn = %v, want 4096", got)
	}
	if got := (Run{}).CPUPerDelivery(); got != 0 {
		t.Errorf("CPUPerDelivery without a phase = %v, want 0", got)
	}
}
