// Package report turns the suite's runs into the comparison: medians of
// runs, the targets with a verdict each, docs/performance.md and its
// latency chart.
package report

import (
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/parleyhq/parley/bench/internal/suite"
)

// Cell is one server's figure: the median of its runs, or why there is none.
type Cell struct {
	Value   float64
	Failure string // set when a run lost or misdelivered messages, or failed
}

func (c Cell) format(digits int) string {
	if c.Failure != "" {
		return "FAIL: " + c.Failure
	}
	return formatNumber(c.Value, digits)
}

func formatNumber(v float64, digits int) string {
	if math.IsNaN(v) {
		return "—"
	}
	s := fmt.Sprintf("%.*f", digits, v)
	if digits == 0 && v >= 1000 {
		// Thousands separators: deliveries/s read better as 45,012.
		var b strings.Builder
		for i, r := range s {
			if i > 0 && (len(s)-i)%3 == 0 {
				b.WriteByte(',')
			}
			b.WriteRune(r)
		}
		return b.String()
	}
	return s
}

// Row is one figure of the comparison.
type Row struct {
	Figure       string
	Node, Parley Cell
	Ratio        float64 // Parley/Node; NaN when either is missing
	Target       string  // the "resolved when at least", empty for figures without one
	Verdict      string  // PASS, FAIL, or empty without a target
	digits       int
}

// target is a bound on Parley/Node: at most (lower is better) or at least.
type target struct {
	atLeast bool
	ratio   float64
}

func (t target) String() string {
	if t.atLeast {
		return fmt.Sprintf("≥ %.1f×", t.ratio)
	}
	return fmt.Sprintf("≤ %.1f×", t.ratio)
}

func (t target) holds(ratio float64) bool {
	if t.atLeast {
		return ratio >= t.ratio
	}
	return ratio <= t.ratio
}

// figure is how a row is computed from one run.
type figure struct {
	name     string
	workload string
	digits   int
	value    func(suite.Run) float64
	target   *target
}

func atMost(r float64) *target  { return &target{ratio: r} }
func atLeast(r float64) *target { return &target{atLeast: true, ratio: r} }

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
func us(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }

func p50(r suite.Run) float64 { return ms(r.Phase.P50) }
func p99(r suite.Run) float64 { return ms(r.Phase.P99) }

func cpuPerDelivery(r suite.Run) float64 { return us(r.CPUPerDelivery()) }

// figures are the rows of the "Targets" table, with latencies that
// have no target of their own for context.
func figures() []figure {
	return []figure{
		{name: "W1 CPU per delivery (µs, all server processes)", workload: "W1", digits: 1, value: cpuPerDelivery, target: atMost(1.5)},
		{name: "W2 CPU per delivery (µs)", workload: "W2", digits: 1, value: cpuPerDelivery, target: atMost(1.0)},
		{name: "W1 latency p50 (ms)", workload: "W1", digits: 2, value: p50},
		{name: "W1 latency p99 (ms)", workload: "W1", digits: 2, value: p99, target: atMost(2)},
		{name: "W2 latency p50 (ms)", workload: "W2", digits: 2, value: p50},
		{name: "W2 latency p99 (ms)", workload: "W2", digits: 2, value: p99, target: atMost(1.0)},
		{name: "W3 highest deliveries/s with p99 < 100 ms, nothing lost", workload: "W3", digits: 0, target: atLeast(1.0)},
		{name: "CPU per connect + join (ms, connect storm of 1,000)", workload: "storm", digits: 2,
			value: func(r suite.Run) float64 { return ms(r.ConnectCPU) / float64(r.Clients) }, target: atMost(3)},
		{name: "connect storm wall time (s)", workload: "storm", digits: 2,
			value: func(r suite.Run) float64 { return r.ConnectWall.Seconds() }},
		{name: "memory per connection (KB, W1)", workload: "W1", digits: 1,
			value: func(r suite.Run) float64 { return r.RSSPerConn() / 1024 }, target: atMost(1.0)},
		{name: "C5k CPU to connect 5,000 clients (s)", workload: "C5k", digits: 2,
			value: func(r suite.Run) float64 { return r.ConnectCPU.Seconds() }, target: atMost(3)},
		{name: "C5k CPU per delivery (µs)", workload: "C5k", digits: 1, value: cpuPerDelivery, target: atMost(1.5)},
		{name: "C5k latency p99 (ms)", workload: "C5k", digits: 2, value: p99},
		{name: "C5k memory per connection (KB)", workload: "C5k", digits: 1,
			value: func(r suite.Run) float64 { return r.RSSPerConn() / 1024 }},
	}
}

