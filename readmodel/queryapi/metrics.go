package queryapi

import "github.com/prometheus/client_golang/prometheus"

// metrics are the query API's own series, beside the request metrics every
// role has.
type metrics struct {
	tokenWait     prometheus.Histogram
	tokenTimeouts prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		tokenWait: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: "messages",
			Subsystem: "query",
			Name:      "consistency_wait_seconds",
			Help:      "Time reads with consistency tokens waited for the read model to fold them.",
			Buckets:   []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}),
		tokenTimeouts: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "messages",
			Subsystem: "query",
			Name:      "consistency_timeouts_total",
			Help:      "Reads answered 503 because the read model had not folded their consistency tokens within the wait.",
		}),
	}
	reg.MustRegister(m.tokenWait, m.tokenTimeouts)
	return m
}

// feedMetrics are the series of live streams.
type feedMetrics struct {
	open    prometheus.Gauge
	sent    prometheus.Counter
	dropped prometheus.Counter
}

func newFeedMetrics(reg prometheus.Registerer) *feedMetrics {
	m := &feedMetrics{
		open: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: "messages",
			Subsystem: "query",
			Name:      "streams_open",
			Help:      "Live streams (text/event-stream) open.",
		}),
		sent: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "messages",
			Subsystem: "query",
			Name:      "stream_events_sent_total",
			Help:      "Messages sent on live streams.",
		}),
		dropped: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "messages",
			Subsystem: "query",
			Name:      "streams_dropped_total",
			Help:      "Live streams disconnected because their client did not keep up.",
		}),
	}
	reg.MustRegister(m.open, m.sent, m.dropped)
	return m
}
