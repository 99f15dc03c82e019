package sdk_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/hookd/hookd/internal/api"
	"github.com/hookd/hookd/sdk"
)

// fastRetry retries after 20 ms, 40 ms, 80 ms, ... so that retry tests take milliseconds.
var fastRetry = sdk.RetryConfig{
	Strategy: sdk.StrategyBackoff,
	Backoff: sdk.BackoffStrategy{
		InitialInterval: 20 * time.Millisecond,
		MaxInterval:     time.Second,
		Exponent:        2,
		MaxElapsedTime:  10 * time.Second,
	},
	RetryConnectionErrors: true,
}

// hangUp is a step that closes the connection without a response.
func hangUp(w http.ResponseWriter, r *http.Request) {
	conn, _, err := http.NewResponseController(w).Hijack()
	if err != nil {
		panic(err)
	}
	conn.Close()
}

// gaps returns the time between consecutive requests.
func gaps(requests []capturedRequest) []time.Duration {
	var d []time.Duration
	for i := 1; i < len(requests); i++ {
		d = append(d, requests[i].at.Sub(requests[i-1].at))
	}
	return d
}

func TestRetryThenSuccess(t *testing.T) {
	t.Parallel()
	url, rec := scripted(t, errorReply(503), errorReply(503), errorReply(503), reply(http.StatusCreated, consumerJSON))
	c := sdk.New(sdk.WithServerURL(url), sdk.WithRetryConfig(fastRetry))

	got, err := c.Webhooks.CreateConsumer(context.Background(), sdk.WebhookConsumerPrototype{URL: "https://example.com/a", EventTypes: []string{"a"}})
	if err != nil {
		t.Fatalf("create: %v", err)
	}
	if got.ID != "3f1c2a8e-5b7d-4e21-9c3a-6d8f0b4e7a15" {
		t.Errorf("consumer = %+v, want the one of the last response", got)
	}

	requests := rec.all()
	if len(requests) != 4 {
		t.Fatalf("attempts = %d, want 4", len(requests))
	}
	// Each delay is InitialInterval × 2^n plus up to a quarter of jitter.
	for i, gap := range gaps(requests) {
		base := fastRetry.Backoff.InitialInterval << i
		if gap < base || gap > base*5/4+200*time.Millisecond {
			t.Errorf("gap before attempt %d = %v, want about %v to %v", i+2, gap, base, base*5/4)
		}
	}
	key := requests[0].header.Get("Idempotency-Key")
	if _, err := uuid.Parse(key); err != nil {
		t.Fatalf("Idempotency-Key = %q, want a UUID", key)
	}
	for i, req := range requests {
		if got := req.header.Get("Idempotency-Key"); got != key {
			t.Errorf("attempt %d Idempotency-Key = %q, want the first attempt's %q", i+1, got, key)
		}
		if !bytes.Equal(req.body, requests[0].body) || len(req.body) == 0 {
			t.Errorf("attempt %d body = %q, want %q again", i+1, req.body, requests[0].body)
		}
	}
}

func TestRetryStatuses(t *testing.T) {
	t.Parallel()
	tests := []struct {
		status  int
		retried bool
	}{
		{http.StatusRequestTimeout, true},
		{http.StatusTooManyRequests, true},
		{http.StatusInternalServerError, true},
		{http.StatusBadGateway, true},
		{http.StatusServiceUnavailable, true},
		{http.StatusGatewayTimeout, true},
		{http.StatusBadRequest, false},
		{http.StatusUnauthorized, false},
		{http.StatusForbidden, false},
		{http.StatusNotFound, false},
		{http.StatusConflict, false},
	}
	for _, tt := range tests {
		t.Run(strconv.Itoa(tt.status), func(t *testing.T) {
			t.Parallel()
			url, rec := scripted(t, errorReply(tt.status), reply(http.StatusNoContent, ""))
			c := sdk.New(sdk.WithServerURL(url), sdk.WithRetryConfig(fastRetry))
			err := c.Webhooks.DeleteConsumer(context.Background(), sdk.DeleteWebhookConsumerRequest{WebhookID: "w1"})

			attempts := len(rec.all())
			if tt.retried {
				if err != nil || attempts != 2 {
					t.Errorf("error %v after %d attempts, want success on attempt 2", err, attempts)
				}
				return
			}
			if err == nil || attempts != 1 {
				t.Errorf("error %v after %d attempts, want the %d error after 1 attempt", err, attempts, tt.status)
			}
		})
	}
}

