package sdk_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/hookd/hookd/internal/api"
	"github.com/hookd/hookd/internal/apikey"
	"github.com/hookd/hookd/internal/store"
	"github.com/hookd/hookd/sdk"
	"github.com/hookd/hookd/signature"
)

var correlationIDPattern = regexp.MustCompile(`^[0-9a-f]{32}$`)

// expectErrorMessage checks that err is an *sdk.ErrorMessage of the given HTTP status
// with hookd's body fields, and returns it.
func expectErrorMessage(t *testing.T, err error, status int) *sdk.ErrorMessage {
	t.Helper()
	var msg *sdk.ErrorMessage
	if !errors.As(err, &msg) {
		t.Fatalf("error = %v (%T), want *sdk.ErrorMessage with status %d", err, err, status)
	}

	// Body fields.
	if msg.HTTPStatus != status {
		t.Errorf("HTTPStatus = %d, want %d; error %v", msg.HTTPStatus, status, msg)
	}
	if msg.StatusCode != status {
		t.Errorf("StatusCode = %d, want %d", msg.StatusCode, status)
	}
	if msg.Service != "hookd" {
		t.Errorf("Service = %q, want hookd", msg.Service)
	}
	if msg.Message == "" {
		t.Error("Message is empty")
	}
	if !correlationIDPattern.MatchString(msg.CorrelationID) {
		t.Errorf("CorrelationID = %q, want 32 hex digits", msg.CorrelationID)
	}

	// The raw response.
	if msg.RawResponse == nil {
		t.Fatal("RawResponse is nil")
	}
	if got := msg.RawResponse.Header.Get("X-Correlation-Id"); got != msg.CorrelationID {
		t.Errorf("X-Correlation-Id header = %q, want the body's %q", got, msg.CorrelationID)
	}
	raw, readErr := io.ReadAll(msg.RawResponse.Body)
	if readErr != nil || string(raw) != string(msg.Body) {
		t.Errorf("RawResponse.Body reads %q (err %v), want Body %q", raw, readErr, msg.Body)
	}
	if len(msg.Body) == 0 {
		t.Error("Body is empty")
	}

	for _, part := range []string{http.StatusText(status), msg.CorrelationID} {
		if !strings.Contains(msg.Error(), part) {
			t.Errorf("Error() = %q, want it to contain %q", msg.Error(), part)
		}
	}
	return msg
}

func validationIDs(msg *sdk.ErrorMessage) []string {
	if msg.Validation == nil {
		return nil
	}
	var ids []string
	for _, item := range msg.Validation.Errors {
		ids = append(ids, item.ItemID+"/"+item.ValidatorName)
	}
	return ids
}

