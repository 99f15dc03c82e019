package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/url"
	"reflect"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"gopkg.in/yaml.v3"

	"github.com/hookd/hookd/internal/store"
	"github.com/hookd/hookd/signature"
)

// These tests run without a delivery engine. Config.Publisher is nil, so events are
// published straight through the store and nothing is sent. Where a test needs attempts,
// attemptAll claims and records them through the store as the engine would.

// doWithHeader sends a request like do, with extra request headers.
func (ts *testServer) doWithHeader(method, path, auth string, header http.Header, body any) response {
	ts.t.Helper()
	var reader io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		reader = strings.NewReader(b)
	default:
		encoded, err := json.Marshal(b)
		if err != nil {
			ts.t.Fatal(err)
		}
		reader = bytes.NewReader(encoded)
	}

	req, err := http.NewRequest(method, ts.url+path, reader)
	if err != nil {
		ts.t.Fatal(err)
	}
	for name, values := range header {
		req.Header[name] = values
	}
	req.Header.Set("Authorization", auth)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		ts.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		ts.t.Fatalf("read body of %s %s: %v", method, path, err)
	}
	return response{status: resp.StatusCode, header: resp.Header, body: data}
}

func withIdempotencyKey(key string) http.Header {
	return http.Header{idempotencyKeyName: {key}}
}

// publish posts one event and returns the envelope of the 202 response.
func (ts *testServer) publish(auth string, event any) envelope {
	ts.t.Helper()
	resp := ts.do(http.MethodPost, "/events", auth, event)
	if resp.status != http.StatusAccepted {
		ts.t.Fatalf("publish: status %d, body %s", resp.status, resp.body)
	}
	var env envelope
	decodeStrict(ts.t, resp.body, &env)
	return env
}

func (ts *testServer) message(auth, id string) messageDetail {
	ts.t.Helper()
	resp := ts.do(http.MethodGet, "/messages/"+url.PathEscape(id), auth, nil)
	if resp.status != http.StatusOK {
		ts.t.Fatalf("get message %q: status %d, body %s", id, resp.status, resp.body)
	}
	var detail messageDetail
	decodeStrict(ts.t, resp.body, &detail)
	return detail
}

func (ts *testServer) attempts(auth, id string) []attempt {
	ts.t.Helper()
	resp := ts.do(http.MethodGet, "/messages/"+url.PathEscape(id)+"/attempts", auth, nil)
	if resp.status != http.StatusOK {
		ts.t.Fatalf("list attempts of %q: status %d, body %s", id, resp.status, resp.body)
	}
	var list attempts
	decodeStrict(ts.t, resp.body, &list)
	return list.Results
}

// consumerMessages lists a consumer's messages with the given query string.
func (ts *testServer) consumerMessages(auth, consumerID, query string) consumerMessages {
	ts.t.Helper()
	resp := ts.do(http.MethodGet, "/webhooks/"+consumerID+"/messages?"+query, auth, nil)
	if resp.status != http.StatusOK {
		ts.t.Fatalf("list messages of %s?%s: status %d, body %s", consumerID, query, resp.status, resp.body)
	}
	var page consumerMessages
	decodeStrict(ts.t, resp.body, &page)
	return page
}

func (ts *testServer) getConsumer(auth, id string) webhookConsumer {
	ts.t.Helper()
	resp := ts.do(http.MethodGet, "/webhooks/"+id, auth, nil)
	if resp.status != http.StatusOK {
		ts.t.Fatalf("get consumer %s: status %d, body %s", id, resp.status, resp.body)
	}
	var c webhookConsumer
	decodeStrict(ts.t, resp.body, &c)
	return c
}

func (ts *testServer) secret(auth, consumerID string) secretResponse {
	ts.t.Helper()
	resp := ts.do(http.MethodGet, "/webhooks/"+consumerID+"/secret", auth, nil)
	if resp.status != http.StatusOK {
		ts.t.Fatalf("get secret of %s: status %d, body %s", consumerID, resp.status, resp.body)
	}
	var s secretResponse
	decodeStrict(ts.t, resp.body, &s)
	return s
}

// attemptAll claims every due delivery through the store and records, for each job, the
// attempt that outcome returns, as the delivery engine would. It returns the number of
// jobs.
func (ts *testServer) attemptAll(outcome func(store.Job) store.AttemptResult) int {
	ts.t.Helper()
	ctx := context.Background()
	jobs, err := ts.store.ClaimDeliveries(ctx, store.ClaimRequest{Now: time.Now(), Limit: 1000, DefaultSlots: 1000, Lease: time.Minute})
	if err != nil {
		ts.t.Fatalf("claim deliveries: %v", err)
	}
	results := make([]store.AttemptResult, 0, len(jobs))
	for _, job := range jobs {
		results = append(results, outcome(job))
	}
	if err := ts.store.RecordAttempts(ctx, results); err != nil {
		ts.t.Fatalf("record attempts: %v", err)
	}
	return len(jobs)
}

// succeeded returns a successful attempt, for attemptAll.
func succeeded(job store.Job) store.AttemptResult {
	return store.AttemptResult{Job: job, AttemptedAt: time.Now(), Duration: 3 * time.Millisecond, StatusCode: http.StatusNoContent, Success: true}
}

// failedFinally returns a failed attempt that exhausts the retry schedule.
func failedFinally(job store.Job) store.AttemptResult {
	return store.AttemptResult{Job: job, AttemptedAt: time.Now(), Duration: 12500 * time.Microsecond, StatusCode: http.StatusInternalServerError,
		Error: "the consumer answered 500 Internal Server Error", ResponseBody: "database down"}
}

// failedWithRetry returns a failed attempt with a retry in an hour.
func failedWithRetry(job store.Job) store.AttemptResult {
	r := failedFinally(job)
	next := time.Now().Add(time.Hour)
	r.NextAttemptAt = &next
	return r
}

// released returns an attempt cut short by a shutdown, which leaves the delivery as it was.
func released(job store.Job) store.AttemptResult {
	return store.AttemptResult{Job: job, AttemptedAt: time.Now(), Released: true}
}

// expectInvalid checks that resp is a 400 whose validation errors are exactly want, in
// order, and returns the error body.
func expectInvalid(t *testing.T, resp response, want ...failure) errorMessage {
	t.Helper()
	msg := expectError(t, resp, http.StatusBadRequest)
	if msg.Validation == nil {
		t.Fatalf("validation = null, want %v", want)
	}
	var got []failure
	for _, it := range msg.Validation.Errors {
		got = append(got, failure{itemID: it.ItemID, validator: it.ValidatorName})
		if it.Message == "" {
			t.Errorf("validation item %s has no message", it.ItemID)
		}
	}
	if !slices.Equal(got, want) {
		t.Errorf("validation errors = %v, want %v; body %s", got, want, resp.body)
	}
	return msg
}

func deliveryConsumers(detail messageDetail) []string {
	ids := []string{}
	for _, d := range detail.Deliveries {
		ids = append(ids, d.WebhookID)
	}
	return ids
}

func resultIDs(page consumerMessages) []string {
	ids := []string{}
	for _, m := range page.Results {
		ids = append(ids, m.ID)
	}
	return ids
}

func subscribe(eventTypes ...string) map[string]any {
	return map[string]any{"url": "https://example.com/hook", "eventTypes": eventTypes}
}

func event(id, eventType string, payload any) map[string]any {
	e := map[string]any{"eventType": eventType, "payload": payload}
	if id != "" {
		e["id"] = id
	}
	return e
}

func TestPublishEvent(t *testing.T) {
	t.Parallel()
	forEachBackend(t, testPublishEvent)
}

