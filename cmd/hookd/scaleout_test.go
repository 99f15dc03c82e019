//go:build unix

package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/hookd/hookd/internal/store/postgres/pgtest"
	"github.com/hookd/hookd/signature"
)

// The tests in this file run several hookd serve processes on one PostgreSQL database.
// Without HOOKD_TEST_DATABASE_URL they are skipped, or fail when HOOKD_REQUIRE_POSTGRES
// is 1. scripts/test sets both.

const (
	// clusterSize is the number of hookd serve processes that share a database.
	clusterSize = 3

	// scaleOutTimeout bounds each load test, including every process it starts. The tests
	// take less than half of it on two CPUs with the race detector.
	scaleOutTimeout = 90 * time.Second

	// scaleOutEvents is the number of events that each load test publishes.
	scaleOutEvents = 2000
)

func TestScaleOutDelivery(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(t.Context(), scaleOutTimeout)
	defer cancel()
	databaseURL := pgtest.NewDatabase(t)
	client := newHTTPClient(t)

	receivers := []*receiver{
		startReceiver(t, func(w http.ResponseWriter, r *http.Request, body []byte) {}),
		startReceiver(t, func(w http.ResponseWriter, r *http.Request, body []byte) {}),
		startReceiver(t, func(w http.ResponseWriter, r *http.Request, body []byte) {}),
	}
	// This receiver's consumer takes another event type, so it must get nothing.
	unsubscribed := startReceiver(t, func(w http.ResponseWriter, r *http.Request, body []byte) {})

	procs, key := startCluster(ctx, t, databaseURL, loopbackFlags...)
	auth := authHeader(key)
	webhooks := make([]consumer, len(receivers))
	for i, r := range receivers {
		webhooks[i] = createConsumer(ctx, t, client, procs[i%len(procs)].url, auth, r.url)
	}
	body := `{"url":"` + unsubscribed.url + `","eventTypes":["company.deleted"]}`
	if status, resp := send(ctx, t, client, http.MethodPost, procs[0].url+"/webhooks", auth, body); status != http.StatusCreated {
		t.Fatalf("POST /webhooks for company.deleted: status %d, want 201; body %s", status, resp)
	}

	pub := newClusterPublisher(client, procs, auth, 0)
	start := time.Now()
	if errs := pub.run(ctx, scaleUnits("scale", scaleOutEvents, 20), 6); len(errs) > 0 {
		t.Fatalf("publish: %d requests failed, first: %v", len(errs), errs[0])
	}
	if n := pub.unavailable.Load() + pub.connErrors.Load(); n != 0 {
		t.Errorf("publish requests without 202 = %d (%d status 503, %d without a response), want 0 without faults",
			n, pub.unavailable.Load(), pub.connErrors.Load())
	}
	ids := pub.log.ids()
	if len(ids) != scaleOutEvents {
		t.Fatalf("acknowledged events = %d, want %d", len(ids), scaleOutEvents)
	}
	t.Logf("%d events acknowledged %s after the first publish", len(ids), time.Since(start).Round(time.Millisecond))

	waitDelivered(ctx, t, client, procs[0].url, auth, receivers, webhooks, ids)
	t.Logf("%d events reached %d receivers through %d servers %s after the first publish",
		len(ids), len(receivers), len(procs), time.Since(start).Round(time.Millisecond))

	duplicates, _ := countDuplicates(ctx, t, client, procs[0].url, auth, receivers, webhooks, ids)
	if duplicates != 0 {
		t.Errorf("duplicate deliveries = %d, want 0 without faults", duplicates)
	}
	if requests, _ := unsubscribed.stats(); requests != 0 {
		t.Errorf("receiver of company.deleted got %d requests, want 0", requests)
	}

	// Each server delivers a share: a claim takes any due delivery, whichever server
	// accepted its event.
	for i, p := range procs {
		n := deliveredBy(ctx, t, client, p.url)
		t.Logf("server %d delivered %d of %d", i, n, len(ids)*len(receivers))
		if n == 0 {
			t.Errorf("server %d delivered nothing, want a share of the deliveries", i)
		}
	}
	stopCluster(t, procs)
}

