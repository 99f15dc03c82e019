package sdk_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/hookd/hookd/sdk"
)

// capturedRequest is what a test server saw of one request.
type capturedRequest struct {
	method string
	path   string // escaped
	query  string
	header http.Header
	body   []byte
	at     time.Time
}

// recorder captures every request a test server gets.
type recorder struct {
	mu       sync.Mutex
	requests []capturedRequest
}

func (rec *recorder) add(r *http.Request) int {
	body, _ := io.ReadAll(r.Body)
	rec.mu.Lock()
	defer rec.mu.Unlock()
	rec.requests = append(rec.requests, capturedRequest{
		method: r.Method, path: r.URL.EscapedPath(), query: r.URL.RawQuery,
		header: r.Header.Clone(), body: body, at: time.Now(),
	})
	return len(rec.requests) - 1
}

func (rec *recorder) all() []capturedRequest {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	return slices.Clone(rec.requests)
}

// scripted starts a test server that handles request i with steps[i], or with the last
// step once the steps run out, and records every request.
func scripted(t *testing.T, steps ...http.HandlerFunc) (string, *recorder) {
	t.Helper()
	rec := &recorder{}
	url := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		i := rec.add(r)
		steps[min(i, len(steps)-1)](w, r)
	}))
	return url, rec
}

// reply returns a step that sends status with a JSON body and the given header pairs.
func reply(status int, body string, headerPairs ...string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		for i := 0; i+1 < len(headerPairs); i += 2 {
			w.Header().Set(headerPairs[i], headerPairs[i+1])
		}
		if w.Header().Get("Content-Type") == "" {
			w.Header().Set("Content-Type", "application/json")
		}
		w.WriteHeader(status)
		io.WriteString(w, body)
	}
}

// errorReply returns a step that sends an ErrorMessage with status.
func errorReply(status int, headerPairs ...string) http.HandlerFunc {
	body, _ := json.Marshal(map[string]any{"statusCode": status, "service": "hookd", "error": http.StatusText(status),
		"correlationId": "0123456789abcdef0123456789abcdef", "canBeRetried": "Unknown", "detailedErrorCode": 0})
	return reply(status, string(body), headerPairs...)
}

const consumerJSON = `{"id":"3f1c2a8e-5b7d-4e21-9c3a-6d8f0b4e7a15","url":"https://example.com/a","eventTypes":["a"],"companyTags":null,"disabled":false}`

