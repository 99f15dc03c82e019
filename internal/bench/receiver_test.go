package bench

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hookd/hookd/signature"
)

// testReceivers starts n receivers that share one current tracker.
func testReceivers(t *testing.T, n int) ([]*receiver, *atomic.Pointer[tracker], clock) {
	t.Helper()
	current := &atomic.Pointer[tracker]{}
	c := newClock()
	var rcvs []*receiver
	for i := range n {
		r, err := startReceiver(i, current, c)
		if err != nil {
			t.Fatalf("startReceiver: %v", err)
		}
		t.Cleanup(r.close)
		rcvs = append(rcvs, r)
	}
	return rcvs, current, c
}

func deliver(ctx context.Context, t *testing.T, client *http.Client, url, id string) (int, error) {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, strings.NewReader(`{"id":"`+id+`"}`))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set(signature.HeaderWebhookID, id)
	resp, err := client.Do(req)
	if err != nil {
		return 0, err
	}
	resp.Body.Close()
	return resp.StatusCode, nil
}

func TestReceiverRecords(t *testing.T) {
	rcvs, current, c := testReceivers(t, 2)
	tr := newTracker("p1", c, 10, []bool{true, false})
	current.Store(tr)
	client := newHTTPClient(2)
	ctx := t.Context()

	for _, d := range []struct {
		rcv int
		id  string
	}{
		{0, "p1.3"}, {0, "p1.3"}, {1, "p1.3"}, {0, "p0.1"}, {0, "p1.99"}, {0, "p1.x"}, {0, "nodot"}, {0, "p1.4"},
	} {
		status, err := deliver(ctx, t, client, rcvs[d.rcv].url, d.id)
		if err != nil || status != http.StatusNoContent {
			t.Fatalf("POST %s to receiver %d: %d, %v; want 204", d.id, d.rcv, status, err)
		}
	}

	if got := tr.received.Load(); got != 2 {
		t.Errorf("received = %d, want 2 (p1.3 and p1.4 at the counted receiver)", got)
	}
	if got := tr.duplicates.Load(); got != 1 {
		t.Errorf("duplicates = %d, want 1", got)
	}
	if got := rcvs[0].strays.Load(); got != 4 {
		t.Errorf("strays at receiver 0 = %d, want 4 (other tag, index out of range, bad index, no tag)", got)
	}
	if tr.arrivals[1].get(3) == 0 {
		t.Errorf("uncounted receiver 1 did not record its arrival of p1.3")
	}
	if a, b := tr.arrivals[0].get(3), tr.arrivals[0].get(4); a == 0 || b < a {
		t.Errorf("arrival times p1.3 = %d, p1.4 = %d; want 0 < first <= second", a, b)
	}
}

func TestTrackerDone(t *testing.T) {
	tests := []struct {
		name           string
		before, expect int64
		wantDone       bool
	}{
		{"expected zero", 0, 0, true},
		{"all arrived before expect", 2, 2, true},
		{"some missing", 1, 2, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tr := newTracker("p1", newClock(), 10, []bool{true})
			for i := range tt.before {
				tr.record(0, tr.messageID(int(i)), 1)
			}
			tr.expect(tt.expect)
			select {
			case <-tr.done:
				if !tt.wantDone {
					t.Errorf("done after %d of %d arrivals", tt.before, tt.expect)
				}
			default:
				if tt.wantDone {
					t.Errorf("not done after %d of %d arrivals", tt.before, tt.expect)
				}
			}
		})
	}
}

func TestReceiverHang(t *testing.T) {
	rcvs, current, c := testReceivers(t, 1)
	tr := newTracker("p1", c, 10, []bool{true})
	current.Store(tr)
	client := newHTTPClient(2)

	rcvs[0].hang()
	short, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
	defer cancel()
	if _, err := deliver(short, t, client, rcvs[0].url, "p1.0"); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("POST to a hung receiver: %v, want the context deadline", err)
	}
	if got := tr.received.Load(); got != 0 {
		t.Errorf("hung receiver recorded %d arrivals, want 0", got)
	}

	held := make(chan error, 1)
	go func() {
		status, err := deliver(t.Context(), t, client, rcvs[0].url, "p1.1")
		if err == nil && status != http.StatusNoContent {
			err = errors.New(http.StatusText(status))
		}
		held <- err
	}()
	rcvs[0].resume()
	if err := <-held; err != nil {
		t.Fatalf("held request after resume: %v", err)
	}
	// The request that timed out may arrive too, when the receiver was released before it
	// noticed the closed connection; only the held one must.
	if tr.arrivals[0].get(1) == 0 {
		t.Errorf("held request p1.1 was not recorded after resume")
	}
}
