package metrics

import (
	"context"
	"errors"
	"io"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
)

func TestRecordedSeries(t *testing.T) {
	m := New(func(ctx context.Context, now time.Time) (int, int, error) { return 7, 3, nil }, nil)

	m.EventsAccepted(2)
	m.Attempt(OutcomeSuccess, 204, 10*time.Millisecond, 40*time.Millisecond)
	m.Attempt(OutcomeRetry, 503, time.Millisecond, 0)
	m.Attempt(OutcomeRetry, 0, time.Second, 0)
	m.ConsumerDisabled("gone")
	m.Request("POST /events", "POST", 202, 3*time.Millisecond)
	m.Commit("publish", 25, 2*time.Millisecond)

	checks := []struct {
		name string
		got  float64
		want float64
	}{
		{"events accepted", testutil.ToFloat64(m.eventsAccepted), 2},
		{"success 2xx", testutil.ToFloat64(m.deliveries.WithLabelValues(OutcomeSuccess, "2xx")), 1},
		{"retry 5xx", testutil.ToFloat64(m.deliveries.WithLabelValues(OutcomeRetry, "5xx")), 1},
		{"retry without response", testutil.ToFloat64(m.deliveries.WithLabelValues(OutcomeRetry, "none")), 1},
		{"disabled gone", testutil.ToFloat64(m.consumersDisabled.WithLabelValues("gone")), 1},
		{"disabled failing", testutil.ToFloat64(m.consumersDisabled.WithLabelValues("failing")), 0},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s = %v, want %v", c.name, c.got, c.want)
		}
	}

	body := scrape(t, m)
	for _, want := range []string{
		`hookd_queue_depth{state="due"} 7`,
		`hookd_queue_depth{state="scheduled"} 3`,
		`hookd_delivery_latency_seconds_count 1`,
		`hookd_http_request_duration_seconds_count{method="POST",route="POST /events",status="202"} 1`,
		`hookd_store_commit_batch_size_sum{operation="publish"} 25`,
		`hookd_attempt_duration_seconds_count{outcome="retry"} 2`,
		`hookd_consumers_disabled_total{reason="failing"} 0`,
		"go_goroutines",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("scrape lacks %q", want)
		}
	}
}

func TestQueueDepthError(t *testing.T) {
	m := New(func(ctx context.Context, now time.Time) (int, int, error) {
		return 0, 0, errors.New("store unavailable")
	}, nil)
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	if rec.Code != 500 {
		t.Errorf("scrape with a failing queue depth: status %d, want 500", rec.Code)
	}
}

func TestNilMetricsRecordNothing(t *testing.T) {
	var m *Metrics
	m.EventsAccepted(1)
	m.Attempt(OutcomeSuccess, 200, time.Millisecond, time.Millisecond)
	m.ConsumerDisabled("gone")
	m.Request("GET /webhooks", "GET", 200, time.Millisecond)
	m.Commit("record", 1, time.Millisecond)
}

func scrape(t *testing.T, m *Metrics) string {
	t.Helper()
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	if rec.Code != 200 {
		t.Fatalf("scrape: status %d", rec.Code)
	}
	b, _ := io.ReadAll(rec.Body)
	return string(b)
}
