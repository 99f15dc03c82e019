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
