package delivery

import (
	"log/slog"
	"sync"
	"sync/atomic"
	"time"
)

// outageLogInterval is how often a store operation that keeps failing is logged again.
const outageLogInterval = time.Minute

// outageLog logs a run of failures of one store operation, such as claiming deliveries
// while the database is unreachable. It logs the first failure, then at most one line per
// outageLogInterval with the number of failures since the last line, and one line when
// the operation succeeds again. Retries of every worker once a second would otherwise
// write thousands of lines a minute. It is safe for concurrent use.
type outageLog struct {
	logger *slog.Logger
	op     string // the failing operation, for example "claim deliveries"

	// failing is set while a run of failures lasts, so that succeeded returns without
	// taking the mutex in the usual case.
	failing atomic.Bool

	mu       sync.Mutex
	since    time.Time // first failure of the current run; zero while the operation succeeds
	lastLog  time.Time
	failures int // failures since the last log line
	total    int // failures in the current run
}

func newOutageLog(logger *slog.Logger, op string) *outageLog {
	return &outageLog{logger: logger, op: op}
}

// failed records a failure that is retried after retryIn. attrs describe the failed
// call, such as its message ID, and are logged only with the first failure of a run.
func (o *outageLog) failed(err error, retryIn time.Duration, attrs ...any) {
	o.mu.Lock()
	defer o.mu.Unlock()

	now := time.Now()
	o.failures++
	o.total++
	if o.since.IsZero() {
		o.failing.Store(true)
		o.since, o.lastLog, o.failures = now, now, 0
		o.logger.Warn(o.op+" failed; retrying until the store is available",
			append([]any{"error", err, "retry_in", retryIn.String()}, attrs...)...)
		return
	}
	if now.Sub(o.lastLog) < outageLogInterval {
		return
	}
	o.logger.Warn(o.op+" still failing", "error", err, "failures", o.failures,
		"failing_for", now.Sub(o.since).Round(time.Second).String(), "retry_in", retryIn.String())
	o.lastLog, o.failures = now, 0
}

// succeeded ends the current run of failures, if any, and logs how long it lasted.
func (o *outageLog) succeeded() {
	if !o.failing.Load() {
		return
	}
	o.mu.Lock()
	defer o.mu.Unlock()

	if o.since.IsZero() {
		return
	}
	o.logger.Info(o.op+" succeeded again", "failures", o.total,
		"failing_for", time.Since(o.since).Round(time.Millisecond).String())
	o.since, o.failures, o.total = time.Time{}, 0, 0
	o.failing.Store(false)
}
