package api

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	// The pgx driver of database/sql reaches the PostgreSQL test databases in openRaw.
	_ "github.com/jackc/pgx/v5/stdlib"

	"github.com/hookd/hookd/internal/apikey"
	"github.com/hookd/hookd/internal/store"
	"github.com/hookd/hookd/internal/store/postgres"
	"github.com/hookd/hookd/internal/store/postgres/pgtest"
	"github.com/hookd/hookd/internal/store/sqlite"
)

// testServer is a Server listening on a loopback port, over a real store of one of the
// backends.
type testServer struct {
	t        *testing.T
	backend  backend
	location string
	store    store.Store
	server   *Server
	url      string
	logs     *syncBuffer
	done     chan error
}

// backend is a store implementation that the HTTP tests run against.
type backend struct {
	name string

	// newStorage returns the location of new empty storage: a temporary folder for SQLite,
	// the URL of a new database for PostgreSQL.
	newStorage func(t *testing.T) string

	// open opens a store on location. A positive lockTimeout bounds how long a write waits
	// for a lock that another connection holds, and zero means the backend's default.
	open func(ctx context.Context, location string, lockTimeout time.Duration) (store.Store, error)

	// rawDriver and rawSource are the database/sql driver name and data source name with
	// which a test opens the storage at a location directly, bypassing hookd's store.
	rawDriver string
	rawSource func(location string) string
}

var backends = []backend{
	{
		name:       "sqlite",
		newStorage: func(t *testing.T) string { return t.TempDir() },
		open: func(ctx context.Context, dir string, lockTimeout time.Duration) (store.Store, error) {
			return sqlite.Open(ctx, dir, sqlite.Options{BusyTimeout: lockTimeout})
		},
		rawDriver: "sqlite",
		rawSource: func(dir string) string {
			return "file:" + filepath.Join(dir, sqlite.FileName) + "?_busy_timeout=5000"
		},
	},
	{
		name: "postgres",
		// pgtest skips the test without HOOKD_TEST_DATABASE_URL, or fails it when
		// HOOKD_REQUIRE_POSTGRES is 1.
		newStorage: func(t *testing.T) string { return pgtest.NewDatabase(t) },
		open: func(ctx context.Context, databaseURL string, lockTimeout time.Duration) (store.Store, error) {
			return postgres.Open(ctx, databaseURL, postgres.Options{LockTimeout: lockTimeout})
		},
		rawDriver: "pgx",
		rawSource: func(databaseURL string) string { return databaseURL },
	},
}

// forEachBackend runs test once per backend, each time in a subtest named after the
// backend.
func forEachBackend(t *testing.T, test func(t *testing.T, b backend)) {
	t.Helper()
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) { test(t, b) })
	}
}

type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// startServer starts a server on a new store of backend b.
func startServer(t *testing.T, b backend, cfg Config) *testServer {
	t.Helper()
	return startServerOn(t, b, b.newStorage(t), cfg, 0)
}

// startServerOn starts a server on a store of backend b at location, which may hold the
// data of an earlier server. lockTimeout is passed to backend.open.
func startServerOn(t *testing.T, b backend, location string, cfg Config, lockTimeout time.Duration) *testServer {
	t.Helper()
	st, err := b.open(context.Background(), location, lockTimeout)
	if err != nil {
		t.Fatalf("open %s store: %v", b.name, err)
	}
	ts := &testServer{t: t, backend: b, location: location, store: st, logs: &syncBuffer{}, done: make(chan error, 1)}
	cfg.Store = st
	cfg.Logger = slog.New(slog.NewJSONHandler(ts.logs, nil))
	ts.server = New(cfg)

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	ts.url = "http://" + ln.Addr().String()
	done := ts.done
	go func() { done <- ts.server.Serve(ln) }()
	t.Cleanup(ts.stop)
	return ts
}

// stop shuts the server down and closes its store. It may be called more than once.
func (ts *testServer) stop() {
	if ts.done == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := ts.server.Shutdown(ctx); err != nil {
		ts.t.Errorf("shutdown: %v", err)
	}
	if err := <-ts.done; err != nil {
		ts.t.Errorf("serve: %v", err)
	}
	ts.done = nil
	ts.store.Close()
}

// newKey creates a key for the named client, creating the client when needed, and
// returns its Authorization header value.
func (ts *testServer) newKey(client string, readOnly bool) (header, keyID string) {
	ts.t.Helper()
	ctx := context.Background()
	c, _, err := ts.store.EnsureClient(ctx, client)
	if err != nil {
		ts.t.Fatalf("ensure client: %v", err)
	}
	k, err := apikey.New()
	if err != nil {
		ts.t.Fatal(err)
	}
	err = ts.store.CreateKey(ctx, store.APIKey{ID: k.ID, ClientID: c.ID, Hash: apikey.Hash(k.Raw), ReadOnly: readOnly})
	if err != nil {
		ts.t.Fatalf("create key: %v", err)
	}
	return apikey.Header(k.Raw), k.ID
}