func TestConsumerLifecycle(t *testing.T) {
	t.Parallel()
	hookd := newHookd(t, api.Config{})
	c := hookd.client(hookd.key(t, "acme", false))
	ctx := context.Background()

	plain, err := c.Webhooks.CreateConsumer(ctx, sdk.WebhookConsumerPrototype{
		URL:        "https://example.com/plain",
		EventTypes: []string{"company.created", "read.completed", "company.created"},
	})
	if err != nil {
		t.Fatalf("create: %v", err)
	}
	if _, err := uuid.Parse(plain.ID); err != nil {
		t.Errorf("ID = %q, want a UUID", plain.ID)
	}
	if plain.URL != "https://example.com/plain" {
		t.Errorf("URL = %q", plain.URL)
	}
	if want := []string{"company.created", "read.completed"}; !slices.Equal(plain.EventTypes, want) {
		t.Errorf("EventTypes = %q, want %q without the duplicate", plain.EventTypes, want)
	}
	if plain.CompanyTags != nil {
		t.Errorf("CompanyTags = %q, want nil for null", plain.CompanyTags)
	}
	if plain.Disabled == nil || *plain.Disabled {
		t.Errorf("Disabled = %v, want false", plain.Disabled)
	}

	tagged, err := c.Webhooks.CreateConsumer(ctx, sdk.WebhookConsumerPrototype{
		URL:         "https://example.com/tagged",
		EventTypes:  []string{"company.created"},
		CompanyTags: []string{"region:uk"},
		Disabled:    sdk.Bool(true),
	})
	if err != nil {
		t.Fatalf("create tagged: %v", err)
	}
	if !slices.Equal(tagged.CompanyTags, []string{"region:uk"}) || tagged.Disabled == nil || !*tagged.Disabled {
		t.Errorf("tagged = %+v, want companyTags [region:uk] and disabled", tagged)
	}

	list, err := c.Webhooks.ListConsumers(ctx)
	if err != nil {
		t.Fatalf("list: %v", err)
	}
	if want := []sdk.WebhookConsumer{*plain, *tagged}; !reflect.DeepEqual(list.Results, want) {
		t.Errorf("list = %+v, want %+v", list.Results, want)
	}

	got, err := c.Webhooks.GetConsumer(ctx, tagged.ID)
	if err != nil {
		t.Fatalf("get: %v", err)
	}
	if !reflect.DeepEqual(got, tagged) {
		t.Errorf("get = %+v, want %+v", got, tagged)
	}

	updated, err := c.Webhooks.UpdateConsumer(ctx, tagged.ID, sdk.WebhookConsumerUpdate{
		URL:         sdk.String("https://example.com/v2"),
		CompanyTags: []string{"region:us", "tier:gold"},
		Disabled:    sdk.Bool(false),
	})
	if err != nil {
		t.Fatalf("update: %v", err)
	}
	want := sdk.WebhookConsumer{ID: tagged.ID, URL: "https://example.com/v2", Disabled: sdk.Bool(false),
		EventTypes: []string{"company.created"}, CompanyTags: []string{"region:us", "tier:gold"}}
	if !reflect.DeepEqual(*updated, want) {
		t.Errorf("update = %+v, want %+v", updated, want)
	}

	unchanged, err := c.Webhooks.UpdateConsumer(ctx, tagged.ID, sdk.WebhookConsumerUpdate{})
	if err != nil {
		t.Fatalf("empty update: %v", err)
	}
	if !reflect.DeepEqual(unchanged, updated) {
		t.Errorf("empty update = %+v, want %+v", unchanged, updated)
	}

	removed, err := c.Webhooks.UpdateConsumer(ctx, tagged.ID, sdk.WebhookConsumerUpdate{RemoveCompanyTags: true})
	if err != nil {
		t.Fatalf("remove tags: %v", err)
	}
	if removed.CompanyTags != nil {
		t.Errorf("CompanyTags after RemoveCompanyTags = %q, want nil", removed.CompanyTags)
	}

	if err := c.Webhooks.DeleteConsumer(ctx, sdk.DeleteWebhookConsumerRequest{WebhookID: tagged.ID}); err != nil {
		t.Fatalf("delete: %v", err)
	}
	_, err = c.Webhooks.GetConsumer(ctx, tagged.ID)
	expectErrorMessage(t, err, http.StatusNotFound)
	err = c.Webhooks.DeleteConsumer(ctx, sdk.DeleteWebhookConsumerRequest{WebhookID: tagged.ID})
	expectErrorMessage(t, err, http.StatusNotFound)

	list, err = c.Webhooks.ListConsumers(ctx)
	if err != nil {
		t.Fatalf("list after delete: %v", err)
	}
	if len(list.Results) != 1 || list.Results[0].ID != plain.ID {
		t.Errorf("list after delete = %+v, want only %s", list.Results, plain.ID)
	}
}

