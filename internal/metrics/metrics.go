// Package metrics defines hookd's Prometheus metrics. Labels name routes, outcomes and
// status classes, never a consumer, a client or a URL, so that the number of series stays
// bounded whatever the number of tenants.
package metrics

import (
	"context"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Outcomes of a delivery attempt, the values of the "outcome" label.
const (
	OutcomeSuccess  = "success"  // the consumer accepted the message
	OutcomeRetry    = "retry"    // the attempt failed and a retry is scheduled
	OutcomeFailure  = "failure"  // the attempt failed and the schedule is exhausted
	OutcomeDisabled = "disabled" // the attempt failed and the consumer was disabled (410 Gone)
	OutcomeReleased = "released" // the attempt was cut short by a shutdown and does not count
)

// Metrics holds every series hookd exports. A nil *Metrics records nothing, so that
// components built without metrics need no checks.
type Metrics struct {
	registry *prometheus.Registry

	eventsAccepted    prometheus.Counter
	deliveries        *prometheus.CounterVec
	attemptDuration   *prometheus.HistogramVec
	deliveryLatency   prometheus.Histogram
	consumersDisabled *prometheus.CounterVec
	httpDuration      *prometheus.HistogramVec
	commitDuration    *prometheus.HistogramVec
	commitBatch       *prometheus.HistogramVec
}

// QueueDepthFunc returns the number of pending deliveries that are due now and that are
// scheduled for later. It is called on every scrape.
type QueueDepthFunc func(ctx context.Context, now time.Time) (due, scheduled int, err error)

// New registers hookd's metrics, with the Go runtime and process collectors, in a new
// registry. queueDepth may be nil.
func New(queueDepth QueueDepthFunc, logger *slog.Logger) *Metrics {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))

	m := &Metrics{
		registry: reg,
		eventsAccepted: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "hookd_events_accepted_total",
			Help: "Events stored by POST /events and POST /events/batch, without repeated ids or idempotency keys.",
		}),
		deliveries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "hookd_deliveries_total",
			Help: "Delivery attempts by outcome (success, retry, failure, disabled, released) and response status class (2xx to 5xx, or none when no response arrived).",
		}, []string{"outcome", "status_class"}),
		attemptDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "hookd_attempt_duration_seconds",
			Help:    "Duration of delivery attempts, from sending the request to reading the response, by outcome.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 15, 30},
		}, []string{"outcome"}),
		deliveryLatency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "hookd_delivery_latency_seconds",
			Help:    "Time from accepting an event to its successful delivery to a consumer, retries included.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 5, 30, 60, 300, 1800, 7200, 36000, 100800},
		}),
		consumersDisabled: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "hookd_consumers_disabled_total",
			Help: "Consumers disabled by hookd, by reason: gone (the consumer responded 410) or failing (every attempt failed for the disable-after period).",
		}, []string{"reason"}),
		httpDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "hookd_http_request_duration_seconds",
			Help:    "Duration of API requests by route pattern, method and status code.",
			Buckets: prometheus.DefBuckets,
		}, []string{"route", "method", "status"}),
		commitDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "hookd_store_commit_duration_seconds",
			Help:    "Duration of the store transactions of group commits, by operation (publish or record).",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 5},
		}, []string{"operation"}),
		commitBatch: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "hookd_store_commit_batch_size",
			Help:    "Items written by one group commit, by operation (publish or record).",
			Buckets: []float64{1, 2, 5, 10, 25, 50, 100, 250, 500, 1000},
		}, []string{"operation"}),
	}
	reg.MustRegister(m.eventsAccepted, m.deliveries, m.attemptDuration, m.deliveryLatency, m.consumersDisabled,
		m.httpDuration, m.commitDuration, m.commitBatch)

	// Series that alerts watch exist from the start, at zero.
	for _, reason := range []string{"gone", "failing"} {
		m.consumersDisabled.WithLabelValues(reason)
	}

	if queueDepth != nil {
		reg.MustRegister(&queueCollector{depth: queueDepth, logger: logger, desc: prometheus.NewDesc(
			"hookd_queue_depth",
			"Pending deliveries of enabled consumers: due now (state=due) or scheduled for a later retry (state=scheduled). Deliveries with an attempt in flight count as scheduled.",
			[]string{"state"}, nil)})
	}
	return m
}

// Handler serves the metrics in the Prometheus text format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.registry, promhttp.HandlerOpts{})
}

// EventsAccepted counts n newly stored events.
func (m *Metrics) EventsAccepted(n int) {
	if m == nil || n == 0 {
		return
	}
	m.eventsAccepted.Add(float64(n))
}

// Attempt records one delivery attempt. status is 0 when no response arrived. latency is
// the time since the event was accepted, recorded for successful attempts only.
func (m *Metrics) Attempt(outcome string, status int, duration, latency time.Duration) {
	if m == nil {
		return
	}
	m.deliveries.WithLabelValues(outcome, statusClass(status)).Inc()
	m.attemptDuration.WithLabelValues(outcome).Observe(duration.Seconds())
	if outcome == OutcomeSuccess {
		m.deliveryLatency.Observe(latency.Seconds())
	}
}

// ConsumerDisabled counts a consumer that hookd disabled, for reason "gone" or "failing".
func (m *Metrics) ConsumerDisabled(reason string) {
	if m == nil {
		return
	}
	m.consumersDisabled.WithLabelValues(reason).Inc()
}

// Request records one API request. route is the matched route pattern, or "unmatched".
func (m *Metrics) Request(route, method string, status int, duration time.Duration) {
	if m == nil {
		return
	}
	m.httpDuration.WithLabelValues(route, method, strconv.Itoa(status)).Observe(duration.Seconds())
}

// Commit records one group commit of the given operation.
func (m *Metrics) Commit(operation string, items int, duration time.Duration) {
	if m == nil {
		return
	}
	m.commitDuration.WithLabelValues(operation).Observe(duration.Seconds())
	m.commitBatch.WithLabelValues(operation).Observe(float64(items))
}

func statusClass(status int) string {
	if status < 100 || status > 599 {
		return "none"
	}
	return strconv.Itoa(status/100) + "xx"
}

// queueCollector reads the queue depth from the store on each scrape.
type queueCollector struct {
	depth  QueueDepthFunc
	logger *slog.Logger
	desc   *prometheus.Desc
}

func (c *queueCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

func (c *queueCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	due, scheduled, err := c.depth(ctx, time.Now())
	if err != nil {
		if c.logger != nil {
			c.logger.Warn("read queue depth for metrics failed", "error", err)
		}
		ch <- prometheus.NewInvalidMetric(c.desc, err)
		return
	}
	ch <- prometheus.MustNewConstMetric(c.desc, prometheus.GaugeValue, float64(due), "due")
	ch <- prometheus.MustNewConstMetric(c.desc, prometheus.GaugeValue, float64(scheduled), "scheduled")
}