type response struct {
	status int
	header http.Header
	body   []byte
}

func (ts *testServer) do(method, path, auth string, body any) response {
	ts.t.Helper()
	var reader io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		reader = strings.NewReader(b)
	case []byte:
		reader = bytes.NewReader(b)
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
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	if reader != nil {
		req.Header.Set("Content-Type", "application/json")
	}
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

func (ts *testServer) create(auth string, body any) webhookConsumer {
	ts.t.Helper()
	resp := ts.do(http.MethodPost, "/webhooks", auth, body)
	if resp.status != http.StatusCreated {
		ts.t.Fatalf("create: status %d, body %s", resp.status, resp.body)
	}
	var c webhookConsumer
	decodeStrict(ts.t, resp.body, &c)
	return c
}

func (ts *testServer) list(auth string) []webhookConsumer {
	ts.t.Helper()
	resp := ts.do(http.MethodGet, "/webhooks", auth, nil)
	if resp.status != http.StatusOK {
		ts.t.Fatalf("list: status %d, body %s", resp.status, resp.body)
	}
	var list webhookConsumers
	decodeStrict(ts.t, resp.body, &list)
	return list.Results
}

func decodeStrict(t *testing.T, body []byte, v any) {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		t.Fatalf("decode %s: %v", body, err)
	}
}

// expectError checks that resp is an ErrorMessage with the given status, and returns it.
func expectError(t *testing.T, resp response, status int) errorMessage {
	t.Helper()
	if resp.status != status {
		t.Fatalf("status = %d, want %d; body %s", resp.status, status, resp.body)
	}
	if ct := resp.header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Errorf("Content-Type = %q, want application/json", ct)
	}

	// Every field of the ErrorMessage schema is present, and canBeRetried is a string.
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(resp.body, &raw); err != nil {
		t.Fatalf("decode error body %s: %v", resp.body, err)
	}
	for _, field := range []string{"statusCode", "service", "error", "correlationId", "validation", "canBeRetried", "detailedErrorCode"} {
		if _, ok := raw[field]; !ok {
			t.Errorf("error body lacks %q: %s", field, resp.body)
		}
	}
	if s := string(raw["canBeRetried"]); !strings.HasPrefix(s, `"`) {
		t.Errorf("canBeRetried = %s, want a JSON string", s)
	}

	var msg errorMessage
	decodeStrict(t, resp.body, &msg)
	if msg.StatusCode != status {
		t.Errorf("statusCode = %d, want %d", msg.StatusCode, status)
	}
	if msg.Error == "" {
		t.Error("error message is empty")
	}
	if len(msg.CorrelationID) != 32 {
		t.Errorf("correlationId = %q, want 32 hex digits", msg.CorrelationID)
	}
	if got := resp.header.Get("X-Correlation-Id"); got != msg.CorrelationID {
		t.Errorf("X-Correlation-Id = %q, want the body's %q", got, msg.CorrelationID)
	}
	return msg
}

var validPrototype = map[string]any{
	"url":        "https://example.com/webhook-consumer",
	"eventTypes": []string{"DataSyncCompleted", "Dataset data changed"},
}

func TestConsumerLifecycle(t *testing.T) {
	forEachBackend(t, testConsumerLifecycle)
}

func testConsumerLifecycle(t *testing.T, b backend) {
	ts := startServer(t, b, Config{})
	auth, _ := ts.newKey("acme", false)

	if got := ts.list(auth); len(got) != 0 {
		t.Fatalf("new client lists %d consumers, want 0", len(got))
	}

	created := ts.create(auth, map[string]any{
		"url":         "https://example.com/hook?x=1",
		"eventTypes":  []string{"company.created", "read.completed", "company.created"},
		"companyTags": []string{"region:uk", "tier:gold"},
		"disabled":    true,
		"unknown":     "ignored",
	})
	if created.ID == "" || created.URL != "https://example.com/hook?x=1" || !created.Disabled {
		t.Errorf("created = %+v", created)
	}
	if got, want := strings.Join(created.EventTypes, ","), "company.created,read.completed"; got != want {
		t.Errorf("eventTypes = %s, want %s (duplicates removed, order kept)", got, want)
	}
	if got, want := strings.Join(created.CompanyTags, ","), "region:uk,tier:gold"; got != want {
		t.Errorf("companyTags = %s, want %s", got, want)
	}

	second := ts.create(auth, validPrototype)
	if second.Disabled || second.CompanyTags != nil {
		t.Errorf("defaults: disabled = %v, companyTags = %v; want false and null", second.Disabled, second.CompanyTags)
	}

	list := ts.list(auth)
	if len(list) != 2 || list[0].ID != created.ID || list[1].ID != second.ID {
		t.Fatalf("list = %+v, want the two consumers in creation order", list)
	}

	resp := ts.do(http.MethodDelete, "/webhooks/"+created.ID, auth, nil)
	if resp.status != http.StatusNoContent || len(resp.body) != 0 {
		t.Fatalf("delete: status %d, body %q; want 204 and no body", resp.status, resp.body)
	}
	if list := ts.list(auth); len(list) != 1 || list[0].ID != second.ID {
		t.Errorf("list after delete = %+v", list)
	}
	expectError(t, ts.do(http.MethodDelete, "/webhooks/"+created.ID, auth, nil), http.StatusNotFound)
}

