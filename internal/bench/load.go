package bench

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hookd/hookd/signature"
)

// eventType is the event type of every published event and of every consumer's
// subscription.
const eventType = "bench.event"

// requestTimeout bounds one publish or ceiling request.
const requestTimeout = time.Minute

// Publishing modes of a phase.
const (
	modeSingle = "single" // POST /events, as fast as the publishers go
	modeBatch  = "batch"  // POST /events/batch, as fast as the publishers go
	modePaced  = "paced"  // POST /events at a fixed rate
)

// loadSpec describes the publishing of one phase. It ends after count events or when
// duration has passed, whichever comes first.
type loadSpec struct {
	mode       string
	batch      int     // events per request in modeBatch
	rate       float64 // events per second in modePaced
	count      int
	duration   time.Duration
	publishers int
}

// publishOutcome counts what the publishers sent and how hookd responded.
type publishOutcome struct {
	handedOut  int // event indexes 0 to handedOut-1 were given to publishers
	requests   atomic.Int64
	sent       atomic.Int64 // events in the requests sent
	accepted   atomic.Int64 // events in requests that got 202
	rejected   atomic.Int64 // events in requests that got another status
	failed     atomic.Int64 // events in requests that got no response
	lastAccept atomic.Int64 // clock time of the last 202
	firstError atomic.Pointer[string]
}

func (o *publishOutcome) fail(err string) {
	o.firstError.CompareAndSwap(nil, &err)
}

// publisher sends events to hookd instances.
type publisher struct {
	clock   clock
	client  *http.Client
	urls    []string // base URLs of the hookd instances
	auth    string   // Authorization header value
	payload []byte   // the JSON payload object of every event
}

// newHTTPClient returns a client that keeps up to conns idle connections per host, so that
// concurrent requests reuse connections instead of opening new ones.
func newHTTPClient(conns int) *http.Client {
	return &http.Client{
		Timeout: requestTimeout,
		Transport: &http.Transport{
			Proxy:               nil,
			MaxIdleConns:        conns * 4,
			MaxIdleConnsPerHost: conns,
			IdleConnTimeout:     90 * time.Second,
		},
	}
}

// run publishes spec's events of tracker t, storing each event's send time in sent. Publisher
// number j sends to instance j modulo the number of instances.
func (p *publisher) run(ctx context.Context, t *tracker, sent *timeline, spec loadSpec) *publishOutcome {
	out := &publishOutcome{}
	count := spec.count
	if spec.mode == modePaced {
		count = min(count, int(spec.rate*spec.duration.Seconds()))
	}
	perRequest := 1
	if spec.mode == modeBatch {
		perRequest = spec.batch
	}

	start := time.Now()
	deadline := start.Add(spec.duration)
	var (
		next atomic.Int64
		wg   sync.WaitGroup
	)
	for j := range spec.publishers {
		base := p.urls[j%len(p.urls)]
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				first := int(next.Add(int64(perRequest))) - perRequest
				if first >= count {
					return
				}
				n := min(perRequest, count-first)
				if spec.mode == modePaced {
					due := start.Add(time.Duration(float64(first) / spec.rate * float64(time.Second)))
					if !sleepUntil(ctx, due) {
						return
					}
				} else if time.Now().After(deadline) {
					return
				}
				p.send(ctx, t, sent, out, base, first, n, spec.mode == modeBatch)
			}
		}()
	}
	wg.Wait()
	out.handedOut = min(int(next.Load()), count)
	return out
}

// send publishes the events first to first+n-1 in one request.
func (p *publisher) send(ctx context.Context, t *tracker, sent *timeline, out *publishOutcome, base string, first, n int, batch bool) {
	var (
		body bytes.Buffer
		path = "/events"
	)
	if batch {
		path = "/events/batch"
		body.WriteString(`{"events":[`)
		for i := first; i < first+n; i++ {
			if i > first {
				body.WriteByte(',')
			}
			p.writeEvent(&body, t.messageID(i))
		}
		body.WriteString(`]}`)
	} else {
		p.writeEvent(&body, t.messageID(first))
	}

	req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+path, &body)
	if err != nil {
		out.failed.Add(int64(n))
		out.fail(err.Error())
		return
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", p.auth)

	now := p.clock.now()
	for i := first; i < first+n; i++ {
		sent.set(i, now)
	}
	out.requests.Add(1)
	out.sent.Add(int64(n))
	resp, err := p.client.Do(req)
	if err != nil {
		if ctx.Err() == nil {
			out.fail(err.Error())
		}
		out.failed.Add(int64(n))
		return
	}
	defer resp.Body.Close()
	respBody, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		out.failed.Add(int64(n))
		out.fail(fmt.Sprintf("POST %s: read the response: %v", path, err))
		return
	}
	if resp.StatusCode != http.StatusAccepted {
		out.rejected.Add(int64(n))
		out.fail(fmt.Sprintf("POST %s: status %d, want 202: %s", path, resp.StatusCode, truncate(string(respBody), 300)))
		return
	}
	out.accepted.Add(int64(n))
	storeMax(&out.lastAccept, p.clock.now())
}

// writeEvent writes one event of the publish API with the given id.
func (p *publisher) writeEvent(w *bytes.Buffer, id string) {
	w.WriteString(`{"id":"`)
	w.WriteString(id)
	w.WriteString(`","eventType":"` + eventType + `","payload":`)
	w.Write(p.payload)
	w.WriteByte('}')
}

// ceilingSpec describes the plain-client phase: requests POSTs of the envelope to the
// receivers in turn, with concurrency requests in flight, ending after requests or
// duration, whichever comes first.
type ceilingSpec struct {
	requests    int
	concurrency int
	duration    time.Duration
}

