package api

import (
	"math"
	"net/http"
	"strconv"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// Rate limiting defaults: each client gets a token bucket that refills at DefaultRateLimit
// requests per second and holds up to DefaultRateBurst requests.
const (
	DefaultRateLimit = 1000
	DefaultRateBurst = 2000
)

// rateLimiter keeps one token bucket per client. Buckets live as long as the process; their
// number is bounded by the number of clients.
//
// NOTE: buckets are per process. Several hookd processes sharing one database each allow
// the full rate.
type rateLimiter struct {
	limit rate.Limit
	burst int

	mu      sync.Mutex
	buckets map[string]*rate.Limiter
}

// newRateLimiter returns nil, which allows everything, when perSecond is negative.
func newRateLimiter(perSecond float64, burst int) *rateLimiter {
	if perSecond < 0 {
		return nil
	}
	if perSecond == 0 {
		perSecond = DefaultRateLimit
	}
	if burst <= 0 {
		burst = max(1, int(math.Ceil(perSecond)))
	}
	return &rateLimiter{limit: rate.Limit(perSecond), burst: burst, buckets: map[string]*rate.Limiter{}}
}

func (l *rateLimiter) bucket(clientID string) *rate.Limiter {
	l.mu.Lock()
	defer l.mu.Unlock()

	b, ok := l.buckets[clientID]
	if !ok {
		b = rate.NewLimiter(l.limit, l.burst)
		l.buckets[clientID] = b
	}
	return b
}

// allow takes one token from the client's bucket and sets the X-Rate-Limit headers. When
// the bucket is empty it returns a 429 *apiError with Retry-After.
func (l *rateLimiter) allow(h http.Header, clientID string) *apiError {
	if l == nil {
		return nil
	}
	b := l.bucket(clientID)
	now := time.Now()
	allowed := b.AllowN(now, 1)
	tokens := max(b.TokensAt(now), 0)

	// Reset is how long the bucket needs to refill completely, in whole seconds.
	reset := math.Ceil((float64(l.burst) - tokens) / float64(l.limit))
	h.Set("X-Rate-Limit-Limit", strconv.Itoa(l.burst))
	h.Set("X-Rate-Limit-Remaining", strconv.Itoa(int(math.Floor(tokens))))
	h.Set("X-Rate-Limit-Reset", strconv.Itoa(int(reset)))
	if allowed {
		return nil
	}

	wait := int(max(math.Ceil((1-tokens)/float64(l.limit)), 1))
	unit := "seconds"
	if wait == 1 {
		unit = "second"
	}
	return newError(http.StatusTooManyRequests,
		"Too many requests: this client may make %d requests at once and %s more each second. Wait %d %s (Retry-After) before retrying.",
		l.burst, strconv.FormatFloat(float64(l.limit), 'f', -1, 64), wait, unit).
		withRetryAfter(wait)
}