func TestRejectedBeforeSending(t *testing.T) {
	t.Parallel()
	var requests atomic.Int32
	url := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { requests.Add(1) }))
	c := sdk.New(sdk.WithServerURL(url))
	ctx := context.Background()

	tests := []struct {
		name string
		call func() error
		want string
	}{
		{"delete without id", func() error {
			return c.Webhooks.DeleteConsumer(ctx, sdk.DeleteWebhookConsumerRequest{})
		}, "webhook consumer id is empty"},
		{"get without id", func() error { _, err := c.Webhooks.GetConsumer(ctx, ""); return err }, "webhook consumer id is empty"},
		{"update without id", func() error {
			_, err := c.Webhooks.UpdateConsumer(ctx, "", sdk.WebhookConsumerUpdate{})
			return err
		}, "webhook consumer id is empty"},
		{"update with conflicting tags", func() error {
			_, err := c.Webhooks.UpdateConsumer(ctx, "x", sdk.WebhookConsumerUpdate{CompanyTags: []string{"a:b"}, RemoveCompanyTags: true})
			return err
		}, "CompanyTags and RemoveCompanyTags"},
		{"messages without id", func() error {
			_, err := c.Webhooks.ListMessages(ctx, "", sdk.MessageFilter{})
			return err
		}, "webhook consumer id is empty"},
		{"recover without since", func() error {
			_, err := c.Webhooks.RecoverMessages(ctx, "x", time.Time{}, time.Time{})
			return err
		}, "since is the zero time"},
		{"secret without id", func() error { _, err := c.Webhooks.GetSecret(ctx, ""); return err }, "webhook consumer id is empty"},
		{"rotate without id", func() error { _, err := c.Webhooks.RotateSecret(ctx, ""); return err }, "webhook consumer id is empty"},
		{"empty batch", func() error { _, err := c.Events.PublishEvents(ctx, nil); return err }, "no events"},
		{"message without id", func() error { _, err := c.Messages.GetMessage(ctx, ""); return err }, "message id is empty"},
		{"attempts without id", func() error { _, err := c.Messages.ListAttempts(ctx, ""); return err }, "message id is empty"},
		{"resend without consumer", func() error { _, err := c.Messages.ResendMessage(ctx, "m", ""); return err }, "webhook consumer id is empty"},
		{"payload that does not encode", func() error {
			_, err := c.Events.PublishEvent(ctx, sdk.Event{EventType: "a", Payload: func() {}})
			return err
		}, "encode request body"},
		{"unknown retry strategy", func() error {
			_, err := c.Webhooks.ListConsumers(ctx, sdk.WithRetries(sdk.RetryConfig{Strategy: "sometimes"}))
			return err
		}, `invalid retry strategy "sometimes"`},
		{"negative backoff", func() error {
			_, err := c.Webhooks.ListConsumers(ctx, sdk.WithRetries(sdk.RetryConfig{Backoff: sdk.BackoffStrategy{MaxInterval: -1}}))
			return err
		}, "must not be negative"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.call()
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error = %v, want one containing %q", err, tt.want)
			}
		})
	}
	if n := requests.Load(); n != 0 {
		t.Errorf("the server got %d requests, want 0", n)
	}
}

// failAll records a failed final attempt for every due delivery, as the delivery engine
// does when a consumer responds with 500 and the retry schedule has run out.
func failAll(t *testing.T, hookd *hookdServer) int {
	t.Helper()
	ctx := context.Background()
	jobs, err := hookd.Store.ClaimDeliveries(ctx, store.ClaimRequest{Now: time.Now(), Limit: 100, DefaultSlots: 100, Lease: time.Minute})
	if err != nil {
		t.Fatalf("claim deliveries: %v", err)
	}
	results := make([]store.AttemptResult, 0, len(jobs))
	for _, job := range jobs {
		results = append(results, store.AttemptResult{Job: job, AttemptedAt: time.Now(), Duration: 12500 * time.Microsecond,
			StatusCode: http.StatusInternalServerError, Error: "the consumer answered 500", ResponseBody: "database down"})
	}
	if err := hookd.Store.RecordAttempts(ctx, results); err != nil {
		t.Fatalf("record attempts: %v", err)
	}
	return len(jobs)
}

