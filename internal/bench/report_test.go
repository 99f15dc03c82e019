package bench

import (
	"bytes"
	"encoding/json"
	"regexp"
	"strings"
	"testing"
)

// steadyReport returns a steady report whose figures meet every target.
func steadyReport() *Report {
	return &Report{
		Scenario: ScenarioSteady,
		Settings: Settings{Publishers: 32, BatchEvents: 100, PayloadBytes: 1024, MaxEventsPerPhase: 1000, MaxPhaseSeconds: 10,
			Consumers: 1, Instances: 1, Workers: 64, PerConsumer: 8, LogLevel: "info", Backend: "SQLite"},
		Machine: Machine{CPUs: 2, GoVersion: "go1.26", OS: "linux", Arch: "amd64"},
		Phases: []Phase{
			{Name: modeSingle, AcceptedPerSecond: 12_000, Deliveries: 1000, ExpectedDeliveries: 1000, Complete: true, DeliveriesPerSecond: 11_000,
				Events: 1000, Latency: &Latency{Samples: 1000, P50Ms: 30, P95Ms: 60, P99Ms: 80, MaxMs: 90}},
			{Name: modeBatch, BatchEvents: 100, AcceptedPerSecond: 60_000, Deliveries: 1000, ExpectedDeliveries: 1000, Complete: true, DeliveriesPerSecond: 12_000, Events: 1000},
			{Name: modePaced, PacedRate: 1000, Deliveries: 1000, ExpectedDeliveries: 1000, Complete: true, DeliveriesPerSecond: 1000, Events: 1000,
				Latency: &Latency{Samples: 1000, P50Ms: 4, P95Ms: 10, P99Ms: 40, MaxMs: 70}},
			{Name: "ceiling", Deliveries: 1000, ExpectedDeliveries: 1000, Complete: true, DeliveriesPerSecond: 20_000, Events: 1000},
		},
		Ceiling: &Ceiling{DeliveriesPerSecond: 20_000, Concurrency: 8, HookdDeliveriesPerSecond: 12_000, HookdPhase: modeBatch, Fraction: 0.6},
	}
}

func statuses(targets []Target) map[string]string {
	m := map[string]string{}
	for _, t := range targets {
		m[t.Name] = t.Status
	}
	return m
}

func TestSteadyTargets(t *testing.T) {
	tests := []struct {
		name   string
		change func(*Report)
		want   map[string]string // statuses that differ from met
	}{
		{"all met", func(*Report) {}, nil},
		{"slow single publishing", func(r *Report) { r.Phases[0].AcceptedPerSecond = 9_999 },
			map[string]string{"single-event publishing": StatusNotMet}},
		{"latency p50 at the limit is met", func(r *Report) { r.Phases[2].Latency.P50Ms = 5 }, nil},
		{"latency p99 above", func(r *Report) { r.Phases[2].Latency.P99Ms = 50.1 },
			map[string]string{"publish-to-receipt p99 at 1,000 events/s": StatusNotMet}},
		{"no latency samples", func(r *Report) { r.Phases[2].Latency = nil },
			map[string]string{"publish-to-receipt p50 at 1,000 events/s": StatusNotChecked, "publish-to-receipt p99 at 1,000 events/s": StatusNotChecked}},
		{"incomplete best phase", func(r *Report) { r.Phases[1].Complete, r.Phases[1].Deliveries = false, 900 },
			map[string]string{"steady delivery rate": StatusNotMet, "steady share of the loopback ceiling": StatusNotMet, "batch publishing": StatusNotMet}},
		{"below half the ceiling", func(r *Report) { r.Ceiling.Fraction = 0.49 },
			map[string]string{"steady share of the loopback ceiling": StatusNotMet}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := steadyReport()
			tt.change(r)
			got := statuses(checkTargets(r, Config{}))
			if len(got) != 6 {
				t.Fatalf("%d targets, want 6: %v", len(got), got)
			}
			for name, status := range got {
				want := StatusMet
				if s, ok := tt.want[name]; ok {
					want = s
				}
				if status != want {
					t.Errorf("target %q = %s, want %s", name, status, want)
				}
			}
		})
	}
}

