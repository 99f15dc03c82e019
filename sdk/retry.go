package sdk

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"net/http"
	"strconv"
	"time"

	"github.com/google/uuid"
)

// Retry strategies of RetryConfig.Strategy.
const (
	// StrategyBackoff retries with exponential backoff.
	StrategyBackoff = "backoff"

	// StrategyNone sends each request once.
	StrategyNone = "none"
)

// Defaults of BackoffStrategy, the values of Codat's SDKs.
const (
	DefaultInitialInterval = 500 * time.Millisecond
	DefaultMaxInterval     = 60 * time.Second
	DefaultExponent        = 1.5
	DefaultMaxElapsedTime  = time.Hour
)

// RetryConfig is the set of rules for when and how often an operation is sent again.
//
// With StrategyBackoff, a call is sent again after a response with status 408, 429 or
// 5XX, and, when RetryConnectionErrors is true, after an attempt that got no response:
// a refused or dropped connection, or a timeout of the HTTP client. Other statuses and
// errors end the call at once. When the retries run out, the call returns the error of
// the last attempt, such as an *ErrorMessage for a 503 response.
//
// The zero RetryConfig means StrategyBackoff with the default intervals but without
// retrying connection errors. DefaultRetryConfig retries them.
type RetryConfig struct {
	// Strategy is StrategyBackoff or StrategyNone. Empty means StrategyBackoff, and any
	// other value makes the call fail before it sends anything.
	Strategy string

	// Backoff sets the delays of StrategyBackoff.
	Backoff BackoffStrategy

	// RetryConnectionErrors retries attempts that got no response.
	RetryConnectionErrors bool
}

// BackoffStrategy sets the delays between the attempts of a call. Zero fields take
// DefaultInitialInterval, DefaultMaxInterval, DefaultExponent and DefaultMaxElapsedTime.
//
// The delay before retry n, counted from 0, is InitialInterval × Exponent^n, plus a
// random jitter of up to a quarter of that, and at most MaxInterval. Codat's TypeScript
// SDK 6.2.1 uses the same settings with another formula, InitialInterval × n^Exponent
// plus up to 1 s of jitter, so its first retry comes sooner. A Retry-After header
// on the response replaces the computed delay, without jitter, but is also capped at
// MaxInterval, as in Codat's TypeScript SDK 6.2.1. Retry-After may be whole seconds or an
// HTTP date, and a value that is not positive or does not parse is ignored.
//
// No retry starts later than MaxElapsedTime after the first attempt started. When the
// next delay would end later, the call returns the last attempt's error at once.
type BackoffStrategy struct {
	InitialInterval time.Duration
	MaxInterval     time.Duration
	Exponent        float64
	MaxElapsedTime  time.Duration
}

// DefaultRetryConfig returns the retry settings of Codat's SDKs: backoff from 500 ms by
// a factor of 1.5 up to 60 s between attempts, for at most one hour, retrying
// connection errors too.
func DefaultRetryConfig() RetryConfig {
	return RetryConfig{
		Strategy: StrategyBackoff,
		Backoff: BackoffStrategy{
			InitialInterval: DefaultInitialInterval,
			MaxInterval:     DefaultMaxInterval,
			Exponent:        DefaultExponent,
			MaxElapsedTime:  DefaultMaxElapsedTime,
		},
		RetryConnectionErrors: true,
	}
}

func (r RetryConfig) validate() error {
	switch r.Strategy {
	case "", StrategyBackoff, StrategyNone:
	default:
		return fmt.Errorf("invalid retry strategy %q: use %q or %q", r.Strategy, StrategyBackoff, StrategyNone)
	}
	b := r.Backoff
	if b.InitialInterval < 0 || b.MaxInterval < 0 || b.MaxElapsedTime < 0 || b.Exponent < 0 ||
		math.IsNaN(b.Exponent) || math.IsInf(b.Exponent, 0) {
		return fmt.Errorf("invalid backoff %+v: intervals and exponent must not be negative", b)
	}
	return nil
}

// withDefaults fills the zero fields of b.
func (b BackoffStrategy) withDefaults() BackoffStrategy {
	if b.InitialInterval == 0 {
		b.InitialInterval = DefaultInitialInterval
	}
	if b.MaxInterval == 0 {
		b.MaxInterval = DefaultMaxInterval
	}
	if b.Exponent == 0 {
		b.Exponent = DefaultExponent
	}
	if b.MaxElapsedTime == 0 {
		b.MaxElapsedTime = DefaultMaxElapsedTime
	}
	return b
}

// delay returns the wait before retry n, counted from 0, without a Retry-After header.
func (b BackoffStrategy) delay(n int) time.Duration {
	d := float64(b.InitialInterval) * math.Pow(b.Exponent, float64(n))
	if d >= float64(b.MaxInterval) {
		return b.MaxInterval
	}
	d += rand.Float64() * d / 4
	return min(time.Duration(d), b.MaxInterval)
}

// sendWithRetries sends req until it gets a response that is not retried, the retries run
// out or ctx ends. A retried status returns its last response, which the caller turns into
// an error. A connection error returns that error.
func (c *Client) sendWithRetries(ctx context.Context, req *http.Request, body []byte, config RetryConfig) (*response, error) {
	backoff := config.Backoff.withDefaults()
	start := time.Now()

	for n := 0; ; n++ {
		resp, err := c.sendOnce(req, body)
		if err != nil && ctx.Err() != nil {
			if !errors.Is(err, ctx.Err()) {
				err = fmt.Errorf("%w: %w", ctx.Err(), err)
			}
			return nil, err
		}
		if config.Strategy == StrategyNone {
			return resp, err
		}

		var wait time.Duration
		switch {
		case err != nil && !config.RetryConnectionErrors:
			return nil, err
		case err != nil:
			wait = backoff.delay(n)
		case retryableStatus(resp.status):
			wait = retryAfter(resp.header, time.Now())
			if wait > 0 {
				wait = min(wait, backoff.MaxInterval)
			} else {
				wait = backoff.delay(n)
			}
		default:
			return resp, nil
		}

		if time.Since(start)+wait > backoff.MaxElapsedTime {
			return resp, err
		}
		if err := sleep(ctx, wait); err != nil {
			return nil, fmt.Errorf("waiting %v to retry: %w", wait.Round(time.Millisecond), err)
		}
	}
}

// retryableStatus reports whether Codat's SDKs retry a response with this status: 408,
// 429 and 5XX.
func retryableStatus(status int) bool {
	return status == http.StatusRequestTimeout || status == http.StatusTooManyRequests ||
		(status >= 500 && status <= 599)
}

// retryAfter returns the delay that a Retry-After header requests, in whole seconds or
// until an HTTP date, or 0 without a usable header.
func retryAfter(h http.Header, now time.Time) time.Duration {
	v := h.Get("Retry-After")
	if v == "" {
		return 0
	}
	if seconds, err := strconv.ParseInt(v, 10, 64); err == nil {
		switch {
		case seconds <= 0:
			return 0
		case seconds > int64(math.MaxInt64/time.Second):
			return math.MaxInt64
		}
		return time.Duration(seconds) * time.Second
	}
	if date, err := http.ParseTime(v); err == nil {
		return max(date.Sub(now), 0)
	}
	return 0
}

// sleep waits for d, and returns ctx's error at once when ctx ends first.
func sleep(ctx context.Context, d time.Duration) error {
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-timer.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// newIdempotencyKey returns a random UUID for the Idempotency-Key header.
func newIdempotencyKey() string {
	return uuid.NewString()
}