func TestEventsAndMessages(t *testing.T) {
	t.Parallel()
	hookd := newHookd(t, api.Config{})
	c := hookd.client(hookd.key(t, "acme", false))
	ctx := context.Background()
	start := time.Now().Add(-time.Minute)

	consumer, err := c.Webhooks.CreateConsumer(ctx, sdk.WebhookConsumerPrototype{URL: "https://example.com/hook", EventTypes: []string{"company.created"}})
	if err != nil {
		t.Fatalf("create: %v", err)
	}

	// An id with a slash must stay one path segment.
	generated := time.Date(2026, 1, 2, 15, 4, 5, 123456789, time.FixedZone("CET", 3600))
	env, err := c.Events.PublishEvent(ctx, sdk.Event{
		ID:            "evt/1",
		EventType:     "company.created",
		GeneratedDate: generated,
		Payload:       map[string]any{"companyId": "c1"},
	})
	if err != nil {
		t.Fatalf("publish: %v", err)
	}
	if env.ID != "evt/1" || env.EventType != "company.created" || string(env.Payload) != `{"companyId":"c1"}` {
		t.Errorf("envelope = %+v %s", env, env.Payload)
	}
	if want := generated.Truncate(time.Millisecond); !env.GeneratedDate.Equal(want) {
		t.Errorf("GeneratedDate = %v, want %v", env.GeneratedDate, want)
	}

	first, err := c.Events.PublishEvent(ctx, sdk.Event{EventType: "company.created", Payload: json.RawMessage(`{"n": 1}`)}, sdk.WithIdempotencyKey("order-1"))
	if err != nil {
		t.Fatalf("publish with key: %v", err)
	}
	again, err := c.Events.PublishEvent(ctx, sdk.Event{EventType: "company.created", Payload: json.RawMessage(`{"n": 2}`)}, sdk.WithIdempotencyKey("order-1"))
	if err != nil {
		t.Fatalf("publish with the same key: %v", err)
	}
	if !reflect.DeepEqual(first, again) {
		t.Errorf("second publish with key order-1 = %+v, want the first envelope %+v", again, first)
	}

	batch, err := c.Events.PublishEvents(ctx, []sdk.Event{
		{ID: "b1", EventType: "company.created", Payload: map[string]string{"n": "b1"}},
		{ID: "b2", EventType: "other.event", Payload: map[string]string{"n": "b2"}},
	})
	if err != nil {
		t.Fatalf("publish batch: %v", err)
	}
	if len(batch) != 2 || batch[0].ID != "b1" || batch[1].ID != "b2" || string(batch[1].Payload) != `{"n":"b2"}` {
		t.Errorf("batch = %+v, want b1 and b2 in order", batch)
	}

	// Three messages match the consumer, newest first, read two at a time.
	page, err := c.Webhooks.ListMessages(ctx, consumer.ID, sdk.MessageFilter{Limit: 2, Since: start})
	if err != nil {
		t.Fatalf("list messages: %v", err)
	}
	if got := messageIDs(page.Results); !slices.Equal(got, []string{"b1", first.ID}) || page.Next == "" {
		t.Fatalf("first page = %q next %q, want b1 and %s with a cursor", got, page.Next, first.ID)
	}
	if m := page.Results[0]; m.Status != sdk.MessageStatusSending || m.FailedAttempts != 0 || m.NextAttemptAt == nil || m.LastAttemptAt != nil {
		t.Errorf("new message = %+v, want sending, due, never attempted", m)
	}
	page, err = c.Webhooks.ListMessages(ctx, consumer.ID, sdk.MessageFilter{Limit: 2, Since: start, Cursor: page.Next})
	if err != nil {
		t.Fatalf("list second page: %v", err)
	}
	if got := messageIDs(page.Results); !slices.Equal(got, []string{"evt/1"}) || page.Next != "" {
		t.Errorf("second page = %q next %q, want evt/1 and no cursor", got, page.Next)
	}
	page, err = c.Webhooks.ListMessages(ctx, consumer.ID, sdk.MessageFilter{Until: start})
	if err != nil || len(page.Results) != 0 {
		t.Errorf("messages until %v = %+v (err %v), want none", start, page, err)
	}

	detail, err := c.Messages.GetMessage(ctx, "evt/1")
	if err != nil {
		t.Fatalf("get message: %v", err)
	}
	if detail.ID != "evt/1" || string(detail.Payload) != `{"companyId":"c1"}` || len(detail.Deliveries) != 1 ||
		detail.Deliveries[0].WebhookID != consumer.ID || detail.Deliveries[0].Status != sdk.MessageStatusSending {
		t.Errorf("message = %+v, want evt/1 queued for %s", detail, consumer.ID)
	}

	if n := failAll(t, hookd); n != 3 {
		t.Fatalf("attempted %d deliveries, want 3", n)
	}
	attempts, err := c.Messages.ListAttempts(ctx, "evt/1")
	if err != nil {
		t.Fatalf("list attempts: %v", err)
	}
	if len(attempts) != 1 {
		t.Fatalf("attempts = %+v, want 1", attempts)
	}
	a := attempts[0]
	if a.WebhookID != consumer.ID || a.StatusCode != 500 || a.Success || a.ResponseBody != "database down" || a.Error == "" {
		t.Errorf("attempt = %+v", a)
	}
	if a.Duration() != 12500*time.Microsecond {
		t.Errorf("Duration() = %v, want 12.5ms", a.Duration())
	}

	failed, err := c.Webhooks.ListMessages(ctx, consumer.ID, sdk.MessageFilter{Status: sdk.MessageStatusFailure})
	if err != nil || len(failed.Results) != 3 {
		t.Fatalf("failed messages = %+v (err %v), want 3", failed, err)
	}
	recovered, err := c.Webhooks.RecoverMessages(ctx, consumer.ID, start, time.Time{})
	if err != nil || recovered != 3 {
		t.Errorf("recover = %d (err %v), want 3", recovered, err)
	}
	recovered, err = c.Webhooks.RecoverMessages(ctx, consumer.ID, start, time.Now())
	if err != nil || recovered != 0 {
		t.Errorf("second recover = %d (err %v), want 0", recovered, err)
	}

	resent, err := c.Messages.ResendMessage(ctx, "evt/1", consumer.ID)
	if err != nil {
		t.Fatalf("resend: %v", err)
	}
	if want := (sdk.ResendResult{ID: "evt/1", WebhookID: consumer.ID, Status: sdk.MessageStatusSending}); *resent != want {
		t.Errorf("resend = %+v, want %+v", *resent, want)
	}
}