// runCeiling sends the envelopes that hookd would deliver straight to the receivers, with
// only the webhook-id header that the receivers record. Request number i carries event
// i/len(receivers) to receiver i%len(receivers).
func runCeiling(ctx context.Context, client *http.Client, receivers []*receiver, t *tracker, payload []byte, spec ceilingSpec) *publishOutcome {
	out := &publishOutcome{}
	generated := time.Now().UTC().Truncate(time.Millisecond).Format(time.RFC3339Nano)
	deadline := time.Now().Add(spec.duration)
	var (
		next atomic.Int64
		wg   sync.WaitGroup
	)
	for range spec.concurrency {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil && time.Now().Before(deadline) {
				i := int(next.Add(1)) - 1
				if i >= spec.requests {
					return
				}
				rcv := receivers[i%len(receivers)]
				id := t.messageID(i / len(receivers))
				var body bytes.Buffer
				body.WriteString(`{"id":"` + id + `","eventType":"` + eventType + `","generatedDate":"` + generated + `","payload":`)
				body.Write(payload)
				body.WriteByte('}')
				postEnvelope(ctx, client, rcv.url, id, &body, out)
			}
		}()
	}
	wg.Wait()
	out.handedOut = min(int(next.Load()), spec.requests)
	return out
}

func postEnvelope(ctx context.Context, client *http.Client, url, id string, body io.Reader, out *publishOutcome) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, body)
	if err != nil {
		out.failed.Add(1)
		out.fail(err.Error())
		return
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(signature.HeaderWebhookID, id)
	out.requests.Add(1)
	out.sent.Add(1)
	resp, err := client.Do(req)
	if err != nil {
		if ctx.Err() == nil {
			out.fail(err.Error())
		}
		out.failed.Add(1)
		return
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		out.rejected.Add(1)
		out.fail(fmt.Sprintf("POST %s: status %d, want 2xx", url, resp.StatusCode))
		return
	}
	out.accepted.Add(1)
}

// makePayload returns a JSON object of exactly size bytes, padded with a string field.
// size must be at least minPayloadBytes.
func makePayload(size int) []byte {
	const head, tail = `{"referenceCompany":{"id":"bench"},"padding":"`, `"}`
	return []byte(head + strings.Repeat("x", size-len(head)-len(tail)) + tail)
}

// minPayloadBytes is the size of the payload without padding.
const minPayloadBytes = len(`{"referenceCompany":{"id":"bench"},"padding":""}`)

// sleepUntil waits until t and reports true, or reports false when ctx ends first.
func sleepUntil(ctx context.Context, t time.Time) bool {
	d := time.Until(t)
	if d <= 0 {
		return ctx.Err() == nil
	}
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-timer.C:
		return true
	case <-ctx.Done():
		return false
	}
}

func storeMax(v *atomic.Int64, n int64) {
	for {
		old := v.Load()
		if n <= old || v.CompareAndSwap(old, n) {
			return
		}
	}
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}

// metricValues are samples of the Prometheus text format by series, such as
// `hookd_queue_depth{state="due"}`.
type metricValues map[string]float64

// scrapeMetrics returns the samples of the series whose names start with prefix from the
// server's GET /metrics.
func scrapeMetrics(ctx context.Context, client *http.Client, baseURL, prefix string) (metricValues, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, baseURL+"/metrics", nil)
	if err != nil {
		return nil, err
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET /metrics: status %d, want 200", resp.StatusCode)
	}
	values := metricValues{}
	for line := range strings.Lines(string(body)) {
		line = strings.TrimSpace(line)
		if !strings.HasPrefix(line, prefix) {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if i < 0 {
			return nil, fmt.Errorf("GET /metrics: no value in %q", line)
		}
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			return nil, fmt.Errorf("GET /metrics: parse %q: %w", line, err)
		}
		values[line[:i]] = v
	}
	return values, nil
}

// scrapeQueueDepth reads hookd_queue_depth{state="due"} and {state="scheduled"} from the
// server's GET /metrics.
func scrapeQueueDepth(ctx context.Context, client *http.Client, baseURL string) (due, scheduled int64, err error) {
	values, err := scrapeMetrics(ctx, client, baseURL, "hookd_queue_depth")
	if err != nil {
		return 0, 0, err
	}
	d, okDue := values[`hookd_queue_depth{state="due"}`]
	s, okScheduled := values[`hookd_queue_depth{state="scheduled"}`]
	if !okDue || !okScheduled {
		return 0, 0, fmt.Errorf("GET /metrics: no hookd_queue_depth series")
	}
	return int64(d), int64(s), nil
}

// commitOperations are the values of the operation label of the store commit metrics.
var commitOperations = []string{"publish", "record"}

// commitStats returns the group commits between two scrapes of the
// hookd_store_commit_ series.
func commitStats(before, after metricValues) []CommitStats {
	var stats []CommitStats
	for _, op := range commitOperations {
		label := `{operation="` + op + `"}`
		delta := func(name string) float64 { return after[name+label] - before[name+label] }
		c := CommitStats{
			Operation:     op,
			Commits:       int64(delta("hookd_store_commit_duration_seconds_count")),
			Items:         int64(delta("hookd_store_commit_batch_size_sum")),
			CommitSeconds: delta("hookd_store_commit_duration_seconds_sum"),
		}
		if c.Commits > 0 {
			c.ItemsPerCommit = float64(c.Items) / float64(c.Commits)
			c.MeanCommitMs = c.CommitSeconds / float64(c.Commits) * 1000
		}
		stats = append(stats, c)
	}
	return stats
}
