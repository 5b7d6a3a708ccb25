package loadgen

import (
	"math/bits"
	"sync/atomic"
	"time"
)

// Latencies are recorded in microseconds into log-linear buckets: subBuckets
// per power of two, so a percentile is off by at most 1/subBuckets (about
// 3%), and recording is one atomic add whatever the sample count, shared by
// every reader goroutine without a lock.
const (
	subBits    = 5
	subBuckets = 1 << subBits
	// Up to 2^40 µs (12 days): nothing the generator sees is longer.
	numBuckets = (40 - subBits + 1) * subBuckets
)

// Histogram counts latency samples. The zero value is empty and ready.
type Histogram struct {
	counts [numBuckets]atomic.Uint64
	n      atomic.Uint64
	max    atomic.Int64 // µs
}

func bucketOf(us uint64) int {
	if us < subBuckets {
		return int(us)
	}
	shift := bits.Len64(us) - subBits - 1
	i := (shift+1)*subBuckets + int(us>>shift) - subBuckets
	return min(i, numBuckets-1)
}

// bucketValue is the largest value of bucket i, so percentiles err high.
func bucketValue(i int) uint64 {
	if i < subBuckets {
		return uint64(i)
	}
	shift := i/subBuckets - 1
	return (uint64(i%subBuckets+subBuckets)+1)<<shift - 1
}

// Record adds one sample; negative durations (clock skew cannot happen in
// one process, but a server could echo a bad timestamp) count as zero.
func (h *Histogram) Record(d time.Duration) {
	us := max(d.Microseconds(), 0)
	h.counts[bucketOf(uint64(us))].Add(1)
	h.n.Add(1)
	for {
		m := h.max.Load()
		if us <= m || h.max.CompareAndSwap(m, us) {
			break
		}
	}
}

// Count is the number of samples.
func (h *Histogram) Count() uint64 { return h.n.Load() }

// Max is the largest sample.
func (h *Histogram) Max() time.Duration { return time.Duration(h.max.Load()) * time.Microsecond }

// Quantile returns the smallest bucket value at or above the fraction q
// (0 < q ≤ 1) of the samples, and 0 with no samples.
func (h *Histogram) Quantile(q float64) time.Duration {
	n := h.n.Load()
	if n == 0 {
		return 0
	}
	rank := uint64(q*float64(n) + 0.5)
	rank = max(rank, 1)
	var seen uint64
	for i := range h.counts {
		seen += h.counts[i].Load()
		if seen >= rank {
			v := min(int64(bucketValue(i)), h.max.Load())
			return time.Duration(v) * time.Microsecond
		}
	}
	return h.Max()
}
