package reducers

import (
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the reducers' metrics, shared by the reducers of one process.
type Metrics struct {
	applied     *prometheus.CounterVec
	redelivered *prometheus.CounterVec
	failures    *prometheus.CounterVec
	deadLetters *prometheus.CounterVec
	halted      *prometheus.GaugeVec
	checkpoint  *prometheus.GaugeVec
	lag         *prometheus.GaugeVec
	batchLimit  *prometheus.GaugeVec
	batch       prometheus.Histogram
	age         *ageCollector
}

// ageCollector reports, at each scrape, how long each partition has gone
// without progress while events waited.
type ageCollector struct {
	desc *prometheus.Desc
	mu   sync.Mutex
	ages map[string]func() time.Duration
}

func (a *ageCollector) track(partition string, age func() time.Duration) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.ages[partition] = age
}

func (a *ageCollector) untrack(partition string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	delete(a.ages, partition)
}

// Describe implements prometheus.Collector.
func (a *ageCollector) Describe(ch chan<- *prometheus.Desc) { ch <- a.desc }

// Collect implements prometheus.Collector.
func (a *ageCollector) Collect(ch chan<- prometheus.Metric) {
	a.mu.Lock()
	defer a.mu.Unlock()
	for p, age := range a.ages {
		ch <- prometheus.MustNewConstMetric(a.desc, prometheus.GaugeValue, age().Seconds(), p)
	}
}

// NewMetrics registers the reducers' metrics with reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	vec := func(name, help string) *prometheus.CounterVec {
		return prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "messages", Subsystem: "reducer", Name: name, Help: help,
		}, []string{"partition"})
	}
	gauge := func(name, help string) *prometheus.GaugeVec {
		return prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: "messages", Subsystem: "reducer", Name: name, Help: help,
		}, []string{"partition"})
	}
	m := &Metrics{
		applied:     vec("events_applied_total", "Events folded into the read model."),
		redelivered: vec("events_redelivered_total", "Events delivered again after they were applied, and skipped."),
		failures:    vec("fold_failures_total", "Attempts to fold an event that failed and stopped its partition."),
		deadLetters: vec("dead_letters_total", "Events parked in the dead-letter stream because they could not be folded."),
		halted:      gauge("partition_halted", "1 while the partition is stopped at an event that cannot be folded yet."),
		checkpoint:  gauge("checkpoint_sequence", "Stream sequence of the last event applied to the read model."),
		lag:         gauge("lag_events", "Events stored in the partition and not yet delivered to its reducer."),
		batchLimit:  gauge("batch_limit_events", "Most events the reducer now writes at once: the batch size, or fewer while the read model cannot take that many in time."),
		batch: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: "messages", Subsystem: "reducer", Name: "batch_duration_seconds",
			Help:    "Time to fold and write one batch.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}),
	}
	m.age = &ageCollector{
		desc: prometheus.NewDesc("messages_reducer_checkpoint_age_seconds",
			"Time since the partition's checkpoint last moved while events waited to be folded; 0 while it keeps up.",
			[]string{"partition"}, nil),
		ages: map[string]func() time.Duration{},
	}
	reg.MustRegister(m.age)
	reg.MustRegister(m.applied, m.redelivered, m.failures, m.deadLetters, m.halted, m.checkpoint, m.lag, m.batchLimit, m.batch)
	return m
}

// Serve starts the series of a partition this process has begun to fold: its
// counters at 0 and halted at 0, so that the first dead letter or failure is
// an increase() an alert sees, not the birth of a series. The checkpoint and
// lag gauges appear once the reducer has read them, not as a made-up 0.
func (m *Metrics) Serve(partition int) {
	p := strconv.Itoa(partition)
	for _, c := range []*prometheus.CounterVec{m.applied, m.redelivered, m.failures, m.deadLetters} {
		c.WithLabelValues(p)
	}
	m.halted.WithLabelValues(p).Set(0)
}

// standBy drops the series of a partition another process now holds, and
// starts its counters again at 0, as Serve does.
func (m *Metrics) standBy(partition string) {
	p, _ := strconv.Atoi(partition)
	m.Release(p)
	m.Serve(p)
}

// Release drops every series of a partition this process no longer folds, so
// that it does not go on reporting a stale lag, checkpoint, batch limit or
// halt for a partition another process now owns.
func (m *Metrics) Release(partition int) {
	p := strconv.Itoa(partition)
	for _, c := range []*prometheus.CounterVec{m.applied, m.redelivered, m.failures, m.deadLetters} {
		c.DeleteLabelValues(p)
	}
	for _, g := range []*prometheus.GaugeVec{m.halted, m.checkpoint, m.lag, m.batchLimit} {
		g.DeleteLabelValues(p)
	}
	m.age.untrack(p)
}
