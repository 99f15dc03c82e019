//go:build unix

package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hookd/hookd/signature"
)

// loopbackFlags let hookd deliver to receivers on 127.0.0.1 and turn off rate limiting,
// which would otherwise slow down the tests that publish many events.
var loopbackFlags = []string{"--allow-destination", "127.0.0.0/8", "--rate-limit", "0"}

func TestDeliveryEndToEnd(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	client := newHTTPClient(t)

	type request struct {
		header    http.Header
		body      string
		verifyErr error
	}
	var (
		verifier atomic.Pointer[signature.Verifier]
		count    atomic.Int32
	)
	requests := make(chan request, 10)
	rcv := startReceiver(t, func(w http.ResponseWriter, r *http.Request, body []byte) {
		err := fmt.Errorf("the request arrived before the test fetched the secret")
		if v := verifier.Load(); v != nil {
			err = v.Verify(r.Header, body)
		}
		select {
		case requests <- request{header: r.Header.Clone(), body: string(body), verifyErr: err}:
		default:
		}
		// The first attempt fails, so that the message goes out again on the retry schedule.
		if count.Add(1) == 1 {
			http.Error(w, "try again", http.StatusInternalServerError)
			return
		}
		w.WriteHeader(http.StatusOK)
	})

	p := startServe(ctx, t, t.TempDir(), slices.Concat(loopbackFlags, []string{"--retry-schedule", "100ms,1h"})...)
	auth := authHeader(firstKey(ctx, t, p))
	webhook := createConsumer(ctx, t, client, p.url, auth, rcv.url+"/codat")
	secret := consumerSecret(ctx, t, client, p.url, auth, webhook.ID)
	v, err := signature.NewVerifier([]signature.Secret{secret})
	if err != nil {
		t.Fatal(err)
	}
	verifier.Store(v)

	const companyID = "8a210b68-6988-11ed-a1eb-0242ac120002"
	event := `{
		"id": "b1e6a0c4-5f0e-4c3b-9a57-2f9d1c0e7a11",
		"eventType": "company.created",
		"generatedDate": "2026-03-02T09:15:00.123Z",
		"payload": {
			"referenceCompany": {
				"id": "` + companyID + `",
				"name": "Toft stores",
				"description": "Requested early access to the new financing scheme.",
				"links": {"portal": "https://app.codat.io/companies/` + companyID + `/summary"},
				"tags": {"region": "uk", "segment": "retail"}
			}
		}
	}`
	status, published := send(ctx, t, client, http.MethodPost, p.url+"/events", auth, event)
	if status != http.StatusAccepted {
		t.Fatalf("POST /events: status %d, want 202; body %s", status, published)
	}
	var envelope struct {
		ID            string          `json:"id"`
		EventType     string          `json:"eventType"`
		GeneratedDate string          `json:"generatedDate"`
		Payload       json.RawMessage `json:"payload"`
	}
	if err := json.Unmarshal([]byte(published), &envelope); err != nil {
		t.Fatalf("decode POST /events body %s: %v", published, err)
	}
	if envelope.ID != "b1e6a0c4-5f0e-4c3b-9a57-2f9d1c0e7a11" || envelope.EventType != "company.created" ||
		envelope.GeneratedDate != "2026-03-02T09:15:00.123Z" {
		t.Errorf("POST /events envelope = id %q, eventType %q, generatedDate %q; want the event's values",
			envelope.ID, envelope.EventType, envelope.GeneratedDate)
	}

	for i, want := range []string{"failed first attempt", "retry"} {
		var req request
		select {
		case req = <-requests:
		case <-ctx.Done():
			t.Fatalf("wait for the %s at the receiver: %v", want, ctx.Err())
		}
		if req.verifyErr != nil {
			t.Errorf("request %d: signature check failed: %v", i+1, req.verifyErr)
		}
		if req.body != published {
			t.Errorf("request %d: body = %s, want the envelope from POST /events %s", i+1, req.body, published)
		}
		if got := req.header.Get(signature.HeaderWebhookID); got != envelope.ID {
			t.Errorf("request %d: %s = %q, want the event id %q", i+1, signature.HeaderWebhookID, got, envelope.ID)
		}
		if got := req.header.Get("Content-Type"); got != "application/json" {
			t.Errorf("request %d: Content-Type = %q, want application/json", i+1, got)
		}
		if got := req.header.Get("User-Agent"); !strings.HasPrefix(got, "hookd/") {
			t.Errorf("request %d: User-Agent = %q, want it to start with hookd/", i+1, got)
		}
	}

	attempts := waitAttempts(ctx, t, client, p.url, auth, envelope.ID, func(list []attemptRecord) bool {
		return len(list) >= 2
	})
	if len(attempts) != 2 {
		t.Fatalf("GET /messages/%s/attempts has %d attempts, want 2: %+v", envelope.ID, len(attempts), attempts)
	}
	failed, succeeded := attempts[0], attempts[1]
	if failed.WebhookID != webhook.ID || failed.StatusCode != http.StatusInternalServerError || failed.Success ||
		!strings.Contains(failed.ResponseBody, "try again") {
		t.Errorf("first attempt = %+v, want webhook %s, status 500, not successful, response body %q", failed, webhook.ID, "try again")
	}
	if succeeded.WebhookID != webhook.ID || succeeded.StatusCode != http.StatusOK || !succeeded.Success || succeeded.Error != "" {
		t.Errorf("second attempt = %+v, want webhook %s, status 200, successful, no error", succeeded, webhook.ID)
	}
	if succeeded.AttemptedAt.Before(failed.AttemptedAt) {
		t.Errorf("second attempt at %s is before the first at %s", succeeded.AttemptedAt, failed.AttemptedAt)
	}

	status, body := send(ctx, t, client, http.MethodGet, p.url+"/messages/"+envelope.ID, auth, "")
	if status != http.StatusOK {
		t.Fatalf("GET /messages/%s: status %d, want 200; body %s", envelope.ID, status, body)
	}
	var detail struct {
		Deliveries []struct {
			WebhookID string `json:"webhookId"`
			Status    string `json:"status"`
		} `json:"deliveries"`
	}
	if err := json.Unmarshal([]byte(body), &detail); err != nil {
		t.Fatalf("decode GET /messages/%s body %s: %v", envelope.ID, body, err)
	}
	if len(detail.Deliveries) != 1 || detail.Deliveries[0].WebhookID != webhook.ID || detail.Deliveries[0].Status != "success" {
		t.Errorf("GET /messages/%s deliveries = %+v, want one to %s with status success", envelope.ID, detail.Deliveries, webhook.ID)
	}
}