func TestCreateIdempotencyKey(t *testing.T) {
	forEachBackend(t, testCreateIdempotencyKey)
}

func testCreateIdempotencyKey(t *testing.T, b backend) {
	ts := startServer(t, b, Config{})
	auth, _ := ts.newKey("acme", false)

	send := func(key string) response {
		t.Helper()
		body, _ := json.Marshal(validPrototype)
		req, _ := http.NewRequest(http.MethodPost, ts.url+"/webhooks", bytes.NewReader(body))
		req.Header.Set("Authorization", auth)
		req.Header.Set("Idempotency-Key", key)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		data, _ := io.ReadAll(resp.Body)
		return response{status: resp.StatusCode, header: resp.Header, body: data}
	}

	first, again := send("create-42"), send("create-42")
	if first.status != http.StatusCreated || again.status != http.StatusCreated {
		t.Fatalf("statuses = %d, %d; want 201 twice", first.status, again.status)
	}
	if !bytes.Equal(first.body, again.body) {
		t.Errorf("repeated create answered %s, want the first answer %s", again.body, first.body)
	}
	if got := ts.list(auth); len(got) != 1 {
		t.Errorf("two creates with one key left %d consumers, want 1", len(got))
	}

	send("create-43")
	if got := ts.list(auth); len(got) != 2 {
		t.Errorf("a create with a new key left %d consumers, want 2", len(got))
	}
	expectError(t, send(strings.Repeat("k", 256)), http.StatusBadRequest)
}

func TestResponseJSONShape(t *testing.T) {
	forEachBackend(t, testResponseJSONShape)
}

func testResponseJSONShape(t *testing.T, b backend) {
	ts := startServer(t, b, Config{})
	auth, _ := ts.newKey("acme", false)
	ts.create(auth, map[string]any{"url": "http://127.0.0.1:9/x", "eventTypes": []string{"a"}, "disabled": nil})

	resp := ts.do(http.MethodGet, "/webhooks", auth, nil)
	if ct := resp.header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type = %q", ct)
	}
	var raw struct {
		Results []map[string]json.RawMessage `json:"results"`
	}
	if err := json.Unmarshal(resp.body, &raw); err != nil {
		t.Fatal(err)
	}
	c := raw.Results[0]
	if got := string(c["eventTypes"]); got != `["a"]` {
		t.Errorf("eventTypes = %s", got)
	}
	if got := string(c["companyTags"]); got != "null" {
		t.Errorf("companyTags = %s, want null", got)
	}
	if got := string(c["disabled"]); got != "false" {
		t.Errorf("disabled = %s, want false for null input", got)
	}
}

func TestValidationOverHTTP(t *testing.T) {
	forEachBackend(t, testValidationOverHTTP)
}

func testValidationOverHTTP(t *testing.T, b backend) {
	ts := startServer(t, b, Config{})
	auth, _ := ts.newKey("acme", false)

	tests := []struct {
		name   string
		body   any
		itemID string
	}{
		{"no body", nil, "body"},
		{"malformed JSON", `{"url":`, "body"},
		{"missing url", map[string]any{"eventTypes": []string{"a"}}, "url"},
		{"relative url", map[string]any{"url": "/hook", "eventTypes": []string{"a"}}, "url"},
		{"ftp url", map[string]any{"url": "ftp://example.com/x", "eventTypes": []string{"a"}}, "url"},
		{"user info", map[string]any{"url": "https://user:pw@example.com/", "eventTypes": []string{"a"}}, "url"},
		{"missing eventTypes", map[string]any{"url": "https://example.com/"}, "eventTypes"},
		{"empty eventTypes", map[string]any{"url": "https://example.com/", "eventTypes": []string{}}, "eventTypes"},
		{"empty event type", map[string]any{"url": "https://example.com/", "eventTypes": []string{""}}, "eventTypes[0]"},
		{"long event type", map[string]any{"url": "https://example.com/", "eventTypes": []string{strings.Repeat("e", 129)}}, "eventTypes[0]"},
		{"eleven tags", map[string]any{"url": "https://example.com/", "eventTypes": []string{"a"},
			"companyTags": strings.Split("a:1 b:2 c:3 d:4 e:5 f:6 g:7 h:8 i:9 j:10 k:11", " ")}, "companyTags"},
		{"tag without colon", map[string]any{"url": "https://example.com/", "eventTypes": []string{"a"}, "companyTags": []string{"uk"}}, "companyTags[0]"},
		{"long tag", map[string]any{"url": "https://example.com/", "eventTypes": []string{"a"}, "companyTags": []string{"k:" + strings.Repeat("v", 127)}}, "companyTags[0]"},
		{"url wrong type", map[string]any{"url": 5, "eventTypes": []string{"a"}}, "url"},
		{"body over 64 KiB", `{"url":"https://example.com/","eventTypes":["a"],"pad":"` + strings.Repeat("x", MaxBodyBytes) + `"}`, "body"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			msg := expectError(t, ts.do(http.MethodPost, "/webhooks", auth, tt.body), http.StatusBadRequest)
			if msg.Validation == nil || len(msg.Validation.Errors) == 0 {
				t.Fatalf("validation = %+v, want errors", msg.Validation)
			}
			if got := msg.Validation.Errors[0].ItemID; got != tt.itemID {
				t.Errorf("itemId = %q, want %q", got, tt.itemID)
			}
			if msg.CanBeRetried != retryFalse {
				t.Errorf("canBeRetried = %q, want %q", msg.CanBeRetried, retryFalse)
			}
		})
	}

	if got := ts.list(auth); len(got) != 0 {
		t.Errorf("invalid creates left %d consumers", len(got))
	}
}