func TestScaleOutKill(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(t.Context(), scaleOutTimeout)
	defer cancel()
	databaseURL := pgtest.NewDatabase(t)
	client := newHTTPClient(t)

	const (
		workers     = 16
		perConsumer = 8
		slowDelay   = 20 * time.Millisecond
	)
	// While holding is set, the slow receiver keeps each request until its connection
	// closes or release is closed, so that the kill finds attempts in flight. cut collects
	// the requests whose connection closed before the response: the killed server's, and
	// any that a server gave up on after --delivery-timeout.
	var (
		holding atomic.Bool
		release = make(chan struct{})
		cutMu   sync.Mutex
		cut     []string
	)
	releaseOnce := sync.OnceFunc(func() { close(release) })
	t.Cleanup(releaseOnce)
	receivers := []*receiver{
		startReceiver(t, func(w http.ResponseWriter, r *http.Request, body []byte) {}),
		startReceiver(t, func(w http.ResponseWriter, r *http.Request, body []byte) {}),
		startReceiver(t, func(w http.ResponseWriter, r *http.Request, body []byte) {
			var timer <-chan time.Time
			if !holding.Load() {
				timer = time.After(slowDelay)
			}
			select {
			case <-timer:
			case <-release:
			case <-r.Context().Done():
				cutMu.Lock()
				cut = append(cut, r.Header.Get(signature.HeaderWebhookID))
				cutMu.Unlock()
			}
		}),
	}
	slow := receivers[2]

	// A claim's lease is --delivery-timeout plus 6 s, so the attempts lost in the kill go
	// out again about 7 s after their claim.
	procs, key := startCluster(ctx, t, databaseURL, slices.Concat(loopbackFlags, []string{
		"--delivery-timeout", "1s", "--workers", strconv.Itoa(workers), "--per-consumer", strconv.Itoa(perConsumer),
		"--retry-schedule", "0s,500ms,1s",
	})...)
	auth := authHeader(key)
	webhooks := make([]consumer, len(receivers))
	for i, r := range receivers {
		webhooks[i] = createConsumer(ctx, t, client, procs[0].url, auth, r.url)
	}

	pub := newClusterPublisher(client, procs, auth, scaleOutEvents/3)
	published := make(chan []error, 1)
	go func() { published <- pub.run(ctx, scaleUnits("kill", scaleOutEvents, 20), 6) }()

	select {
	case <-pub.reached:
	case <-ctx.Done():
		t.Fatalf("wait for %d acknowledged events: %v", scaleOutEvents/3, ctx.Err())
	}
	// Each server has at most --per-consumer attempts in flight to one consumer, so more
	// than twice that at the slow receiver means that every server has some.
	holding.Store(true)
	holdStart := time.Now()
	if !poll(ctx, time.Millisecond, func() bool { return slow.active.Load() > 2*perConsumer }) {
		t.Fatalf("wait for more than %d requests in flight at the slow receiver: %v", 2*perConsumer, ctx.Err())
	}
	killed := procs[1]
	pub.down(1)
	if err := killed.cmd.Process.Kill(); err != nil {
		t.Fatalf("send SIGKILL to server 1: %v", err)
	}
	<-killed.exited
	killedAt := time.Now()
	// The receiver learns of the closed connections a moment after the process has gone,
	// so the held requests are released only once at least one of them was cut.
	if !poll(ctx, time.Millisecond, func() bool {
		cutMu.Lock()
		defer cutMu.Unlock()
		return len(cut) > 0
	}) {
		t.Fatalf("wait for a request at the slow receiver to lose its connection in the kill: %v", ctx.Err())
	}
	holding.Store(false)
	releaseOnce()
	ackedAtKill, _ := pub.log.snapshot()

	var errs []error
	select {
	case errs = <-published:
	case <-ctx.Done():
		t.Fatalf("wait for the publishers: %v", ctx.Err())
	}
	if len(errs) > 0 {
		t.Fatalf("publish: %d requests failed, first: %v", len(errs), errs[0])
	}
	ids := pub.log.ids()
	if len(ids) != scaleOutEvents {
		t.Fatalf("acknowledged events = %d, want %d", len(ids), scaleOutEvents)
	}
	t.Logf("all %d events acknowledged %s after the kill", len(ids), time.Since(killedAt).Round(time.Millisecond))
	t.Logf("SIGKILL after %d acknowledged events, %s after the slow receiver began to hold requests; %d publish requests got no response and went to another server",
		ackedAtKill, killedAt.Sub(holdStart).Round(time.Millisecond), pub.connErrors.Load())

	survivors := []*hookdProcess{procs[0], procs[2]}
	waitDelivered(ctx, t, client, survivors[0].url, auth, receivers, webhooks, ids)
	t.Logf("every event reached every receiver %s after the kill", time.Since(killedAt).Round(time.Millisecond))
	for i, r := range receivers {
		requests, distinct := r.stats()
		t.Logf("receiver %d: %d requests, %d distinct events, last new event %s after the kill",
			i, requests, distinct, r.lastFirstReceipt().Sub(killedAt).Round(time.Millisecond))
	}

	cutMu.Lock()
	cutAtKill := slices.Clone(cut)
	cutMu.Unlock()
	// No server recorded these attempts as delivered, so they go out again.
	for _, id := range cutAtKill {
		if n := slow.count(id); n < 2 {
			t.Errorf("slow receiver got event %s %d times, want at least 2: the first request lost its connection before the response", id, n)
		}
	}

	// A duplicate is a retry after a failed attempt, which the survivors count and the
	// attempt log shows, or an attempt of the killed server that reached its receiver
	// without being recorded. Only the killed server's --workers attempts can be in flight.
	duplicates, unrecorded := countDuplicates(ctx, t, client, survivors[0].url, auth, receivers, webhooks, ids)
	retries := 0
	for _, p := range survivors {
		retries += metricSum(ctx, t, client, p.url, `hookd_deliveries_total{outcome="retry"`)
	}
	t.Logf("%d duplicate deliveries: %d requests cut off before the response, %d missing from the attempt log, %d retries by the survivors",
		duplicates, len(cutAtKill), unrecorded, retries)
	if unrecorded > workers {
		t.Errorf("deliveries missing from the attempt log = %d, want at most %d, the killed server's --workers", unrecorded, workers)
	}
	if duplicates > workers+retries {
		t.Errorf("duplicate deliveries = %d, want at most %d: the killed server's --workers (%d) plus the survivors' retries (%d)",
			duplicates, workers+retries, workers, retries)
	}
	stopCluster(t, survivors)
}