func testPublishEvent(t *testing.T, b backend) {
	t.Parallel()
	ts := startServer(t, b, Config{})
	auth, _ := ts.newKey("acme", false)

	before := time.Now().UTC().Truncate(time.Millisecond)
	resp := ts.do(http.MethodPost, "/events", auth, `{"eventType": "company.created", "payload": { "companyId" : "c1", "n": [1, 2] }, "extra": true}`)
	after := time.Now().UTC()
	if resp.status != http.StatusAccepted {
		t.Fatalf("status = %d, want 202; body %s", resp.status, resp.body)
	}
	if ct := resp.header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type = %q, want application/json", ct)
	}

	var fields map[string]json.RawMessage
	if err := json.Unmarshal(resp.body, &fields); err != nil {
		t.Fatalf("decode %s: %v", resp.body, err)
	}
	if got := slices.Sorted(maps.Keys(fields)); !slices.Equal(got, []string{"eventType", "generatedDate", "id", "payload"}) {
		t.Errorf("envelope fields = %q, want eventType, generatedDate, id and payload", got)
	}

	var env envelope
	decodeStrict(t, resp.body, &env)
	if _, err := uuid.Parse(env.ID); err != nil {
		t.Errorf("id = %q, want a UUID chosen by hookd", env.ID)
	}
	if env.EventType != "company.created" {
		t.Errorf("eventType = %q, want company.created", env.EventType)
	}
	if got, want := string(env.Payload), `{"companyId":"c1","n":[1,2]}`; got != want {
		t.Errorf("payload = %s, want %s", got, want)
	}
	generated, err := time.Parse(time.RFC3339Nano, env.GeneratedDate)
	if err != nil {
		t.Fatalf("generatedDate %q is not RFC 3339: %v", env.GeneratedDate, err)
	}
	if !strings.HasSuffix(env.GeneratedDate, "Z") {
		t.Errorf("generatedDate = %q, want UTC", env.GeneratedDate)
	}
	if generated.Before(before) || generated.After(after) {
		t.Errorf("generatedDate = %s, want the time of publishing, between %s and %s", generated, before, after)
	}

	detail := ts.message(auth, env.ID)
	if detail.EventType != env.EventType || !detail.GeneratedDate.Equal(generated) || string(detail.Payload) != string(env.Payload) {
		t.Errorf("GET /messages/{id} = %+v, want the published envelope %+v", detail, env)
	}
	if detail.CreatedAt.Before(before) || detail.CreatedAt.After(after) {
		t.Errorf("createdAt = %s, want between %s and %s", detail.CreatedAt, before, after)
	}
	raw := ts.do(http.MethodGet, "/messages/"+env.ID, auth, nil)
	if !bytes.Contains(raw.body, []byte(`"deliveries":[]`)) {
		t.Errorf("message without consumers: body %s, want an empty deliveries array", raw.body)
	}

	t.Run("own id and date", func(t *testing.T) {
		env := ts.publish(auth, map[string]any{
			"id":            "orders/1042",
			"eventType":     "order.paid",
			"generatedDate": "2026-01-02T17:04:05.123456789+02:00",
			"payload":       map[string]any{},
		})
		if env.ID != "orders/1042" {
			t.Errorf("id = %q, want orders/1042", env.ID)
		}
		if want := "2026-01-02T15:04:05.123Z"; env.GeneratedDate != want {
			t.Errorf("generatedDate = %q, want %q (UTC, milliseconds)", env.GeneratedDate, want)
		}
		detail := ts.message(auth, "orders/1042")
		if got := detail.GeneratedDate.Format(time.RFC3339Nano); got != env.GeneratedDate {
			t.Errorf("stored generatedDate = %s, want the envelope's %s", got, env.GeneratedDate)
		}
	})
}

func TestPublishDuplicateID(t *testing.T) {
	t.Parallel()
	forEachBackend(t, testPublishDuplicateID)
}

func testPublishDuplicateID(t *testing.T, b backend) {
	t.Parallel()
	ts := startServer(t, b, Config{})
	auth, _ := ts.newKey("acme", false)
	consumer := ts.create(auth, subscribe("a", "b"))

	first := ts.do(http.MethodPost, "/events", auth, event("evt-1", "a", map[string]any{"v": 1}))
	if first.status != http.StatusAccepted {
		t.Fatalf("first publish: status %d, body %s", first.status, first.body)
	}
	second := ts.do(http.MethodPost, "/events", auth, event("evt-1", "b", map[string]any{"v": 2}))
	if second.status != http.StatusAccepted {
		t.Fatalf("second publish: status %d, body %s", second.status, second.body)
	}
	if !bytes.Equal(second.body, first.body) {
		t.Errorf("duplicate publish body = %s, want the first body %s", second.body, first.body)
	}

	detail := ts.message(auth, "evt-1")
	if got := string(detail.Payload); got != `{"v":1}` {
		t.Errorf("stored payload = %s, want the first one", got)
	}
	if got := deliveryConsumers(detail); !slices.Equal(got, []string{consumer.ID}) {
		t.Errorf("deliveries = %q, want one to %s", got, consumer.ID)
	}
	if got := resultIDs(ts.consumerMessages(auth, consumer.ID, "")); !slices.Equal(got, []string{"evt-1"}) {
		t.Errorf("consumer messages = %q, want evt-1 once", got)
	}
}

func TestPublishIdempotencyKey(t *testing.T) {
	t.Parallel()
	forEachBackend(t, testPublishIdempotencyKey)
}

func testPublishIdempotencyKey(t *testing.T, b backend) {
	t.Parallel()
	ts := startServer(t, b, Config{})
	auth, _ := ts.newKey("acme", false)
	consumer := ts.create(auth, subscribe("a", "b"))
	key := withIdempotencyKey("order-1042")

	first := ts.doWithHeader(http.MethodPost, "/events", auth, key, event("", "a", map[string]any{"v": 1}))
	if first.status != http.StatusAccepted {
		t.Fatalf("first publish: status %d, body %s", first.status, first.body)
	}
	second := ts.doWithHeader(http.MethodPost, "/events", auth, key, event("other-id", "b", map[string]any{"v": 2}))
	if second.status != http.StatusAccepted {
		t.Fatalf("repeated publish: status %d, body %s", second.status, second.body)
	}
	if !bytes.Equal(second.body, first.body) {
		t.Errorf("repeated publish body = %s, want the first body %s", second.body, first.body)
	}
	expectError(t, ts.do(http.MethodGet, "/messages/other-id", auth, nil), http.StatusNotFound)
	if got := ts.consumerMessages(auth, consumer.ID, ""); len(got.Results) != 1 {
		t.Errorf("consumer has %d messages, want 1", len(got.Results))
	}

	third := ts.doWithHeader(http.MethodPost, "/events", auth, withIdempotencyKey("order-1043"), event("", "a", map[string]any{"v": 1}))
	if third.status != http.StatusAccepted || bytes.Equal(third.body, first.body) {
		t.Errorf("publish with another key: status %d, body %s; want 202 and a new message", third.status, third.body)
	}

	t.Run("batch", func(t *testing.T) {
		batch := map[string]any{"events": []any{event("", "a", map[string]any{}), event("", "b", map[string]any{})}}
		first := ts.doWithHeader(http.MethodPost, "/events/batch", auth, withIdempotencyKey("batch-7"), batch)
		second := ts.doWithHeader(http.MethodPost, "/events/batch", auth, withIdempotencyKey("batch-7"), batch)
		if first.status != http.StatusAccepted || second.status != http.StatusAccepted {
			t.Fatalf("statuses = %d and %d, want 202", first.status, second.status)
		}
		if !bytes.Equal(second.body, first.body) {
			t.Errorf("repeated batch body = %s, want the first body %s", second.body, first.body)
		}
	})
}

func TestPublishBatch(t *testing.T) {
	t.Parallel()
	forEachBackend(t, testPublishBatch)
}

func testPublishBatch(t *testing.T, b backend) {
	t.Parallel()
	ts := startServer(t, b, Config{})
	auth, _ := ts.newKey("acme", false)
	consumer := ts.create(auth, subscribe("a", "b"))

	resp := ts.do(http.MethodPost, "/events/batch", auth, map[string]any{"events": []any{
		event("b-1", "a", map[string]any{"n": 1}),
		event("", "b", map[string]any{"n": 2}),
		event("b-3", "c", map[string]any{"n": 3}),
	}})
	if resp.status != http.StatusAccepted {
		t.Fatalf("status = %d, want 202; body %s", resp.status, resp.body)
	}
	var result eventBatchResult
	decodeStrict(t, resp.body, &result)
	if len(result.Results) != 3 {
		t.Fatalf("results = %d, want 3", len(result.Results))
	}

	wantDeliveries := []int{1, 1, 0}
	for i, raw := range result.Results {
		var env envelope
		decodeStrict(t, raw, &env)
		if got, want := string(env.Payload), fmt.Sprintf(`{"n":%d}`, i+1); got != want {
			t.Errorf("results[%d].payload = %s, want %s (the order of the request)", i, got, want)
		}
		detail := ts.message(auth, env.ID)
		if len(detail.Deliveries) != wantDeliveries[i] {
			t.Errorf("results[%d] has %d deliveries, want %d", i, len(detail.Deliveries), wantDeliveries[i])
		}
		switch i {
		case 0, 2:
			if want := fmt.Sprintf("b-%d", i+1); env.ID != want {
				t.Errorf("results[%d].id = %q, want %q", i, env.ID, want)
			}
		case 1:
			if _, err := uuid.Parse(env.ID); err != nil {
				t.Errorf("results[1].id = %q, want a UUID chosen by hookd", env.ID)
			}
		}
	}
	if got := ts.consumerMessages(auth, consumer.ID, ""); len(got.Results) != 2 {
		t.Errorf("consumer has %d messages, want 2", len(got.Results))
	}
}

func TestPublishBatchRejects(t *testing.T) {
	t.Parallel()
	forEachBackend(t, testPublishBatchRejects)
}

