// Package delivery is hookd's delivery engine: it accepts published messages in group
// commits, claims due deliveries from the store, sends each one as a signed HTTP POST and
// records the outcome, retrying on a schedule until the consumer accepts the message or
// the schedule runs out.
//
// Delivery is at least once. A claimed delivery is leased; if the process dies before the
// attempt is recorded, the lease expires and the delivery is claimed again.
package delivery

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hookd/hookd/internal/metrics"
	"github.com/hookd/hookd/internal/store"
)

// Defaults of Config.
const (
	DefaultTimeout       = 15 * time.Second
	DefaultWorkers       = 128
	DefaultPerConsumer   = 32
	DefaultDisableAfter  = 5 * 24 * time.Hour
	DefaultPollInterval  = time.Second
	DefaultSecretOverlap = 24 * time.Hour

	// MaxResponseBytes is how much of a consumer's response body is read and kept.
	MaxResponseBytes = 64 << 10

	// maxCommitItems bounds one group commit.
	maxCommitItems = 1000
)

// Config configures an Engine. Only Store is required.
type Config struct {
	Store store.MessageStore

	// Logger receives attempt outcomes at debug level, retries at info level, and
	// consumers given up on or disabled at warn level. Nil discards logs.
	Logger *slog.Logger

	// Transport sends the attempts. Nil means a transport made for many destinations
	// (see NewTransport) without an egress guard.
	Transport http.RoundTripper

	// Timeout bounds one attempt, from connecting to reading the response. Zero means
	// DefaultTimeout.
	Timeout time.Duration

	// Schedule is the delay before each retry. Nil means DefaultSchedule.
	Schedule Schedule

	// Workers is the number of attempts in flight at once, across all consumers. Zero
	// means DefaultWorkers.
	Workers int

	// PerConsumer is the number of attempts in flight at once to one consumer, so that a
	// slow consumer holds at most this many workers. Zero means DefaultPerConsumer.
	PerConsumer int

	// DisableAfter disables a consumer whose attempts have all failed for this long. Zero
	// means DefaultDisableAfter; a negative value never disables.
	DisableAfter time.Duration

	// PollInterval is the longest the engine waits before it looks for due deliveries
	// again, when nothing wakes it earlier. Zero means DefaultPollInterval.
	PollInterval time.Duration

	// UserAgent is sent with every attempt. Empty means "hookd".
	UserAgent string

	// Retention is how long messages and attempt logs are kept. Zero means
	// DefaultRetention; a negative value keeps them forever.
	Retention time.Duration

	// RetentionInterval is how often expired data is deleted. Zero means once an hour.
	RetentionInterval time.Duration

	// Metrics receives counts and durations of publishes, commits and attempts. Nil
	// records nothing.
	Metrics *metrics.Metrics
}

// Engine delivers messages. Start it once and Stop it once.
type Engine struct {
	cfg    Config
	store  store.MessageStore
	logger *slog.Logger
	client *http.Client

	publish *committer[store.NewMessage, store.PublishResult]
	record  *committer[store.AttemptResult, struct{}]

	wake     chan struct{}
	finished chan finishedAttempt
	jobs     chan store.Job

	// recorded counts the successful results committed (or given up on) since the
	// dispatcher last looked. A send on recordedSignal wakes the dispatcher to look.
	recorded       atomic.Int64
	recordedSignal chan struct{}

	// claimOutage and recordOutage log failed claims and records while the store is
	// unavailable, without a line for every retry.
	claimOutage  *outageLog
	recordOutage *outageLog

	// sendCtx is the parent of every attempt's context; Stop cancels it when in-flight
	// attempts outlast the shutdown deadline.
	sendCtx    context.Context
	cancelSend context.CancelFunc
	stopClaims context.CancelFunc
	dispatched sync.WaitGroup
	workers    sync.WaitGroup
}