func TestBacklogTargets(t *testing.T) {
	tests := []struct {
		name      string
		rss       int64
		drainRate float64
		wantRSS   string
		wantDrain string
		wantNote  string
	}{
		{"both met", 150_000_000, 900, StatusMet, StatusMet, "drained 1,000 messages; the target is for 1,000,000"},
		{"RSS at 200 MB fails", 200_000_000, 900, StatusNotMet, StatusMet, ""},
		{"drain too slow", 100_000_000, 790, StatusMet, StatusNotMet, ""},
		{"no RSS samples", 0, 900, StatusNotChecked, StatusMet, "/proc is not readable"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := &Report{Scenario: ScenarioBacklog, Phases: []Phase{
				{Name: "reference", DeliveriesPerSecond: 1000, Complete: true},
				{Name: "fill", Complete: true},
				{Name: "drain", DeliveriesPerSecond: tt.drainRate, HookdMaxRSSBytes: tt.rss, ExpectedDeliveries: 1000, Deliveries: 1000, Complete: true},
			}}
			targets := checkTargets(r, Config{})
			if len(targets) != 2 {
				t.Fatalf("%d targets, want 2", len(targets))
			}
			if targets[0].Status != tt.wantRSS {
				t.Errorf("RSS target = %s, want %s", targets[0].Status, tt.wantRSS)
			}
			if targets[1].Status != tt.wantDrain {
				t.Errorf("drain target = %s, want %s", targets[1].Status, tt.wantDrain)
			}
			if !strings.Contains(targets[0].Note, tt.wantNote) {
				t.Errorf("RSS note = %q, want it to contain %q", targets[0].Note, tt.wantNote)
			}
		})
	}
}

func TestSmokeTargetsNoted(t *testing.T) {
	r := &Report{Scenario: ScenarioSlowConsumer, Smoke: true, Phases: []Phase{
		{Name: modePaced, Complete: true, Latency: &Latency{Samples: 10, P99Ms: 120}},
	}}
	targets := checkTargets(r, Config{})
	if len(targets) != 1 || targets[0].Status != StatusNotMet || !strings.Contains(targets[0].Note, "smoke run") {
		t.Errorf("targets = %+v, want one not met with a smoke run note", targets)
	}
}

func TestWriteTable(t *testing.T) {
	r := steadyReport()
	r.Targets = checkTargets(r, Config{})
	r.Phases[0].RejectedEvents, r.Phases[0].FirstError = 3, "POST /events: status 503"
	var b bytes.Buffer
	if err := r.WriteTable(&b); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, want := range []string{
		"scenario steady", "12,000 events/s", "12,000 /s", "30.0 ms", "4.00 ms",
		"20,000 deliveries/s", "0.60 of it", "status 503",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("table lacks %q:\n%s", want, out)
		}
	}
	target := regexp.MustCompile(`(?m)^\s+met\s+single-event publishing >= 10,000 events/s\s+12,000 events/s\s*$`)
	if !target.MatchString(out) {
		t.Errorf("table lacks the met single-event publishing target:\n%s", out)
	}
}

func TestWriteJSON(t *testing.T) {
	r := steadyReport()
	var b bytes.Buffer
	if err := r.WriteJSON(&b); err != nil {
		t.Fatal(err)
	}
	var got Report
	if err := json.Unmarshal(b.Bytes(), &got); err != nil {
		t.Fatalf("decode report: %v", err)
	}
	if got.Phases[2].Latency.P99Ms != 40 || got.Ceiling.Fraction != 0.6 {
		t.Errorf("decoded report = %+v, want the figures of the original", got)
	}
	for _, key := range []string{`"acceptedEventsPerSecond"`, `"deliveriesPerSecond"`, `"p99Ms"`, `"hookdMaxRssBytes"`, `"hookdCpuSeconds"`} {
		if !bytes.Contains(b.Bytes(), []byte(key)) {
			t.Errorf("JSON lacks the key %s", key)
		}
	}
}

func TestFormatCount(t *testing.T) {
	tests := []struct {
		in   int64
		want string
	}{
		{0, "0"}, {999, "999"}, {1000, "1,000"}, {1234567, "1,234,567"}, {-45000, "-45,000"},
	}
	for _, tt := range tests {
		if got := formatCount(tt.in); got != tt.want {
			t.Errorf("formatCount(%d) = %q, want %q", tt.in, got, tt.want)
		}
	}
}
