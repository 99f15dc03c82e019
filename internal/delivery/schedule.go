package delivery

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// DefaultSchedule is the delay before each retry after a failed attempt: the first retry
// follows at once, the last one about 28 hours after the first attempt. Codat's webhook
// service documents the same schedule. With it a message gets at most 9 attempts.
var DefaultSchedule = []time.Duration{
	0,
	5 * time.Second,
	5 * time.Minute,
	30 * time.Minute,
	2 * time.Hour,
	5 * time.Hour,
	10 * time.Hour,
	10 * time.Hour,
}

// Jitter is the fraction by which each scheduled delay varies at random, in both
// directions, so that retries of many messages do not arrive at a receiver together.
const Jitter = 0.2

// Schedule is the list of delays between a failed attempt and the next one.
type Schedule []time.Duration

// ParseSchedule reads a comma-separated list of Go durations, such as "0s,5s,5m", or
// "none" for no retries at all.
func ParseSchedule(s string) (Schedule, error) {
	if strings.TrimSpace(s) == "none" {
		return Schedule{}, nil
	}
	sched := Schedule{}
	for i, part := range strings.Split(s, ",") {
		d, err := time.ParseDuration(strings.TrimSpace(part))
		if err != nil {
			return nil, fmt.Errorf("retry schedule entry %d %q: %w; use Go durations such as 0s,5s,5m,30m", i+1, part, err)
		}
		if d < 0 {
			return nil, fmt.Errorf("retry schedule entry %d %q is negative", i+1, part)
		}
		sched = append(sched, d)
	}
	return sched, nil
}

// String returns the schedule in the form ParseSchedule reads.
func (s Schedule) String() string {
	if len(s) == 0 {
		return "none"
	}
	parts := make([]string, len(s))
	for i, d := range s {
		parts[i] = d.String()
	}
	return strings.Join(parts, ",")
}

// next returns the delay before the retry that follows the given number of failed
// attempts, and false when the schedule is exhausted. A Retry-After from the receiver
// replaces the scheduled delay, bounded by twice that delay (and by at least 1 s, so that
// an immediate retry can still honour a short Retry-After).
func (s Schedule) next(failedAttempts int, retryAfter time.Duration) (time.Duration, bool) {
	if failedAttempts < 1 || failedAttempts > len(s) {
		return 0, false
	}
	scheduled := s[failedAttempts-1]
	if retryAfter > 0 {
		return min(retryAfter, max(2*scheduled, time.Second)), true
	}
	return jitter(scheduled), true
}

func jitter(d time.Duration) time.Duration {
	if d <= 0 {
		return 0
	}
	factor := 1 + Jitter*(2*rand.Float64()-1)
	return time.Duration(float64(d) * factor)
}

// parseRetryAfter reads a Retry-After header as seconds or as an HTTP date. It returns 0
// when the header is missing, malformed or in the past.
func parseRetryAfter(value string, now time.Time) time.Duration {
	value = strings.TrimSpace(value)
	if value == "" {
		return 0
	}
	// For a number beyond int64, ParseInt returns ErrRange with the largest or smallest int64.
	if secs, err := strconv.ParseInt(value, 10, 64); err == nil || errors.Is(err, strconv.ErrRange) {
		if secs > int64(math.MaxInt64/time.Second) {
			// Beyond the range of time.Duration: the longest delay, not a wrapped value.
			return math.MaxInt64
		}
		return max(time.Duration(secs)*time.Second, 0)
	}
	if t, err := http.ParseTime(value); err == nil {
		return max(t.Sub(now), 0)
	}
	return 0
}