func TestRetryAfter(t *testing.T) {
	t.Parallel()
	slowBackoff := sdk.RetryConfig{Backoff: sdk.BackoffStrategy{InitialInterval: 10 * time.Second, MaxInterval: 20 * time.Second}}
	tests := []struct {
		name    string
		header  func() string
		config  sdk.RetryConfig
		minimum time.Duration
		maximum time.Duration
	}{
		{"seconds", func() string { return "1" }, slowBackoff, time.Second, 3 * time.Second},
		// An HTTP date has whole seconds, so two seconds ahead is at least one second away.
		{"HTTP date", func() string { return time.Now().Add(2 * time.Second).UTC().Format(http.TimeFormat) }, slowBackoff,
			900 * time.Millisecond, 3 * time.Second},
		{"capped by MaxInterval", func() string { return "30" },
			sdk.RetryConfig{Backoff: sdk.BackoffStrategy{InitialInterval: time.Millisecond, MaxInterval: 50 * time.Millisecond}},
			50 * time.Millisecond, time.Second},
		{"zero falls back to backoff", func() string { return "0" },
			sdk.RetryConfig{Backoff: sdk.BackoffStrategy{InitialInterval: 30 * time.Millisecond}},
			30 * time.Millisecond, time.Second},
		{"unparsable falls back to backoff", func() string { return "soon" },
			sdk.RetryConfig{Backoff: sdk.BackoffStrategy{InitialInterval: 30 * time.Millisecond}},
			30 * time.Millisecond, time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			first := func(w http.ResponseWriter, r *http.Request) {
				errorReply(http.StatusTooManyRequests, "Retry-After", tt.header())(w, r)
			}
			url, rec := scripted(t, first, reply(http.StatusOK, `{"results":[]}`))
			c := sdk.New(sdk.WithServerURL(url), sdk.WithRetryConfig(tt.config))
			if _, err := c.Webhooks.ListConsumers(context.Background()); err != nil {
				t.Fatalf("list: %v", err)
			}
			requests := rec.all()
			if len(requests) != 2 {
				t.Fatalf("attempts = %d, want 2", len(requests))
			}
			if gap := gaps(requests)[0]; gap < tt.minimum || gap > tt.maximum {
				t.Errorf("gap = %v, want %v to %v", gap, tt.minimum, tt.maximum)
			}
		})
	}
}

func TestRetryConnectionErrors(t *testing.T) {
	t.Parallel()
	t.Run("dropped connection retried", func(t *testing.T) {
		t.Parallel()
		url, rec := scripted(t, hangUp, reply(http.StatusOK, `{"results":[]}`))
		c := sdk.New(sdk.WithServerURL(url), sdk.WithRetryConfig(fastRetry))
		if _, err := c.Webhooks.ListConsumers(context.Background()); err != nil {
			t.Fatalf("list: %v", err)
		}
		if n := len(rec.all()); n != 2 {
			t.Errorf("attempts = %d, want 2", n)
		}
	})

	t.Run("dropped connection not retried", func(t *testing.T) {
		t.Parallel()
		serverURL, rec := scripted(t, hangUp, reply(http.StatusOK, `{"results":[]}`))
		config := fastRetry
		config.RetryConnectionErrors = false
		c := sdk.New(sdk.WithServerURL(serverURL), sdk.WithRetryConfig(config))
		_, err := c.Webhooks.ListConsumers(context.Background())
		var urlErr *url.Error
		if !errors.As(err, &urlErr) {
			t.Errorf("error = %v (%T), want a *url.Error", err, err)
		}
		if n := len(rec.all()); n != 1 {
			t.Errorf("attempts = %d, want 1", n)
		}
	})

	t.Run("refused connection until MaxElapsedTime", func(t *testing.T) {
		t.Parallel()
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := ln.Addr().String()
		ln.Close()

		config := fastRetry
		config.Backoff.MaxElapsedTime = 200 * time.Millisecond
		c := sdk.New(sdk.WithServerURL("http://"+addr), sdk.WithRetryConfig(config))
		start := time.Now()
		_, err = c.Webhooks.ListConsumers(context.Background())
		var opErr *net.OpError
		if !errors.As(err, &opErr) {
			t.Errorf("error = %v (%T), want a *net.OpError", err, err)
		}
		if elapsed := time.Since(start); elapsed < 100*time.Millisecond || elapsed > 2*time.Second {
			t.Errorf("call took %v, want retries for up to 200ms", elapsed)
		}
	})
}