func messageIDs(list []sdk.ConsumerMessage) []string {
	ids := make([]string, 0, len(list))
	for _, m := range list {
		ids = append(ids, m.ID)
	}
	return ids
}

func TestSecrets(t *testing.T) {
	t.Parallel()
	hookd := newHookd(t, api.Config{})
	c := hookd.client(hookd.key(t, "acme", false))
	ctx := context.Background()
	consumer, err := c.Webhooks.CreateConsumer(ctx, sdk.WebhookConsumerPrototype{URL: "https://example.com/hook", EventTypes: []string{"a"}})
	if err != nil {
		t.Fatalf("create: %v", err)
	}

	secret, err := c.Webhooks.GetSecret(ctx, consumer.ID)
	if err != nil {
		t.Fatalf("get secret: %v", err)
	}
	if _, err := signature.ParseSecret(secret.Key); err != nil {
		t.Errorf("Key %q does not parse: %v", secret.Key, err)
	}
	if secret.PreviousKeyExpiresAt != nil {
		t.Errorf("PreviousKeyExpiresAt = %v before any rotation, want nil", secret.PreviousKeyExpiresAt)
	}

	rotated, err := c.Webhooks.RotateSecret(ctx, consumer.ID)
	if err != nil {
		t.Fatalf("rotate: %v", err)
	}
	if rotated.Key == secret.Key || !strings.HasPrefix(rotated.Key, "whsec_") {
		t.Errorf("rotated key = %q, want a new whsec_ key", rotated.Key)
	}
	if rotated.PreviousKeyExpiresAt == nil || !rotated.PreviousKeyExpiresAt.After(time.Now()) {
		t.Errorf("PreviousKeyExpiresAt = %v, want a future time", rotated.PreviousKeyExpiresAt)
	}

	current, err := c.Webhooks.GetSecret(ctx, consumer.ID)
	if err != nil {
		t.Fatalf("get secret after rotation: %v", err)
	}
	if current.Key != rotated.Key {
		t.Errorf("secret after rotation = %q, want %q", current.Key, rotated.Key)
	}
}

