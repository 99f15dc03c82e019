package delivery

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"testing"
	"time"
)

// recordingHandler keeps the messages and attributes of the log records it receives.
type recordingHandler struct {
	mu      sync.Mutex
	records []slog.Record
}

func (h *recordingHandler) Enabled(context.Context, slog.Level) bool { return true }

func (h *recordingHandler) Handle(_ context.Context, r slog.Record) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.records = append(h.records, r.Clone())
	return nil
}

func (h *recordingHandler) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *recordingHandler) WithGroup(string) slog.Handler      { return h }

func (h *recordingHandler) messages() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []string
	for _, r := range h.records {
		out = append(out, r.Level.String()+" "+r.Message)
	}
	return out
}

// attr returns the value of the attribute key of the i-th record.
func (h *recordingHandler) attr(i int, key string) slog.Value {
	h.mu.Lock()
	defer h.mu.Unlock()
	var v slog.Value
	h.records[i].Attrs(func(a slog.Attr) bool {
		if a.Key == key {
			v = a.Value
			return false
		}
		return true
	})
	return v
}

func TestOutageLogRun(t *testing.T) {
	t.Parallel()
	h := &recordingHandler{}
	o := newOutageLog(slog.New(h), "claim deliveries")
	errDown := errors.New("connection refused")

	o.succeeded()
	if got := h.messages(); len(got) != 0 {
		t.Fatalf("log after a success without failures = %q, want nothing", got)
	}

	var wg sync.WaitGroup
	for i := range 100 {
		wg.Go(func() { o.failed(errDown, time.Second, "attempt", i) })
	}
	wg.Wait()
	got := h.messages()
	if len(got) != 1 {
		t.Fatalf("log after 100 failures within %s = %q, want one line", outageLogInterval, got)
	}
	if want := "WARN claim deliveries failed; retrying until the store is available"; got[0] != want {
		t.Errorf("first line = %q, want %q", got[0], want)
	}
	if v := h.attr(0, "error").String(); v != errDown.Error() {
		t.Errorf("first line error = %q, want %q", v, errDown)
	}

	o.succeeded()
	o.succeeded()
	got = h.messages()
	if len(got) != 2 {
		t.Fatalf("log after the failures ended = %q, want two lines", got)
	}
	if want := "INFO claim deliveries succeeded again"; got[1] != want {
		t.Errorf("second line = %q, want %q", got[1], want)
	}
	if n := h.attr(1, "failures").Int64(); n != 100 {
		t.Errorf("failures in the recovery line = %d, want 100", n)
	}

	// A new run is logged again.
	o.failed(errDown, time.Second)
	if got := h.messages(); len(got) != 3 {
		t.Errorf("log after a failure in a new run = %q, want three lines", got)
	}
}
