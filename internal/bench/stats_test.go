package bench

import (
	"math"
	"sync"
	"testing"
)

func TestLatencyOf(t *testing.T) {
	hundred := make([]int64, 100)
	for i := range hundred {
		hundred[i] = int64(100-i) * 1e6 // 100 ms down to 1 ms, unsorted
	}
	tests := []struct {
		name string
		in   []int64
		want Latency
	}{
		{"empty", nil, Latency{}},
		{"one", []int64{2_500_000}, Latency{Samples: 1, P50Ms: 2.5, P95Ms: 2.5, P99Ms: 2.5, MaxMs: 2.5}},
		{"hundred", hundred, Latency{Samples: 100, P50Ms: 50, P95Ms: 95, P99Ms: 99, MaxMs: 100}},
		{"two", []int64{1e6, 3e6}, Latency{Samples: 2, P50Ms: 1, P95Ms: 3, P99Ms: 3, MaxMs: 3}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := latencyOf(tt.in); got != tt.want {
				t.Errorf("latencyOf = %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestSteadyRate(t *testing.T) {
	// 1,000 arrivals 1 ms apart after a slow start of 10 arrivals 100 ms apart.
	var ramped []int64
	at := int64(0)
	for range 10 {
		at += 100e6
		ramped = append(ramped, at)
	}
	for range 1000 {
		at += 1e6
		ramped = append(ramped, at)
	}

	tests := []struct {
		name     string
		arrivals []int64
		start    int64
		want     float64
	}{
		{"none", nil, 0, 0},
		{"few use overall rate", []int64{250e6, 500e6, 1e9}, 0, 3},
		{"ramp left out", ramped, 0, 1000},
		{"same instant", []int64{5e9, 5e9, 5e9, 5e9, 5e9, 5e9, 5e9, 5e9, 5e9, 5e9, 5e9, 5e9, 5e9, 5e9, 5e9, 5e9, 5e9, 5e9, 5e9, 5e9}, 4e9, 20},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := steadyRate(tt.arrivals, tt.start)
			if math.Abs(got-tt.want) > tt.want*0.01 {
				t.Errorf("steadyRate = %.2f/s, want %.2f/s", got, tt.want)
			}
		})
	}
}

func TestTimelineChunks(t *testing.T) {
	tl := newTimeline(3*chunkSize + 1)
	if got, want := tl.capacity(), 4*chunkSize; got != want {
		t.Fatalf("capacity = %d, want %d", got, want)
	}
	if got := tl.get(2 * chunkSize); got != 0 {
		t.Errorf("get of an unallocated chunk = %d, want 0", got)
	}
	if tl.chunks[2].Load() != nil {
		t.Errorf("get allocated a chunk")
	}

	last := tl.capacity() - 1
	tl.set(last, 7)
	if got := tl.get(last); got != 7 {
		t.Errorf("get(%d) after set = %d, want 7", last, got)
	}
	if !tl.setFirst(5, 11) {
		t.Errorf("setFirst on an empty index = false, want true")
	}
	if tl.setFirst(5, 12) {
		t.Errorf("setFirst on a set index = true, want false")
	}
	if got := tl.get(5); got != 11 {
		t.Errorf("get(5) = %d, want the first value 11", got)
	}
}

func TestTimelineConcurrentFirst(t *testing.T) {
	tl := newTimeline(chunkSize)
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		wins int
	)
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if tl.setFirst(chunkSize-1, int64(g+1)) {
				mu.Lock()
				wins++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if wins != 1 {
		t.Errorf("setFirst succeeded %d times for one index, want 1", wins)
	}
}