func TestAuthHeaderOptions(t *testing.T) {
	t.Parallel()
	hookd := newHookd(t, api.Config{})
	raw := hookd.key(t, "acme", false)

	tests := []struct {
		name string
		opt  sdk.Option
	}{
		{"WithAPIKey", sdk.WithAPIKey(raw)},
		{"WithSecurity", sdk.WithSecurity(apikey.Header(raw))},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := sdk.New(sdk.WithServerURL(hookd.URL), tt.opt)
			if _, err := c.Webhooks.ListConsumers(context.Background()); err != nil {
				t.Errorf("list: %v", err)
			}
		})
	}
}

func TestErrorStatuses(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	hookd := newHookd(t, api.Config{})
	writer := hookd.client(hookd.key(t, "acme", false))
	readOnly := hookd.client(hookd.key(t, "acme", true))
	suspended := hookd.client(hookd.key(t, "suspended", false))
	if _, err := hookd.Store.SetClientSuspended(ctx, "suspended", true); err != nil {
		t.Fatal(err)
	}
	unknownKey, err := apikey.New()
	if err != nil {
		t.Fatal(err)
	}
	unknown := hookd.client(unknownKey.Raw)

	limited := newHookd(t, api.Config{RateLimit: 0.01, RateBurst: 1})
	rateLimited := limited.client(limited.key(t, "acme", false))
	if _, err := rateLimited.Webhooks.ListConsumers(ctx); err != nil {
		t.Fatalf("first request under the rate limit: %v", err)
	}

	broken := newHookd(t, api.Config{})
	brokenClient := broken.client(broken.key(t, "acme", false))
	if _, err := brokenClient.Webhooks.CreateConsumer(ctx, sdk.WebhookConsumerPrototype{URL: "https://example.com/a", EventTypes: []string{"a"}}); err != nil {
		t.Fatal(err)
	}
	// A row changed outside hookd cannot be decoded, which is an unexpected failure.
	if _, err := broken.openRaw(t).Exec("UPDATE consumers SET event_types = 'not json'"); err != nil {
		t.Fatal(err)
	}

	closed := newHookd(t, api.Config{})
	closedClient := closed.client(closed.key(t, "acme", false))
	closed.Store.Close()

	valid := sdk.WebhookConsumerPrototype{URL: "https://example.com/a", EventTypes: []string{"a"}}
	tests := []struct {
		name           string
		call           func() error
		status         int
		canBeRetried   string
		wantValidation []string
	}{
		{"400 invalid prototype", func() error {
			_, err := writer.Webhooks.CreateConsumer(ctx, sdk.WebhookConsumerPrototype{URL: "ftp://example.com/a"})
			return err
		}, http.StatusBadRequest, "False", []string{"url/url", "eventTypes/required"}},
		{"401 unknown key", func() error { _, err := unknown.Webhooks.ListConsumers(ctx); return err },
			http.StatusUnauthorized, "False", nil},
		{"402 suspended client", func() error { _, err := suspended.Webhooks.CreateConsumer(ctx, valid); return err },
			http.StatusPaymentRequired, "False", nil},
		{"403 read-only key", func() error { _, err := readOnly.Webhooks.CreateConsumer(ctx, valid); return err },
			http.StatusForbidden, "False", nil},
		{"404 unknown consumer", func() error {
			return writer.Webhooks.DeleteConsumer(ctx, sdk.DeleteWebhookConsumerRequest{WebhookID: uuid.NewString()})
		}, http.StatusNotFound, "False", nil},
		{"429 rate limit", func() error { _, err := rateLimited.Webhooks.ListConsumers(ctx); return err },
			http.StatusTooManyRequests, "True", nil},
		{"500 corrupt row", func() error { _, err := brokenClient.Webhooks.ListConsumers(ctx); return err },
			http.StatusInternalServerError, "Unknown", nil},
		{"503 closed store", func() error { _, err := closedClient.Webhooks.ListConsumers(ctx); return err },
			http.StatusServiceUnavailable, "True", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			msg := expectErrorMessage(t, tt.call(), tt.status)
			if msg.CanBeRetried != tt.canBeRetried {
				t.Errorf("CanBeRetried = %q, want %q", msg.CanBeRetried, tt.canBeRetried)
			}
			if msg.DetailedErrorCode != 0 {
				t.Errorf("DetailedErrorCode = %d, want 0", msg.DetailedErrorCode)
			}
			if got := validationIDs(msg); !slices.Equal(got, tt.wantValidation) {
				t.Errorf("validation = %q, want %q", got, tt.wantValidation)
			}
			if tt.wantValidation != nil && msg.Validation.Warnings == nil {
				t.Error("Validation.Warnings is nil, want the empty list hookd sends")
			}
			if !strings.Contains(msg.Error(), msg.Message) {
				t.Errorf("Error() = %q, want the message %q", msg.Error(), msg.Message)
			}
			if tt.status == http.StatusTooManyRequests && msg.RawResponse.Header.Get("Retry-After") == "" {
				t.Error("429 response lacks Retry-After")
			}
		})
	}
}

