package delivery

import (
	"context"
	"strings"
	"testing"

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