func testPublishBatchRejects(t *testing.T, b backend) {
	t.Parallel()
	ts := startServer(t, b, Config{})
	auth, _ := ts.newKey("acme", false)
	consumer := ts.create(auth, subscribe("a"))

	valid := event("kept-out", "a", map[string]any{})
	tooMany := make([]any, MaxBatchEvents+1)
	for i := range tooMany {
		tooMany[i] = event(fmt.Sprintf("many-%d", i), "a", map[string]any{})
	}
	huge := event("", "a", map[string]any{"pad": strings.Repeat("x", MaxEventBytes)})

	tests := []struct {
		name        string
		body        any
		want        []failure
		wantMessage string
	}{
		{"501 events", map[string]any{"events": tooMany}, []failure{{"events", "maxItems"}}, "501"},
		{"no events", map[string]any{"events": []any{}}, []failure{{"events", "minItems"}}, ""},
		{"events missing", map[string]any{}, []failure{{"events", "required"}}, ""},
		{"events not an array", map[string]any{"events": 5}, []failure{{"events", "type"}}, "events must be an array, not a JSON number."},
		{"missing eventType", map[string]any{"events": []any{valid, map[string]any{"payload": map[string]any{}}}},
			[]failure{{"events[1].eventType", "required"}}, "events[1].eventType is missing"},
		{"event not an object", map[string]any{"events": []any{valid, valid, 5}},
			[]failure{{"events[2]", "type"}}, "events[2] must be a JSON object."},
		{"id wrong type", map[string]any{"events": []any{map[string]any{"id": 5, "eventType": "a", "payload": map[string]any{}}}},
			[]failure{{"events[0].id", "type"}}, "events[0].id must be"},
		{"two bad events", map[string]any{"events": []any{event("", "a", []int{1}), valid, event("", " ", map[string]any{})}},
			[]failure{{"events[0].payload", "type"}, {"events[2].eventType", "minLength"}}, "2 invalid fields"},
		{"event over 256 KiB", map[string]any{"events": []any{valid, huge}}, []failure{{"events[1]", "maxLength"}}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			msg := expectInvalid(t, ts.do(http.MethodPost, "/events/batch", auth, tt.body), tt.want...)
			if !strings.Contains(msg.Error, tt.wantMessage) {
				t.Errorf("error = %q, want it to contain %q", msg.Error, tt.wantMessage)
			}
		})
	}

	// A rejected batch stores none of its events, not even the valid ones.
	expectError(t, ts.do(http.MethodGet, "/messages/kept-out", auth, nil), http.StatusNotFound)
	expectError(t, ts.do(http.MethodGet, "/messages/many-0", auth, nil), http.StatusNotFound)
	if got := ts.consumerMessages(auth, consumer.ID, ""); len(got.Results) != 0 {
		t.Errorf("rejected batches queued %d messages", len(got.Results))
	}
}

func TestPublishRejects(t *testing.T) {
	t.Parallel()
	forEachBackend(t, testPublishRejects)
}

func testPublishRejects(t *testing.T, b backend) {
	t.Parallel()
	ts := startServer(t, b, Config{})
	auth, _ := ts.newKey("acme", false)

	// Every case carries the id "rejected" unless the id is what it tests, so that the end
	// of the test can check that nothing was stored.
	withID := func(fields map[string]any) map[string]any {
		fields["id"] = "rejected"
		return fields
	}
	payload := map[string]any{"k": "v"}
	bodyOfSize := func(size int) string {
		head, tail := `{"id":"rejected","eventType":"a","payload":{"pad":"`, `"}}`
		return head + strings.Repeat("x", size-len(head)-len(tail)) + tail
	}

	tests := []struct {
		name   string
		header http.Header
		body   any
		want   []failure
	}{
		{"no body", nil, nil, []failure{{"body", "required"}}},
		{"malformed JSON", nil, `{"eventType":`, []failure{{"body", "json"}}},
		{"array body", nil, `[1]`, []failure{{"body", "type"}}},
		{"eventType missing", nil, withID(map[string]any{"payload": payload}), []failure{{"eventType", "required"}}},
		{"eventType empty", nil, withID(map[string]any{"eventType": "", "payload": payload}), []failure{{"eventType", "minLength"}}},
		{"eventType blank", nil, withID(map[string]any{"eventType": " \t", "payload": payload}), []failure{{"eventType", "minLength"}}},
		{"eventType 129 characters", nil, withID(map[string]any{"eventType": strings.Repeat("é", MaxEventTypeLen+1), "payload": payload}),
			[]failure{{"eventType", "maxLength"}}},
		{"eventType control character", nil, withID(map[string]any{"eventType": "company\ncreated", "payload": payload}),
			[]failure{{"eventType", "pattern"}}},
		{"eventType number", nil, withID(map[string]any{"eventType": 5, "payload": payload}), []failure{{"eventType", "type"}}},
		{"payload missing", nil, withID(map[string]any{"eventType": "a"}), []failure{{"payload", "required"}}},
		{"payload null", nil, withID(map[string]any{"eventType": "a", "payload": nil}), []failure{{"payload", "required"}}},
		{"payload array", nil, withID(map[string]any{"eventType": "a", "payload": []int{1}}), []failure{{"payload", "type"}}},
		{"payload string", nil, withID(map[string]any{"eventType": "a", "payload": "{}"}), []failure{{"payload", "type"}}},
		{"generatedDate without time", nil, withID(map[string]any{"eventType": "a", "payload": payload, "generatedDate": "2026-01-02"}),
			[]failure{{"generatedDate", "format"}}},
		{"generatedDate words", nil, withID(map[string]any{"eventType": "a", "payload": payload, "generatedDate": "yesterday"}),
			[]failure{{"generatedDate", "format"}}},
		{"id empty", nil, map[string]any{"id": "", "eventType": "a", "payload": payload}, []failure{{"id", "minLength"}}},
		{"id blank", nil, map[string]any{"id": "  ", "eventType": "a", "payload": payload}, []failure{{"id", "minLength"}}},
		{"id 129 bytes", nil, map[string]any{"id": strings.Repeat("é", 64) + "a", "eventType": "a", "payload": payload},
			[]failure{{"id", "maxLength"}}},
		{"id control character", nil, map[string]any{"id": "evt\x001", "eventType": "a", "payload": payload}, []failure{{"id", "pattern"}}},
		{"several fields", nil, map[string]any{"id": "", "generatedDate": "soon"},
			[]failure{{"eventType", "required"}, {"payload", "required"}, {"id", "minLength"}, {"generatedDate", "format"}}},
		{"body over 256 KiB", nil, bodyOfSize(MaxEventBytes + 1), []failure{{"body", "maxLength"}}},
		{"Idempotency-Key over 255 bytes", withIdempotencyKey(strings.Repeat("k", MaxIdempotencyKey+1)),
			withID(map[string]any{"eventType": "a", "payload": payload}), []failure{{idempotencyKeyName, "maxLength"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			msg := expectInvalid(t, ts.doWithHeader(http.MethodPost, "/events", auth, tt.header, tt.body), tt.want...)
			if msg.CanBeRetried != retryFalse {
				t.Errorf("canBeRetried = %q, want %q", msg.CanBeRetried, retryFalse)
			}
		})
	}
	expectError(t, ts.do(http.MethodGet, "/messages/rejected", auth, nil), http.StatusNotFound)

	// The limits themselves are accepted.
	accepts := []struct {
		name   string
		header http.Header
		body   any
	}{
		{"eventType 128 characters", nil, map[string]any{"eventType": strings.Repeat("é", MaxEventTypeLen), "payload": payload}},
		{"id 128 bytes", nil, map[string]any{"id": strings.Repeat("é", MaxEventIDLen/2), "eventType": "a", "payload": payload}},
		{"body of 256 KiB", nil, bodyOfSize(MaxEventBytes)},
		{"Idempotency-Key of 255 bytes", withIdempotencyKey(strings.Repeat("k", MaxIdempotencyKey)), map[string]any{"eventType": "a", "payload": payload}},
	}
	for _, tt := range accepts {
		t.Run(tt.name, func(t *testing.T) {
			resp := ts.doWithHeader(http.MethodPost, "/events", auth, tt.header, tt.body)
			if resp.status != http.StatusAccepted {
				t.Errorf("status = %d, want 202; body %.300s", resp.status, resp.body)
			}
		})
	}
}

func TestPublishFailure(t *testing.T) {
	t.Parallel()
	forEachBackend(t, testPublishFailure)
}

func testPublishFailure(t *testing.T, b backend) {
	t.Parallel()
	tests := []struct {
		name   string
		err    error
		status int
	}{
		{"store unavailable", fmt.Errorf("commit: %w", store.ErrUnavailable), http.StatusServiceUnavailable},
		{"unexpected error", errors.New("disk on fire"), http.StatusInternalServerError},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ts := startServer(t, b, Config{Publisher: failingPublisher{tt.err}})
			auth, _ := ts.newKey("acme", false)
			resp := ts.do(http.MethodPost, "/events", auth, event("", "a", map[string]any{}))
			msg := expectError(t, resp, tt.status)
			if strings.Contains(msg.Error, "disk on fire") {
				t.Errorf("error %q shows the internal cause", msg.Error)
			}
			if tt.status == http.StatusServiceUnavailable && resp.header.Get("Retry-After") == "" {
				t.Error("503 lacks Retry-After")
			}
		})
	}
}

type failingPublisher struct{ err error }

func (p failingPublisher) Publish(context.Context, []store.NewMessage) ([]store.PublishResult, error) {
	return nil, p.err
}

func TestFanOut(t *testing.T) {
	t.Parallel()
	forEachBackend(t, testFanOut)
}