func TestRetryMaxElapsedTime(t *testing.T) {
	t.Parallel()
	url, rec := scripted(t, errorReply(http.StatusServiceUnavailable))
	config := sdk.RetryConfig{Backoff: sdk.BackoffStrategy{
		InitialInterval: 20 * time.Millisecond,
		MaxInterval:     20 * time.Millisecond,
		Exponent:        1,
		MaxElapsedTime:  150 * time.Millisecond,
	}}
	c := sdk.New(sdk.WithServerURL(url), sdk.WithRetryConfig(config))

	start := time.Now()
	_, err := c.Webhooks.ListConsumers(context.Background())
	elapsed := time.Since(start)

	expectErrorMessageStatus(t, err, http.StatusServiceUnavailable)
	requests := rec.all()
	if last := requests[len(requests)-1].at.Sub(requests[0].at); last > config.Backoff.MaxElapsedTime {
		t.Errorf("last attempt started %v after the first, want at most MaxElapsedTime %v", last, config.Backoff.MaxElapsedTime)
	}
	if len(requests) < 3 || len(requests) > 9 {
		t.Errorf("attempts = %d, want about 150ms / 20ms", len(requests))
	}
	if elapsed > time.Second {
		t.Errorf("call took %v, want it to stop near MaxElapsedTime", elapsed)
	}
}

// expectErrorMessageStatus checks that err is an *sdk.ErrorMessage with the HTTP status.
func expectErrorMessageStatus(t *testing.T, err error, status int) {
	t.Helper()
	var msg *sdk.ErrorMessage
	if !errors.As(err, &msg) || msg.HTTPStatus != status {
		t.Errorf("error = %v (%T), want *sdk.ErrorMessage with status %d", err, err, status)
	}
}

func TestRetryOptionPrecedence(t *testing.T) {
	t.Parallel()
	none := sdk.RetryConfig{Strategy: sdk.StrategyNone}
	tests := []struct {
		name     string
		client   []sdk.Option
		call     []sdk.CallOption
		attempts int
	}{
		{"client none", []sdk.Option{sdk.WithRetryConfig(none)}, nil, 1},
		{"call none over client backoff", []sdk.Option{sdk.WithRetryConfig(fastRetry)}, []sdk.CallOption{sdk.WithRetries(none)}, 1},
		{"call backoff over client none", []sdk.Option{sdk.WithRetryConfig(none)}, []sdk.CallOption{sdk.WithRetries(fastRetry)}, 2},
		{"empty strategy means backoff", []sdk.Option{sdk.WithRetryConfig(sdk.RetryConfig{Backoff: fastRetry.Backoff})}, nil, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			url, rec := scripted(t, errorReply(http.StatusServiceUnavailable), reply(http.StatusOK, `{"results":[]}`))
			c := sdk.New(append([]sdk.Option{sdk.WithServerURL(url)}, tt.client...)...)
			_, err := c.Webhooks.ListConsumers(context.Background(), tt.call...)
			if n := len(rec.all()); n != tt.attempts {
				t.Errorf("attempts = %d, want %d", n, tt.attempts)
			}
			if tt.attempts == 1 {
				expectErrorMessageStatus(t, err, http.StatusServiceUnavailable)
			} else if err != nil {
				t.Errorf("list: %v", err)
			}
		})
	}
}

