package web

import (
	"github.com/prometheus/client_golang/prometheus"
)

// HTTPMetrics are the request metrics every HTTP role exports.
type HTTPMetrics struct {
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
}

// NewHTTPMetrics registers the request metrics with reg.
func NewHTTPMetrics(reg prometheus.Registerer) *HTTPMetrics {
	m := &HTTPMetrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "messages",
			Subsystem: "http",
			Name:      "requests_total",
			Help:      "HTTP requests answered, by route, method and status code.",
		}, []string{"route", "method", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: "messages",
			Subsystem: "http",
			Name:      "request_duration_seconds",
			Help:      "Time to answer HTTP requests, by route, method and status code.",
			Buckets:   []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5},
		}, []string{"route", "method", "code"}),
	}
	reg.MustRegister(m.requests, m.duration)
	return m
}
