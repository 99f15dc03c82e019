package bench

import (
	"encoding/json"
	"io"
	"math"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeHookd is a publish API on loopback that responds with status and records the event
// ids of every request.
type fakeHookd struct {
	*httptest.Server
	mu       sync.Mutex
	ids      []string
	requests map[string]int // by path
	auth     []string
	status   int
}

func newFakeHookd(t *testing.T, status int) *fakeHookd {
	t.Helper()
	f := &fakeHookd{requests: map[string]int{}, status: status}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f.Server = &httptest.Server{Listener: ln, Config: &http.Server{Handler: http.HandlerFunc(f.serve)}}
	f.Start()
	t.Cleanup(f.Close)
	return f
}

func (f *fakeHookd) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)

	var events []json.RawMessage
	if r.URL.Path == "/events/batch" {
		var batch struct{ Events []json.RawMessage }
		if err := json.Unmarshal(body, &batch); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		events = batch.Events
	} else {
		events = []json.RawMessage{body}
	}

	var ids []string
	for _, raw := range events {
		var e struct {
			ID        string          `json:"id"`
			EventType string          `json:"eventType"`
			Payload   json.RawMessage `json:"payload"`
		}
		if err := json.Unmarshal(raw, &e); err != nil || e.EventType != eventType || len(e.Payload) == 0 {
			http.Error(w, "bad event "+string(raw), http.StatusBadRequest)
			return
		}
		ids = append(ids, e.ID)
	}

	f.mu.Lock()
	f.ids = append(f.ids, ids...)
	f.requests[r.URL.Path]++
	f.auth = append(f.auth, r.Header.Get("Authorization"))
	f.mu.Unlock()
	w.WriteHeader(f.status)
	io.WriteString(w, `{"answer":"fake"}`)
}

func testPublisher(c clock, url string) *publisher {
	return &publisher{clock: c, client: newHTTPClient(4), urls: []string{url}, auth: "Basic test", payload: makePayload(100)}
}

func TestPublisherModes(t *testing.T) {
	tests := []struct {
		name         string
		spec         loadSpec
		wantEvents   int
		wantRequests map[string]int
	}{
		{"single", loadSpec{mode: modeSingle, count: 20, duration: time.Minute, publishers: 4}, 20, map[string]int{"/events": 20}},
		{"batch with a partial last request", loadSpec{mode: modeBatch, batch: 7, count: 20, duration: time.Minute, publishers: 3}, 20,
			map[string]int{"/events/batch": 3}},
		{"paced bounded by duration", loadSpec{mode: modePaced, rate: 100, count: 1000, duration: 100 * time.Millisecond, publishers: 2}, 10,
			map[string]int{"/events": 10}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fake := newFakeHookd(t, http.StatusAccepted)
			c := newClock()
			p := testPublisher(c, fake.URL)
			tr := newTracker("p1", c, tt.spec.count, []bool{true})
			sent := newTimeline(tt.spec.count)

			out := p.run(t.Context(), tr, sent, tt.spec)
			if out.handedOut != tt.wantEvents {
				t.Errorf("handedOut = %d, want %d", out.handedOut, tt.wantEvents)
			}
			if got := out.accepted.Load(); got != int64(tt.wantEvents) {
				t.Errorf("accepted = %d, want %d", got, tt.wantEvents)
			}
			if out.rejected.Load()+out.failed.Load() != 0 || out.firstError.Load() != nil {
				t.Errorf("rejected %d, failed %d, first error %v; want none", out.rejected.Load(), out.failed.Load(), out.firstError.Load())
			}
			fake.mu.Lock()
			defer fake.mu.Unlock()
			for path, want := range tt.wantRequests {
				if got := fake.requests[path]; got != want {
					t.Errorf("requests to %s = %d, want %d", path, got, want)
				}
			}
			seen := map[string]bool{}
			for _, id := range fake.ids {
				seen[id] = true
			}
			for i := range tt.wantEvents {
				if !seen[tr.messageID(i)] {
					t.Errorf("event %s was not published", tr.messageID(i))
				}
				if sent.get(i) == 0 {
					t.Errorf("no send time for event %d", i)
				}
			}
			if len(fake.ids) != tt.wantEvents {
				t.Errorf("published %d events, want %d", len(fake.ids), tt.wantEvents)
			}
			if fake.auth[0] != "Basic test" {
				t.Errorf("Authorization = %q, want %q", fake.auth[0], "Basic test")
			}
		})
	}
}

func TestPublisherRejected(t *testing.T) {
	fake := newFakeHookd(t, http.StatusServiceUnavailable)
	c := newClock()
	p := testPublisher(c, fake.URL)
	tr := newTracker("p1", c, 10, []bool{true})
	out := p.run(t.Context(), tr, newTimeline(10), loadSpec{mode: modeBatch, batch: 5, count: 10, duration: time.Minute, publishers: 1})

	if got := out.rejected.Load(); got != 10 {
		t.Errorf("rejected = %d, want 10", got)
	}
	if got := out.accepted.Load(); got != 0 {
		t.Errorf("accepted = %d, want 0", got)
	}
	if e := out.firstError.Load(); e == nil || !strings.Contains(*e, "status 503") {
		t.Errorf("first error = %v, want one with status 503", e)
	}
}