func TestCrashRecovery(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(t.Context(), 90*time.Second)
	defer cancel()
	client := newHTTPClient(t)

	const (
		totalEvents = 2000
		killAfter   = 1000 // acknowledged events before the kill
		batchSize   = 20
		publishers  = 8
		workers     = 16
		slowDelay   = 25 * time.Millisecond
		deliverWait = 60 * time.Second
	)
	// While holding is set, the slow receiver keeps each request until its connection
	// closes, so that the kill finds attempts in flight whose results hookd never gets.
	var (
		holding atomic.Bool
		heldMu  sync.Mutex
		heldIDs []string
	)
	receivers := []*receiver{
		startReceiver(t, func(w http.ResponseWriter, r *http.Request, body []byte) {}),
		startReceiver(t, func(w http.ResponseWriter, r *http.Request, body []byte) {}),
		startReceiver(t, func(w http.ResponseWriter, r *http.Request, body []byte) {
			wait := time.After(slowDelay)
			if holding.Load() {
				heldMu.Lock()
				heldIDs = append(heldIDs, r.Header.Get(signature.HeaderWebhookID))
				heldMu.Unlock()
				wait = nil
			}
			select {
			case <-wait:
			case <-r.Context().Done():
			}
		}),
	}
	slow := receivers[2]
	heldCount := func() int {
		heldMu.Lock()
		defer heldMu.Unlock()
		return len(heldIDs)
	}

	// A claimed delivery's lease is the attempt timeout plus 6 s (see lease in
	// internal/delivery), so with a 2 s timeout the attempts lost in the kill go out again
	// about 8 s after their claim.
	dir := t.TempDir()
	args := slices.Concat(loopbackFlags, []string{
		"--delivery-timeout", "2s", "--workers", fmt.Sprint(workers), "--retry-schedule", "0s,500ms,1s,1s,1s",
	})
	p := startServe(ctx, t, dir, args...)
	auth := authHeader(firstKey(ctx, t, p))
	webhooks := make([]consumer, len(receivers))
	for i, r := range receivers {
		webhooks[i] = createConsumer(ctx, t, client, p.url, auth, r.url)
	}

	units := eventUnits(totalEvents, batchSize)
	var (
		published = &publishLog{acked: map[string]bool{}}
		next      atomic.Int64
		stopped   atomic.Bool
		reached   = make(chan struct{})
		reachOnce sync.Once
		wg        sync.WaitGroup
	)
	// Publishers stop before the test ends, also when it fails early.
	t.Cleanup(func() {
		stopped.Store(true)
		wg.Wait()
	})
	baseURL := p.url
	for range publishers {
		wg.Go(func() {
			for !stopped.Load() {
				i := int(next.Add(1)) - 1
				if i >= len(units) {
					return
				}
				if err := publishUnit(ctx, client, baseURL, auth, units[i]); err != nil {
					published.fail(units[i], err)
					continue
				}
				if published.ack(units[i]) >= killAfter {
					reachOnce.Do(func() { close(reached) })
				}
			}
		})
	}

	select {
	case <-reached:
	case <-ctx.Done():
		t.Fatalf("wait for %d acknowledged events: %v", killAfter, ctx.Err())
	}
	holding.Store(true)
	if !poll(ctx, time.Millisecond, func() bool { return heldCount() > 0 }) {
		t.Fatalf("wait for an attempt in flight at the slow receiver: %v", ctx.Err())
	}
	receivedAtKill := make([]int, len(receivers))
	for i, r := range receivers {
		receivedAtKill[i], _ = r.stats()
	}
	if err := p.cmd.Process.Kill(); err != nil {
		t.Fatalf("send SIGKILL to hookd: %v", err)
	}
	<-p.exited
	holding.Store(false)
	stopped.Store(true)
	wg.Wait()

	ackedBeforeKill, failures := published.snapshot()
	heldMu.Lock()
	heldAtKill := slices.Clone(heldIDs)
	heldMu.Unlock()
	t.Logf("at SIGKILL: %d events acknowledged, %d publish requests failed, receivers had %v requests, %d held at the slow receiver",
		ackedBeforeKill, len(failures), receivedAtKill, len(heldAtKill))
	for _, f := range failures {
		if f.status != 0 {
			t.Errorf("publish of %d events before the kill: status %d, body %s; want 202 or no response", len(f.unit), f.status, f.body)
		}
	}

	// The events of the failed requests go out again with the same ids. For an id that is
	// already stored, hookd returns the first message and queues nothing new.
	p = startServe(ctx, t, dir, args...)
	restarted := time.Now()
	if out := p.stdout.String(); out != "" {
		t.Errorf("restart printed on stdout:\n%s\nwant nothing", out)
	}
	rest := units[min(int(next.Load()), len(units)):]
	for _, f := range failures {
		rest = append(rest, f.unit)
	}
	publishAll(ctx, t, client, p.url, auth, rest, publishers, published)
	acked, _ := published.snapshot()
	if acked != totalEvents {
		t.Fatalf("acknowledged events = %d, want %d", acked, totalEvents)
	}

	// Every event must reach every receiver, and hookd must have recorded each delivery as
	// done, so that redeliveries of attempts lost in the kill have arrived and are counted.
	deadline, cancelWait := context.WithTimeout(ctx, deliverWait)
	defer cancelWait()
	ok := poll(deadline, 50*time.Millisecond, func() bool {
		for _, r := range receivers {
			if r.missing(published.ids(), 1) != nil {
				return false
			}
		}
		for _, w := range webhooks {
			if pendingMessages(ctx, t, client, p.url, auth, w.ID) {
				return false
			}
		}
		return true
	})
	if !ok {
		for i, r := range receivers {
			if missing := r.missing(published.ids(), 5); missing != nil {
				t.Errorf("receiver %d is missing acknowledged events after %s, for example %q", i, deliverWait, missing)
				for _, id := range missing[:1] {
					_, body := send(ctx, t, client, http.MethodGet, p.url+"/messages/"+id, auth, "")
					t.Logf("GET /messages/%s: %s", id, body)
				}
			}
		}
		for _, w := range webhooks {
			if pendingMessages(ctx, t, client, p.url, auth, w.ID) {
				t.Errorf("consumer %s still has messages in the sending or attempting state after %s", w.ID, deliverWait)
			}
		}
		t.FailNow()
	}

	// hookd never learned the outcome of the held attempts, so it must send them again.
	for _, id := range heldAtKill {
		if n := slow.count(id); n < 2 {
			t.Errorf("slow receiver got event %s %d times, want at least 2: it held the first attempt when hookd was killed", id, n)
		}
	}

	// A duplicate is either a retry after a failed attempt, which the attempt log shows, or
	// an attempt that reached its receiver but whose result the kill lost. Only the workers'
	// attempts in flight at the kill can be lost.
	duplicates, unrecorded := 0, 0
	for i, r := range receivers {
		requests, distinct := r.stats()
		duplicates += requests - distinct
		for id, n := range r.repeated() {
			logged := 0
			for _, a := range listAttempts(ctx, t, client, p.url, auth, id) {
				if a.WebhookID == webhooks[i].ID {
					logged++
				}
			}
			unrecorded += max(n-logged, 0)
		}
		if unknown := r.unknown(published.ids()); len(unknown) > 0 {
			t.Errorf("receiver %d got %d ids that were never published, for example %q", i, len(unknown), unknown[0])
		}
		t.Logf("receiver %d: %d requests, %d distinct events, at most %d at once, last new event %s after the restart",
			i, requests, distinct, r.maxActive.Load(), r.lastFirstReceipt().Sub(restarted).Round(time.Millisecond))
	}
	t.Logf("all %d events reached %d receivers %s after the restart; %d duplicate deliveries, %d of them lost from the attempt log by the kill",
		totalEvents, len(receivers), time.Since(restarted).Round(time.Millisecond), duplicates, unrecorded)
	if unrecorded > workers {
		t.Errorf("deliveries missing from the attempt log = %d, want at most %d, the attempts that can be in flight at once (--workers)", unrecorded, workers)
	}
}