func TestScaleOutPostgresRestart(t *testing.T) {
	t.Parallel()
	pgtest.ServerURL(t)
	ctx, cancel := context.WithTimeout(t.Context(), scaleOutTimeout)
	defer cancel()
	client := newHTTPClient(t)

	// This test stops its own server, so it cannot use the shared one.
	server := startPostgresServer(ctx, t)
	databaseURL := server.createDatabase(ctx, t, "hookd")

	const (
		workers = 16
		outage  = 2 * time.Second
	)
	receivers := []*receiver{
		startReceiver(t, func(w http.ResponseWriter, r *http.Request, body []byte) {}),
		startReceiver(t, func(w http.ResponseWriter, r *http.Request, body []byte) {}),
		startReceiver(t, func(w http.ResponseWriter, r *http.Request, body []byte) {}),
	}
	procs, key := startCluster(ctx, t, databaseURL, slices.Concat(loopbackFlags, []string{
		"--delivery-timeout", "2s", "--workers", strconv.Itoa(workers), "--retry-schedule", "0s,500ms,1s",
	})...)
	auth := authHeader(key)
	webhooks := make([]consumer, len(receivers))
	for i, r := range receivers {
		webhooks[i] = createConsumer(ctx, t, client, procs[0].url, auth, r.url)
	}

	pub := newClusterPublisher(client, procs, auth, scaleOutEvents/3)
	published := make(chan []error, 1)
	go func() { published <- pub.run(ctx, scaleUnits("restart", scaleOutEvents, 20), 6) }()
	select {
	case <-pub.reached:
	case <-ctx.Done():
		t.Fatalf("wait for %d acknowledged events: %v", scaleOutEvents/3, ctx.Err())
	}

	server.stop(ctx, t)
	stoppedAt := time.Now()
	ackedAtStop, _ := pub.log.snapshot()
	for i, p := range procs {
		if status, body := send(ctx, t, client, http.MethodGet, p.url+"/readyz", "", ""); status != http.StatusServiceUnavailable {
			t.Errorf("server %d: GET /readyz while PostgreSQL is down: status %d, want 503; body %s", i, status, body)
		}
		status, retryAfter, body := sendWithRetryAfter(ctx, t, client, p.url+"/events", auth, codatEvent(fmt.Sprintf("probe-%d", i)))
		if status != http.StatusServiceUnavailable {
			t.Errorf("server %d: POST /events while PostgreSQL is down: status %d, want 503; body %s", i, status, body)
		}
		if retryAfter == "" {
			t.Errorf("server %d: POST /events while PostgreSQL is down: no Retry-After header, want one", i)
		}
	}
	// Delivery pauses: each server logs its first failed claim, or, when every worker is
	// busy and no claim runs, its first result that it could not record.
	paused := make([][]string, len(procs))
	for i, p := range procs {
		p.waitOutput(ctx, t, p.stderr, "a failed claim or record", func(text string) bool {
			paused[i] = failedOperations(text)
			return len(paused[i]) > 0
		})
	}
	if !poll(ctx, time.Millisecond, func() bool { return pub.unavailable.Load() > 0 }) {
		t.Fatalf("wait for a publish request that gets 503: %v", ctx.Err())
	}
	for i := range procs {
		t.Logf("server %d paused: %s failed", i, strings.Join(paused[i], " and "))
	}
	// The outage lasts long enough for several retries of each failed claim and record.
	select {
	case <-time.After(time.Until(stoppedAt.Add(outage))):
	case <-ctx.Done():
		t.Fatalf("wait for the end of the outage: %v", ctx.Err())
	}

	server.start(ctx, t)
	restartedAt := time.Now()
	t.Logf("PostgreSQL was down for %s, after %d acknowledged events", time.Since(stoppedAt).Round(time.Millisecond), ackedAtStop)

	// Delivery resumes by itself: each operation that failed succeeds again.
	for i, p := range procs {
		for _, op := range paused[i] {
			p.waitLog(ctx, t, op+" succeeded again")
		}
	}
	for i, p := range procs {
		if status, body := send(ctx, t, client, http.MethodGet, p.url+"/readyz", "", ""); status != http.StatusOK {
			t.Errorf("server %d: GET /readyz after PostgreSQL restarted: status %d, want 200; body %s", i, status, body)
		}
	}

	var errs []error
	select {
	case errs = <-published:
	case <-ctx.Done():
		t.Fatalf("wait for the publishers: %v", ctx.Err())
	}
	if len(errs) > 0 {
		t.Fatalf("publish: %d requests failed, first: %v", len(errs), errs[0])
	}
	ids := pub.log.ids()
	if len(ids) != scaleOutEvents {
		t.Fatalf("acknowledged events = %d, want %d", len(ids), scaleOutEvents)
	}
	t.Logf("all %d events acknowledged %s after the restart", len(ids), time.Since(restartedAt).Round(time.Millisecond))
	t.Logf("publish requests sent again: %d after 503, %d after no response", pub.unavailable.Load(), pub.connErrors.Load())

	waitDelivered(ctx, t, client, procs[0].url, auth, receivers, webhooks, ids)

	// The workers keep a result that they could not record and record it once PostgreSQL
	// is back, so every request that a receiver got is in the attempt log. A duplicate
	// comes from a retry after a failed attempt, or from a lease that expired while the
	// result waited. Both need an attempt in flight at the fault.
	duplicates, unrecorded := countDuplicates(ctx, t, client, procs[0].url, auth, receivers, webhooks, ids)
	t.Logf("%d duplicate deliveries, %d missing from the attempt log", duplicates, unrecorded)
	if unrecorded != 0 {
		t.Errorf("deliveries missing from the attempt log = %d, want 0", unrecorded)
	}
	if limit := clusterSize * workers; duplicates > limit {
		t.Errorf("duplicate deliveries = %d, want at most %d, the attempts that can be in flight on %d servers", duplicates, limit, clusterSize)
	}

	// A run of failures is logged when it starts and when it ends. Each worker retries its
	// record once a second, so a line per retry would make dozens in this outage.
	for i, p := range procs {
		lines := 0
		for line := range strings.Lines(p.stderr.String()) {
			if strings.Contains(line, `"msg":"claim deliveries`) || strings.Contains(line, `"msg":"record attempt`) {
				lines++
			}
		}
		t.Logf("server %d: %d log lines about failed claims and records", i, lines)
		if lines > 10 {
			t.Errorf("server %d wrote %d log lines about failed claims and records, want at most 10", i, lines)
		}
	}
	stopCluster(t, procs)
}