func TestRequestHeadersAndBody(t *testing.T) {
	t.Parallel()
	url, rec := scripted(t, reply(http.StatusCreated, consumerJSON))
	c := sdk.New(sdk.WithServerURL(url), sdk.WithSecurity("Basic verbatim=="))
	ctx := context.Background()

	calls := []struct {
		name     string
		call     func() error
		wantBody string
	}{
		{"minimal", func() error {
			_, err := c.Webhooks.CreateConsumer(ctx, sdk.WebhookConsumerPrototype{URL: "https://example.com/a", EventTypes: []string{"a"}})
			return err
		}, `{"url":"https://example.com/a","eventTypes":["a"]}`},
		{"every field", func() error {
			_, err := c.Webhooks.CreateConsumer(ctx, sdk.WebhookConsumerPrototype{URL: "https://example.com/a", EventTypes: []string{"a"},
				CompanyTags: []string{}, Disabled: sdk.Bool(false)})
			return err
		}, `{"url":"https://example.com/a","disabled":false,"eventTypes":["a"],"companyTags":[]}`},
		{"no fields", func() error {
			_, err := c.Webhooks.CreateConsumer(ctx, sdk.WebhookConsumerPrototype{})
			return err
		}, `{}`},
		{"own idempotency key", func() error {
			_, err := c.Webhooks.CreateConsumer(ctx, sdk.WebhookConsumerPrototype{URL: "https://example.com/a"}, sdk.WithIdempotencyKey("create-1"))
			return err
		}, `{"url":"https://example.com/a"}`},
	}
	for _, call := range calls {
		if err := call.call(); err != nil {
			t.Fatalf("%s: %v", call.name, err)
		}
	}

	requests := rec.all()
	if len(requests) != len(calls) {
		t.Fatalf("server got %d requests, want %d", len(requests), len(calls))
	}
	keys := map[string]bool{}
	for i, req := range requests {
		name := calls[i].name
		if req.method != http.MethodPost || req.path != "/webhooks" {
			t.Errorf("%s: %s %s, want POST /webhooks", name, req.method, req.path)
		}
		if string(req.body) != calls[i].wantBody {
			t.Errorf("%s: body %s, want %s", name, req.body, calls[i].wantBody)
		}
		want := map[string]string{"Accept": "application/json", "Content-Type": "application/json", "Authorization": "Basic verbatim=="}
		for k, v := range want {
			if got := req.header.Get(k); got != v {
				t.Errorf("%s: %s = %q, want %q", name, k, got, v)
			}
		}
		if ua := req.header.Get("User-Agent"); !strings.HasPrefix(ua, "hookd-sdk-go/") {
			t.Errorf("%s: User-Agent = %q, want hookd-sdk-go/...", name, ua)
		}
		keys[req.header.Get("Idempotency-Key")] = true
	}
	for _, req := range requests[:3] {
		if _, err := uuid.Parse(req.header.Get("Idempotency-Key")); err != nil {
			t.Errorf("Idempotency-Key = %q, want a UUID", req.header.Get("Idempotency-Key"))
		}
	}
	if got := requests[3].header.Get("Idempotency-Key"); got != "create-1" {
		t.Errorf("Idempotency-Key with WithIdempotencyKey = %q, want create-1", got)
	}
	if len(keys) != len(calls) {
		t.Errorf("%d distinct Idempotency-Key values over %d calls, want one per call", len(keys), len(calls))
	}
}

func TestRequestWithoutBody(t *testing.T) {
	t.Parallel()
	url, rec := scripted(t, reply(http.StatusOK, `{"results":[]}`))
	c := sdk.New(sdk.WithServerURL(url))
	if _, err := c.Webhooks.ListConsumers(context.Background(), sdk.WithIdempotencyKey("ignored")); err != nil {
		t.Fatal(err)
	}
	req := rec.all()[0]
	for _, name := range []string{"Content-Type", "Idempotency-Key", "Authorization"} {
		if got := req.header.Get(name); got != "" {
			t.Errorf("%s = %q, want no header", name, got)
		}
	}
	if len(req.body) != 0 {
		t.Errorf("body = %q, want none", req.body)
	}
}

