package delivery

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hookd/hookd/internal/store"
)

// BenchmarkPublish measures how many messages with a 1 KiB body per second reach the
// store, each with one queued delivery. "grouped" publishes through Engine.Publish, whose
// committer shares transactions between concurrent callers. "direct" calls
// PublishMessages once per message, which costs one transaction and one fsync each.
// Only the publish committer runs, so no delivery competes for the store.
func BenchmarkPublish(b *testing.B) {
	for _, bm := range []struct {
		name        string
		grouped     bool
		parallelism int
	}{
		{"grouped/serial", true, 0},
		{"grouped/parallel", true, 32},
		{"direct/parallel", false, 32},
	} {
		b.Run(bm.name, func(b *testing.B) {
			st := openStore(b)
			client := newClient(b, st, "acme")
			addConsumer(b, st, client.ID, consumerSpec{url: "http://127.0.0.1:9/hooks", eventTypes: []string{"e"}})
			counting := &countingStore{MessageStore: st}
			e := New(Config{Store: counting})
			e.publish.start(context.Background())
			defer e.publish.stop()

			publish := func(msg store.NewMessage) error {
				if bm.grouped {
					_, err := e.Publish(context.Background(), []store.NewMessage{msg})
					return err
				}
				_, err := counting.PublishMessages(context.Background(), []store.NewMessage{msg})
				return err
			}

			padding := strings.Repeat("x", 1024-len(paddedMessage(b, client.ID, "").Body))
			b.SetBytes(1024)
			b.ResetTimer()
			if bm.parallelism == 0 {
				for b.Loop() {
					if err := publish(paddedMessage(b, client.ID, padding)); err != nil {
						b.Fatal(err)
					}
				}
			} else {
				b.SetParallelism(bm.parallelism)
				b.RunParallel(func(pb *testing.PB) {
					for pb.Next() {
						if err := publish(paddedMessage(b, client.ID, padding)); err != nil {
							b.Error(err)
							return
						}
					}
				})
			}
			b.StopTimer()
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
			b.ReportMetric(float64(b.N)/float64(max(counting.publishes.Load(), 1)), "msgs/commit")
		})
	}
}

// paddedMessage returns a message whose envelope is about 1 KiB long.
func paddedMessage(b *testing.B, clientID, padding string) store.NewMessage {
	return newMessageWithPayload(b, clientID, "e", map[string]any{
		"referenceCompany": map[string]any{"id": "c1"},
		"padding":          padding,
	})
}

// fillBacklog publishes n messages with a 1 KiB envelope straight to the store, in
// transactions of maxCommitItems, each queued for every matching consumer.
func fillBacklog(b *testing.B, st store.MessageStore, clientID string, n int) {
	b.Helper()
	padding := strings.Repeat("x", 1024-len(paddedMessage(b, clientID, "").Body))
	for n > 0 {
		msgs := make([]store.NewMessage, min(n, maxCommitItems))
		for i := range msgs {
			msgs[i] = paddedMessage(b, clientID, padding)
		}
		if _, err := st.PublishMessages(context.Background(), msgs); err != nil {
			b.Fatalf("PublishMessages: %v", err)
		}
		n -= len(msgs)
	}
}

// backlogSize is the number of messages queued before a claim or record benchmark, and
// again whenever the benchmark has claimed them all.
const backlogSize = 20_000

// BenchmarkClaim measures ClaimDeliveries on SQLite with a backlog of due deliveries, as
// the dispatcher calls it with nothing in flight: up to 2 × DefaultWorkers jobs, 2 ×
// DefaultPerConsumer per consumer (its slots and its queue). The claimed deliveries stay
// leased, so each claim takes the next ones.
func BenchmarkClaim(b *testing.B) {
	for _, consumers := range []int{1, 10} {
		b.Run(fmt.Sprintf("consumers=%d", consumers), func(b *testing.B) {
			st := openStore(b)
			client := newClient(b, st, "acme")
			for range consumers {
				addConsumer(b, st, client.ID, consumerSpec{url: "http://127.0.0.1:9/hooks", eventTypes: []string{"e"}})
			}
			fillBacklog(b, st, client.ID, backlogSize)

			req := store.ClaimRequest{Limit: 2 * DefaultWorkers, DefaultSlots: 2 * DefaultPerConsumer, Lease: time.Hour}
			want := min(req.Limit, req.DefaultSlots*consumers)
			claimed := 0
			for b.Loop() {
				req.Now = time.Now()
				jobs, err := st.ClaimDeliveries(context.Background(), req)
				if err != nil {
					b.Fatal(err)
				}
				if len(jobs) < want {
					b.StopTimer()
					fillBacklog(b, st, client.ID, backlogSize)
					b.StartTimer()
				}
				claimed += len(jobs)
			}
			b.ReportMetric(float64(claimed)/b.Elapsed().Seconds(), "jobs/s")
		})
	}
}