// Median is the median of xs, NaN for none.
func Median(xs []float64) float64 {
	if len(xs) == 0 {
		return math.NaN()
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

// Table computes the comparison's rows from every run. A workload whose run
// failed or lost a delivery (below saturation: every workload but the sweep)
// has no figure, only the failure.
func Table(runs []suite.Run) []Row {
	var rows []Row
	for _, f := range figures() {
		row := Row{Figure: f.name, digits: f.digits, Ratio: math.NaN()}
		row.Node = cell(runs, "node", f)
		row.Parley = cell(runs, "parley", f)
		if row.Node.Failure == "" && row.Parley.Failure == "" && row.Node.Value > 0 {
			row.Ratio = row.Parley.Value / row.Node.Value
		}
		if f.target != nil {
			row.Target = f.target.String()
			switch {
			case row.Node.Failure != "" || row.Parley.Failure != "" || math.IsNaN(row.Ratio):
				row.Verdict = "FAIL"
			case f.target.holds(row.Ratio):
				row.Verdict = "PASS"
			default:
				row.Verdict = "FAIL"
			}
		}
		rows = append(rows, row)
	}
	return rows
}

// maxFailure is the longest failure a table cell shows.
const maxFailure = 90

func cell(runs []suite.Run, server string, f figure) Cell {
	if f.workload == "W3" {
		return Cell{Value: Median(sweepBests(runs, server))}
	}
	var values []float64
	var failures []string
	for _, r := range runs {
		if r.Server != server || r.Workload != f.workload {
			continue
		}
		if l := r.Losses(); l != "" {
			failures = append(failures, fmt.Sprintf("run %d: %s", r.Run, l))
			continue
		}
		values = append(values, f.value(r))
	}
	if len(failures) > 0 {
		// Whole errors are in the log and results.json; the table keeps a line.
		f := strings.Join(failures, "; ")
		if len(f) > maxFailure {
			f = f[:maxFailure] + "…"
		}
		return Cell{Failure: f}
	}
	if len(values) == 0 {
		return Cell{Value: math.NaN()}
	}
	return Cell{Value: Median(values)}
}

// sweepBests is, for each sweep run of server, the highest deliveries/s of
// a step that was not saturated (0 when none was).
func sweepBests(runs []suite.Run, server string) []float64 {
	best := map[int]float64{}
	for _, r := range runs {
		if r.Server != server || r.Workload != "W3" {
			continue
		}
		b := best[r.Run]
		if !r.Saturated() {
			b = max(b, r.Phase.DeliveriesPerSec)
		}
		best[r.Run] = b
	}
	var out []float64
	for _, b := range best {
		out = append(out, b)
	}
	return out
}

// Failed says whether the comparison is a failure: a workload lost messages
// below saturation, a run failed, or a target does not hold.
func Failed(rows []Row) bool {
	for _, r := range rows {
		if r.Verdict == "FAIL" || r.Node.Failure != "" || r.Parley.Failure != "" {
			return true
		}
	}
	return false
}

// Point is one step of the sweep: the median over the runs that reached it.
type Point struct {
	Rate             float64 // messages per second per client
	DeliveriesPerSec float64
	P99              time.Duration
	Runs             int
	Saturated        bool // in any run
}

// Sweep returns each server's sweep steps, by rate.
func Sweep(runs []suite.Run) map[string][]Point {
	type key struct {
		server string
		rate   float64
	}
	dps := map[key][]float64{}
	lat := map[key][]float64{}
	sat := map[key]bool{}
	for _, r := range runs {
		if r.Workload != "W3" || r.Phase == nil {
			continue
		}
		k := key{r.Server, r.Rate}
		dps[k] = append(dps[k], r.Phase.DeliveriesPerSec)
		lat[k] = append(lat[k], float64(r.Phase.P99))
		sat[k] = sat[k] || r.Saturated()
	}
	out := map[string][]Point{}
	for k := range dps {
		out[k.server] = append(out[k.server], Point{
			Rate: k.rate, DeliveriesPerSec: Median(dps[k]), P99: time.Duration(Median(lat[k])),
			Runs: len(dps[k]), Saturated: sat[k],
		})
	}
	for _, pts := range out {
		slices.SortFunc(pts, func(a, b Point) int { return cmpFloat(a.Rate, b.Rate) })
	}
	return out
}

func cmpFloat(a, b float64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}