func TestPublisherUnreachable(t *testing.T) {
	// A port that was just free refuses connections.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	url := "http://" + ln.Addr().String()
	ln.Close()

	c := newClock()
	out := testPublisher(c, url).run(t.Context(), newTracker("p1", c, 3, []bool{true}), newTimeline(3),
		loadSpec{mode: modeSingle, count: 3, duration: time.Minute, publishers: 1})
	if got := out.failed.Load(); got != 3 {
		t.Errorf("failed = %d, want 3", got)
	}
	if out.firstError.Load() == nil {
		t.Errorf("no first error for refused connections")
	}
}

func TestRunCeiling(t *testing.T) {
	rcvs, current, c := testReceivers(t, 3)
	tr := newTracker("p1", c, 4, []bool{true, true, true})
	current.Store(tr)
	client := newHTTPClient(4)

	out := runCeiling(t.Context(), client, rcvs, tr, makePayload(100), ceilingSpec{requests: 12, concurrency: 4, duration: time.Minute})
	if got := out.accepted.Load(); got != 12 {
		t.Fatalf("accepted = %d, want 12 (first error %v)", got, out.firstError.Load())
	}
	if got := tr.received.Load(); got != 12 {
		t.Errorf("received = %d, want 12", got)
	}
	for k := range rcvs {
		for i := range 4 {
			if tr.arrivals[k].get(i) == 0 {
				t.Errorf("receiver %d got no event %d", k, i)
			}
		}
	}
}

func TestMakePayload(t *testing.T) {
	for _, size := range []int{minPayloadBytes, 100, 1024, 64 << 10} {
		p := makePayload(size)
		if len(p) != size {
			t.Errorf("makePayload(%d) is %d bytes long", size, len(p))
		}
		var v map[string]any
		if err := json.Unmarshal(p, &v); err != nil {
			t.Errorf("makePayload(%d) is not a JSON object: %v", size, err)
		}
	}
}

func TestScrapeQueueDepth(t *testing.T) {
	tests := []struct {
		name          string
		body          string
		status        int
		due, schedule int64
		wantErr       bool
	}{
		{"both", "# HELP hookd_queue_depth x\nhookd_queue_depth{state=\"due\"} 1.5e+06\nhookd_queue_depth{state=\"scheduled\"} 8\n", 200, 1_500_000, 8, false},
		{"missing", "go_goroutines 12\n", 200, 0, 0, true},
		{"not found", "404 page not found", 404, 0, 0, true},
		{"bad value", "hookd_queue_depth{state=\"due\"} many\nhookd_queue_depth{state=\"scheduled\"} 8\n", 200, 0, 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			srv := &httptest.Server{Listener: ln, Config: &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.URL.Path != "/metrics" {
					http.NotFound(w, r)
					return
				}
				w.WriteHeader(tt.status)
				io.WriteString(w, tt.body)
			})}}
			srv.Start()
			defer srv.Close()

			due, scheduled, err := scrapeQueueDepth(t.Context(), newHTTPClient(1), srv.URL)
			if (err != nil) != tt.wantErr {
				t.Fatalf("scrapeQueueDepth error = %v, want error %v", err, tt.wantErr)
			}
			if due != tt.due || scheduled != tt.schedule {
				t.Errorf("scrapeQueueDepth = %d due, %d scheduled; want %d, %d", due, scheduled, tt.due, tt.schedule)
			}
		})
	}
}

func TestCommitStats(t *testing.T) {
	before := metricValues{
		`hookd_store_commit_duration_seconds_count{operation="publish"}`: 10,
		`hookd_store_commit_duration_seconds_sum{operation="publish"}`:   0.5,
		`hookd_store_commit_batch_size_sum{operation="publish"}`:         40,
	}
	after := metricValues{
		`hookd_store_commit_duration_seconds_count{operation="publish"}`: 110,
		`hookd_store_commit_duration_seconds_sum{operation="publish"}`:   0.7,
		`hookd_store_commit_batch_size_sum{operation="publish"}`:         440,
	}
	got := commitStats(before, after)
	want := []CommitStats{
		{Operation: "publish", Commits: 100, Items: 400, CommitSeconds: 0.2, ItemsPerCommit: 4, MeanCommitMs: 2},
		{Operation: "record"},
	}
	if len(got) != len(want) {
		t.Fatalf("commitStats = %+v, want %+v", got, want)
	}
	for i := range want {
		g, w := got[i], want[i]
		if g.Operation != w.Operation || g.Commits != w.Commits || g.Items != w.Items || g.ItemsPerCommit != w.ItemsPerCommit ||
			math.Abs(g.CommitSeconds-w.CommitSeconds) > 1e-9 || math.Abs(g.MeanCommitMs-w.MeanCommitMs) > 1e-9 {
			t.Errorf("commitStats[%d] = %+v, want %+v", i, g, w)
		}
	}
}