// BenchmarkRecordAttempts measures RecordAttempts on SQLite for successful attempts, in
// group commits of different sizes: the record committer writes everything that workers
// finished while the previous commit ran, up to maxCommitItems.
func BenchmarkRecordAttempts(b *testing.B) {
	for _, size := range []int{1, 8, 64, 512} {
		b.Run(fmt.Sprintf("batch=%d", size), func(b *testing.B) {
			st := openStore(b)
			client := newClient(b, st, "acme")
			addConsumer(b, st, client.ID, consumerSpec{url: "http://127.0.0.1:9/hooks", eventTypes: []string{"e"}})
			fillBacklog(b, st, client.ID, backlogSize)

			results := make([]store.AttemptResult, 0, size)
			recorded := 0
			for b.Loop() {
				b.StopTimer()
				results = results[:0]
				for len(results) < size {
					jobs, err := st.ClaimDeliveries(context.Background(), store.ClaimRequest{
						Now: time.Now(), Limit: size - len(results), DefaultSlots: size, Lease: time.Hour,
					})
					if err != nil {
						b.Fatal(err)
					}
					if len(jobs) == 0 {
						fillBacklog(b, st, client.ID, backlogSize)
					}
					now := time.Now()
					for _, job := range jobs {
						results = append(results, store.AttemptResult{
							Job: job, AttemptedAt: now, Duration: time.Millisecond, StatusCode: 204, Success: true,
						})
					}
				}
				b.StartTimer()

				if err := st.RecordAttempts(context.Background(), results); err != nil {
					b.Fatal(err)
				}
				recorded += len(results)
			}
			b.ReportMetric(float64(recorded)/b.Elapsed().Seconds(), "attempts/s")
		})
	}
}

// BenchmarkDeliver measures the engine draining b.N queued messages with a 1 KiB
// envelope to consumers on loopback that respond 204 at once: claims, signed POSTs and
// group-committed results, with the default Workers and PerConsumer. Queueing the
// messages is not timed.
func BenchmarkDeliver(b *testing.B) {
	for _, consumers := range []int{1, 10} {
		b.Run(fmt.Sprintf("consumers=%d", consumers), func(b *testing.B) {
			st := openStore(b)
			client := newClient(b, st, "acme")
			want := int64(b.N * consumers)
			var delivered atomic.Int64
			done := make(chan struct{})
			for range consumers {
				rcv := newCountingReceiver(b, func() {
					if delivered.Add(1) == want {
						close(done)
					}
				})
				addConsumer(b, st, client.ID, consumerSpec{url: rcv, eventTypes: []string{"e"}})
			}
			fillBacklog(b, st, client.ID, b.N)

			counting := &transactionCounter{MessageStore: st}
			e := New(Config{Store: counting, Logger: slog.New(slog.DiscardHandler)})
			b.ResetTimer()
			e.Start(context.Background())
			select {
			case <-done:
			case <-time.After(10 * time.Minute):
				b.Fatalf("%d of %d deliveries after 10 minutes", delivered.Load(), want)
			}
			b.StopTimer()
			b.ReportMetric(float64(want)/b.Elapsed().Seconds(), "deliveries/s")
			b.ReportMetric(float64(counting.claimed.Load())/float64(max(counting.claims.Load(), 1)), "jobs/claim")
			b.ReportMetric(float64(counting.recorded.Load())/float64(max(counting.records.Load(), 1)), "attempts/commit")

			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			if err := e.Stop(ctx); err != nil {
				b.Error(err)
			}
		})
	}
}

// transactionCounter counts the claim and record transactions and the items in them.
type transactionCounter struct {
	store.MessageStore
	claims, claimed, records, recorded atomic.Int64
}

func (s *transactionCounter) ClaimDeliveries(ctx context.Context, req store.ClaimRequest) ([]store.Job, error) {
	jobs, err := s.MessageStore.ClaimDeliveries(ctx, req)
	s.claims.Add(1)
	s.claimed.Add(int64(len(jobs)))
	return jobs, err
}

func (s *transactionCounter) RecordAttempts(ctx context.Context, results []store.AttemptResult) error {
	s.records.Add(1)
	s.recorded.Add(int64(len(results)))
	return s.MessageStore.RecordAttempts(ctx, results)
}

// newCountingReceiver starts a server on 127.0.0.1 that reads each request, calls
// delivered and responds 204, and returns its URL.
func newCountingReceiver(b *testing.B, delivered func()) string {
	b.Helper()
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		delivered()
		w.WriteHeader(http.StatusNoContent)
	}))
	listener, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatalf("listen on 127.0.0.1: %v", err)
	}
	srv.Listener.Close()
	srv.Listener = listener
	srv.Start()
	b.Cleanup(srv.Close)
	return srv.URL + "/hooks"
}