func TestSlowConsumerIsolation(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	client := newHTTPClient(t)

	const (
		events      = 200
		interval    = 10 * time.Millisecond
		perConsumer = 4
		maxP99      = time.Second
	)

	// The hanging receiver keeps each request until hookd's attempt times out or the test
	// ends. Cleanups run in reverse order, so release is closed before the server's Close
	// waits for its handlers.
	release := make(chan struct{})
	hanging := startReceiver(t, func(w http.ResponseWriter, r *http.Request, body []byte) {
		select {
		case <-r.Context().Done():
		case <-release:
		}
	})
	t.Cleanup(func() { close(release) })
	fast := startReceiver(t, func(w http.ResponseWriter, r *http.Request, body []byte) {})

	p := startServe(ctx, t, t.TempDir(), slices.Concat(loopbackFlags, []string{
		"--delivery-timeout", "2s", "--workers", "8", "--per-consumer", fmt.Sprint(perConsumer), "--retry-schedule", "0s",
	})...)
	auth := authHeader(firstKey(ctx, t, p))
	createConsumer(ctx, t, client, p.url, auth, hanging.url)
	createConsumer(ctx, t, client, p.url, auth, fast.url)

	sent := make(map[string]time.Time, events)
	ticker := time.NewTicker(interval)
	defer ticker.Stop()
	for i := range events {
		id := fmt.Sprintf("isolation-%03d", i)
		sent[id] = time.Now()
		status, body := send(ctx, t, client, http.MethodPost, p.url+"/events", auth, codatEvent(id))
		if status != http.StatusAccepted {
			t.Fatalf("POST /events %s: status %d, want 202; body %s", id, status, body)
		}
		select {
		case <-ticker.C:
		case <-ctx.Done():
			t.Fatalf("publish: %v", ctx.Err())
		}
	}

	ids := make([]string, 0, events)
	for id := range sent {
		ids = append(ids, id)
	}
	// Without isolation, the fast receiver waits for the hanging one's attempts to time out.
	waitCtx, cancelWait := context.WithTimeout(ctx, 10*time.Second)
	defer cancelWait()
	if !poll(waitCtx, 10*time.Millisecond, func() bool { return fast.missing(ids, 1) == nil }) {
		t.Fatalf("fast receiver is missing %d of %d events after 10 s, for example %q",
			len(fast.missing(ids, events)), events, fast.missing(ids, 5))
	}

	latencies := make([]time.Duration, 0, events)
	for id, at := range sent {
		latencies = append(latencies, fast.firstReceipt(id).Sub(at))
	}
	slices.Sort(latencies)
	p50, p95, p99 := percentile(latencies, 50), percentile(latencies, 95), percentile(latencies, 99)
	t.Logf("publish-to-receipt latency at the fast receiver over %d events: p50 %s, p95 %s, p99 %s, max %s",
		events, p50, p95, p99, latencies[len(latencies)-1])
	if p99 > maxP99 {
		t.Errorf("p99 latency at the fast receiver = %s, want under %s while the other consumer hangs", p99, maxP99)
	}
	// The hanging consumer must have held all its slots, or the test proves nothing.
	if got := hanging.maxActive.Load(); got < perConsumer {
		t.Errorf("most requests in flight at once at the hanging receiver = %d, want at least %d (--per-consumer)", got, perConsumer)
	}
}