func TestRotateSecretNotRetriedByDefault(t *testing.T) {
	t.Parallel()
	url, rec := scripted(t, errorReply(http.StatusServiceUnavailable), reply(http.StatusOK, `{"key":"whsec_a"}`))
	c := sdk.New(sdk.WithServerURL(url), sdk.WithRetryConfig(fastRetry))

	_, err := c.Webhooks.RotateSecret(context.Background(), "w1")
	expectErrorMessageStatus(t, err, http.StatusServiceUnavailable)
	if n := len(rec.all()); n != 1 {
		t.Errorf("attempts with the client's rules = %d, want 1", n)
	}

	if _, err := c.Webhooks.RotateSecret(context.Background(), "w1", sdk.WithRetries(fastRetry)); err != nil {
		t.Errorf("rotate with WithRetries: %v", err)
	}
	if n := len(rec.all()); n != 2 {
		t.Errorf("attempts = %d, want 2 after a second call that WithRetries lets retry", n)
	}
}

func TestRetryStopsWhenContextEnds(t *testing.T) {
	t.Parallel()
	url, rec := scripted(t, errorReply(http.StatusServiceUnavailable, "Retry-After", "60"))
	config := sdk.RetryConfig{Backoff: sdk.BackoffStrategy{MaxInterval: time.Hour}}
	c := sdk.New(sdk.WithServerURL(url), sdk.WithRetryConfig(config))

	t.Run("deadline", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		defer cancel()
		start := time.Now()
		_, err := c.Webhooks.ListConsumers(ctx)
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("error = %v, want context.DeadlineExceeded", err)
		}
		if elapsed := time.Since(start); elapsed > 2*time.Second {
			t.Errorf("call returned %v after the start, want soon after the 200ms deadline", elapsed)
		}
	})

	t.Run("cancel", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		before := len(rec.all())
		result := make(chan error, 1)
		go func() {
			_, err := c.Webhooks.ListConsumers(ctx)
			result <- err
		}()

		// Cancel once the first attempt has arrived, while the client waits 60 s.
		deadline := time.Now().Add(5 * time.Second)
		for len(rec.all()) == before && time.Now().Before(deadline) {
			time.Sleep(time.Millisecond)
		}
		cancel()
		select {
		case err := <-result:
			if !errors.Is(err, context.Canceled) {
				t.Errorf("error = %v, want context.Canceled", err)
			}
		case <-time.After(2 * time.Second):
			t.Fatal("the call still waits 2s after the cancel")
		}
		if n := len(rec.all()) - before; n != 1 {
			t.Errorf("attempts = %d, want 1", n)
		}
	})
}

