package delivery

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"time"
	"unicode/utf8"

	"github.com/hookd/hookd/internal/metrics"
	"github.com/hookd/hookd/internal/store"
	"github.com/hookd/hookd/signature"
)

// recordRetryDelay is how long the record committer waits before it tries again to
// record results that the store did not take, for example while it is unavailable.
const recordRetryDelay = time.Second

// NewTransport returns an HTTP transport for delivering to many destinations. It keeps
// enough idle connections per host for the per-consumer concurrency and ignores the proxy
// settings of the environment, which would bypass dial's checks. dial, when not nil,
// opens the connections, for example an egress guard's DialContext.
func NewTransport(dial func(ctx context.Context, network, addr string) (net.Conn, error)) *http.Transport {
	if dial == nil {
		dial = (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext
	}
	return &http.Transport{
		Proxy:                 nil,
		DialContext:           dial,
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          1024,
		MaxIdleConnsPerHost:   64,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   10 * time.Second,
		ExpectContinueTimeout: time.Second,
		ResponseHeaderTimeout: 0, // bounded by the attempt's context
	}
}

// work runs attempts for the jobs the dispatcher hands out, until the jobs channel closes.
//
// A successful result goes to the record committer without waiting for the commit. The
// consumer's slot is free as soon as the HTTP exchange is over, because the delivery stays
// leased until the result is committed, so no claim can take it again in between. A failed
// result keeps the slot until it is committed, because it may disable the consumer (a 410
// Gone, or failures for too long), and the consumer's next attempt must see that.
func (e *Engine) work() {
	for job := range e.jobs {
		result := e.attempt(job)
		items := []store.AttemptResult{result}
		var err error
		if result.Success {
			err = e.record.enqueue(items)
		} else {
			_, err = e.record.submit(context.Background(), items)
		}
		if err != nil {
			// Stop closes the committer only after every worker has returned.
			panic("delivery: record committer stopped before the workers: " + err.Error())
		}
		e.finished <- finishedAttempt{consumerID: job.Consumer.ID, success: result.Success}
	}
}

// attempt sends one job and decides what follows: success, a retry, or giving up.
func (e *Engine) attempt(job store.Job) store.AttemptResult {
	start := time.Now()
	attemptNumber := job.FailedAttempts + 1
	log := attemptLogger{e.logger, job, attemptNumber}

	status, respHeader, body, err := e.send(job, start)
	result := store.AttemptResult{
		Job:               job,
		AttemptedAt:       start,
		Duration:          time.Since(start),
		StatusCode:        status,
		ResponseBody:      body,
		Success:           err == nil && status >= 200 && status < 300,
		DisableFailingFor: e.cfg.DisableAfter,
	}
	if e.cfg.DisableAfter < 0 {
		result.DisableFailingFor = 0
	}

	switch {
	case errors.Is(err, errStopping):
		result.Released = true
		e.cfg.Metrics.Attempt(metrics.OutcomeReleased, 0, result.Duration, 0)
		return result
	case err != nil:
		result.Error = err.Error()
	case !result.Success:
		result.Error = fmt.Sprintf("the consumer responded %d %s", status, http.StatusText(status))
	}

	if result.Success {
		log.Debug("attempt succeeded", "status_code", status, "duration_ms", result.Duration.Milliseconds())
		e.cfg.Metrics.Attempt(metrics.OutcomeSuccess, status, result.Duration, time.Since(job.Message.CreatedAt))
		return result
	}
	log.Debug("attempt failed", "status_code", status, "error", result.Error, "duration_ms", result.Duration.Milliseconds())

	if status == http.StatusGone {
		result.DisableConsumer = "the consumer responded 410 Gone"
		log.Warn("consumer disabled: it responded 410 Gone", "url", job.Consumer.URL)
		e.cfg.Metrics.Attempt(metrics.OutcomeDisabled, status, result.Duration, 0)
		e.cfg.Metrics.ConsumerDisabled("gone")
		return result
	}

	var retryAfter time.Duration
	if status == http.StatusTooManyRequests || status == http.StatusServiceUnavailable {
		retryAfter = parseRetryAfter(respHeader.Get("Retry-After"), time.Now())
	}
	delay, ok := e.cfg.Schedule.next(attemptNumber, retryAfter)
	outcome := metrics.OutcomeRetry
	if ok {
		next := time.Now().Add(delay)
		result.NextAttemptAt = &next
		log.Info("retry scheduled", "retry_in", delay.Round(time.Millisecond).String(), "error", result.Error)
	} else {
		outcome = metrics.OutcomeFailure
		log.Warn("delivery failed: retry schedule exhausted", "attempts", attemptNumber, "error", result.Error)
	}

	// The store disables a consumer that has failed for too long in any case. Deciding it
	// here too, from the failure streak as of the claim, gives the log line and the metric.
	// The retry stays scheduled, for when the consumer is enabled again.
	if since := job.Consumer.FailingSince; e.cfg.DisableAfter > 0 && since != nil && start.Sub(*since) >= e.cfg.DisableAfter {
		result.DisableConsumer = fmt.Sprintf("every attempt failed from %s to %s", since.UTC().Format(time.RFC3339), start.UTC().Format(time.RFC3339))
		log.Warn("consumer disabled: every attempt failed for too long", "failing_since", since.UTC().Format(time.RFC3339),
			"disable_after", e.cfg.DisableAfter.String())
		e.cfg.Metrics.ConsumerDisabled("failing")
		outcome = metrics.OutcomeDisabled
	}
	e.cfg.Metrics.Attempt(outcome, status, result.Duration, 0)
	return result
}

// attemptLogger logs lines about one attempt with its message, consumer and attempt
// number. Unlike slog.Logger.With, which formats those attributes at once, it adds them
// only to lines that are written: most attempts log nothing at the default level.
type attemptLogger struct {
	logger  *slog.Logger
	job     store.Job
	attempt int
}

func (l attemptLogger) log(level slog.Level, msg string, args ...any) {
	ctx := context.Background()
	if !l.logger.Enabled(ctx, level) {
		return
	}
	args = append([]any{"message_id", l.job.Message.ID, "consumer_id", l.job.Consumer.ID, "attempt", l.attempt}, args...)
	l.logger.Log(ctx, level, msg, args...)
}

func (l attemptLogger) Debug(msg string, args ...any) { l.log(slog.LevelDebug, msg, args...) }
func (l attemptLogger) Info(msg string, args ...any)  { l.log(slog.LevelInfo, msg, args...) }
func (l attemptLogger) Warn(msg string, args ...any)  { l.log(slog.LevelWarn, msg, args...) }

// send makes the HTTP request of one attempt. It returns the response's status, headers
// and at most MaxResponseBytes of its body, or an error when no response arrived.
func (e *Engine) send(job store.Job, now time.Time) (int, http.Header, string, error) {
	ctx, cancel := context.WithTimeout(e.sendCtx, e.cfg.Timeout)
	defer cancel()

	req, err := http.NewRequestWithContext(ctx, http.MethodPost, job.Consumer.URL, bytes.NewReader(job.Message.Body))
	if err != nil {
		return 0, nil, "", fmt.Errorf("build request: %w", err)
	}
	req.Header = signature.Headers(job.Message.ID, now, job.Message.Body, signingSecrets(job.Consumer, now)...)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", e.cfg.UserAgent)

	resp, err := e.client.Do(req)
	if err != nil {
		if e.sendCtx.Err() != nil {
			return 0, nil, "", errStopping
		}
		if ctx.Err() != nil {
			return 0, nil, "", fmt.Errorf("timed out after %s", e.cfg.Timeout)
		}
		return 0, nil, "", unwrapURLError(err)
	}
	defer resp.Body.Close()

	body, err := io.ReadAll(io.LimitReader(resp.Body, MaxResponseBytes))
	if err != nil && e.sendCtx.Err() == nil && ctx.Err() != nil {
		return resp.StatusCode, resp.Header, "", fmt.Errorf("reading the response timed out after %s", e.cfg.Timeout)
	}
	return resp.StatusCode, resp.Header, validUTF8(body), nil
}

// signingSecrets returns the consumer's current secret, and its previous one while the
// rotation overlap lasts.
func signingSecrets(c store.Consumer, now time.Time) []signature.Secret {
	secrets := []signature.Secret{c.Secret}
	if !c.PreviousSecret.IsZero() && c.PreviousSecretExpiresAt != nil && now.Before(*c.PreviousSecretExpiresAt) {
		secrets = append(secrets, c.PreviousSecret)
	}
	return secrets
}

// unwrapURLError drops the "Post URL:" prefix that net/http adds, since the log already
// names the consumer.
func unwrapURLError(err error) error {
	var urlErr *url.Error
	if errors.As(err, &urlErr) {
		return urlErr.Err
	}
	return err
}

// validUTF8 returns body as text, with invalid UTF-8 replaced, so that it can be stored
// and returned as a JSON string.
func validUTF8(body []byte) string {
	if utf8.Valid(body) {
		return string(body)
	}
	return string(bytes.ToValidUTF8(body, []byte("\uFFFD")))
}