func TestServeDestinationGuard(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	client := newHTTPClient(t)
	rcv := startReceiver(t, func(w http.ResponseWriter, r *http.Request, body []byte) {})
	port := strings.TrimPrefix(rcv.url, "http://127.0.0.1:")
	dir := t.TempDir()

	p := startServe(ctx, t, dir)
	if rec := p.waitLog(ctx, t, "hookd started"); rec["allowed_destinations"] != "[]" {
		t.Errorf("allowed_destinations without --allow-destination = %v, want []", rec["allowed_destinations"])
	}
	auth := authHeader(firstKey(ctx, t, p))

	// A host that is an IP address or a localhost name is checked when the consumer is
	// created, before any connection.
	rejected := []string{
		"http://127.0.0.1:" + port + "/x",
		"http://localhost:" + port + "/x",
		"http://[::1]:" + port + "/x",
		"http://[::ffff:127.0.0.1]:" + port + "/x",
		"http://2130706433:" + port + "/x",
	}
	for _, u := range rejected {
		status, body := send(ctx, t, client, http.MethodPost, p.url+"/webhooks", auth, consumerJSON(u))
		if status != http.StatusBadRequest {
			t.Errorf("POST /webhooks with url %s: status %d, want 400; body %s", u, status, body)
			continue
		}
		if item := validationItem(t, body, "url"); !strings.Contains(item, "blocked") {
			t.Errorf("POST /webhooks with url %s: validation message for url = %q, want it to say blocked; body %s", u, item, body)
		}
	}
	stopServe(t, p)

	// Consumers created while loopback was allowed keep their URLs when the operator takes
	// the permission away: the dialer must then block their deliveries.
	p = startServe(ctx, t, dir, "--allow-destination", "127.0.0.0/8")
	webhooks := []consumer{
		createConsumer(ctx, t, client, p.url, auth, "http://127.0.0.1:"+port+"/x"),
		createConsumer(ctx, t, client, p.url, auth, "http://localhost:"+port+"/x"),
	}
	stopServe(t, p)

	p = startServe(ctx, t, dir, "--retry-schedule", "1h")

	// net/http maps this fullwidth host to "localhost" (IDNA) before it resolves it. The
	// create-time check may let it pass, and then the dialer must block it.
	fullwidth := "http://ｌｏｃａｌｈｏｓｔ:" + port + "/x"
	switch status, body := send(ctx, t, client, http.MethodPost, p.url+"/webhooks", auth, consumerJSON(fullwidth)); status {
	case http.StatusCreated:
		webhooks = append(webhooks, decodeConsumer(t, body))
	case http.StatusBadRequest:
		if item := validationItem(t, body, "url"); !strings.Contains(item, "blocked") {
			t.Errorf("POST /webhooks with url %s: validation message for url = %q, want it to say blocked", fullwidth, item)
		}
	default:
		t.Errorf("POST /webhooks with url %s: status %d, want 201 or 400; body %s", fullwidth, status, body)
	}

	const id = "guard-1"
	if status, body := send(ctx, t, client, http.MethodPost, p.url+"/events", auth, codatEvent(id)); status != http.StatusAccepted {
		t.Fatalf("POST /events: status %d, want 202; body %s", status, body)
	}
	attempts := waitAttempts(ctx, t, client, p.url, auth, id, func(list []attemptRecord) bool {
		return len(list) >= len(webhooks)
	})
	for _, w := range webhooks {
		i := slices.IndexFunc(attempts, func(a attemptRecord) bool { return a.WebhookID == w.ID })
		if i < 0 {
			t.Errorf("no attempt to consumer %s (%s) in %+v", w.ID, w.URL, attempts)
			continue
		}
		a := attempts[i]
		if a.Success || a.StatusCode != 0 || !strings.Contains(a.Error, "blocked") {
			t.Errorf("attempt to %s = %+v, want no success, status 0 and an error that says blocked", w.URL, a)
		}
	}
	if requests, _ := rcv.stats(); requests != 0 {
		t.Errorf("receiver got %d requests, want 0", requests)
	}
}