func TestAuthentication(t *testing.T) {
	forEachBackend(t, testAuthentication)
}

func testAuthentication(t *testing.T, b backend) {
	ts := startServer(t, b, Config{})
	auth, keyID := ts.newKey("acme", false)
	raw := decodeBasic(t, auth)

	tests := []struct {
		name   string
		header string
		status int
	}{
		{"missing header", "", http.StatusUnauthorized},
		{"bearer scheme", "Bearer " + raw, http.StatusUnauthorized},
		{"not base64", "Basic !!!", http.StatusUnauthorized},
		{"raw key without base64", "Basic " + raw, http.StatusUnauthorized},
		{"unknown key", mustNewHeader(t), http.StatusUnauthorized},
		{"wrong secret for a known id", apikey.Header(raw[:len(raw)-1] + flipHex(raw[len(raw)-1])), http.StatusUnauthorized},
		{"valid key", auth, http.StatusOK},
		{"valid key with trailing colon", apikey.Header(raw + ":"), http.StatusOK},
		{"lower-case scheme", "basic " + strings.TrimPrefix(auth, "Basic "), http.StatusOK},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp := ts.do(http.MethodGet, "/webhooks", tt.header, nil)
			if tt.status != http.StatusOK {
				expectError(t, resp, tt.status)
				if resp.header.Get("X-Rate-Limit-Limit") != "" {
					t.Error("unauthenticated response carries rate-limit headers")
				}
				return
			}
			if resp.status != tt.status {
				t.Fatalf("status = %d, want %d; body %s", resp.status, tt.status, resp.body)
			}
		})
	}

	t.Run("revoked key", func(t *testing.T) {
		if _, err := ts.store.RevokeKey(context.Background(), keyID); err != nil {
			t.Fatal(err)
		}
		msg := expectError(t, ts.do(http.MethodGet, "/webhooks", auth, nil), http.StatusUnauthorized)
		if !strings.Contains(msg.Error, "revoked") {
			t.Errorf("error = %q, want it to say the key was revoked", msg.Error)
		}
	})
}