func testFanOut(t *testing.T, b backend) {
	t.Parallel()
	ts := startServer(t, b, Config{})
	alice, _ := ts.newKey("alice", false)
	bob, _ := ts.newKey("bob", false)

	all := ts.create(alice, subscribe("company.created"))
	uk := ts.create(alice, map[string]any{"url": "https://example.com/uk", "eventTypes": []string{"company.created"}, "companyTags": []string{"region:uk"}})
	us := ts.create(alice, map[string]any{"url": "https://example.com/us", "eventTypes": []string{"company.created"}, "companyTags": []string{"region:us"}})
	other := ts.create(alice, subscribe("company.deleted"))
	ts.create(alice, map[string]any{"url": "https://example.com/off", "eventTypes": []string{"company.created"}, "disabled": true})
	gold := ts.create(alice, map[string]any{"url": "https://example.com/gold", "eventTypes": []string{"company.created"},
		"companyTags": []string{"tier:gold", "region:uk"}})
	ts.create(bob, subscribe("company.created"))

	tagged := func(tags map[string]any) map[string]any {
		return map[string]any{"referenceCompany": map[string]any{"id": "c1", "tags": tags}}
	}
	tests := []struct {
		name      string
		eventType string
		payload   map[string]any
		want      []string
	}{
		{"tag region:uk", "company.created", tagged(map[string]any{"region": "uk", "tier": 5}), []string{all.ID, uk.ID, gold.ID}},
		{"tag tier:gold", "company.created", tagged(map[string]any{"tier": "gold"}), []string{all.ID, gold.ID}},
		{"tags differ in case", "company.created", tagged(map[string]any{"region": "UK"}), []string{all.ID}},
		{"no tags", "company.created", map[string]any{"companyId": "c1"}, []string{all.ID}},
		{"other event type", "company.deleted", tagged(map[string]any{"region": "us"}), []string{other.ID}},
		{"event type differs in case", "Company.Created", map[string]any{}, []string{}},
		{"tag region:us", "company.created", tagged(map[string]any{"region": "us"}), []string{all.ID, us.ID}},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id := fmt.Sprintf("evt-%d", i)
			ts.publish(alice, event(id, tt.eventType, tt.payload))
			detail := ts.message(alice, id)
			if got := deliveryConsumers(detail); !slices.Equal(got, tt.want) {
				t.Errorf("deliveries to %q, want %q", got, tt.want)
			}
			for _, d := range detail.Deliveries {
				if d.Status != store.StatusSending || d.Attempts != 0 || d.NextAttemptAt == nil || d.LastAttemptAt != nil {
					t.Errorf("new delivery = %+v, want status sending, no failed attempts, due and never attempted", d)
				}
			}
			expectError(t, ts.do(http.MethodGet, "/messages/"+id, bob, nil), http.StatusNotFound)
		})
	}

	if got := resultIDs(ts.consumerMessages(alice, uk.ID, "")); !slices.Equal(got, []string{"evt-0"}) {
		t.Errorf("messages of the region:uk consumer = %q, want evt-0", got)
	}
}

func TestReadOnlyKeyExtensions(t *testing.T) {
	t.Parallel()
	forEachBackend(t, testReadOnlyKeyExtensions)
}

func testReadOnlyKeyExtensions(t *testing.T, b backend) {
	t.Parallel()
	ts := startServer(t, b, Config{})
	auth, _ := ts.newKey("acme", false)
	readOnly, _ := ts.newKey("acme", true)
	consumer := ts.create(auth, subscribe("a"))
	ts.publish(auth, event("m1", "a", map[string]any{}))
	secret := ts.secret(auth, consumer.ID)

	forbidden := []struct {
		method, path string
		body         any
	}{
		{http.MethodPost, "/events", event("m2", "a", map[string]any{})},
		{http.MethodPost, "/events/batch", map[string]any{"events": []any{event("m3", "a", map[string]any{})}}},
		{http.MethodPatch, "/webhooks/" + consumer.ID, map[string]any{"disabled": true}},
		{http.MethodPost, "/webhooks/" + consumer.ID + "/recover", map[string]any{"since": "2026-01-01T00:00:00Z"}},
		{http.MethodPost, "/messages/m1/resend", map[string]any{"webhookId": consumer.ID}},
		{http.MethodGet, "/webhooks/" + consumer.ID + "/secret", nil},
		{http.MethodPost, "/webhooks/" + consumer.ID + "/secret/rotate", nil},
	}
	for _, tt := range forbidden {
		t.Run(tt.method+" "+tt.path, func(t *testing.T) {
			msg := expectError(t, ts.do(tt.method, tt.path, readOnly, tt.body), http.StatusForbidden)
			if !strings.Contains(msg.Error, "read-only") {
				t.Errorf("error = %q, want it to say the key is read-only", msg.Error)
			}
		})
	}

	allowed := []string{
		"/webhooks/" + consumer.ID,
		"/webhooks/" + consumer.ID + "/messages",
		"/messages/m1",
		"/messages/m1/attempts",
	}
	for _, path := range allowed {
		t.Run("GET "+path, func(t *testing.T) {
			if resp := ts.do(http.MethodGet, path, readOnly, nil); resp.status != http.StatusOK {
				t.Errorf("status = %d, want 200; body %s", resp.status, resp.body)
			}
		})
	}

	// The rejected requests changed nothing.
	if got := ts.getConsumer(auth, consumer.ID); got.Disabled {
		t.Error("a read-only PATCH disabled the consumer")
	}
	if got := ts.secret(auth, consumer.ID); got.Key != secret.Key {
		t.Error("a read-only rotate changed the secret")
	}
	if got := resultIDs(ts.consumerMessages(auth, consumer.ID, "")); !slices.Equal(got, []string{"m1"}) {
		t.Errorf("consumer messages = %q, want only m1", got)
	}
}

func TestMessageTenantIsolation(t *testing.T) {
	t.Parallel()
	forEachBackend(t, testMessageTenantIsolation)
}

func testMessageTenantIsolation(t *testing.T, b backend) {
	t.Parallel()
	ts := startServer(t, b, Config{})
	alice, _ := ts.newKey("alice", false)
	bob, _ := ts.newKey("bob", false)
	aliceConsumer := ts.create(alice, subscribe("a"))
	bobConsumer := ts.create(bob, subscribe("a"))
	ts.publish(alice, event("m1", "a", map[string]any{"owner": "alice"}))

	for _, path := range []string{"/messages/m1", "/messages/m1/attempts"} {
		other := expectError(t, ts.do(http.MethodGet, path, bob, nil), http.StatusNotFound)
		missing := expectError(t, ts.do(http.MethodGet, strings.Replace(path, "m1", "m404", 1), bob, nil), http.StatusNotFound)
		if strings.ReplaceAll(other.Error, "m1", "m404") != missing.Error {
			t.Errorf("GET %s: errors differ for another client's message and a missing one:\n%s\n%s", path, other.Error, missing.Error)
		}
	}
	expectError(t, ts.do(http.MethodPost, "/messages/m1/resend", bob, map[string]any{"webhookId": aliceConsumer.ID}), http.StatusNotFound)
	expectError(t, ts.do(http.MethodPost, "/messages/m1/resend", bob, map[string]any{"webhookId": bobConsumer.ID}), http.StatusNotFound)

	// Event ids are unique per client, so bob may publish m1 too.
	bobEnv := ts.publish(bob, event("m1", "a", map[string]any{"owner": "bob"}))
	if got := string(bobEnv.Payload); got != `{"owner":"bob"}` {
		t.Errorf("bob's m1 payload = %s, want his own", got)
	}
	if got := string(ts.message(alice, "m1").Payload); got != `{"owner":"alice"}` {
		t.Errorf("alice's m1 payload = %s, want hers", got)
	}
	if got := deliveryConsumers(ts.message(bob, "m1")); !slices.Equal(got, []string{bobConsumer.ID}) {
		t.Errorf("bob's m1 went to %q, want only his consumer", got)
	}

	// Bob cannot reach alice's consumer through any operation.
	consumerPaths := []struct {
		method, path string
		body         any
	}{
		{http.MethodGet, "", nil},
		{http.MethodPatch, "", map[string]any{"disabled": true}},
		{http.MethodGet, "/messages", nil},
		{http.MethodPost, "/recover", map[string]any{"since": "2026-01-01T00:00:00Z"}},
		{http.MethodGet, "/secret", nil},
		{http.MethodPost, "/secret/rotate", nil},
	}
	for _, tt := range consumerPaths {
		expectError(t, ts.do(tt.method, "/webhooks/"+aliceConsumer.ID+tt.path, bob, tt.body), http.StatusNotFound)
	}
	if got := ts.getConsumer(alice, aliceConsumer.ID); got.Disabled {
		t.Error("bob's PATCH disabled alice's consumer")
	}
}

func TestGetConsumer(t *testing.T) {
	t.Parallel()
	forEachBackend(t, testGetConsumer)
}

func testGetConsumer(t *testing.T, b backend) {
	t.Parallel()
	ts := startServer(t, b, Config{})
	alice, _ := ts.newKey("alice", false)
	bob, _ := ts.newKey("bob", false)
	created := ts.create(alice, map[string]any{"url": "https://example.com/x", "eventTypes": []string{"a", "b"}, "companyTags": []string{"region:uk"}})

	got := ts.getConsumer(alice, created.ID)
	if !reflect.DeepEqual(got, created) {
		t.Errorf("GET = %+v, want the created consumer %+v", got, created)
	}
	if resp := ts.do(http.MethodGet, "/webhooks/"+created.ID, alice, nil); bytes.Contains(resp.body, []byte("disabledReason")) {
		t.Errorf("enabled consumer shows disabledReason: %s", resp.body)
	}
	if got := ts.getConsumer(alice, strings.ToUpper(created.ID)); got.ID != created.ID {
		t.Errorf("GET with an upper-case id = %s, want %s", got.ID, created.ID)
	}

	for _, id := range []string{"not-a-uuid", "8a210b68-6988-11ed-a1eb-0242ac120002"} {
		expectError(t, ts.do(http.MethodGet, "/webhooks/"+id, alice, nil), http.StatusNotFound)
	}
	expectError(t, ts.do(http.MethodGet, "/webhooks/"+created.ID, bob, nil), http.StatusNotFound)
}

