package loadgen

import (
	"testing"
	"time"
)

func TestBucketsCoverEveryValueOnce(t *testing.T) {
	prev := -1
	for us := uint64(0); us < 1<<20; us++ {
		b := bucketOf(us)
		if b != prev && b != prev+1 {
			t.Fatalf("bucketOf(%d) = %d after %d: buckets must be contiguous", us, b, prev)
		}
		if v := bucketValue(b); v < us {
			t.Fatalf("bucketValue(%d) = %d < %d in it", b, v, us)
		}
		if float64(bucketValue(b)) > float64(us)*(1+2.0/subBuckets)+1 {
			t.Fatalf("bucketValue(%d) = %d: too far above %d", b, bucketValue(b), us)
		}
		prev = b
	}
	if b := bucketOf(1 << 62); b != numBuckets-1 {
		t.Errorf("bucketOf(huge) = %d, want the last bucket %d", b, numBuckets-1)
	}
}

func TestQuantile(t *testing.T) {
	tests := []struct {
		name    string
		samples []time.Duration
		q       float64
		want    time.Duration
	}{
		{name: "empty", q: 0.5, want: 0},
		{name: "one", samples: []time.Duration{7 * time.Microsecond}, q: 0.99, want: 7 * time.Microsecond},
		{name: "median of small values is exact", samples: []time.Duration{1, 2, 3, 4, 5}, q: 0.5, want: 0},
		{name: "p99 of 100", samples: ramp(100, time.Microsecond), q: 0.99, want: 99 * time.Microsecond},
		{name: "p50 of 1..1000 ms within 3%", samples: ramp(1000, time.Millisecond), q: 0.5, want: 507903 * time.Microsecond},
		{name: "never above the max", samples: []time.Duration{1000 * time.Microsecond}, q: 1, want: 1000 * time.Microsecond},
		{name: "negative counts as zero", samples: []time.Duration{-time.Second}, q: 1, want: 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var h Histogram
			for _, s := range tt.samples {
				h.Record(s)
			}
			if got := h.Quantile(tt.q); got != tt.want {
				t.Errorf("Quantile(%v) = %v, want %v", tt.q, got, tt.want)
			}
		})
	}
}

// ramp is 1..n times unit.
func ramp(n int, unit time.Duration) []time.Duration {
	out := make([]time.Duration, n)
	for i := range out {
		out[i] = time.Duration(i+1) * unit
	}
	return out
}