func decodeBasic(t *testing.T, header string) string {
	t.Helper()
	raw, _, err := apikey.ParseHeader(header)
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

func mustNewHeader(t *testing.T) string {
	k, err := apikey.New()
	if err != nil {
		t.Fatal(err)
	}
	return apikey.Header(k.Raw)
}

func flipHex(c byte) string {
	if c == 'a' {
		return "b"
	}
	return "a"
}

func TestSuspendedClient(t *testing.T) {
	forEachBackend(t, testSuspendedClient)
}

func testSuspendedClient(t *testing.T, b backend) {
	ts := startServer(t, b, Config{})
	auth, _ := ts.newKey("acme", false)
	created := ts.create(auth, validPrototype)

	if _, err := ts.store.SetClientSuspended(context.Background(), "acme", true); err != nil {
		t.Fatal(err)
	}
	expectError(t, ts.do(http.MethodGet, "/webhooks", auth, nil), http.StatusPaymentRequired)
	expectError(t, ts.do(http.MethodPost, "/webhooks", auth, validPrototype), http.StatusPaymentRequired)
	expectError(t, ts.do(http.MethodDelete, "/webhooks/"+created.ID, auth, nil), http.StatusPaymentRequired)

	if _, err := ts.store.SetClientSuspended(context.Background(), "acme", false); err != nil {
		t.Fatal(err)
	}
	if got := ts.list(auth); len(got) != 1 {
		t.Errorf("after resume, list = %d consumers, want 1", len(got))
	}
}

func TestReadOnlyKey(t *testing.T) {
	forEachBackend(t, testReadOnlyKey)
}

func testReadOnlyKey(t *testing.T, b backend) {
	ts := startServer(t, b, Config{})
	auth, _ := ts.newKey("acme", false)
	readOnly, _ := ts.newKey("acme", true)
	created := ts.create(auth, validPrototype)

	if got := ts.list(readOnly); len(got) != 1 {
		t.Errorf("read-only list = %d consumers, want 1", len(got))
	}
	expectError(t, ts.do(http.MethodPost, "/webhooks", readOnly, validPrototype), http.StatusForbidden)
	expectError(t, ts.do(http.MethodDelete, "/webhooks/"+created.ID, readOnly, nil), http.StatusForbidden)
	if got := ts.list(auth); len(got) != 1 {
		t.Errorf("after rejected writes, list = %d consumers, want 1", len(got))
	}
}

func TestTenantIsolation(t *testing.T) {
	forEachBackend(t, testTenantIsolation)
}

func testTenantIsolation(t *testing.T, b backend) {
	ts := startServer(t, b, Config{})
	alice, _ := ts.newKey("alice", false)
	bob, _ := ts.newKey("bob", false)
	aliceConsumer := ts.create(alice, validPrototype)

	if got := ts.list(bob); len(got) != 0 {
		t.Errorf("bob lists %d consumers, want 0", len(got))
	}

	// Deleting another client's consumer looks exactly like deleting one that does not exist.
	other := expectError(t, ts.do(http.MethodDelete, "/webhooks/"+aliceConsumer.ID, bob, nil), http.StatusNotFound)
	missingID := "8a210b68-6988-11ed-a1eb-0242ac120002"
	missing := expectError(t, ts.do(http.MethodDelete, "/webhooks/"+missingID, bob, nil), http.StatusNotFound)
	if strings.ReplaceAll(other.Error, aliceConsumer.ID, missingID) != missing.Error {
		t.Errorf("errors differ:\n%s\n%s", other.Error, missing.Error)
	}
	if got := ts.list(alice); len(got) != 1 {
		t.Errorf("alice lists %d consumers after bob's delete, want 1", len(got))
	}

	// Bob's own limit counts only his consumers.
	for i := 0; i < store.MaxConsumersPerClient; i++ {
		ts.create(bob, validPrototype)
	}
	ts.create(alice, validPrototype)
}

func TestNotFoundAndMethodNotAllowed(t *testing.T) {
	forEachBackend(t, testNotFoundAndMethodNotAllowed)
}

func testNotFoundAndMethodNotAllowed(t *testing.T, b backend) {
	ts := startServer(t, b, Config{})
	auth, _ := ts.newKey("acme", false)

	for _, id := range []string{"not-a-uuid", "8a210b68-6988-11ed-a1eb-0242ac120002", "%20"} {
		expectError(t, ts.do(http.MethodDelete, "/webhooks/"+id, auth, nil), http.StatusNotFound)
	}
	for _, path := range []string{"/nope", "/webhooks/a/b", "/webhooks/"} {
		expectError(t, ts.do(http.MethodGet, path, auth, nil), http.StatusNotFound)
	}

	tests := []struct {
		method, path, allow string
	}{
		{http.MethodPut, "/webhooks", "GET, HEAD, POST"},
		{http.MethodDelete, "/webhooks", "GET, HEAD, POST"},
		{http.MethodPut, "/webhooks/8a210b68-6988-11ed-a1eb-0242ac120002", "DELETE, GET, HEAD, PATCH"},
		{http.MethodPost, "/healthz", "GET, HEAD"},
	}
	for _, tt := range tests {
		resp := ts.do(tt.method, tt.path, auth, nil)
		expectError(t, resp, http.StatusMethodNotAllowed)
		if got := resp.header.Get("Allow"); got != tt.allow {
			t.Errorf("%s %s: Allow = %q, want %q", tt.method, tt.path, got, tt.allow)
		}
	}
}

func TestConsumerLimit(t *testing.T) {
	forEachBackend(t, testConsumerLimit)
}

func testConsumerLimit(t *testing.T, b backend) {
	ts := startServer(t, b, Config{})
	auth, _ := ts.newKey("acme", false)

	var wg sync.WaitGroup
	statuses := make(chan int, 100)
	for i := 0; i < 100; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			body, _ := json.Marshal(validPrototype)
			req, _ := http.NewRequest(http.MethodPost, ts.url+"/webhooks", bytes.NewReader(body))
			req.Header.Set("Authorization", auth)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Errorf("create: %v", err)
				return
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			statuses <- resp.StatusCode
		}()
	}
	wg.Wait()
	close(statuses)

	counts := map[int]int{}
	for s := range statuses {
		counts[s]++
	}
	if counts[http.StatusCreated] != 50 || counts[http.StatusBadRequest] != 50 {
		t.Errorf("statuses = %v, want 50 × 201 and 50 × 400", counts)
	}
	if got := ts.list(auth); len(got) != store.MaxConsumersPerClient {
		t.Fatalf("list = %d consumers, want %d", len(got), store.MaxConsumersPerClient)
	}

	msg := expectError(t, ts.do(http.MethodPost, "/webhooks", auth, validPrototype), http.StatusBadRequest)
	if !strings.Contains(msg.Error, "50") || !strings.Contains(msg.Error, "Delete an unused consumer first") {
		t.Errorf("limit error = %q, want it to state the limit of 50 and to say to delete an unused consumer first", msg.Error)
	}
}