func TestExtensionErrors(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	hookd := newHookd(t, api.Config{})
	c := hookd.client(hookd.key(t, "acme", false))
	readOnly := hookd.client(hookd.key(t, "acme", true))
	consumer, err := c.Webhooks.CreateConsumer(ctx, sdk.WebhookConsumerPrototype{URL: "https://example.com/a", EventTypes: []string{"a"}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Events.PublishEvent(ctx, sdk.Event{ID: "m1", EventType: "a", Payload: map[string]any{}}); err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name           string
		call           func() error
		status         int
		wantValidation []string
	}{
		{"get unknown consumer", func() error { _, err := c.Webhooks.GetConsumer(ctx, "not-a-uuid"); return err },
			http.StatusNotFound, nil},
		{"update with empty event types", func() error {
			_, err := c.Webhooks.UpdateConsumer(ctx, consumer.ID, sdk.WebhookConsumerUpdate{EventTypes: []string{}})
			return err
		}, http.StatusBadRequest, []string{"eventTypes/minItems"}},
		{"update by read-only key", func() error {
			_, err := readOnly.Webhooks.UpdateConsumer(ctx, consumer.ID, sdk.WebhookConsumerUpdate{Disabled: sdk.Bool(true)})
			return err
		}, http.StatusForbidden, nil},
		{"messages with bad limit", func() error {
			_, err := c.Webhooks.ListMessages(ctx, consumer.ID, sdk.MessageFilter{Limit: 1000, Status: "lost"})
			return err
		}, http.StatusBadRequest, []string{"status/enum", "limit/range"}},
		{"messages of unknown consumer", func() error {
			_, err := c.Webhooks.ListMessages(ctx, uuid.NewString(), sdk.MessageFilter{})
			return err
		}, http.StatusNotFound, nil},
		{"recover from the future", func() error {
			_, err := c.Webhooks.RecoverMessages(ctx, consumer.ID, time.Now().Add(time.Hour), time.Time{})
			return err
		}, http.StatusBadRequest, []string{"since/range"}},
		{"secret by read-only key", func() error { _, err := readOnly.Webhooks.GetSecret(ctx, consumer.ID); return err },
			http.StatusForbidden, nil},
		{"rotate unknown consumer", func() error { _, err := c.Webhooks.RotateSecret(ctx, uuid.NewString()); return err },
			http.StatusNotFound, nil},
		{"publish without payload", func() error {
			_, err := c.Events.PublishEvent(ctx, sdk.Event{EventType: "a"})
			return err
		}, http.StatusBadRequest, []string{"payload/required"}},
		{"publish with long idempotency key", func() error {
			_, err := c.Events.PublishEvent(ctx, sdk.Event{EventType: "a", Payload: map[string]any{}}, sdk.WithIdempotencyKey(strings.Repeat("k", 256)))
			return err
		}, http.StatusBadRequest, []string{"Idempotency-Key/maxLength"}},
		{"batch with invalid event", func() error {
			_, err := c.Events.PublishEvents(ctx, []sdk.Event{{EventType: "a", Payload: map[string]any{}}, {Payload: map[string]any{}}})
			return err
		}, http.StatusBadRequest, []string{"events[1].eventType/minLength"}},
		{"get unknown message", func() error { _, err := c.Messages.GetMessage(ctx, "m404"); return err },
			http.StatusNotFound, nil},
		{"attempts of unknown message", func() error { _, err := c.Messages.ListAttempts(ctx, "m404"); return err },
			http.StatusNotFound, nil},
		{"resend to malformed consumer id", func() error { _, err := c.Messages.ResendMessage(ctx, "m1", "consumer-1"); return err },
			http.StatusBadRequest, []string{"webhookId/format"}},
		{"resend by read-only key", func() error { _, err := readOnly.Messages.ResendMessage(ctx, "m1", consumer.ID); return err },
			http.StatusForbidden, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			msg := expectErrorMessage(t, tt.call(), tt.status)
			if got := validationIDs(msg); !slices.Equal(got, tt.wantValidation) {
				t.Errorf("validation = %q, want %q", got, tt.wantValidation)
			}
		})
	}
}