func TestScaleOutConsumerLimit(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(t.Context(), scaleOutTimeout)
	defer cancel()
	databaseURL := pgtest.NewDatabase(t)
	client := newHTTPClient(t)

	procs, key := startCluster(ctx, t, databaseURL)
	auth := authHeader(key)

	const creates = 100
	statuses := make([]int, creates)
	bodies := make([]string, creates)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range creates {
		wg.Go(func() {
			<-start
			body := fmt.Sprintf(`{"url":"https://receiver.example/hook-%d","eventTypes":["company.created"]}`, i)
			req, err := http.NewRequestWithContext(ctx, http.MethodPost, procs[i%len(procs)].url+"/webhooks", strings.NewReader(body))
			if err != nil {
				bodies[i] = err.Error()
				return
			}
			req.Header.Set("Authorization", auth)
			req.Header.Set("Content-Type", "application/json")
			statuses[i], bodies[i] = doRequest(client, req)
		})
	}
	close(start)
	wg.Wait()

	created, rejected := 0, 0
	for i, status := range statuses {
		switch status {
		case http.StatusCreated:
			created++
		case http.StatusBadRequest:
			rejected++
			if msg := validationItem(t, bodies[i], "body"); !strings.Contains(msg, "maximum of 50") {
				t.Errorf("create %d: validation message %q, want the 50-consumer limit", i, msg)
			}
		default:
			t.Errorf("create %d on server %d: status %d, want 201 or 400; body %s", i, i%len(procs), status, bodies[i])
		}
	}
	if created != 50 || rejected != creates-50 {
		t.Errorf("of %d parallel creates on %d servers: %d created and %d rejected, want 50 and %d", creates, len(procs), created, rejected, creates-50)
	}
	for i, p := range procs {
		if got := listConsumers(ctx, t, client, p.url, auth); len(got) != 50 {
			t.Errorf("server %d: GET /webhooks lists %d consumers, want 50", i, len(got))
		}
	}
	stopCluster(t, procs)
}