func TestRequestPaths(t *testing.T) {
	t.Parallel()
	ok := func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.Method == http.MethodDelete:
			w.WriteHeader(http.StatusNoContent)
		case strings.HasSuffix(r.URL.Path, "/attempts"):
			reply(http.StatusOK, `{"results":[]}`)(w, r)
		case strings.HasSuffix(r.URL.Path, "/recover"):
			reply(http.StatusAccepted, `{"recovered":0}`)(w, r)
		case strings.HasSuffix(r.URL.Path, "/resend"):
			reply(http.StatusAccepted, `{"id":"m","webhookId":"w","status":"sending"}`)(w, r)
		case strings.HasSuffix(r.URL.Path, "/rotate"):
			reply(http.StatusOK, `{"key":"whsec_a"}`)(w, r)
		case strings.HasSuffix(r.URL.Path, "/events/batch"):
			reply(http.StatusAccepted, `{"results":[]}`)(w, r)
		case strings.HasSuffix(r.URL.Path, "/events"):
			reply(http.StatusAccepted, `{}`)(w, r)
		default:
			reply(http.StatusOK, `{}`)(w, r)
		}
	}
	base, rec := scripted(t, ok)
	ctx := context.Background()
	since := time.Date(2026, 1, 2, 15, 4, 5, 0, time.FixedZone("", 3600))

	calls := []struct {
		name      string
		call      func(c *sdk.Client) error
		method    string
		path      string
		wantQuery string
		wantBody  string
	}{
		{"list consumers", func(c *sdk.Client) error { _, err := c.Webhooks.ListConsumers(ctx); return err },
			"GET", "/webhooks", "", ""},
		{"delete consumer", func(c *sdk.Client) error {
			return c.Webhooks.DeleteConsumer(ctx, sdk.DeleteWebhookConsumerRequest{WebhookID: "w 1"})
		}, "DELETE", "/webhooks/w%201", "", ""},
		{"get consumer", func(c *sdk.Client) error { _, err := c.Webhooks.GetConsumer(ctx, "w1"); return err },
			"GET", "/webhooks/w1", "", ""},
		{"update consumer", func(c *sdk.Client) error {
			_, err := c.Webhooks.UpdateConsumer(ctx, "w1", sdk.WebhookConsumerUpdate{
				URL: sdk.String("https://example.com/b"), EventTypes: []string{"x"}, RemoveCompanyTags: true, Disabled: sdk.Bool(true)})
			return err
		}, "PATCH", "/webhooks/w1", "", `{"companyTags":null,"disabled":true,"eventTypes":["x"],"url":"https://example.com/b"}`},
		{"update nothing", func(c *sdk.Client) error {
			_, err := c.Webhooks.UpdateConsumer(ctx, "w1", sdk.WebhookConsumerUpdate{})
			return err
		}, "PATCH", "/webhooks/w1", "", `{}`},
		{"list messages", func(c *sdk.Client) error {
			_, err := c.Webhooks.ListMessages(ctx, "w1", sdk.MessageFilter{Status: sdk.MessageStatusFailure, Since: since, Until: since.Add(time.Hour), Limit: 5, Cursor: "17"})
			return err
		}, "GET", "/webhooks/w1/messages", "cursor=17&limit=5&since=2026-01-02T15%3A04%3A05%2B01%3A00&status=failure&until=2026-01-02T16%3A04%3A05%2B01%3A00", ""},
		{"recover", func(c *sdk.Client) error {
			_, err := c.Webhooks.RecoverMessages(ctx, "w1", since, time.Time{})
			return err
		},
			"POST", "/webhooks/w1/recover", "", `{"since":"2026-01-02T15:04:05+01:00"}`},
		{"secret", func(c *sdk.Client) error { _, err := c.Webhooks.GetSecret(ctx, "w1"); return err },
			"GET", "/webhooks/w1/secret", "", ""},
		{"rotate", func(c *sdk.Client) error { _, err := c.Webhooks.RotateSecret(ctx, "w1"); return err },
			"POST", "/webhooks/w1/secret/rotate", "", ""},
		{"publish", func(c *sdk.Client) error {
			_, err := c.Events.PublishEvent(ctx, sdk.Event{EventType: "a", Payload: map[string]int{"n": 1}})
			return err
		}, "POST", "/events", "", `{"eventType":"a","payload":{"n":1}}`},
		{"publish batch", func(c *sdk.Client) error {
			_, err := c.Events.PublishEvents(ctx, []sdk.Event{{ID: "e1", EventType: "a", GeneratedDate: since, Payload: json.RawMessage(`{}`)}})
			return err
		}, "POST", "/events/batch", "", `{"events":[{"id":"e1","eventType":"a","generatedDate":"2026-01-02T15:04:05+01:00","payload":{}}]}`},
		{"get message", func(c *sdk.Client) error { _, err := c.Messages.GetMessage(ctx, "evt/1 ü"); return err },
			"GET", "/messages/evt%2F1%20%C3%BC", "", ""},
		{"attempts", func(c *sdk.Client) error { _, err := c.Messages.ListAttempts(ctx, "evt/1"); return err },
			"GET", "/messages/evt%2F1/attempts", "", ""},
		{"resend", func(c *sdk.Client) error { _, err := c.Messages.ResendMessage(ctx, "evt/1", "w1"); return err },
			"POST", "/messages/evt%2F1/resend", "", `{"webhookId":"w1"}`},
	}

	prefixes := []struct {
		serverURL string
		prefix    string
	}{
		{base, ""},
		{base + "/", ""},
		{base + "/hookd", "/hookd"},
		{base + "/hookd/", "/hookd"},
		{base + "/api%20v1//", "/api%20v1"},
	}
	for _, p := range prefixes {
		t.Run(p.serverURL, func(t *testing.T) {
			c := sdk.New(sdk.WithServerURL(p.serverURL), sdk.WithRetryConfig(sdk.RetryConfig{Strategy: sdk.StrategyNone}))
			before := len(rec.all())
			for _, call := range calls {
				if err := call.call(c); err != nil {
					t.Fatalf("%s: %v", call.name, err)
				}
			}
			requests := rec.all()[before:]
			if len(requests) != len(calls) {
				t.Fatalf("server got %d requests, want %d", len(requests), len(calls))
			}
			for i, call := range calls {
				req := requests[i]
				if req.method != call.method || req.path != p.prefix+call.path || req.query != call.wantQuery {
					t.Errorf("%s: %s %s?%s, want %s %s?%s", call.name, req.method, req.path, req.query, call.method, p.prefix+call.path, call.wantQuery)
				}
				if string(req.body) != call.wantBody {
					t.Errorf("%s: body %s, want %s", call.name, req.body, call.wantBody)
				}
			}
		})
	}
}

