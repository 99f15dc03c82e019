package bench

import (
	"math"
	"slices"
	"sync/atomic"
	"time"
)

// chunkSize is the number of entries in one chunk of a timeline.
const chunkSize = 1 << 14

// timeline stores one time per event index, in nanoseconds since the run's clock started;
// zero means no time was stored. It allocates its memory in chunks on first use, so that a
// phase bounded by MaxCount but ended early by its duration costs only what it used.
// Every method is safe for concurrent use.
type timeline struct {
	chunks []atomic.Pointer[[chunkSize]atomic.Int64]
}

func newTimeline(capacity int) *timeline {
	return &timeline{chunks: make([]atomic.Pointer[[chunkSize]atomic.Int64], (capacity+chunkSize-1)/chunkSize)}
}

// capacity returns the number of indexes the timeline can store.
func (t *timeline) capacity() int {
	return len(t.chunks) * chunkSize
}

func (t *timeline) chunk(i int, allocate bool) *[chunkSize]atomic.Int64 {
	slot := &t.chunks[i/chunkSize]
	c := slot.Load()
	if c != nil || !allocate {
		return c
	}
	slot.CompareAndSwap(nil, new([chunkSize]atomic.Int64))
	return slot.Load()
}

// set stores v at index i, replacing any earlier value.
func (t *timeline) set(i int, v int64) {
	t.chunk(i, true)[i%chunkSize].Store(v)
}

// setFirst stores v at index i unless a value is there already, and reports whether it
// stored it.
func (t *timeline) setFirst(i int, v int64) bool {
	return t.chunk(i, true)[i%chunkSize].CompareAndSwap(0, v)
}

// get returns the value at index i, or zero.
func (t *timeline) get(i int) int64 {
	c := t.chunk(i, false)
	if c == nil {
		return 0
	}
	return c[i%chunkSize].Load()
}

// clock measures times as nanoseconds since it started, from the monotonic clock, so that
// publishers and receivers of the same process compare their times directly. The values
// are never zero, which timelines use for "no time".
type clock struct{ start time.Time }

func newClock() clock { return clock{start: time.Now()} }

func (c clock) now() int64 { return int64(time.Since(c.start)) + 1 }

// Latency is a distribution of publish-to-receipt times in milliseconds.
type Latency struct {
	Samples int     `json:"samples"`
	P50Ms   float64 `json:"p50Ms"`
	P95Ms   float64 `json:"p95Ms"`
	P99Ms   float64 `json:"p99Ms"`
	MaxMs   float64 `json:"maxMs"`
}

// latencyOf returns the percentiles of durations in nanoseconds, by the nearest-rank
// method. It sorts durations in place.
func latencyOf(durations []int64) Latency {
	if len(durations) == 0 {
		return Latency{}
	}
	slices.Sort(durations)
	ms := func(ns int64) float64 { return float64(ns) / 1e6 }
	return Latency{
		Samples: len(durations),
		P50Ms:   ms(nearestRank(durations, 0.50)),
		P95Ms:   ms(nearestRank(durations, 0.95)),
		P99Ms:   ms(nearestRank(durations, 0.99)),
		MaxMs:   ms(durations[len(durations)-1]),
	}
}

// nearestRank returns the q-quantile of sorted values: the smallest value that at least
// q of the values are less than or equal to.
func nearestRank(sorted []int64, q float64) int64 {
	rank := int(math.Ceil(q*float64(len(sorted)))) - 1
	return sorted[min(max(rank, 0), len(sorted)-1)]
}

// steadyRate returns the arrival rate per second between the arrival at the 10th
// percentile and the one at the 90th, which leaves out the ramp-up at the start of a phase
// and the tail at its end. With fewer than 20 arrivals, or when they span no time, it
// returns the overall rate from start instead. It sorts arrivals in place.
func steadyRate(arrivals []int64, start int64) float64 {
	n := len(arrivals)
	if n == 0 {
		return 0
	}
	slices.Sort(arrivals)
	lo, hi := n/10, n*9/10
	if n >= 20 && arrivals[hi] > arrivals[lo] {
		return float64(hi-lo) / (float64(arrivals[hi]-arrivals[lo]) / 1e9)
	}
	return overallRate(n, start, arrivals[n-1])
}

// overallRate returns n events per second over the time from start to end, in
// nanoseconds of the same clock.
func overallRate(n int, start, end int64) float64 {
	if n == 0 || end <= start {
		return 0
	}
	return float64(n) / (float64(end-start) / 1e9)
}