func TestBadDeliveryFlags(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		args []string
		env  []string
		want string // text the error message must contain
	}{
		{"retry schedule", []string{"--retry-schedule", "5x"}, nil, "--retry-schedule"},
		{"negative retry", []string{"--retry-schedule", "1s,-1s"}, nil, "--retry-schedule"},
		{"zero workers", []string{"--workers", "0"}, nil, "--workers"},
		{"zero per consumer", []string{"--per-consumer", "0"}, nil, "--per-consumer"},
		{"zero delivery timeout", []string{"--delivery-timeout", "0s"}, nil, "--delivery-timeout"},
		{"allow host bits", []string{"--allow-destination", "10.1.2.3/8"}, nil, "--allow-destination"},
		{"allow host name", []string{"--allow-destination", "localhost"}, nil, "--allow-destination"},
		{"allow env host bits", nil, []string{"HOOKD_ALLOW_DESTINATIONS=10.1.2.3/8"}, "10.1.2.3/8"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ctx := testContext(t)

			dir := filepath.Join(t.TempDir(), "data")
			args := slices.Concat([]string{"serve", "--data", dir, "--addr", "127.0.0.1:0"}, tt.args)
			stdout, stderr, code := runHookd(ctx, t, hookdEnv(tt.env...), args...)
			if code == 0 {
				t.Errorf("hookd serve %s exited with 0, want an error; stdout:\n%s", strings.Join(tt.args, " "), stdout)
			}
			if !strings.Contains(stderr, tt.want) {
				t.Errorf("hookd serve %s stderr = %q, want it to name %s", strings.Join(tt.args, " "), stderr, tt.want)
			}
			if stdout != "" {
				t.Errorf("hookd serve %s printed on stdout:\n%s\nwant nothing", strings.Join(tt.args, " "), stdout)
			}
			if _, err := os.Stat(dir); !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("hookd serve %s: data folder %s exists or cannot be checked (%v), want it left uncreated", strings.Join(tt.args, " "), dir, err)
			}
		})
	}
}