func TestErrorMessageText(t *testing.T) {
	tests := []struct {
		name string
		msg  sdk.ErrorMessage
		want string
	}{
		{"plain", sdk.ErrorMessage{HTTPStatus: 404, Message: "Not here.", CorrelationID: "abc"},
			"hookd: 404 Not Found: Not here. (correlation id abc)"},
		{"single validation item", sdk.ErrorMessage{HTTPStatus: 400, Message: "url is bad.",
			Validation: &sdk.ErrorValidation{Errors: []sdk.ErrorValidationItem{{ItemID: "url", Message: "url is bad."}}}},
			"hookd: 400 Bad Request: url is bad."},
		{"several validation items", sdk.ErrorMessage{HTTPStatus: 400, Message: "2 invalid fields.", CorrelationID: "abc",
			Validation: &sdk.ErrorValidation{Errors: []sdk.ErrorValidationItem{{ItemID: "url", Message: "url is bad."}, {ItemID: "eventTypes", Message: "eventTypes is missing."}}}},
			"hookd: 400 Bad Request: 2 invalid fields. [url: url is bad.; eventTypes: eventTypes is missing.] (correlation id abc)"},
		{"unknown status without body", sdk.ErrorMessage{HTTPStatus: 599}, "hookd: status 599"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.msg.Error(); got != tt.want {
				t.Errorf("Error() = %q, want %q", got, tt.want)
			}
		})
	}
}