// New returns an Engine for cfg with the defaults filled in.
func New(cfg Config) *Engine {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Transport == nil {
		cfg.Transport = NewTransport(nil)
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultTimeout
	}
	if cfg.Schedule == nil {
		cfg.Schedule = DefaultSchedule
	}
	if cfg.Workers <= 0 {
		cfg.Workers = DefaultWorkers
	}
	if cfg.PerConsumer <= 0 {
		cfg.PerConsumer = DefaultPerConsumer
	}
	if cfg.DisableAfter == 0 {
		cfg.DisableAfter = DefaultDisableAfter
	}
	if cfg.PollInterval <= 0 {
		cfg.PollInterval = DefaultPollInterval
	}
	if cfg.UserAgent == "" {
		cfg.UserAgent = "hookd"
	}
	if cfg.Retention == 0 {
		cfg.Retention = DefaultRetention
	}
	if cfg.RetentionInterval <= 0 {
		cfg.RetentionInterval = defaultRetentionPeriod
	}

	e := &Engine{
		cfg:            cfg,
		store:          cfg.Store,
		logger:         cfg.Logger,
		wake:           make(chan struct{}, 1),
		finished:       make(chan finishedAttempt, cfg.Workers),
		recordedSignal: make(chan struct{}, 1),
		jobs:           make(chan store.Job, cfg.Workers),
		client: &http.Client{
			Transport: cfg.Transport,
			// A redirect is a failed attempt: following it would send the signed message
			// to a URL the consumer's owner did not register.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		},
	}
	e.claimOutage = newOutageLog(cfg.Logger, "claim deliveries")
	e.recordOutage = newOutageLog(cfg.Logger, "record attempt")
	e.publish = newCommitter(maxCommitItems, e.commitPublish)
	e.record = newCommitter(maxCommitItems, e.commitAttempts)
	return e
}

// Start starts the committers, the dispatcher and the workers. ctx bounds the store calls
// of the background goroutines; Stop is the normal way to end them.
func (e *Engine) Start(ctx context.Context) {
	e.publish.start(ctx)
	e.record.start(ctx)

	e.sendCtx, e.cancelSend = context.WithCancel(context.WithoutCancel(ctx))
	for range e.cfg.Workers {
		e.workers.Add(1)
		go func() {
			defer e.workers.Done()
			e.work()
		}()
	}

	claimCtx, stopClaims := context.WithCancel(ctx)
	e.stopClaims = stopClaims
	e.dispatched.Add(1)
	go func() {
		defer e.dispatched.Done()
		e.dispatch(claimCtx)
	}()

	if e.cfg.Retention > 0 {
		e.dispatched.Add(1)
		go func() {
			defer e.dispatched.Done()
			e.clean(claimCtx)
		}()
	}
}

// Stop stops claiming and cleaning, waits for the attempts in flight to finish and be recorded, and
// stops the committers. When ctx ends first, it cancels the attempts in flight; their
// deliveries are released without counting as attempts and go out after the next start.
func (e *Engine) Stop(ctx context.Context) error {
	e.stopClaims()
	e.dispatched.Wait()
	close(e.jobs)

	done := make(chan struct{})
	go func() {
		e.workers.Wait()
		close(done)
	}()
	var err error
	select {
	case <-done:
	case <-ctx.Done():
		err = fmt.Errorf("stop delivery: attempts still in flight: %w", ctx.Err())
		e.cancelSend()
		<-done
	}
	e.cancelSend()

	e.publish.stop()
	e.record.stop()
	return err
}

// Wake makes the dispatcher look for due deliveries now, for example after a consumer was
// enabled or a message resent.
func (e *Engine) Wake() {
	select {
	case e.wake <- struct{}{}:
	default:
	}
}

// Publish stores messages durably with their fan-out and returns once they are committed.
// Concurrent calls share transactions.
func (e *Engine) Publish(ctx context.Context, msgs []store.NewMessage) ([]store.PublishResult, error) {
	results, err := e.publish.submit(ctx, msgs)
	if err != nil {
		return nil, err
	}
	return results, nil
}

func (e *Engine) commitPublish(ctx context.Context, msgs []store.NewMessage) ([]store.PublishResult, error) {
	start := time.Now()
	results, err := e.store.PublishMessages(context.WithoutCancel(ctx), msgs)
	if err != nil {
		return nil, err
	}
	e.cfg.Metrics.Commit("publish", len(msgs), time.Since(start))

	accepted, queued := 0, false
	for _, r := range results {
		if !r.Duplicate {
			accepted++
			queued = queued || r.Consumers > 0
		}
	}
	e.cfg.Metrics.EventsAccepted(accepted)
	if queued {
		e.Wake()
	}
	return results, nil
}

// commitAttempts records the results of attempts. Workers do not wait for it, so it
// deals with failures itself: an attempt that was made must be logged, and its delivery
// must not stay leased until the lease expires. While the store is unavailable it retries
// every recordRetryDelay, holding the results; the queue in front of it fills and slows the
// workers down. A result that the store rejects for another reason is logged and dropped,
// without holding up the others. Once the engine is stopping it tries only once more; the
// deliveries of results it could not record go out again when their leases expire.
func (e *Engine) commitAttempts(ctx context.Context, results []store.AttemptResult) ([]struct{}, error) {
	done := make([]struct{}, len(results))
	defer e.countRecorded(results)
	for {
		err := e.recordAttempts(ctx, results)
		if err == nil {
			e.recordOutage.succeeded()
			return done, nil
		}

		if !errors.Is(err, store.ErrUnavailable) {
			e.recordEach(ctx, results)
			return done, nil
		}

		if e.sendCtx.Err() != nil {
			e.logger.Warn("attempt results not recorded while stopping; their deliveries go out again when their leases expire",
				"results", len(results), "error", err)
			return done, nil
		}
		e.recordOutage.failed(err, recordRetryDelay, "results", len(results))
		select {
		case <-time.After(recordRetryDelay):
		case <-e.sendCtx.Done():
		}
	}
}

// countRecorded reports to the dispatcher that the successful results among results no
// longer hold a place among the Workers. The workers did not wait for them.
func (e *Engine) countRecorded(results []store.AttemptResult) {
	n := 0
	for _, r := range results {
		if r.Success {
			n++
		}
	}
	if n == 0 {
		return
	}
	e.recorded.Add(int64(n))
	select {
	case e.recordedSignal <- struct{}{}:
	default:
	}
}

// recordEach records results one at a time, after a commit of all of them failed for a
// reason other than an unavailable store, so that one result the store rejects does not
// lose the others.
func (e *Engine) recordEach(ctx context.Context, results []store.AttemptResult) {
	for i := range results {
		if err := e.recordAttempts(ctx, results[i:i+1]); err != nil {
			e.logger.Error("attempt result not recorded; the delivery goes out again when its lease expires",
				"message_id", results[i].Job.Message.ID, "consumer_id", results[i].Job.Consumer.ID, "error", err)
		}
	}
}

func (e *Engine) recordAttempts(ctx context.Context, results []store.AttemptResult) error {
	start := time.Now()
	if err := e.store.RecordAttempts(context.WithoutCancel(ctx), results); err != nil {
		return err
	}
	e.cfg.Metrics.Commit("record", len(results), time.Since(start))

	// The dispatcher may have looked for the next due delivery before these results were
	// committed, and seen the lease instead of the retry.
	for _, r := range results {
		if r.NextAttemptAt != nil || r.Released {
			e.Wake()
			break
		}
	}
	return nil
}

// errStopping marks attempts cut short by Stop.
var errStopping = errors.New("hookd is stopping")