// receiver is a webhook receiver on 127.0.0.1 that counts the requests for each message id
// (the webhook-id header).
type receiver struct {
	url string

	// active is the number of requests in the handler now, and maxActive is its maximum.
	active, maxActive atomic.Int32

	mu       sync.Mutex
	requests int
	counts   map[string]int
	first    map[string]time.Time
}

// startReceiver starts a receiver that records each request and then calls handle with
// the request body. When handle writes nothing, the response is 200 OK. The server closes
// when the test ends.
func startReceiver(t *testing.T, handle func(w http.ResponseWriter, r *http.Request, body []byte)) *receiver {
	t.Helper()
	rcv := &receiver{counts: map[string]int{}, first: map[string]time.Time{}}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		now := time.Now()
		n := rcv.active.Add(1)
		defer rcv.active.Add(-1)
		for m := rcv.maxActive.Load(); n > m && !rcv.maxActive.CompareAndSwap(m, n); m = rcv.maxActive.Load() {
		}

		body, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		id := r.Header.Get(signature.HeaderWebhookID)
		rcv.mu.Lock()
		rcv.requests++
		rcv.counts[id]++
		if _, ok := rcv.first[id]; !ok {
			rcv.first[id] = now
		}
		rcv.mu.Unlock()
		handle(w, r, body)
	}))
	srv.Listener.Close()
	srv.Listener = ln
	srv.Start()
	t.Cleanup(srv.Close)
	rcv.url = srv.URL
	return rcv
}

// missing returns up to limit of ids that the receiver has not received, or nil.
func (r *receiver) missing(ids []string, limit int) []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, id := range ids {
		if r.counts[id] == 0 {
			out = append(out, id)
			if len(out) == limit {
				break
			}
		}
	}
	return out
}

// unknown returns the received ids that are not in ids.
func (r *receiver) unknown(ids []string) []string {
	known := make(map[string]bool, len(ids))
	for _, id := range ids {
		known[id] = true
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for id := range r.counts {
		if !known[id] {
			out = append(out, id)
		}
	}
	return out
}

// stats returns the number of requests and of distinct message ids received.
func (r *receiver) stats() (requests, distinct int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.requests, len(r.counts)
}

// count returns the number of requests for the message id.
func (r *receiver) count(id string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.counts[id]
}

// repeated returns the ids received more than once, with their number of requests.
func (r *receiver) repeated() map[string]int {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := map[string]int{}
	for id, n := range r.counts {
		if n > 1 {
			out[id] = n
		}
	}
	return out
}

// lastFirstReceipt returns when the receiver first got the event that arrived last.
func (r *receiver) lastFirstReceipt() time.Time {
	r.mu.Lock()
	defer r.mu.Unlock()
	var last time.Time
	for _, at := range r.first {
		if at.After(last) {
			last = at
		}
	}
	return last
}

func (r *receiver) firstReceipt(id string) time.Time {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.first[id]
}

// publishLog tracks which events hookd acknowledged with 202.
type publishLog struct {
	mu       sync.Mutex
	acked    map[string]bool
	failures []publishFailure
}

// publishFailure is a publish request that got no 202.
type publishFailure struct {
	unit   []string
	status int // 0 when no response arrived
	body   string
}

func (l *publishLog) ack(unit []string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, id := range unit {
		l.acked[id] = true
	}
	return len(l.acked)
}

func (l *publishLog) fail(unit []string, err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	f := publishFailure{unit: unit, body: err.Error()}
	if se, ok := err.(*statusError); ok {
		f.status, f.body = se.status, se.body
	}
	l.failures = append(l.failures, f)
}

// snapshot returns the number of acknowledged events and the failed requests so far.
func (l *publishLog) snapshot() (int, []publishFailure) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.acked), slices.Clone(l.failures)
}

