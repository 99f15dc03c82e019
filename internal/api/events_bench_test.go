package api

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"
)

// benchEvent returns a POST /events body whose payload is about payloadBytes long, with
// two company tags as Codat's events carry them.
func benchEvent(b *testing.B, payloadBytes int) []byte {
	b.Helper()
	payload := map[string]any{
		"referenceCompany": map[string]any{
			"id":   "8a210b68-6988-11ed-a1eb-0242ac120002",
			"name": "Toft stores",
			"tags": map[string]any{"region": "uk", "tier": "gold"},
		},
		"padding": "",
	}
	raw, err := json.Marshal(payload)
	if err != nil {
		b.Fatal(err)
	}
	payload["padding"] = strings.Repeat("x", max(payloadBytes-len(raw), 0))
	body, err := json.Marshal(map[string]any{"id": "evt-1", "eventType": "company.created", "payload": payload})
	if err != nil {
		b.Fatal(err)
	}
	return body
}

// BenchmarkDecodeEvent measures the work of POST /events on one event before the store:
// decoding and validating the request body, reading the company tags and encoding the
// envelope that consumers receive.
func BenchmarkDecodeEvent(b *testing.B) {
	for _, size := range []int{256, 1024, 16 << 10} {
		b.Run(fmt.Sprintf("payload=%dB", size), func(b *testing.B) {
			body := benchEvent(b, size)
			now := time.Now()
			b.SetBytes(int64(len(body)))
			for b.Loop() {
				msg, apiErr := decodeEvent(body, "", now)
				if apiErr != nil {
					b.Fatal(apiErr)
				}
				if len(msg.Body) == 0 || len(msg.Tags) != 2 {
					b.Fatalf("envelope %d bytes, %d tags; want a body and 2 tags", len(msg.Body), len(msg.Tags))
				}
			}
		})
	}
}

// BenchmarkDecodeBatch measures the work of POST /events/batch before the store for 100
// events of 1 KiB, as hookd bench sends them.
func BenchmarkDecodeBatch(b *testing.B) {
	event := benchEvent(b, 1024)
	events := make([]json.RawMessage, 100)
	for i := range events {
		events[i] = event
	}
	body, err := json.Marshal(map[string]any{"events": events})
	if err != nil {
		b.Fatal(err)
	}
	now := time.Now()
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		msgs, apiErr := decodeBatch(body, now)
		if apiErr != nil {
			b.Fatal(apiErr)
		}
		if len(msgs) != len(events) {
			b.Fatalf("%d messages, want %d", len(msgs), len(events))
		}
	}
}
