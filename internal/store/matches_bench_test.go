package store

import (
	"fmt"
	"testing"
)

// BenchmarkFanOutMatch measures choosing the consumers of one event among a client's
// MaxConsumersPerClient consumers, as publishing does for every event. Each consumer
// subscribes to 5 event types; "tags" gives every other consumer 3 company tags, of which
// the event carries one.
func BenchmarkFanOutMatch(b *testing.B) {
	for _, withTags := range []bool{false, true} {
		name := "no tags"
		if withTags {
			name = "tags"
		}
		b.Run(name, func(b *testing.B) {
			consumers := make([]Consumer, MaxConsumersPerClient)
			for i := range consumers {
				c := Consumer{EventTypes: []string{
					"company.created", "company.deleted", "dataset.completed", "connection.updated", fmt.Sprintf("custom.%d", i),
				}}
				if withTags && i%2 == 0 {
					c.CompanyTags = []string{"region:eu", "tier:silver", fmt.Sprintf("team:%d", i)}
				}
				consumers[i] = c
			}
			tags := map[string]string{"region": "uk", "tier": "silver"}

			matched := 0
			for b.Loop() {
				matched = 0
				for i := range consumers {
					if consumers[i].Matches("dataset.completed", tags) {
						matched++
					}
				}
			}
			if matched != MaxConsumersPerClient {
				b.Fatalf("matched %d consumers, want %d", matched, MaxConsumersPerClient)
			}
		})
	}
}