func TestIdempotencyKeyAcrossRetries(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	tests := []struct {
		name    string
		success http.HandlerFunc
		call    func(*sdk.Client, ...sdk.CallOption) error
	}{
		{"create consumer", reply(http.StatusCreated, consumerJSON), func(c *sdk.Client, opts ...sdk.CallOption) error {
			_, err := c.Webhooks.CreateConsumer(ctx, sdk.WebhookConsumerPrototype{URL: "https://example.com/a"}, opts...)
			return err
		}},
		{"publish event", reply(http.StatusAccepted, `{"id":"e1","eventType":"a","generatedDate":"2026-01-02T15:04:05Z","payload":{}}`),
			func(c *sdk.Client, opts ...sdk.CallOption) error {
				_, err := c.Events.PublishEvent(ctx, sdk.Event{EventType: "a", Payload: map[string]any{}}, opts...)
				return err
			}},
		{"publish events", reply(http.StatusAccepted, `{"results":[]}`), func(c *sdk.Client, opts ...sdk.CallOption) error {
			_, err := c.Events.PublishEvents(ctx, []sdk.Event{{EventType: "a", Payload: map[string]any{}}}, opts...)
			return err
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			url, rec := scripted(t, hangUp, tt.success, errorReply(http.StatusBadGateway), tt.success)
			c := sdk.New(sdk.WithServerURL(url), sdk.WithRetryConfig(fastRetry))
			if err := tt.call(c); err != nil {
				t.Fatalf("first call: %v", err)
			}
			if err := tt.call(c, sdk.WithIdempotencyKey("caller-key")); err != nil {
				t.Fatalf("second call: %v", err)
			}

			requests := rec.all()
			if len(requests) != 4 {
				t.Fatalf("attempts = %d, want 2 per call", len(requests))
			}
			keys := make([]string, len(requests))
			for i, req := range requests {
				keys[i] = req.header.Get("Idempotency-Key")
			}
			if keys[0] == "" || keys[0] != keys[1] {
				t.Errorf("first call keys = %q, want one key on both attempts", keys[:2])
			}
			if keys[2] != "caller-key" || keys[3] != "caller-key" {
				t.Errorf("second call keys = %q, want caller-key on both attempts", keys[2:])
			}
		})
	}
}

// lossyProxy forwards requests to target and drops the connection instead of sending the
// response of the first request, as when a network fails after the server has responded.
type lossyProxy struct {
	target string

	mu   sync.Mutex
	keys []string
}

func (p *lossyProxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	p.mu.Lock()
	p.keys = append(p.keys, r.Header.Get("Idempotency-Key"))
	first := len(p.keys) == 1
	p.mu.Unlock()

	body, err := io.ReadAll(r.Body)
	if err != nil {
		panic(err)
	}
	out, err := http.NewRequestWithContext(r.Context(), r.Method, p.target+r.URL.RequestURI(), bytes.NewReader(body))
	if err != nil {
		panic(err)
	}
	out.Header = r.Header.Clone()
	resp, err := http.DefaultClient.Do(out)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	defer resp.Body.Close()
	respBody, _ := io.ReadAll(resp.Body)

	if first {
		hangUp(w, r)
		return
	}
	for k, v := range resp.Header {
		w.Header()[k] = v
	}
	w.WriteHeader(resp.StatusCode)
	w.Write(respBody)
}

func (p *lossyProxy) idempotencyKeys() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.keys...)
}

func TestRetriedCreateLostResponse(t *testing.T) {
	t.Parallel()
	hookd := newHookd(t, api.Config{})
	raw := hookd.key(t, "acme", false)
	proxy := &lossyProxy{target: hookd.URL}
	proxyURL := serve(t, proxy)

	c := sdk.New(sdk.WithServerURL(proxyURL), sdk.WithAPIKey(raw), sdk.WithRetryConfig(fastRetry))
	created, err := c.Webhooks.CreateConsumer(context.Background(), sdk.WebhookConsumerPrototype{URL: "https://example.com/a", EventTypes: []string{"a"}})
	if err != nil {
		t.Fatalf("create through the lossy proxy: %v", err)
	}

	keys := proxy.idempotencyKeys()
	if len(keys) != 2 {
		t.Fatalf("attempts = %d, want 2", len(keys))
	}
	if keys[0] == "" || keys[0] != keys[1] {
		t.Errorf("Idempotency-Key per attempt = %q, want the same key twice", keys)
	}

	list, err := hookd.client(raw).Webhooks.ListConsumers(context.Background())
	if err != nil {
		t.Fatalf("list: %v", err)
	}
	if len(list.Results) != 1 {
		t.Fatalf("consumers after a retried create = %d, want 1 because both attempts sent the same Idempotency-Key", len(list.Results))
	}
	if list.Results[0].ID != created.ID {
		t.Errorf("stored consumer %s, but the retry returned %s", list.Results[0].ID, created.ID)
	}
}