func TestRateLimit(t *testing.T) {
	forEachBackend(t, testRateLimit)
}

func testRateLimit(t *testing.T, b backend) {
	ts := startServer(t, b, Config{RateLimit: 0.01, RateBurst: 3})
	auth, _ := ts.newKey("acme", false)
	other, _ := ts.newKey("other", false)

	for i := 0; i < 3; i++ {
		resp := ts.do(http.MethodGet, "/webhooks", auth, nil)
		if resp.status != http.StatusOK {
			t.Fatalf("request %d: status %d", i+1, resp.status)
		}
		if got := resp.header.Get("X-Rate-Limit-Limit"); got != "3" {
			t.Errorf("X-Rate-Limit-Limit = %q, want 3", got)
		}
		if got, want := resp.header.Get("X-Rate-Limit-Remaining"), strconv.Itoa(2-i); got != want {
			t.Errorf("request %d: X-Rate-Limit-Remaining = %q, want %s", i+1, got, want)
		}
		if reset, err := strconv.Atoi(resp.header.Get("X-Rate-Limit-Reset")); err != nil || reset <= 0 {
			t.Errorf("X-Rate-Limit-Reset = %q, want a positive number of seconds", resp.header.Get("X-Rate-Limit-Reset"))
		}
	}

	resp := ts.do(http.MethodPost, "/webhooks", auth, validPrototype)
	msg := expectError(t, resp, http.StatusTooManyRequests)
	if retry, err := strconv.Atoi(resp.header.Get("Retry-After")); err != nil || retry < 1 {
		t.Errorf("Retry-After = %q, want whole seconds", resp.header.Get("Retry-After"))
	}
	if msg.CanBeRetried != retryTrue {
		t.Errorf("canBeRetried = %q, want %q", msg.CanBeRetried, retryTrue)
	}
	if got := resp.header.Get("X-Rate-Limit-Remaining"); got != "0" {
		t.Errorf("X-Rate-Limit-Remaining on 429 = %q, want 0", got)
	}

	// The rejected create changed nothing, and other clients have their own bucket.
	if got := ts.list(other); len(got) != 0 {
		t.Errorf("other client lists %d consumers", len(got))
	}
	consumers, err := ts.store.ListConsumers(context.Background(), clientID(t, ts, "acme"))
	if err != nil || len(consumers) != 0 {
		t.Errorf("rate-limited create stored %d consumers (err %v)", len(consumers), err)
	}
}

func clientID(t *testing.T, ts *testServer, name string) string {
	t.Helper()
	c, err := ts.store.ClientByName(context.Background(), name)
	if err != nil {
		t.Fatal(err)
	}
	return c.ID
}

func TestRateLimitDisabled(t *testing.T) {
	forEachBackend(t, testRateLimitDisabled)
}

func testRateLimitDisabled(t *testing.T, b backend) {
	ts := startServer(t, b, Config{RateLimit: -1})
	auth, _ := ts.newKey("acme", false)
	resp := ts.do(http.MethodGet, "/webhooks", auth, nil)
	if resp.status != http.StatusOK || resp.header.Get("X-Rate-Limit-Limit") != "" {
		t.Errorf("status %d, X-Rate-Limit-Limit %q; want 200 without rate-limit headers", resp.status, resp.header.Get("X-Rate-Limit-Limit"))
	}
}

func TestUnexpectedFailureHidesDetail(t *testing.T) {
	forEachBackend(t, testUnexpectedFailureHidesDetail)
}

func testUnexpectedFailureHidesDetail(t *testing.T, b backend) {
	ts := startServer(t, b, Config{})
	auth, _ := ts.newKey("acme", false)
	ts.create(auth, validPrototype)

	// A row changed outside hookd cannot be decoded: an unexpected failure. SQLite stores
	// the event types as JSON text. The PostgreSQL column is a text[], which accepts only
	// arrays, so there the signing secret becomes text that is not base64.
	corrupt, cause := "UPDATE consumers SET event_types = 'not json'", "decode event types"
	if b.name == "postgres" {
		corrupt, cause = "UPDATE consumers SET secret = 'not a secret'", "decode secret"
	}
	db := openRaw(t, ts)
	if _, err := db.Exec(corrupt); err != nil {
		t.Fatal(err)
	}

	resp := ts.do(http.MethodGet, "/webhooks", auth, nil)
	msg := expectError(t, resp, http.StatusInternalServerError)
	if strings.Contains(msg.Error, "json") || strings.Contains(msg.Error, "decode") {
		t.Errorf("500 body leaks internal detail: %q", msg.Error)
	}
	if !strings.Contains(msg.Error, msg.CorrelationID) {
		t.Errorf("500 message %q does not quote the correlation id", msg.Error)
	}

	line := findLogLine(t, ts.logs.String(), msg.CorrelationID)
	if line["level"] != "ERROR" || line["status"] != float64(500) {
		t.Errorf("log line = %v, want level ERROR and status 500", line)
	}
	if errText, _ := line["error"].(string); !strings.Contains(errText, cause) {
		t.Errorf("log error = %q, want the cause %q", errText, cause)
	}
}