func TestPostgresCommands(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	client := newHTTPClient(t)

	// The test server trusts every connection from 127.0.0.1, so a password in the URL is
	// ignored, and the test can check that no output shows it.
	const password = "s3cret-in-url"
	u, err := url.Parse(pgtest.NewDatabase(t))
	if err != nil {
		t.Fatal(err)
	}
	u.User = url.UserPassword(u.User.Username(), password)
	databaseURL := u.String()
	wantLocation := "postgres://" + u.User.Username() + "@" + u.Host + u.Path

	p := startServePostgres(ctx, t, databaseURL)
	if rec := p.waitLog(ctx, t, "hookd started"); rec["database"] != wantLocation {
		t.Errorf("hookd started log database = %v, want %s", rec["database"], wantLocation)
	}
	defaultAuth := authHeader(firstKey(ctx, t, p))

	out := runOK(ctx, t, "keys", "create", "--client", "alice", "--database", databaseURL)
	aliceKey := lastLine(out)
	match := keyPattern.FindStringSubmatch(aliceKey)
	if match == nil {
		t.Fatalf("keys create: last stdout line = %q, want the raw key alone; stdout:\n%s", aliceKey, out)
	}
	aliceKeyID := match[1]
	if !strings.Contains(out, " in "+wantLocation+".") {
		t.Errorf("keys create stdout does not name the database %s:\n%s", wantLocation, out)
	}
	if status, body := send(ctx, t, client, http.MethodPost, p.url+"/webhooks", authHeader(aliceKey), consumerBody); status != http.StatusCreated {
		t.Errorf("POST /webhooks with the key from keys create --database: status %d, want 201; body %s", status, body)
	}

	// HOOKD_DATABASE_URL takes the place of --database.
	stdout, stderr, code := runHookd(ctx, t, hookdEnv("HOOKD_DATABASE_URL="+databaseURL), "keys", "create", "--client", "alice", "--read-only")
	if code != 0 {
		t.Fatalf("keys create with HOOKD_DATABASE_URL: exit code %d, want 0; stderr:\n%s", code, stderr)
	}
	out += stdout + stderr
	readKey := lastLine(stdout)
	if status, body := send(ctx, t, client, http.MethodGet, p.url+"/webhooks", authHeader(readKey), ""); status != http.StatusOK {
		t.Errorf("GET /webhooks with the read-only key from HOOKD_DATABASE_URL: status %d, want 200; body %s", status, body)
	}

	list := runOK(ctx, t, "keys", "list", "--database", databaseURL)
	out += list
	if row := keyRow(list, aliceKeyID); row == nil || row[1] != "alice" {
		t.Errorf("keys list --database: row of key %s = %q, want client alice:\n%s", aliceKeyID, row, list)
	}

	out += runOK(ctx, t, "clients", "suspend", "alice", "--database", databaseURL)
	if status, body := send(ctx, t, client, http.MethodGet, p.url+"/webhooks", authHeader(aliceKey), ""); status != http.StatusPaymentRequired {
		t.Errorf("GET /webhooks as suspended alice: status %d, want 402; body %s", status, body)
	}
	out += runOK(ctx, t, "clients", "resume", "alice", "--database", databaseURL)
	if status, body := send(ctx, t, client, http.MethodGet, p.url+"/webhooks", authHeader(aliceKey), ""); status != http.StatusOK {
		t.Errorf("GET /webhooks as resumed alice: status %d, want 200; body %s", status, body)
	}

	out += runOK(ctx, t, "keys", "revoke", aliceKeyID, "--database", databaseURL)
	if status, body := send(ctx, t, client, http.MethodGet, p.url+"/webhooks", authHeader(aliceKey), ""); status != http.StatusUnauthorized {
		t.Errorf("GET /webhooks with the revoked key: status %d, want 401; body %s", status, body)
	}
	if status, body := send(ctx, t, client, http.MethodGet, p.url+"/webhooks", defaultAuth, ""); status != http.StatusOK {
		t.Errorf("GET /webhooks with the default key: status %d, want 200; body %s", status, body)
	}

	stopServe(t, p)
	for name, text := range map[string]string{"serve stdout": p.stdout.String(), "serve stderr": p.stderr.String(), "command output": out} {
		if strings.Contains(text, password) {
			t.Errorf("%s contains the database password:\n%s", name, text)
		}
	}
}

func TestServeDatabaseFlags(t *testing.T) {
	t.Parallel()
	const password = "s3cret-in-url"
	closed := "postgres://hookd:" + password + "@" + closedAddress(t) + "/hookd?sslmode=disable"
	dataDir := t.TempDir()
	tests := []struct {
		name string
		args []string
		env  []string
		want string // text the error message must contain
	}{
		{"serve data and database", []string{"serve", "--data", dataDir, "--database", closed}, nil, "both --data"},
		{"serve database and data env", []string{"serve", "--database", closed}, []string{"HOOKD_DATA=" + dataDir}, "both --data"},
		{"keys data env and database env", []string{"keys", "list"}, []string{"HOOKD_DATA=" + dataDir, "HOOKD_DATABASE_URL=" + closed}, "both --data"},
		{"clients data and database", []string{"clients", "suspend", "alice", "--data", dataDir, "--database", closed}, nil, "both --data"},
		{"max conns without database", []string{"serve", "--data", dataDir, "--database-max-conns", "4"}, nil, "--database-max-conns applies only"},
		{"negative max conns", []string{"serve", "--database", closed, "--database-max-conns", "-1"}, nil, "invalid --database-max-conns"},
		{"invalid pool size", []string{"serve", "--database", closed + "&pool_max_conns=many"}, nil, "invalid database URL"},
		{"unreachable", []string{"keys", "list", "--database", closed}, nil, "store unavailable"},
		{"unreachable serve", []string{"serve", "--database", closed}, nil, "open PostgreSQL store at postgres://hookd@"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ctx := testContext(t)
			args := tt.args
			if args[0] == "serve" {
				args = append(slices.Clone(args), "--addr", "127.0.0.1:0")
			}
			stdout, stderr, code := runHookd(ctx, t, hookdEnv(tt.env...), args...)
			if code == 0 {
				t.Errorf("hookd %s exited with 0, want an error; stdout:\n%s", strings.Join(tt.args, " "), stdout)
			}
			if !strings.Contains(stderr, tt.want) {
				t.Errorf("hookd %s stderr = %q, want it to contain %q", strings.Join(tt.args, " "), stderr, tt.want)
			}
			if strings.Contains(stdout+stderr, password) {
				t.Errorf("hookd %s output contains the database password:\n%s%s", strings.Join(tt.args, " "), stdout, stderr)
			}
		})
	}
	if entries, err := os.ReadDir(dataDir); err != nil || len(entries) != 0 {
		t.Errorf("data folder %s after the rejected commands: %d entries, error %v; want it empty", dataDir, len(entries), err)
	}
}

