package delivery

import (
	"context"
	"errors"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hookd/hookd/internal/store"
)

// A job that waits in the dispatcher's queue longer than maxReadyWait is released to the
// store and claimed again later, so every message still arrives once, with one attempt.
func TestEngineReleasesStaleQueuedJobs(t *testing.T) {
	t.Parallel()
	st := openStore(t)
	client := newClient(t, st, "acme")
	rcv := newReceiver(t, func(n int, w http.ResponseWriter, _ *http.Request) {
		if n == 1 {
			// Hold the consumer's only slot until the queued jobs are stale.
			time.Sleep(maxReadyWait + 500*time.Millisecond)
		}
		w.WriteHeader(http.StatusNoContent)
	})
	consumer := addConsumer(t, st, client.ID, consumerSpec{url: rcv.url, eventTypes: []string{"e"}})
	cfg := testConfig(t, st)
	cfg.PerConsumer = 1
	cfg.Timeout = time.Minute // a job left leased would wait more than a minute
	e := startEngine(t, cfg)

	msgs := []store.NewMessage{newMessage(t, client.ID, "e", nil), newMessage(t, client.ID, "e", nil), newMessage(t, client.ID, "e", nil)}
	start := time.Now()
	publish(t, e, msgs...)

	for _, m := range msgs {
		waitFinished(t, st, client.ID, m.ID, consumer.ID, store.StatusSuccess)
	}
	if took := time.Since(start); took > 10*time.Second {
		t.Errorf("the messages took %s to arrive, want well under the lease of %s", took, e.lease())
	}
	rcv.expectQuiet(t)
	if n := rcv.count.Load(); n != int64(len(msgs)) {
		t.Errorf("receiver got %d requests, want %d", n, len(msgs))
	}
	for _, m := range msgs {
		if got := attempts(t, st, client.ID, m.ID); len(got) != 1 {
			t.Errorf("message %s has %d attempts, want 1", m.ID, len(got))
		}
	}
}

// rejectingStore makes RecordAttempts fail for batches of more than one result with an
// error that is not store.ErrUnavailable, as a constraint violation would.
type rejectingStore struct {
	store.MessageStore
	rejected atomic.Int64
}

func (s *rejectingStore) RecordAttempts(ctx context.Context, results []store.AttemptResult) error {
	if len(results) > 1 {
		s.rejected.Add(1)
		return errors.New("record attempts: rejected for the test")
	}
	return s.MessageStore.RecordAttempts(ctx, results)
}

// When the store rejects a group commit of results for a reason other than being
// unavailable, the committer records the results one by one, so none is lost.
func TestEngineRecordsEachAfterRejectedBatch(t *testing.T) {
	t.Parallel()
	sqliteStore := openStore(t)
	st := &rejectingStore{MessageStore: sqliteStore}
	client := newClient(t, sqliteStore, "acme")
	rcv := newReceiver(t, nil)
	consumer := addConsumer(t, sqliteStore, client.ID, consumerSpec{url: rcv.url, eventTypes: []string{"e"}})
	e := startEngine(t, testConfig(t, st))

	var msgs []store.NewMessage
	for range 200 {
		msgs = append(msgs, newMessage(t, client.ID, "e", nil))
	}
	publish(t, e, msgs...)

	for _, m := range msgs {
		waitFinished(t, sqliteStore, client.ID, m.ID, consumer.ID, store.StatusSuccess)
	}
	if st.rejected.Load() == 0 {
		t.Error("no group commit had more than one result, so the per-result fallback did not run")
	}
	rcv.expectQuiet(t)
	if n := rcv.count.Load(); n != int64(len(msgs)) {
		t.Errorf("receiver got %d requests, want %d", n, len(msgs))
	}
}