// ids returns the acknowledged event ids.
func (l *publishLog) ids() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make([]string, 0, len(l.acked))
	for id := range l.acked {
		out = append(out, id)
	}
	return out
}

// statusError is the response to a publish request whose status is not 202.
type statusError struct {
	status int
	body   string
}

func (e *statusError) Error() string {
	return fmt.Sprintf("status %d: %s", e.status, e.body)
}

// eventUnits splits total event ids into publish requests: batches of batchSize events
// for POST /events/batch alternate with single events for POST /events.
func eventUnits(total, batchSize int) [][]string {
	var units [][]string
	for n := 0; n < total; {
		size := 1
		if len(units)%2 == 0 {
			size = min(batchSize, total-n)
		}
		unit := make([]string, size)
		for i := range unit {
			unit[i] = fmt.Sprintf("crash-%04d", n+i)
		}
		units = append(units, unit)
		n += size
	}
	return units
}

// publishUnit publishes one event with POST /events, or several with POST /events/batch.
// Unlike send, it may run outside the test goroutine.
func publishUnit(ctx context.Context, client *http.Client, baseURL, auth string, unit []string) error {
	path, body := "/events", ""
	if len(unit) == 1 {
		body = codatEvent(unit[0])
	} else {
		events := make([]string, len(unit))
		for i, id := range unit {
			events[i] = codatEvent(id)
		}
		path, body = "/events/batch", `{"events":[`+strings.Join(events, ",")+`]}`
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, baseURL+path, strings.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", auth)
	req.Header.Set("Content-Type", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusAccepted {
		return &statusError{status: resp.StatusCode, body: string(b)}
	}
	return nil
}

// publishAll publishes units from several goroutines. Every request must get 202.
func publishAll(ctx context.Context, t *testing.T, client *http.Client, baseURL, auth string, units [][]string, publishers int, published *publishLog) {
	t.Helper()
	var (
		next atomic.Int64
		wg   sync.WaitGroup
	)
	for range publishers {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= len(units) {
					return
				}
				if err := publishUnit(ctx, client, baseURL, auth, units[i]); err != nil {
					t.Errorf("publish %d events starting with %s: %v", len(units[i]), units[i][0], err)
					return
				}
				published.ack(units[i])
			}
		})
	}
	wg.Wait()
}

// codatEvent returns a company.created event in the shape of Codat's webhooks.
func codatEvent(id string) string {
	return fmt.Sprintf(`{"id":%q,"eventType":"company.created","payload":{"referenceCompany":{"id":"company-%s","name":"Company %s","tags":{"region":"uk"}}}}`, id, id, id)
}

// consumerJSON returns a POST /webhooks body for url that subscribes to company.created.
func consumerJSON(u string) string {
	b, err := json.Marshal(map[string]any{"url": u, "eventTypes": []string{"company.created"}})
	if err != nil {
		panic(err)
	}
	return string(b)
}

// createConsumer creates a consumer of company.created events at url.
func createConsumer(ctx context.Context, t *testing.T, client *http.Client, baseURL, auth, u string) consumer {
	t.Helper()
	status, body := send(ctx, t, client, http.MethodPost, baseURL+"/webhooks", auth, consumerJSON(u))
	if status != http.StatusCreated {
		t.Fatalf("POST /webhooks with url %s: status %d, want 201; body %s", u, status, body)
	}
	return decodeConsumer(t, body)
}