// failedOperations returns the store operations of the delivery engine, "claim
// deliveries" and "record attempt", that a server's JSON log shows as failing.
func failedOperations(text string) []string {
	var ops []string
	for _, op := range []string{"claim deliveries", "record attempt"} {
		if _, ok := logRecord(text, op+" failed; retrying until the store is available"); ok {
			ops = append(ops, op)
		}
	}
	return ops
}

// closedAddress returns a 127.0.0.1 address that nothing listens on.
func closedAddress(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// startServePostgres starts hookd serve on the PostgreSQL database at databaseURL, on a
// free loopback port with JSON logs and the extra flags, and waits until it has logged
// its base URL.
func startServePostgres(ctx context.Context, t *testing.T, databaseURL string, extra ...string) *hookdProcess {
	t.Helper()
	p := startHookd(ctx, t, hookdEnv(), serveArgs(databaseURL, extra)...)
	waitServing(ctx, t, p)
	return p
}

func serveArgs(databaseURL string, extra []string) []string {
	return slices.Concat([]string{"serve", "--database", databaseURL, "--addr", "127.0.0.1:0", "--log-format", "json"}, extra)
}

// waitServing waits for the "hookd started" line of a server on PostgreSQL and sets p.url.
func waitServing(ctx context.Context, t *testing.T, p *hookdProcess) {
	t.Helper()
	rec := p.waitLog(ctx, t, "hookd started")
	if rec["store"] != "postgres" {
		t.Errorf("hookd started log store = %v, want postgres", rec["store"])
	}
	u, _ := rec["url"].(string)
	if !strings.HasPrefix(u, "http://127.0.0.1:") {
		t.Fatalf("hookd started log url = %q, want http://127.0.0.1:PORT", u)
	}
	p.url = u
}

// startCluster starts clusterSize servers on one empty database at the same moment and
// returns them with the API key of the default client, which exactly one of them prints.
func startCluster(ctx context.Context, t *testing.T, databaseURL string, extra ...string) ([]*hookdProcess, string) {
	t.Helper()
	procs := make([]*hookdProcess, clusterSize)
	for i := range procs {
		procs[i] = startHookd(ctx, t, hookdEnv(), serveArgs(databaseURL, extra)...)
	}
	for _, p := range procs {
		waitServing(ctx, t, p)
	}

	var key string
	if !poll(ctx, time.Millisecond, func() bool {
		for _, p := range procs {
			if m := bannerKeyLine.FindStringSubmatch(p.stdout.String()); m != nil {
				key = m[1]
				return true
			}
		}
		return false
	}) {
		t.Fatalf("wait for the key banner of one of %d servers: %v", len(procs), ctx.Err())
	}
	return procs, key
}

// stopCluster stops the servers with SIGTERM, checks that each exits with 0, and checks
// that at most one of them printed the key banner. The check waits for the end of the
// processes, because only then is their output complete.
func stopCluster(t *testing.T, procs []*hookdProcess) {
	t.Helper()
	for _, p := range procs {
		if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
			t.Errorf("send SIGTERM to hookd: %v", err)
		}
	}
	banners := 0
	for i, p := range procs {
		<-p.exited
		if code := p.cmd.ProcessState.ExitCode(); code != 0 {
			t.Errorf("server %d: exit code after SIGTERM = %d, want 0", i, code)
		}
		if bannerKeyLine.MatchString(p.stdout.String()) {
			banners++
		}
	}
	if banners > 1 {
		t.Errorf("%d servers printed the key banner, want exactly one", banners)
	}
}

// scaleUnits splits total event ids with the prefix into publish requests: batches of
// batchSize events alternate with single events.
func scaleUnits(prefix string, total, batchSize int) [][]string {
	var units [][]string
	for n := 0; n < total; {
		size := 1
		if len(units)%2 == 0 {
			size = min(batchSize, total-n)
		}
		unit := make([]string, size)
		for i := range unit {
			unit[i] = fmt.Sprintf("%s-%05d", prefix, n+i)
		}
		units = append(units, unit)
		n += size
	}
	return units
}

// clusterPublisher publishes events round-robin across servers. A request that gets 503
// or no response goes again, with the same event ids, to the next server that is up, as
// a client behind a load balancer would send it. A server returns the stored event for an
// id it already has, so a request that was committed but not acknowledged adds no second
// message.
type clusterPublisher struct {
	client *http.Client
	auth   string
	urls   []string
	up     []atomic.Bool

	log       *publishLog
	threshold int           // acknowledged events that close reached, or 0 to never close it
	reached   chan struct{} // closed once threshold events are acknowledged
	reachOnce sync.Once

	unavailable atomic.Int64 // responses with status 503
	connErrors  atomic.Int64 // requests without a response
}

func newClusterPublisher(client *http.Client, procs []*hookdProcess, auth string, threshold int) *clusterPublisher {
	c := &clusterPublisher{
		client:    client,
		auth:      auth,
		up:        make([]atomic.Bool, len(procs)),
		log:       &publishLog{acked: map[string]bool{}},
		threshold: threshold,
		reached:   make(chan struct{}),
	}
	for i, p := range procs {
		c.urls = append(c.urls, p.url)
		c.up[i].Store(true)
	}
	return c
}

