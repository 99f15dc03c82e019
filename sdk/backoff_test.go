package sdk

import (
	"math"
	"net/http"
	"testing"
	"time"
)

func TestRetryAfterHeader(t *testing.T) {
	now := time.Date(2026, 1, 2, 15, 4, 5, 0, time.UTC)
	tests := []struct {
		value string
		want  time.Duration
	}{
		{"", 0},
		{"3", 3 * time.Second},
		{"0", 0},
		{"-1", 0},
		{"1.5", 0},
		{"soon", 0},
		{"99999999999999999", math.MaxInt64},
		{"Fri, 02 Jan 2026 15:04:35 GMT", 30 * time.Second},
		{"Friday, 02-Jan-26 15:04:15 GMT", 10 * time.Second},
		{"Fri, 02 Jan 2026 15:00:00 GMT", 0},
	}
	for _, tt := range tests {
		t.Run(tt.value, func(t *testing.T) {
			h := http.Header{}
			if tt.value != "" {
				h.Set("Retry-After", tt.value)
			}
			if got := retryAfter(h, now); got != tt.want {
				t.Errorf("retryAfter(%q) = %v, want %v", tt.value, got, tt.want)
			}
		})
	}
}

func TestBackoffDelay(t *testing.T) {
	b := BackoffStrategy{}.withDefaults()
	if b != DefaultRetryConfig().Backoff {
		t.Fatalf("zero BackoffStrategy with defaults = %+v, want %+v", b, DefaultRetryConfig().Backoff)
	}
	for n := range 20 {
		base := float64(b.InitialInterval) * math.Pow(b.Exponent, float64(n))
		low := time.Duration(min(base, float64(b.MaxInterval)))
		high := time.Duration(min(base*1.25, float64(b.MaxInterval)))
		for range 50 {
			if d := b.delay(n); d < low || d > high {
				t.Fatalf("delay(%d) = %v, want %v to %v", n, d, low, high)
			}
		}
	}
}

func TestDefaultRetryConfig(t *testing.T) {
	got := DefaultRetryConfig()
	want := RetryConfig{
		Strategy: StrategyBackoff,
		Backoff: BackoffStrategy{
			InitialInterval: 500 * time.Millisecond,
			MaxInterval:     60 * time.Second,
			Exponent:        1.5,
			MaxElapsedTime:  time.Hour,
		},
		RetryConnectionErrors: true,
	}
	if got != want {
		t.Errorf("DefaultRetryConfig() = %+v, want %+v", got, want)
	}
}