// consumerSecret returns the signing secret of a consumer.
func consumerSecret(ctx context.Context, t *testing.T, client *http.Client, baseURL, auth, id string) signature.Secret {
	t.Helper()
	status, body := send(ctx, t, client, http.MethodGet, baseURL+"/webhooks/"+id+"/secret", auth, "")
	if status != http.StatusOK {
		t.Fatalf("GET /webhooks/%s/secret: status %d, want 200; body %s", id, status, body)
	}
	var resp struct {
		Key string `json:"key"`
	}
	if err := json.Unmarshal([]byte(body), &resp); err != nil {
		t.Fatalf("decode GET /webhooks/%s/secret body: %v", id, err)
	}
	secret, err := signature.ParseSecret(resp.Key)
	if err != nil {
		t.Fatalf("GET /webhooks/%s/secret: %v", id, err)
	}
	return secret
}

// attemptRecord is an entry of GET /messages/{messageId}/attempts.
type attemptRecord struct {
	WebhookID    string    `json:"webhookId"`
	AttemptedAt  time.Time `json:"attemptedAt"`
	StatusCode   int       `json:"statusCode"`
	Success      bool      `json:"success"`
	Error        string    `json:"error"`
	ResponseBody string    `json:"responseBody"`
}

// listAttempts returns the attempt log of a message from GET /messages/{id}/attempts.
func listAttempts(ctx context.Context, t *testing.T, client *http.Client, baseURL, auth, id string) []attemptRecord {
	t.Helper()
	status, body := send(ctx, t, client, http.MethodGet, baseURL+"/messages/"+url.PathEscape(id)+"/attempts", auth, "")
	if status != http.StatusOK {
		t.Fatalf("GET /messages/%s/attempts: status %d, want 200; body %s", id, status, body)
	}
	var resp struct {
		Results []attemptRecord `json:"results"`
	}
	if err := json.Unmarshal([]byte(body), &resp); err != nil {
		t.Fatalf("decode GET /messages/%s/attempts body %s: %v", id, body, err)
	}
	return resp.Results
}

// waitAttempts polls the attempt log of a message until done accepts it.
func waitAttempts(ctx context.Context, t *testing.T, client *http.Client, baseURL, auth, id string, done func([]attemptRecord) bool) []attemptRecord {
	t.Helper()
	var list []attemptRecord
	ok := poll(ctx, 20*time.Millisecond, func() bool {
		list = listAttempts(ctx, t, client, baseURL, auth, id)
		return done(list)
	})
	if !ok {
		t.Fatalf("wait for attempts of message %s: %v; last list %+v", id, ctx.Err(), list)
	}
	return list
}

// pendingMessages reports whether a consumer has messages that are not yet delivered or
// given up on.
func pendingMessages(ctx context.Context, t *testing.T, client *http.Client, baseURL, auth, id string) bool {
	t.Helper()
	for _, status := range []string{"sending", "attempting"} {
		code, body := send(ctx, t, client, http.MethodGet, baseURL+"/webhooks/"+id+"/messages?limit=1&status="+status, auth, "")
		if code != http.StatusOK {
			t.Fatalf("GET /webhooks/%s/messages?status=%s: status %d, want 200; body %s", id, status, code, body)
		}
		var page struct {
			Results []json.RawMessage `json:"results"`
		}
		if err := json.Unmarshal([]byte(body), &page); err != nil {
			t.Fatalf("decode GET /webhooks/%s/messages body %s: %v", id, body, err)
		}
		if len(page.Results) > 0 {
			return true
		}
	}
	return false
}

// validationItem returns the message of the validation error for itemID in an error body,
// and fails the test when there is none.
func validationItem(t *testing.T, body, itemID string) string {
	t.Helper()
	var resp struct {
		Validation struct {
			Errors []struct {
				ItemID  string `json:"itemId"`
				Message string `json:"message"`
			} `json:"errors"`
		} `json:"validation"`
	}
	if err := json.Unmarshal([]byte(body), &resp); err != nil {
		t.Fatalf("decode error body %s: %v", body, err)
	}
	for _, e := range resp.Validation.Errors {
		if e.ItemID == itemID {
			return e.Message
		}
	}
	t.Fatalf("error body %s has no validation error for %s", body, itemID)
	return ""
}

// poll calls cond every interval until it returns true, and returns false when ctx ends
// first.
func poll(ctx context.Context, interval time.Duration, cond func() bool) bool {
	ticker := time.NewTicker(interval)
	defer ticker.Stop()
	for !cond() {
		select {
		case <-ctx.Done():
			return false
		case <-ticker.C:
		}
	}
	return true
}

// percentile returns the p-th percentile of sorted durations, by the nearest-rank method.
func percentile(sorted []time.Duration, p int) time.Duration {
	rank := (p*len(sorted) + 99) / 100
	return sorted[max(rank-1, 0)]
}
