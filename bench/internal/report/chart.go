package report

import (
	"fmt"
	"io"
	"math"
	"strings"
	"time"
)

// The chart's geometry, in SVG user units.
const (
	chartW, chartH                         = 720, 420
	marginL, marginR, marginT, marginB int = 70, 20, 40, 50
)

// series is one server's line on the chart.
type series struct {
	name, label, color string
}

// WriteChart writes the sweep as an SVG chart: p99 latency (log scale)
// against deliveries/s, one line per server, the 100 ms limit dashed.
func WriteChart(w io.Writer, sweep map[string][]Point) error {
	all := []series{{"node", "Node socket.io 4.8", "#2e7d32"}, {"parley", "Parley", "#1565c0"}}
	maxX, maxY := 1.0, float64(time.Second)
	for _, pts := range sweep {
		for _, p := range pts {
			maxX = max(maxX, p.DeliveriesPerSec)
			maxY = max(maxY, float64(p.P99))
		}
	}
	xStep := niceStep(maxX / 5)
	maxX = math.Ceil(maxX/xStep) * xStep
	// Decades from 0.1 ms to the first power of ten at or above the worst p99.
	minExp := -1.0
	maxExp := math.Ceil(math.Log10(maxY / float64(time.Millisecond)))
	plotW, plotH := float64(chartW-marginL-marginR), float64(chartH-marginT-marginB)
	x := func(v float64) float64 { return float64(marginL) + v/maxX*plotW }
	y := func(d time.Duration) float64 {
		msv := max(float64(d)/float64(time.Millisecond), math.Pow(10, minExp))
		return float64(marginT) + (maxExp-math.Log10(msv))/(maxExp-minExp)*plotH
	}

	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="sans-serif" font-size="12">`+"\n", chartW, chartH, chartW, chartH)
	fmt.Fprintf(&b, `<rect width="%d" height="%d" fill="white"/>`+"\n", chartW, chartH)
	fmt.Fprintf(&b, `<text x="%d" y="22" font-size="15" font-weight="bold">p99 latency against load (W3: rooms of 10, rising rate)</text>`+"\n", marginL)
	bottom, right := float64(chartH-marginB), float64(chartW-marginR)
	for v := 0.0; v <= maxX+xStep/2; v += xStep {
		fmt.Fprintf(&b, `<line x1="%.1f" y1="%d" x2="%.1f" y2="%.1f" stroke="#ddd"/>`+"\n", x(v), marginT, x(v), bottom)
		fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" text-anchor="middle">%s</text>`+"\n", x(v), bottom+18, formatNumber(v, 0))
	}
	for e := minExp; e <= maxExp; e++ {
		d := time.Duration(math.Pow(10, e) * float64(time.Millisecond))
		fmt.Fprintf(&b, `<line x1="%d" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#ddd"/>`+"\n", marginL, y(d), right, y(d))
		fmt.Fprintf(&b, `<text x="%d" y="%.1f" text-anchor="end">%s</text>`+"\n", marginL-6, y(d)+4, fmt.Sprintf("%g ms", math.Pow(10, e)))
	}
	limit := y(100 * time.Millisecond)
	fmt.Fprintf(&b, `<line x1="%d" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#c62828" stroke-dasharray="6 4"/>`+"\n", marginL, limit, right, limit)
	fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" text-anchor="end" fill="#c62828">100 ms</text>`+"\n", right-4, limit-4)
	fmt.Fprintf(&b, `<rect x="%d" y="%d" width="%.1f" height="%.1f" fill="none" stroke="#333"/>`+"\n", marginL, marginT, plotW, plotH)
	fmt.Fprintf(&b, `<text x="%.1f" y="%d" text-anchor="middle">deliveries per second</text>`+"\n", float64(marginL)+plotW/2, chartH-10)
	fmt.Fprintf(&b, `<text transform="translate(16 %.1f) rotate(-90)" text-anchor="middle">p99 latency (log scale)</text>`+"\n", float64(marginT)+plotH/2)

	for i, s := range all {
		pts := sweep[s.name]
		var coords []string
		for _, p := range pts {
			coords = append(coords, fmt.Sprintf("%.1f,%.1f", x(p.DeliveriesPerSec), y(p.P99)))
		}
		if len(coords) > 1 {
			fmt.Fprintf(&b, `<polyline points="%s" fill="none" stroke="%s" stroke-width="2"/>`+"\n", strings.Join(coords, " "), s.color)
		}
		for _, c := range coords {
			cx, cy, _ := strings.Cut(c, ",")
			fmt.Fprintf(&b, `<circle cx="%s" cy="%s" r="4" fill="%s"/>`+"\n", cx, cy, s.color)
		}
		ly := marginT + 16 + i*18
		fmt.Fprintf(&b, `<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="%s" stroke-width="2"/>`+"\n", marginL+12, ly-4, marginL+36, ly-4, s.color)
		fmt.Fprintf(&b, `<text x="%d" y="%d">%s</text>`+"\n", marginL+42, ly, s.label)
	}
	b.WriteString("</svg>\n")
	_, err := io.WriteString(w, b.String())
	return err
}

// niceStep rounds a raw tick step up to 1, 2 or 5 times a power of ten.
func niceStep(raw float64) float64 {
	if raw <= 0 {
		return 1
	}
	p := math.Pow(10, math.Floor(math.Log10(raw)))
	for _, m := range []float64{1, 2, 5, 10} {
		if m*p >= raw {
			return m * p
		}
	}
	return 10 * p
}