// down takes server i out of the rotation.
func (c *clusterPublisher) down(i int) {
	c.up[i].Store(false)
}

// run publishes units from the given number of goroutines, unit i first to server i modulo
// the number of servers. It returns the errors that no retry can fix: a status other than
// 202 and 503, or the end of ctx.
func (c *clusterPublisher) run(ctx context.Context, units [][]string, publishers int) []error {
	var (
		next atomic.Int64
		mu   sync.Mutex
		errs []error
		wg   sync.WaitGroup
	)
	for range publishers {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= len(units) {
					return
				}
				if err := c.publish(ctx, i, units[i]); err != nil {
					mu.Lock()
					errs = append(errs, err)
					mu.Unlock()
					return
				}
			}
		})
	}
	wg.Wait()
	return errs
}

// publish sends one unit until a server acknowledges it.
func (c *clusterPublisher) publish(ctx context.Context, i int, unit []string) error {
	for attempt := 0; ; attempt++ {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("publish %s: %w", unit[0], err)
		}
		target := (i + attempt) % len(c.urls)
		if !c.up[target].Load() {
			continue
		}

		err := publishUnit(ctx, c.client, c.urls[target], c.auth, unit)
		var se *statusError
		switch {
		case err == nil:
			if c.log.ack(unit) >= c.threshold && c.threshold > 0 {
				c.reachOnce.Do(func() { close(c.reached) })
			}
			return nil
		case errors.As(err, &se) && se.status == http.StatusServiceUnavailable:
			c.unavailable.Add(1)
		case errors.As(err, &se):
			return fmt.Errorf("publish %d events starting with %s to %s: %w", len(unit), unit[0], c.urls[target], err)
		case ctx.Err() != nil:
			return fmt.Errorf("publish %s: %w", unit[0], ctx.Err())
		default:
			c.connErrors.Add(1)
		}

		select {
		case <-ctx.Done():
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// waitDelivered waits until every receiver has every event of ids and no consumer has
// messages waiting, so that redeliveries have arrived and their attempts are recorded.
func waitDelivered(ctx context.Context, t *testing.T, client *http.Client, baseURL, auth string, receivers []*receiver, webhooks []consumer, ids []string) {
	t.Helper()
	ok := poll(ctx, 50*time.Millisecond, func() bool {
		for _, r := range receivers {
			if r.missing(ids, 1) != nil {
				return false
			}
		}
		for _, w := range webhooks {
			if pendingMessages(ctx, t, client, baseURL, auth, w.ID) {
				return false
			}
		}
		return true
	})
	if ok {
		return
	}
	for i, r := range receivers {
		if missing := r.missing(ids, 5); missing != nil {
			t.Errorf("receiver %d is missing %d acknowledged events, for example %q", i, len(r.missing(ids, len(ids))), missing)
		}
	}
	t.Fatalf("wait for every event at every receiver: %v", ctx.Err())
}

// countDuplicates returns the requests beyond the first for each event at the receivers,
// and how many of them the attempt log does not show: attempts whose result was never
// recorded. It also fails the test for received ids that were never published.
func countDuplicates(ctx context.Context, t *testing.T, client *http.Client, baseURL, auth string, receivers []*receiver, webhooks []consumer, ids []string) (duplicates, unrecorded int) {
	t.Helper()
	for i, r := range receivers {
		requests, distinct := r.stats()
		duplicates += requests - distinct
		for id, n := range r.repeated() {
			logged := 0
			for _, a := range listAttempts(ctx, t, client, baseURL, auth, id) {
				if a.WebhookID == webhooks[i].ID {
					logged++
				}
			}
			unrecorded += max(n-logged, 0)
		}
		if unknown := r.unknown(ids); len(unknown) > 0 {
			t.Errorf("receiver %d got %d ids that were never acknowledged, for example %q", i, len(unknown), unknown[0])
		}
	}
	return duplicates, unrecorded
}

// deliveredBy returns the number of successful attempts that a server has made.
func deliveredBy(ctx context.Context, t *testing.T, client *http.Client, baseURL string) int {
	t.Helper()
	return metricSum(ctx, t, client, baseURL, `hookd_deliveries_total{outcome="success"`)
}

// metricSum returns the sum of the samples of GET /metrics whose line starts with prefix.
func metricSum(ctx context.Context, t *testing.T, client *http.Client, baseURL, prefix string) int {
	t.Helper()
	status, body := send(ctx, t, client, http.MethodGet, baseURL+"/metrics", "", "")
	if status != http.StatusOK {
		t.Fatalf("GET %s/metrics: status %d, want 200; body %s", baseURL, status, body)
	}
	sum := 0
	scanner := bufio.NewScanner(strings.NewReader(body))
	for scanner.Scan() {
		line := scanner.Text()
		if !strings.HasPrefix(line, prefix) {
			continue
		}
		fields := strings.Fields(line)
		v, err := strconv.ParseFloat(fields[len(fields)-1], 64)
		if err != nil {
			t.Fatalf("GET %s/metrics: sample %q: %v", baseURL, line, err)
		}
		sum += int(v)
	}
	return sum
}

// sendWithRetryAfter sends a POST and returns the status, the Retry-After header and the
// body. A request without a response fails the test.
func sendWithRetryAfter(ctx context.Context, t *testing.T, client *http.Client, u, auth, body string) (int, string, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", auth)
	req.Header.Set("Content-Type", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("POST %s: %v", u, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header.Get("Retry-After"), string(b)
}

// doRequest sends a request and returns the status and body, or status 0 and the error. It may
// run outside the test goroutine.
func doRequest(client *http.Client, req *http.Request) (int, string) {
	resp, err := client.Do(req)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, err.Error()
	}
	return resp.StatusCode, string(b)
}

// postgresServer is a PostgreSQL server of one test, which the test may stop and start.
// scripts/postgres creates and first starts it, and stops it when the test ends.
type postgresServer struct {
	script string // path of scripts/postgres
	dir    string // the server's folder: data, port and postgres.log
	url    string // URL of the postgres database
	port   string
}

// startPostgresServer starts a throwaway server with scripts/postgres on a free port of
// 127.0.0.1.
func startPostgresServer(ctx context.Context, t *testing.T) *postgresServer {
	t.Helper()
	script, err := filepath.Abs(filepath.Join("..", "..", "scripts", "postgres"))
	if err != nil {
		t.Fatal(err)
	}
	// The folder is created directly in the temporary folder, because the postgres user,
	// which runs the server when the tests run as root, cannot enter t.TempDir().
	dir, err := os.MkdirTemp("", "hookd-pg-")
	if err != nil {
		t.Fatal(err)
	}
	s := &postgresServer{script: script, dir: dir}
	t.Cleanup(func() {
		if out, err := s.command(context.Background(), "stop").CombinedOutput(); err != nil {
			t.Errorf("scripts/postgres stop %s: %v\n%s", dir, err, out)
		}
		os.RemoveAll(dir)
	})

	out, err := s.command(ctx, "start").Output()
	if err != nil {
		var stderr []byte
		if exitErr, ok := err.(*exec.ExitError); ok {
			stderr = exitErr.Stderr
		}
		t.Fatalf("scripts/postgres start %s: %v\n%s", dir, err, stderr)
	}
	m := regexp.MustCompile(`HOOKD_TEST_DATABASE_URL=(\S+)`).FindSubmatch(out)
	if m == nil {
		t.Fatalf("scripts/postgres start printed %q, want HOOKD_TEST_DATABASE_URL=URL", out)
	}
	s.url = string(m[1])
	port, err := os.ReadFile(filepath.Join(dir, "port"))
	if err != nil {
		t.Fatalf("read the port of the test server: %v", err)
	}
	s.port = strings.TrimSpace(string(port))
	return s
}

// command returns scripts/postgres with the action and the server's folder. PGPORT is
// left out of its environment, so that the script picks a free port.
func (s *postgresServer) command(ctx context.Context, action string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, s.script, action, s.dir)
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "PGPORT=") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	return cmd
}

// createDatabase creates a database on the server and returns its URL.
func (s *postgresServer) createDatabase(ctx context.Context, t *testing.T, name string) string {
	t.Helper()
	conn, err := pgx.Connect(ctx, s.url)
	if err != nil {
		t.Fatalf("connect to the test server: %v", err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()); err != nil {
		t.Fatalf("create database %s: %v", name, err)
	}
	u, err := url.Parse(s.url)
	if err != nil {
		t.Fatal(err)
	}
	u.Path = "/" + name
	return u.String()
}

// stop stops the server, ending its connections, and waits until it has stopped.
func (s *postgresServer) stop(ctx context.Context, t *testing.T) {
	t.Helper()
	if out, err := s.command(ctx, "stop").CombinedOutput(); err != nil {
		t.Fatalf("scripts/postgres stop %s: %v\n%s", s.dir, err, out)
	}
}

// start starts the stopped server again on its port. scripts/postgres start creates a new
// cluster, so this runs pg_ctl itself, as the script does: as the postgres user when the
// test runs as root.
func (s *postgresServer) start(ctx context.Context, t *testing.T) {
	t.Helper()
	bins, _ := filepath.Glob("/usr/lib/postgresql/*/bin/pg_ctl")
	slices.SortFunc(bins, func(a, b string) int { return majorVersion(a) - majorVersion(b) })
	if len(bins) == 0 {
		t.Fatal("pg_ctl not found under /usr/lib/postgresql/*/bin")
	}
	args := []string{bins[len(bins)-1], "--pgdata=" + filepath.Join(s.dir, "data"), "--log=" + filepath.Join(s.dir, "postgres.log"),
		"--wait", "--timeout=30", "--options=-p " + s.port, "start"}
	if os.Getuid() == 0 {
		args = append([]string{"runuser", "-u", "postgres", "--"}, args...)
	}
	if out, err := exec.CommandContext(ctx, args[0], args[1:]...).CombinedOutput(); err != nil {
		t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// majorVersion returns the version in /usr/lib/postgresql/VERSION/bin/pg_ctl, or 0.
func majorVersion(path string) int {
	v, _ := strconv.Atoi(filepath.Base(filepath.Dir(filepath.Dir(path))))
	return v
}
