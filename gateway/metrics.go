package gateway

import "github.com/prometheus/client_golang/prometheus"

// metrics are the gateway's own series; request counts and latencies are the
// shared messages_http_* ones.
type metrics struct {
	authFailures   *prometheus.CounterVec
	rateLimited    prometheus.Counter
	authLimited    prometheus.Counter
	policyDenied   prometheus.Counter
	upstreamUp     *prometheus.GaugeVec
	upstreamErrors *prometheus.CounterVec
}

// Reasons a request fails authentication, the values of the reason label.
const (
	reasonMissing    = "missing"     // no Authorization header
	reasonMalformed  = "malformed"   // not a bearer token, or not a JWT
	reasonSignature  = "signature"   // bad signature or an algorithm not accepted
	reasonUnknownKey = "unknown_key" // no key with the token's kid
	reasonExpired    = "expired"     // past exp, or before nbf
	reasonClaims     = "claims"      // exp missing, or iss or aud not as configured
	reasonSubject    = "subject"     // sub missing or not a valid user id
	reasonCritical   = "critical"    // crit names extensions, which the gateway does not support
)

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		authFailures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "messages",
			Subsystem: "gateway",
			Name:      "auth_failures_total",
			Help:      "Requests refused with 401, by reason (missing, malformed, signature, unknown_key, expired, claims, subject, critical).",
		}, []string{"reason"}),
		rateLimited: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "messages",
			Subsystem: "gateway",
			Name:      "rate_limited_requests_total",
			Help:      "Requests refused with 429 because their user had used up their rate.",
		}),
		authLimited: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "messages",
			Subsystem: "gateway",
			Name:      "auth_limited_requests_total",
			Help:      "Requests refused with 429, their token unchecked, because their client address had used up its failed authentications.",
		}),
		policyDenied: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "messages",
			Subsystem: "gateway",
			Name:      "count_denied_requests_total",
			Help:      "Counts refused with 403 because the token lacked the count role.",
		}),
		upstreamUp: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: "messages",
			Subsystem: "gateway",
			Name:      "upstream_up",
			Help:      "Whether an upstream passed its last health check (1) or not (0), by pool and upstream URL.",
		}, []string{"pool", "upstream"}),
		upstreamErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "messages",
			Subsystem: "gateway",
			Name:      "upstream_errors_total",
			Help:      "Requests the gateway answered itself because an upstream failed, by pool and reason (unavailable, timeout, failed).",
		}, []string{"pool", "reason"}),
	}
	reg.MustRegister(m.authFailures, m.rateLimited, m.authLimited, m.policyDenied, m.upstreamUp, m.upstreamErrors)
	for _, r := range []string{reasonMissing, reasonMalformed, reasonSignature, reasonUnknownKey, reasonExpired, reasonClaims, reasonSubject, reasonCritical} {
		m.authFailures.WithLabelValues(r)
	}
	return m
}