// openRaw opens the storage of ts through database/sql, outside hookd's store.
func openRaw(t *testing.T, ts *testServer) *sql.DB {
	t.Helper()
	db, err := sql.Open(ts.backend.rawDriver, ts.backend.rawSource(ts.location))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func findLogLine(t *testing.T, logs, correlationID string) map[string]any {
	t.Helper()
	for _, l := range strings.Split(logs, "\n") {
		if !strings.Contains(l, correlationID) {
			continue
		}
		var line map[string]any
		if err := json.Unmarshal([]byte(l), &line); err != nil {
			t.Fatalf("log line is not JSON: %s", l)
		}
		return line
	}
	t.Fatalf("no log line has correlation id %s; logs:\n%s", correlationID, logs)
	return nil
}

func TestRequestLogLine(t *testing.T) {
	forEachBackend(t, testRequestLogLine)
}

func testRequestLogLine(t *testing.T, b backend) {
	ts := startServer(t, b, Config{})
	auth, _ := ts.newKey("acme", false)
	resp := ts.do(http.MethodGet, "/webhooks", auth, nil)

	line := findLogLine(t, ts.logs.String(), resp.header.Get("X-Correlation-Id"))
	want := map[string]any{"msg": "request", "method": "GET", "route": "GET /webhooks", "status": float64(200),
		"client_id": clientID(t, ts, "acme")}
	for k, v := range want {
		if line[k] != v {
			t.Errorf("log %s = %v, want %v", k, line[k], v)
		}
	}
	if _, ok := line["duration_ms"].(float64); !ok {
		t.Errorf("log line lacks duration_ms: %v", line)
	}
	raw := decodeBasic(t, auth)
	if strings.Contains(ts.logs.String(), raw) || strings.Contains(ts.logs.String(), strings.TrimPrefix(auth, "Basic ")) {
		t.Error("the log contains the API key")
	}
}

func TestStoreUnavailable(t *testing.T) {
	forEachBackend(t, testStoreUnavailable)
}

func testStoreUnavailable(t *testing.T, b backend) {
	ts := startServerOn(t, b, b.newStorage(t), Config{}, 100*time.Millisecond)
	auth, _ := ts.newKey("acme", false)

	// Another process holding a lock past the store's lock timeout makes writes
	// unavailable. In SQLite that is the write lock of the database. In PostgreSQL it is a
	// lock on the client's row, which a create of a consumer needs to count the client's
	// consumers.
	lock := []string{"BEGIN IMMEDIATE"}
	if b.name == "postgres" {
		lock = []string{"BEGIN", "SELECT FROM clients WHERE name = 'acme' FOR UPDATE"}
	}
	db := openRaw(t, ts)
	db.SetMaxOpenConns(1)
	conn, err := db.Conn(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	for _, statement := range lock {
		if _, err := conn.ExecContext(context.Background(), statement); err != nil {
			t.Fatalf("%s: %v", statement, err)
		}
	}

	resp := ts.do(http.MethodPost, "/webhooks", auth, validPrototype)
	msg := expectError(t, resp, http.StatusServiceUnavailable)
	if resp.header.Get("Retry-After") == "" || msg.CanBeRetried != retryTrue {
		t.Errorf("Retry-After = %q, canBeRetried = %q; want a delay and True", resp.header.Get("Retry-After"), msg.CanBeRetried)
	}

	if _, err := conn.ExecContext(context.Background(), "ROLLBACK"); err != nil {
		t.Fatal(err)
	}
	ts.create(auth, validPrototype)

	// A closed store makes every request and the readiness check answer 503.
	ts.store.Close()
	expectError(t, ts.do(http.MethodGet, "/webhooks", auth, nil), http.StatusServiceUnavailable)
	expectError(t, ts.do(http.MethodGet, "/readyz", "", nil), http.StatusServiceUnavailable)
	if resp := ts.do(http.MethodGet, "/healthz", "", nil); resp.status != http.StatusOK {
		t.Errorf("healthz = %d, want 200 while the process lives", resp.status)
	}
}

func TestHealthAndOpenAPI(t *testing.T) {
	forEachBackend(t, testHealthAndOpenAPI)
}

func testHealthAndOpenAPI(t *testing.T, b backend) {
	ts := startServer(t, b, Config{})
	for _, path := range []string{"/healthz", "/readyz"} {
		resp := ts.do(http.MethodGet, path, "", nil)
		if resp.status != http.StatusOK || !bytes.Contains(resp.body, []byte(`"ok"`)) {
			t.Errorf("%s: status %d, body %s", path, resp.status, resp.body)
		}
	}
	resp := ts.do(http.MethodGet, "/openapi.yaml", "", nil)
	if resp.status != http.StatusOK || !bytes.Equal(resp.body, OpenAPI) {
		t.Errorf("openapi.yaml: status %d, %d bytes; want the embedded document", resp.status, len(resp.body))
	}
	if ct := resp.header.Get("Content-Type"); ct != "application/yaml" {
		t.Errorf("Content-Type = %q", ct)
	}
}

func TestPersistenceAcrossRestart(t *testing.T) {
	forEachBackend(t, testPersistenceAcrossRestart)
}

func testPersistenceAcrossRestart(t *testing.T, b backend) {
	location := b.newStorage(t)
	first := startServerOn(t, b, location, Config{}, 0)
	auth, _ := first.newKey("acme", false)
	created := first.create(auth, validPrototype)
	first.stop()

	second := startServerOn(t, b, location, Config{}, 0)
	list := second.list(auth)
	if len(list) != 1 || list[0].ID != created.ID {
		t.Errorf("after restart, list = %+v, want %s", list, created.ID)
	}
}

func TestGracefulShutdown(t *testing.T) {
	forEachBackend(t, testGracefulShutdown)
}

func testGracefulShutdown(t *testing.T, b backend) {
	ts := startServer(t, b, Config{})
	auth, _ := ts.newKey("acme", false)

	// Keep a create in flight: its body arrives in two parts.
	body, _ := json.Marshal(validPrototype)
	pr, pw := io.Pipe()
	req, _ := http.NewRequest(http.MethodPost, ts.url+"/webhooks", pr)
	req.Header.Set("Authorization", auth)
	req.ContentLength = int64(len(body))
	result := make(chan *http.Response, 1)
	go func() {
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Errorf("in-flight create: %v", err)
			result <- nil
			return
		}
		result <- resp
	}()
	pw.Write(body[:10])
	waitFor(t, "the create to be in flight", func() bool { return ts.server.InFlight() == 1 })

	shutdown := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		shutdown <- ts.server.Shutdown(ctx)
	}()

	addr := strings.TrimPrefix(ts.url, "http://")
	waitFor(t, "the listener to close", func() bool {
		conn, err := net.DialTimeout("tcp", addr, time.Second)
		if err != nil {
			return true
		}
		conn.Close()
		return false
	})
	select {
	case err := <-shutdown:
		t.Fatalf("Shutdown returned %v before the request in flight finished", err)
	default:
	}

	pw.Write(body[10:])
	pw.Close()
	resp := <-result
	if resp == nil {
		t.FailNow()
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		t.Errorf("in-flight create: status %d, want 201", resp.StatusCode)
	}
	if err := <-shutdown; err != nil {
		t.Errorf("Shutdown: %v", err)
	}

	consumers, err := ts.store.ListConsumers(context.Background(), clientID(t, ts, "acme"))
	if err != nil || len(consumers) != 1 {
		t.Errorf("after shutdown, store has %d consumers (err %v), want 1", len(consumers), err)
	}
}