func TestUpdateConsumer(t *testing.T) {
	t.Parallel()
	forEachBackend(t, testUpdateConsumer)
}

func testUpdateConsumer(t *testing.T, b backend) {
	t.Parallel()
	ts := startServer(t, b, Config{})
	auth, _ := ts.newKey("acme", false)

	start := map[string]any{"url": "https://example.com/old", "eventTypes": []string{"a"}, "companyTags": []string{"region:uk"}}
	tests := []struct {
		name   string
		start  map[string]any
		patch  any
		change func(c *webhookConsumer)
	}{
		{"empty object", start, map[string]any{}, func(c *webhookConsumer) {}},
		{"url", start, map[string]any{"url": "https://example.org/new"}, func(c *webhookConsumer) { c.URL = "https://example.org/new" }},
		{"eventTypes", start, map[string]any{"eventTypes": []string{"x", "y", "x"}}, func(c *webhookConsumer) { c.EventTypes = []string{"x", "y"} }},
		{"companyTags", start, map[string]any{"companyTags": []string{"tier:gold"}}, func(c *webhookConsumer) { c.CompanyTags = []string{"tier:gold"} }},
		{"companyTags null", start, `{"companyTags": null}`, func(c *webhookConsumer) { c.CompanyTags = nil }},
		{"disabled", start, map[string]any{"disabled": true}, func(c *webhookConsumer) { c.Disabled = true }},
		{"disabled null", map[string]any{"url": "https://example.com/old", "eventTypes": []string{"a"}, "disabled": true},
			`{"disabled": null}`, func(c *webhookConsumer) { c.Disabled = false }},
		{"every field", start, map[string]any{"url": "https://example.org/all", "eventTypes": []string{"z"}, "companyTags": nil, "disabled": true},
			func(c *webhookConsumer) {
				c.URL, c.EventTypes, c.CompanyTags, c.Disabled = "https://example.org/all", []string{"z"}, nil, true
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			created := ts.create(auth, tt.start)
			want := created
			tt.change(&want)

			resp := ts.do(http.MethodPatch, "/webhooks/"+created.ID, auth, tt.patch)
			if resp.status != http.StatusOK {
				t.Fatalf("status = %d, want 200; body %s", resp.status, resp.body)
			}
			var got webhookConsumer
			decodeStrict(t, resp.body, &got)
			if !reflect.DeepEqual(got, want) {
				t.Errorf("PATCH response = %+v, want %+v", got, want)
			}
			if stored := ts.getConsumer(auth, created.ID); !reflect.DeepEqual(stored, want) {
				t.Errorf("GET after PATCH = %+v, want %+v", stored, want)
			}
		})
	}
}

func TestUpdateConsumerRejects(t *testing.T) {
	t.Parallel()
	forEachBackend(t, testUpdateConsumerRejects)
}