func TestInvalidServerURL(t *testing.T) {
	t.Parallel()
	for _, serverURL := range []string{"", "127.0.0.1:8080", "ftp://example.com", "http://", "http://127.0.0.1:8080/?debug=1", "http://[::1"} {
		t.Run(serverURL, func(t *testing.T) {
			c := sdk.New(sdk.WithServerURL(serverURL))
			_, err := c.Webhooks.ListConsumers(context.Background())
			if err == nil || !strings.Contains(err.Error(), "invalid server URL") {
				t.Errorf("error = %v, want an invalid server URL error", err)
			}
		})
	}
}

// roundTripFunc is an http.RoundTripper made of a function.
type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

func TestDefaultServerURLAndHTTPClient(t *testing.T) {
	t.Parallel()
	var got string
	transport := roundTripFunc(func(r *http.Request) (*http.Response, error) {
		got = r.URL.String()
		return &http.Response{
			StatusCode: http.StatusOK,
			Header:     http.Header{"Content-Type": {"application/json; charset=utf-8"}},
			Body:       io.NopCloser(bytes.NewReader([]byte(`{"results":[]}`))),
			Request:    r,
		}, nil
	})
	c := sdk.New(sdk.WithHTTPClient(&http.Client{Transport: transport}), sdk.WithHTTPClient(nil))
	list, err := c.Webhooks.ListConsumers(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if want := sdk.DefaultServerURL + "/webhooks"; got != want {
		t.Errorf("request URL = %q, want %q", got, want)
	}
	if list.Results == nil || len(list.Results) != 0 {
		t.Errorf("Results = %#v, want an empty list", list.Results)
	}
}

func TestWithAPIKeyHeader(t *testing.T) {
	t.Parallel()
	url, rec := scripted(t, reply(http.StatusOK, `{"results":[]}`))
	c := sdk.New(sdk.WithServerURL(url), sdk.WithSecurity("Basic other"), sdk.WithAPIKey("hk_0123_abc"))
	if _, err := c.Webhooks.ListConsumers(context.Background()); err != nil {
		t.Fatal(err)
	}
	// base64("hk_0123_abc")
	if got, want := rec.all()[0].header.Get("Authorization"), "Basic aGtfMDEyM19hYmM="; got != want {
		t.Errorf("Authorization = %q, want %q", got, want)
	}
}

func TestUpdateMarshalConflict(t *testing.T) {
	_, err := json.Marshal(sdk.WebhookConsumerUpdate{CompanyTags: []string{"a:b"}, RemoveCompanyTags: true})
	if err == nil {
		t.Fatal("Marshal of an update that sets and removes company tags succeeded, want an error")
	}
	var marshalErr *json.MarshalerError
	if !errors.As(err, &marshalErr) {
		t.Errorf("error = %T %v, want *json.MarshalerError", err, err)
	}
}