func TestDrainingAnswers503(t *testing.T) {
	forEachBackend(t, testDrainingAnswers503)
}

func testDrainingAnswers503(t *testing.T, b backend) {
	ts := startServer(t, b, Config{})
	ts.server.draining.Store(true)
	resp := ts.do(http.MethodGet, "/healthz", "", nil)
	expectError(t, resp, http.StatusServiceUnavailable)
	if resp.header.Get("Retry-After") == "" {
		t.Error("503 during shutdown lacks Retry-After")
	}
	ts.server.draining.Store(false)
}

func TestServerTimeoutsSet(t *testing.T) {
	s := New(Config{})
	if s.http.ReadHeaderTimeout == 0 || s.http.ReadTimeout == 0 || s.http.WriteTimeout == 0 || s.http.IdleTimeout == 0 {
		t.Errorf("timeouts = %v %v %v %v, want all set", s.http.ReadHeaderTimeout, s.http.ReadTimeout, s.http.WriteTimeout, s.http.IdleTimeout)
	}
}

func TestStalledClientIsDisconnected(t *testing.T) {
	st, err := sqlite.Open(context.Background(), t.TempDir(), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	srv := New(Config{Store: st})
	srv.http.ReadHeaderTimeout = 200 * time.Millisecond
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln)
	defer srv.Shutdown(context.Background())

	conn, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprint(conn, "GET /healthz HTTP/1.1\r\nHost: x\r\n") // the headers never end

	conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, err = io.ReadAll(conn)
	var netErr net.Error
	if errors.As(err, &netErr) && netErr.Timeout() {
		t.Fatal("the server kept a stalled connection open for 5 s")
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
