package app

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics implements edge.Metrics and relay.Metrics on Prometheus.
type metrics struct {
	connections *prometheus.GaugeVec
	events      *prometheus.CounterVec
	latency     prometheus.Histogram
	drops       prometheus.Counter
	deliveries  prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		connections: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "parley_gateway_connections", Help: "Connected sockets by namespace.",
		}, []string{"namespace"}),
		events: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "parley_gateway_events_total", Help: "Client events handled, by event and result (ok or an error code).",
		}, []string{"event", "result"}),
		latency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "parley_gateway_fanout_latency_seconds",
			Help:    "Time from the rooms service accepting a message to the gateway queueing it on its sockets.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1},
		}),
		drops: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "parley_gateway_send_queue_drops_total", Help: "Sockets disconnected because their send queue was full.",
		}),
		deliveries: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "parley_gateway_deliveries_total", Help: "Messages queued on sockets as they arrived live (not catch-up), one per socket.",
		}),
	}
	reg.MustRegister(m.connections, m.events, m.latency, m.drops, m.deliveries)
	return m
}

func (m *metrics) Event(name, result string) { m.events.WithLabelValues(name, result).Inc() }

func (m *metrics) Connected(namespace string, delta int) {
	m.connections.WithLabelValues(namespace).Add(float64(delta))
}

func (m *metrics) Delivered(since time.Duration, sockets int) {
	m.latency.Observe(since.Seconds())
	m.deliveries.Add(float64(sockets))
}

func (m *metrics) Dropped() { m.drops.Inc() }