func testUpdateConsumerRejects(t *testing.T, b backend) {
	t.Parallel()
	ts := startServer(t, b, Config{})
	alice, _ := ts.newKey("alice", false)
	bob, _ := ts.newKey("bob", false)
	created := ts.create(alice, map[string]any{"url": "https://example.com/x", "eventTypes": []string{"a"}, "companyTags": []string{"region:uk"}})
	path := "/webhooks/" + created.ID

	tests := []struct {
		name string
		body any
		want []failure
	}{
		{"no body", nil, []failure{{"body", "required"}}},
		{"malformed JSON", `{"url":`, []failure{{"body", "json"}}},
		{"array body", `[]`, []failure{{"body", "type"}}},
		{"url null", `{"url": null}`, []failure{{"url", "required"}}},
		{"url empty", map[string]any{"url": ""}, []failure{{"url", "url"}}},
		{"url ftp", map[string]any{"url": "ftp://example.com/x"}, []failure{{"url", "url"}}},
		{"url number", map[string]any{"url": 5}, []failure{{"url", "type"}}},
		{"eventTypes empty", map[string]any{"eventTypes": []string{}}, []failure{{"eventTypes", "minItems"}}},
		{"eventTypes null", `{"eventTypes": null}`, []failure{{"eventTypes", "required"}}},
		{"eventTypes with a number", map[string]any{"eventTypes": []any{"a", 1}}, []failure{{"eventTypes", "type"}}},
		{"eventTypes with a blank", map[string]any{"eventTypes": []string{"a", " "}}, []failure{{"eventTypes[1]", "minLength"}}},
		{"companyTags without colon", map[string]any{"companyTags": []string{"uk"}}, []failure{{"companyTags[0]", "pattern"}}},
		{"companyTags string", map[string]any{"companyTags": "region:uk"}, []failure{{"companyTags", "type"}}},
		{"eleven companyTags", map[string]any{"companyTags": strings.Split("a:1 b:2 c:3 d:4 e:5 f:6 g:7 h:8 i:9 j:10 k:11", " ")},
			[]failure{{"companyTags", "maxItems"}}},
		{"disabled string", map[string]any{"disabled": "yes"}, []failure{{"disabled", "type"}}},
		{"two fields", `{"url": null, "eventTypes": [], "disabled": true}`, []failure{{"url", "required"}, {"eventTypes", "minItems"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			expectInvalid(t, ts.do(http.MethodPatch, path, alice, tt.body), tt.want...)
		})
	}
	if got := ts.getConsumer(alice, created.ID); !reflect.DeepEqual(got, created) {
		t.Errorf("after rejected patches, consumer = %+v, want it unchanged %+v", got, created)
	}

	for _, id := range []string{"not-a-uuid", "8a210b68-6988-11ed-a1eb-0242ac120002"} {
		expectError(t, ts.do(http.MethodPatch, "/webhooks/"+id, alice, map[string]any{"disabled": true}), http.StatusNotFound)
	}
	expectError(t, ts.do(http.MethodPatch, path, bob, map[string]any{"disabled": true}), http.StatusNotFound)
}

func TestEnableClearsDisabledReason(t *testing.T) {
	t.Parallel()
	forEachBackend(t, testEnableClearsDisabledReason)
}

func testEnableClearsDisabledReason(t *testing.T, b backend) {
	t.Parallel()
	var wakes atomic.Int32
	ts := startServer(t, b, Config{Wake: func() { wakes.Add(1) }})
	auth, _ := ts.newKey("acme", false)
	consumer := ts.create(auth, subscribe("a"))
	ts.publish(auth, event("m1", "a", map[string]any{}))

	const reason = "the consumer answered 410 Gone"
	n := ts.attemptAll(func(job store.Job) store.AttemptResult {
		r := failedFinally(job)
		r.StatusCode, r.Error, r.DisableConsumer = http.StatusGone, "the consumer answered 410 Gone", reason
		return r
	})
	if n != 1 {
		t.Fatalf("attempted %d deliveries, want 1", n)
	}

	disabled := ts.getConsumer(auth, consumer.ID)
	if !disabled.Disabled || disabled.DisabledReason != reason {
		t.Fatalf("after 410: disabled = %v, disabledReason = %q; want true and %q", disabled.Disabled, disabled.DisabledReason, reason)
	}
	d := ts.message(auth, "m1").Deliveries[0]
	if d.Status != store.StatusFailure || d.Attempts != 1 || d.NextAttemptAt != nil || d.LastAttemptAt == nil {
		t.Errorf("delivery after 410 = %+v, want failure after 1 failed attempt, no next attempt", d)
	}

	wakesBefore := wakes.Load()
	resp := ts.do(http.MethodPatch, "/webhooks/"+consumer.ID, auth, map[string]any{"disabled": false})
	if resp.status != http.StatusOK {
		t.Fatalf("enable: status %d, body %s", resp.status, resp.body)
	}
	if bytes.Contains(resp.body, []byte("disabledReason")) {
		t.Errorf("enabled consumer still shows disabledReason: %s", resp.body)
	}
	if got := ts.getConsumer(auth, consumer.ID); got.Disabled || got.DisabledReason != "" {
		t.Errorf("after enable: %+v, want enabled without a reason", got)
	}
	if wakes.Load() == wakesBefore {
		t.Error("enabling a consumer did not wake the delivery engine")
	}

	// A client disabling a consumer gives no reason, and does not wake the engine.
	wakesBefore = wakes.Load()
	if got := ts.do(http.MethodPatch, "/webhooks/"+consumer.ID, auth, map[string]any{"disabled": true}); bytes.Contains(got.body, []byte("disabledReason")) {
		t.Errorf("consumer disabled by a client shows disabledReason: %s", got.body)
	}
	if wakes.Load() != wakesBefore {
		t.Error("disabling a consumer woke the delivery engine")
	}
}

// publishSettled creates a consumer and publishes m0 to m4 to it, then records attempts so
// that m0 succeeded, m1 and m2 failed for good, m3 waits for a retry and m4 has had no
// attempt yet.
func publishSettled(t *testing.T, ts *testServer, auth string) webhookConsumer {
	t.Helper()
	consumer := ts.create(auth, subscribe("a"))
	for i := range 5 {
		ts.publish(auth, event(fmt.Sprintf("m%d", i), "a", map[string]any{"i": i}))
	}
	outcomes := map[string]func(store.Job) store.AttemptResult{
		"m0": succeeded, "m1": failedFinally, "m2": failedFinally, "m3": failedWithRetry, "m4": released,
	}
	n := ts.attemptAll(func(job store.Job) store.AttemptResult { return outcomes[job.Message.ID](job) })
	if n != 5 {
		t.Fatalf("attempted %d deliveries, want 5", n)
	}
	return consumer
}

func TestConsumerMessages(t *testing.T) {
	t.Parallel()
	forEachBackend(t, testConsumerMessages)
}

func testConsumerMessages(t *testing.T, b backend) {
	t.Parallel()
	ts := startServer(t, b, Config{})
	auth, _ := ts.newKey("acme", false)
	before := time.Now()
	consumer := publishSettled(t, ts, auth)

	page := ts.consumerMessages(auth, consumer.ID, "")
	if got, want := resultIDs(page), []string{"m4", "m3", "m2", "m1", "m0"}; !slices.Equal(got, want) {
		t.Fatalf("messages = %q, want %q (newest first)", got, want)
	}
	if page.Next != nil {
		t.Errorf("next = %q, want null on the only page", *page.Next)
	}
	wantStates := map[string]struct {
		status   store.DeliveryStatus
		failed   int
		hasNext  bool
		attempts bool
	}{
		"m0": {store.StatusSuccess, 0, false, true},
		"m1": {store.StatusFailure, 1, false, true},
		"m2": {store.StatusFailure, 1, false, true},
		"m3": {store.StatusAttempting, 1, true, true},
		"m4": {store.StatusSending, 0, true, false},
	}
	for _, m := range page.Results {
		want := wantStates[m.ID]
		if m.Status != want.status || m.Attempts != want.failed || (m.NextAttemptAt != nil) != want.hasNext || (m.LastAttemptAt != nil) != want.attempts {
			t.Errorf("%s = status %s, failedAttempts %d, nextAttemptAt %v, lastAttemptAt %v; want %+v",
				m.ID, m.Status, m.Attempts, m.NextAttemptAt, m.LastAttemptAt, want)
		}
		if m.EventType != "a" || m.CreatedAt.Before(before.Truncate(time.Millisecond)) {
			t.Errorf("%s: eventType %q, createdAt %s", m.ID, m.EventType, m.CreatedAt)
		}
	}

	t.Run("status filter", func(t *testing.T) {
		for status, want := range map[string][]string{
			"success":    {"m0"},
			"failure":    {"m2", "m1"},
			"attempting": {"m3"},
			"sending":    {"m4"},
		} {
			if got := resultIDs(ts.consumerMessages(auth, consumer.ID, "status="+status)); !slices.Equal(got, want) {
				t.Errorf("status=%s: %q, want %q", status, got, want)
			}
		}
	})

	t.Run("time filter", func(t *testing.T) {
		hourAgo := url.QueryEscape(time.Now().Add(-time.Hour).Format(time.RFC3339))
		inHour := url.QueryEscape(time.Now().Add(time.Hour).Format(time.RFC3339Nano))
		for query, want := range map[string]int{
			"since=" + hourAgo:                      5,
			"since=" + inHour:                       0,
			"until=" + hourAgo:                      0,
			"since=" + hourAgo + "&until=" + inHour: 5,
		} {
			if got := ts.consumerMessages(auth, consumer.ID, query); len(got.Results) != want {
				t.Errorf("%s: %d messages, want %d", query, len(got.Results), want)
			}
		}
	})

	t.Run("paging", func(t *testing.T) {
		var pages [][]string
		query := "limit=2"
		for range 5 {
			page := ts.consumerMessages(auth, consumer.ID, query)
			pages = append(pages, resultIDs(page))
			if page.Next == nil {
				break
			}
			query = "limit=2&cursor=" + url.QueryEscape(*page.Next)
		}
		want := [][]string{{"m4", "m3"}, {"m2", "m1"}, {"m0"}}
		if !reflect.DeepEqual(pages, want) {
			t.Errorf("pages = %q, want %q", pages, want)
		}

		filtered := ts.consumerMessages(auth, consumer.ID, "status=failure&limit=1")
		if got := resultIDs(filtered); !slices.Equal(got, []string{"m2"}) || filtered.Next == nil {
			t.Fatalf("first failure page = %q, next %v; want m2 and a cursor", got, filtered.Next)
		}
		last := ts.consumerMessages(auth, consumer.ID, "status=failure&limit=1&cursor="+*filtered.Next)
		if got := resultIDs(last); !slices.Equal(got, []string{"m1"}) {
			t.Errorf("second failure page = %q, want m1", got)
		}

		exact := ts.do(http.MethodGet, "/webhooks/"+consumer.ID+"/messages?limit=5", auth, nil)
		if !bytes.Contains(exact.body, []byte(`"next":null`)) {
			t.Errorf("a page holding every message: body %s, want next null", exact.body)
		}
	})

	t.Run("invalid query", func(t *testing.T) {
		tests := []struct {
			query string
			want  []failure
		}{
			{"status=pending", []failure{{"status", "enum"}}},
			{"status=SUCCESS", []failure{{"status", "enum"}}},
			{"limit=0", []failure{{"limit", "range"}}},
			{"limit=251", []failure{{"limit", "range"}}},
			{"limit=ten", []failure{{"limit", "range"}}},
			{"cursor=0", []failure{{"cursor", "format"}}},
			{"cursor=abc", []failure{{"cursor", "format"}}},
			{"cursor=-4", []failure{{"cursor", "format"}}},
			{"since=yesterday", []failure{{"since", "format"}}},
			{"until=2026-01-02", []failure{{"until", "format"}}},
			{"status=x&limit=0&cursor=x", []failure{{"status", "enum"}, {"limit", "range"}, {"cursor", "format"}}},
		}
		for _, tt := range tests {
			t.Run(tt.query, func(t *testing.T) {
				expectInvalid(t, ts.do(http.MethodGet, "/webhooks/"+consumer.ID+"/messages?"+tt.query, auth, nil), tt.want...)
			})
		}
	})

	t.Run("unknown consumer", func(t *testing.T) {
		for _, id := range []string{"not-a-uuid", "8a210b68-6988-11ed-a1eb-0242ac120002"} {
			expectError(t, ts.do(http.MethodGet, "/webhooks/"+id+"/messages", auth, nil), http.StatusNotFound)
		}
	})
}

func TestMessageAttempts(t *testing.T) {
	t.Parallel()
	forEachBackend(t, testMessageAttempts)
}

func testMessageAttempts(t *testing.T, b backend) {
	t.Parallel()
	ts := startServer(t, b, Config{})
	auth, _ := ts.newKey("acme", false)
	before := time.Now().Truncate(time.Millisecond)
	consumer := publishSettled(t, ts, auth)

	list := ts.attempts(auth, "m1")
	if len(list) != 1 {
		t.Fatalf("m1 has %d attempts, want 1", len(list))
	}
	a := list[0]
	if a.WebhookID != consumer.ID || a.StatusCode != http.StatusInternalServerError || a.Success ||
		a.Error != "the consumer answered 500 Internal Server Error" || a.ResponseBody != "database down" {
		t.Errorf("attempt = %+v, want the recorded failure", a)
	}
	if a.DurationMs != 12.5 {
		t.Errorf("durationMs = %v, want 12.5", a.DurationMs)
	}
	if a.AttemptedAt.Before(before) || a.AttemptedAt.After(time.Now()) {
		t.Errorf("attemptedAt = %s, want the time of the attempt", a.AttemptedAt)
	}
	if got := ts.attempts(auth, "m0"); len(got) != 1 || !got[0].Success || got[0].Error != "" {
		t.Errorf("m0 attempts = %+v, want one success without an error", got)
	}

	// An attempt cut short by a shutdown is not logged.
	resp := ts.do(http.MethodGet, "/messages/m4/attempts", auth, nil)
	if resp.status != http.StatusOK || !bytes.Contains(resp.body, []byte(`"results":[]`)) {
		t.Errorf("m4 attempts: status %d, body %s; want an empty list", resp.status, resp.body)
	}
	expectError(t, ts.do(http.MethodGet, "/messages/m404/attempts", auth, nil), http.StatusNotFound)
}

func TestRecoverMessages(t *testing.T) {
	t.Parallel()
	forEachBackend(t, testRecoverMessages)
}

func testRecoverMessages(t *testing.T, b backend) {
	t.Parallel()
	var wakes atomic.Int32
	ts := startServer(t, b, Config{Wake: func() { wakes.Add(1) }})
	auth, _ := ts.newKey("acme", false)
	bob, _ := ts.newKey("bob", false)
	consumer := publishSettled(t, ts, auth)
	path := "/webhooks/" + consumer.ID + "/recover"
	hourAgo := time.Now().Add(-time.Hour).UTC()

	tests := []struct {
		name string
		body any
		want []failure
	}{
		{"no body", nil, []failure{{"body", "required"}}},
		{"since missing", map[string]any{}, []failure{{"since", "required"}}},
		{"since null", `{"since": null}`, []failure{{"since", "required"}}},
		{"since not a date", map[string]any{"since": "yesterday"}, []failure{{"since", "format"}}},
		{"since number", map[string]any{"since": 5}, []failure{{"since", "type"}}},
		{"since in the future", map[string]any{"since": time.Now().Add(time.Hour).Format(time.RFC3339)}, []failure{{"since", "range"}}},
		{"until not a date", map[string]any{"since": hourAgo, "until": "later"}, []failure{{"until", "format"}}},
		{"until before since", map[string]any{"since": hourAgo, "until": hourAgo.Add(-time.Minute)}, []failure{{"until", "range"}}},
		{"until equals since", map[string]any{"since": hourAgo, "until": hourAgo}, []failure{{"until", "range"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			expectInvalid(t, ts.do(http.MethodPost, path, auth, tt.body), tt.want...)
		})
	}

	recoverSince := func(body any) int {
		t.Helper()
		resp := ts.do(http.MethodPost, path, auth, body)
		if resp.status != http.StatusAccepted {
			t.Fatalf("recover %v: status %d, body %s", body, resp.status, resp.body)
		}
		var result map[string]int
		decodeStrict(t, resp.body, &result)
		return result["recovered"]
	}

	// A range that ends before the messages were created recovers none.
	if n := recoverSince(map[string]any{"since": hourAgo, "until": hourAgo.Add(time.Minute)}); n != 0 {
		t.Errorf("recovered %d messages created before until, want 0", n)
	}
	if got := resultIDs(ts.consumerMessages(auth, consumer.ID, "status=failure")); len(got) != 2 {
		t.Fatalf("failed messages before recovery = %q, want m2 and m1", got)
	}

	wakesBefore := wakes.Load()
	if n := recoverSince(map[string]any{"since": hourAgo}); n != 2 {
		t.Errorf("recovered = %d, want the 2 failed messages", n)
	}
	if wakes.Load() == wakesBefore {
		t.Error("recovery did not wake the delivery engine")
	}
	for _, m := range ts.consumerMessages(auth, consumer.ID, "").Results {
		switch m.ID {
		case "m1", "m2":
			if m.Status != store.StatusSending || m.Attempts != 0 || m.NextAttemptAt == nil || m.LastAttemptAt == nil {
				t.Errorf("recovered %s = %+v, want sending, 0 failed attempts, due, last attempt kept", m.ID, m)
			}
		case "m0":
			if m.Status != store.StatusSuccess {
				t.Errorf("m0 status = %s, want success left alone", m.Status)
			}
		}
	}
	if n := recoverSince(map[string]any{"since": hourAgo}); n != 0 {
		t.Errorf("second recovery = %d, want 0", n)
	}

	for _, id := range []string{"not-a-uuid", "8a210b68-6988-11ed-a1eb-0242ac120002"} {
		expectError(t, ts.do(http.MethodPost, "/webhooks/"+id+"/recover", auth, map[string]any{"since": hourAgo}), http.StatusNotFound)
	}
	expectError(t, ts.do(http.MethodPost, path, bob, map[string]any{"since": hourAgo}), http.StatusNotFound)
}

func TestResendMessage(t *testing.T) {
	t.Parallel()
	forEachBackend(t, testResendMessage)
}

func testResendMessage(t *testing.T, b backend) {
	t.Parallel()
	var wakes atomic.Int32
	ts := startServer(t, b, Config{Wake: func() { wakes.Add(1) }})
	auth, _ := ts.newKey("acme", false)
	consumer := publishSettled(t, ts, auth)
	unsubscribed := ts.create(auth, subscribe("b"))

	tests := []struct {
		name string
		body any
		want []failure
	}{
		{"no body", nil, []failure{{"body", "required"}}},
		{"webhookId missing", map[string]any{}, []failure{{"webhookId", "required"}}},
		{"webhookId empty", map[string]any{"webhookId": ""}, []failure{{"webhookId", "required"}}},
		{"webhookId malformed", map[string]any{"webhookId": "consumer-1"}, []failure{{"webhookId", "format"}}},
		{"webhookId number", map[string]any{"webhookId": 5}, []failure{{"webhookId", "type"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			expectInvalid(t, ts.do(http.MethodPost, "/messages/m1/resend", auth, tt.body), tt.want...)
		})
	}

	// A message is resent only to a consumer it was queued for.
	expectError(t, ts.do(http.MethodPost, "/messages/m1/resend", auth, map[string]any{"webhookId": unsubscribed.ID}), http.StatusNotFound)
	expectError(t, ts.do(http.MethodPost, "/messages/m404/resend", auth, map[string]any{"webhookId": consumer.ID}), http.StatusNotFound)

	for _, id := range []string{"m1", "m0"} {
		wakesBefore := wakes.Load()
		resp := ts.do(http.MethodPost, "/messages/"+id+"/resend", auth, map[string]any{"webhookId": strings.ToUpper(consumer.ID)})
		if resp.status != http.StatusAccepted {
			t.Fatalf("resend %s: status %d, body %s", id, resp.status, resp.body)
		}
		var got map[string]string
		decodeStrict(t, resp.body, &got)
		if want := map[string]string{"id": id, "webhookId": consumer.ID, "status": "sending"}; !reflect.DeepEqual(got, want) {
			t.Errorf("resend %s body = %v, want %v", id, got, want)
		}
		if wakes.Load() == wakesBefore {
			t.Errorf("resend %s did not wake the delivery engine", id)
		}

		d := ts.message(auth, id).Deliveries[0]
		if d.Status != store.StatusSending || d.Attempts != 0 || d.NextAttemptAt == nil {
			t.Errorf("%s after resend = %+v, want sending, 0 failed attempts and due", id, d)
		}
		if got := ts.attempts(auth, id); len(got) != 1 {
			t.Errorf("%s has %d attempts after resend, want the earlier one kept", id, len(got))
		}
	}
}

func TestConsumerSecret(t *testing.T) {
	t.Parallel()
	forEachBackend(t, testConsumerSecret)
}

func testConsumerSecret(t *testing.T, b backend) {
	t.Parallel()
	ts := startServer(t, b, Config{SecretOverlap: time.Hour})
	alice, _ := ts.newKey("alice", false)
	bob, _ := ts.newKey("bob", false)
	consumer := ts.create(alice, subscribe("a"))
	second := ts.create(alice, subscribe("a"))
	ctx := context.Background()

	resp := ts.do(http.MethodGet, "/webhooks/"+consumer.ID+"/secret", alice, nil)
	if resp.status != http.StatusOK {
		t.Fatalf("get secret: status %d, body %s", resp.status, resp.body)
	}
	if bytes.Contains(resp.body, []byte("previousKeyExpiresAt")) {
		t.Errorf("secret before any rotation: %s, want no previousKeyExpiresAt", resp.body)
	}
	var original secretResponse
	decodeStrict(t, resp.body, &original)
	if !strings.HasPrefix(original.Key, signature.SecretPrefix) {
		t.Errorf("key = %q, want the prefix %s", original.Key, signature.SecretPrefix)
	}
	if _, err := signature.ParseSecret(original.Key); err != nil {
		t.Errorf("key does not parse: %v", err)
	}
	if got := ts.secret(alice, consumer.ID); got.Key != original.Key {
		t.Error("two reads returned different secrets")
	}
	if got := ts.secret(alice, second.ID); got.Key == original.Key {
		t.Error("two consumers share a secret")
	}

	before := time.Now().Truncate(time.Millisecond)
	resp = ts.do(http.MethodPost, "/webhooks/"+consumer.ID+"/secret/rotate", alice, nil)
	after := time.Now()
	if resp.status != http.StatusOK {
		t.Fatalf("rotate: status %d, body %s", resp.status, resp.body)
	}
	var rotated secretResponse
	decodeStrict(t, resp.body, &rotated)
	if rotated.Key == original.Key || !strings.HasPrefix(rotated.Key, signature.SecretPrefix) {
		t.Errorf("rotated key = %q, want a new whsec_ key", rotated.Key)
	}
	if exp := rotated.PreviousKeyExpiresAt; exp == nil || exp.Before(before.Add(time.Hour)) || exp.After(after.Add(time.Hour)) {
		t.Errorf("previousKeyExpiresAt = %v, want one overlap (1h) after the rotation", exp)
	}
	if got := ts.secret(alice, consumer.ID); got.Key != rotated.Key || got.PreviousKeyExpiresAt == nil || !got.PreviousKeyExpiresAt.Equal(*rotated.PreviousKeyExpiresAt) {
		t.Errorf("secret after rotation = %+v, want %+v", got, rotated)
	}

	// The store keeps the old secret, which signs deliveries during the overlap.
	stored, err := ts.store.GetConsumer(ctx, clientID(t, ts, "alice"), consumer.ID)
	if err != nil {
		t.Fatal(err)
	}
	if stored.Secret.String() != rotated.Key || stored.PreviousSecret.String() != original.Key {
		t.Error("the store does not hold the new secret with the old one as the previous secret")
	}

	for _, path := range []string{"/secret", "/secret/rotate"} {
		method := http.MethodGet
		if path == "/secret/rotate" {
			method = http.MethodPost
		}
		expectError(t, ts.do(method, "/webhooks/"+consumer.ID+path, bob, nil), http.StatusNotFound)
		expectError(t, ts.do(method, "/webhooks/not-a-uuid"+path, alice, nil), http.StatusNotFound)
		expectError(t, ts.do(method, "/webhooks/8a210b68-6988-11ed-a1eb-0242ac120002"+path, alice, nil), http.StatusNotFound)
	}
	if got := ts.secret(alice, consumer.ID); got.Key != rotated.Key {
		t.Error("bob's rotate changed alice's secret")
	}
}

func TestSecretOverlapEnds(t *testing.T) {
	t.Parallel()
	forEachBackend(t, testSecretOverlapEnds)
}

func testSecretOverlapEnds(t *testing.T, b backend) {
	t.Parallel()
	ts := startServer(t, b, Config{SecretOverlap: 50 * time.Millisecond})
	auth, _ := ts.newKey("acme", false)
	consumer := ts.create(auth, subscribe("a"))

	if resp := ts.do(http.MethodPost, "/webhooks/"+consumer.ID+"/secret/rotate", auth, nil); resp.status != http.StatusOK {
		t.Fatalf("rotate: status %d, body %s", resp.status, resp.body)
	}
	waitFor(t, "previousKeyExpiresAt to disappear", func() bool {
		resp := ts.do(http.MethodGet, "/webhooks/"+consumer.ID+"/secret", auth, nil)
		return resp.status == http.StatusOK && !bytes.Contains(resp.body, []byte("previousKeyExpiresAt"))
	})
}

func TestCheckURLHook(t *testing.T) {
	t.Parallel()
	forEachBackend(t, testCheckURLHook)
}

func testCheckURLHook(t *testing.T, b backend) {
	t.Parallel()
	var calls atomic.Int32
	ts := startServer(t, b, Config{CheckURL: func(rawURL string) error {
		calls.Add(1)
		if strings.Contains(rawURL, "blocked.example") {
			return errors.New("the address 10.0.0.1 is private")
		}
		return nil
	}})
	auth, _ := ts.newKey("acme", false)

	msg := expectInvalid(t, ts.do(http.MethodPost, "/webhooks", auth, map[string]any{"url": "https://blocked.example/hook", "eventTypes": []string{"a"}}),
		failure{"url", "destination"})
	if !strings.Contains(msg.Error, "the address 10.0.0.1 is private") {
		t.Errorf("error = %q, want the check's reason", msg.Error)
	}
	if got := ts.list(auth); len(got) != 0 {
		t.Fatalf("a rejected create stored %d consumers", len(got))
	}

	created := ts.create(auth, map[string]any{"url": "https://allowed.example/hook", "eventTypes": []string{"a"}})
	path := "/webhooks/" + created.ID
	expectInvalid(t, ts.do(http.MethodPatch, path, auth, map[string]any{"url": "https://blocked.example/hook"}), failure{"url", "destination"})
	if got := ts.getConsumer(auth, created.ID); got.URL != "https://allowed.example/hook" {
		t.Errorf("url after a rejected PATCH = %q, want it unchanged", got.URL)
	}
	if resp := ts.do(http.MethodPatch, path, auth, map[string]any{"url": "https://allowed.example/v2"}); resp.status != http.StatusOK {
		t.Errorf("PATCH to an allowed URL: status %d, body %s", resp.status, resp.body)
	}

	// The check runs only on a valid URL that the request sets.
	callsBefore := calls.Load()
	if resp := ts.do(http.MethodPatch, path, auth, map[string]any{"disabled": true}); resp.status != http.StatusOK {
		t.Errorf("PATCH without url: status %d, body %s", resp.status, resp.body)
	}
	expectInvalid(t, ts.do(http.MethodPatch, path, auth, map[string]any{"url": "ftp://blocked.example/"}), failure{"url", "url"})
	if calls.Load() != callsBefore {
		t.Errorf("CheckURL ran %d times for requests without a valid url, want 0", calls.Load()-callsBefore)
	}
}

// TestOpenAPISchemaFields checks that the schemas of openapi.yaml list exactly the JSON
// fields of the Go types, and that a response schema requires every field that is always
// sent.
func TestOpenAPISchemaFields(t *testing.T) {
	var doc struct {
		Components struct {
			Schemas map[string]struct {
				Required   []string       `yaml:"required"`
				Properties map[string]any `yaml:"properties"`
			} `yaml:"schemas"`
		} `yaml:"components"`
	}
	if err := yaml.Unmarshal(OpenAPI, &doc); err != nil {
		t.Fatalf("parse openapi.yaml: %v", err)
	}

	tests := []struct {
		schema string
		value  any

		// response is true when the schema must require every field without omitempty.
		response bool
	}{
		{"WebhookConsumer", webhookConsumer{}, false}, // Codat marks every field optional
		{"WebhookConsumerPatch", consumerPatch{}, false},
		{"Event", eventInput{}, false},
		{"EventBatch", eventBatch{}, false},
		{"EventEnvelope", envelope{}, true},
		{"EventBatchResult", eventBatchResult{}, true},
		{"ConsumerMessage", consumerMessage{}, true},
		{"ConsumerMessages", consumerMessages{}, true},
		{"MessageDelivery", messageDelivery{}, true},
		{"MessageDetail", messageDetail{}, true},
		{"Attempt", attempt{}, true},
		{"MessageAttempts", attempts{}, true},
		{"WebhookSecret", secretResponse{}, true},
	}
	for _, tt := range tests {
		t.Run(tt.schema, func(t *testing.T) {
			schema, ok := doc.Components.Schemas[tt.schema]
			if !ok {
				t.Fatalf("openapi.yaml has no schema %s", tt.schema)
			}
			var fields, always []string
			typ := reflect.TypeOf(tt.value)
			for i := range typ.NumField() {
				name, opts, _ := strings.Cut(typ.Field(i).Tag.Get("json"), ",")
				fields = append(fields, name)
				if !strings.Contains(opts, "omitempty") {
					always = append(always, name)
				}
			}
			documented := slices.Sorted(maps.Keys(schema.Properties))
			slices.Sort(fields)
			if !slices.Equal(documented, fields) {
				t.Errorf("properties = %q, want the JSON fields %q", documented, fields)
			}
			if tt.response {
				slices.Sort(always)
				required := slices.Sorted(slices.Values(schema.Required))
				if !slices.Equal(required, always) {
					t.Errorf("required = %q, want the fields always sent %q", required, always)
				}
			}
		})
	}
}

// eventBatchResult is the response body of POST /events/batch.
type eventBatchResult struct {
	Results []json.RawMessage `json:"results"`
}

// A batch body small enough for decodeBatch's one-pass decode gives the same messages and
// the same errors as the exact path, which the same body takes when padded with trailing
// white space past MaxEventBytes.
func TestDecodeBatchPathsAgree(t *testing.T) {
	now := time.Date(2026, 12, 5, 1, 2, 3, 0, time.UTC)
	bodies := map[string]string{
		"valid":            `{"events": [{"id": "a", "eventType": "t", "payload": {"x": 1}}, {"id": "b", "eventType": "t", "generatedDate": "2026-01-02T03:04:05Z", "payload": {"referenceCompany": {"tags": {"region": "eu"}}}}]}`,
		"white space":      `{"events": [{"id": "a", "eventType": "t", "payload": { "x" : [1, 2] } }]}`,
		"unknown fields":   `{"events": [{"id": "a", "eventType": "t", "payload": {}, "extra": true}], "more": 1}`,
		"missing fields":   `{"events": [{"id": "a"}, {"eventType": ""}]}`,
		"null event":       `{"events": [null, {"id": "a", "eventType": "t", "payload": {}}]}`,
		"wrong types":      `{"events": [{"id": "a", "eventType": 5, "payload": {}}, 7]}`,
		"payload array":    `{"events": [{"id": "a", "eventType": "t", "payload": [1]}]}`,
		"bad date":         `{"events": [{"id": "a", "eventType": "t", "generatedDate": "yesterday", "payload": {}}]}`,
		"no events":        `{"other": []}`,
		"empty events":     `{"events": []}`,
		"not an object":    `[1, 2]`,
		"invalid JSON":     `{"events": [`,
		"trailing garbage": `{"events": [{"id": "a", "eventType": "t", "payload": {}}]} x`,
	}
	for name, body := range bodies {
		t.Run(name, func(t *testing.T) {
			padded := body + strings.Repeat(" ", MaxEventBytes)
			fast, fastErr := decodeBatch([]byte(body), now)
			slow, slowErr := decodeBatch([]byte(padded), now)

			if (fastErr == nil) != (slowErr == nil) {
				t.Fatalf("errors differ: one-pass %v, exact %v", fastErr, slowErr)
			}
			if fastErr != nil {
				if !reflect.DeepEqual(fastErr.validation, slowErr.validation) {
					t.Errorf("validation differs:\none-pass %+v\nexact    %+v", fastErr.validation, slowErr.validation)
				}
				return
			}
			if !reflect.DeepEqual(fast, slow) {
				t.Errorf("messages differ:\none-pass %+v\nexact    %+v", fast, slow)
			}
		})
	}
}
