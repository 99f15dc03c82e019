//go:build unix

package main

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/hookd/hookd/internal/store/postgres/pgtest"
)

// benchTimeout bounds one smoke run of hookd bench, hookd serve child included.
const benchTimeout = 90 * time.Second

// benchReport is the part of the hookd bench JSON report that the tests check.
type benchReport struct {
	Scenario string `json:"scenario"`
	Smoke    bool   `json:"smoke"`
	Phases   []struct {
		Name                string  `json:"name"`
		AcceptedEvents      int64   `json:"acceptedEvents"`
		ExpectedDeliveries  int64   `json:"expectedDeliveries"`
		Deliveries          int64   `json:"deliveries"`
		Complete            bool    `json:"complete"`
		DeliveriesPerSecond float64 `json:"deliveriesPerSecond"`
		FirstError          string  `json:"firstError"`
	} `json:"phases"`
	Hookd struct {
		PeakRSSBytes int64   `json:"peakRssBytes"`
		CPUSeconds   float64 `json:"cpuSeconds"`
	} `json:"hookd"`
	Targets []struct {
		Name   string `json:"name"`
		Status string `json:"status"`
	} `json:"targets"`
}

func TestBenchSmoke(t *testing.T) {
	t.Parallel()
	tests := []struct {
		scenario    string
		wantPhases  []string
		wantTargets int
		postgres    bool // runs on a new database of the HOOKD_TEST_DATABASE_URL server
	}{
		{"steady", []string{"single", "batch", "paced", "ceiling"}, 6, false},
		{"fanout", []string{"single", "batch", "ceiling"}, 0, false},
		{"backlog", []string{"reference", "fill", "drain"}, 2, false},
		{"slow-consumer", []string{"paced"}, 1, false},
		{"postgres", []string{"single", "batch", "ceiling"}, 1, true},
	}
	for _, tt := range tests {
		t.Run(tt.scenario, func(t *testing.T) {
			t.Parallel()
			args := []string{"bench", "--scenario", tt.scenario, "--smoke", "--json", "--quiet", "--temp-dir", t.TempDir()}
			if tt.postgres {
				args = append(args, "--database", pgtest.NewDatabase(t))
			}
			ctx, cancel := context.WithTimeout(t.Context(), benchTimeout)
			defer cancel()
			stdout, stderr, code := runHookd(ctx, t, hookdEnv(), args...)
			if code != 0 {
				t.Fatalf("hookd %s: exit code %d, want 0; stderr:\n%s", strings.Join(args, " "), code, stderr)
			}
			if stderr != "" {
				t.Errorf("stderr with --quiet: %q, want nothing", stderr)
			}

			var report benchReport
			if err := json.Unmarshal([]byte(stdout), &report); err != nil {
				t.Fatalf("decode the JSON report: %v\n%s", err, stdout)
			}
			if report.Scenario != tt.scenario || !report.Smoke {
				t.Errorf("report scenario %q, smoke %v; want %q, true", report.Scenario, report.Smoke, tt.scenario)
			}
			var names []string
			for _, p := range report.Phases {
				names = append(names, p.Name)
			}
			if strings.Join(names, ",") != strings.Join(tt.wantPhases, ",") {
				t.Errorf("phases %v, want %v", names, tt.wantPhases)
			}
			for _, p := range report.Phases {
				if p.FirstError != "" {
					t.Errorf("phase %s: error %s", p.Name, p.FirstError)
				}
				if p.Name == "fill" {
					continue // nothing is delivered while the receiver holds its requests
				}
				if p.Deliveries == 0 || p.DeliveriesPerSecond <= 0 {
					t.Errorf("phase %s: %d deliveries at %.0f/s, want some", p.Name, p.Deliveries, p.DeliveriesPerSecond)
				}
				if !p.Complete || p.Deliveries < p.ExpectedDeliveries {
					t.Errorf("phase %s: %d of %d deliveries, complete %v; want all", p.Name, p.Deliveries, p.ExpectedDeliveries, p.Complete)
				}
			}
			if report.Hookd.PeakRSSBytes <= 0 || report.Hookd.CPUSeconds <= 0 {
				t.Errorf("hookd peak RSS %d bytes, CPU %v s; want both measured", report.Hookd.PeakRSSBytes, report.Hookd.CPUSeconds)
			}
			if len(report.Targets) != tt.wantTargets {
				t.Errorf("%d targets, want %d", len(report.Targets), tt.wantTargets)
			}
			for _, target := range report.Targets {
				if target.Status != "met" && target.Status != "not met" {
					t.Errorf("target %q status %q, want met or not met", target.Name, target.Status)
				}
			}
		})
	}
}

func TestBenchPostgresNeedsDatabase(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	stdout, stderr, code := runHookd(ctx, t, hookdEnv(), "bench", "--scenario", "postgres", "--smoke", "--json")
	if code != 1 {
		t.Errorf("exit code %d, want 1", code)
	}
	if want := "the postgres scenario needs --database"; !strings.Contains(stderr, want) {
		t.Errorf("stderr %q, want it to contain %q", stderr, want)
	}
	if stdout != "" {
		t.Errorf("stdout %q, want nothing", stdout)
	}
}

func TestBenchBadFlags(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"--scenario", "burst"}, `invalid --scenario "burst"`},
		{[]string{"--count", "-1"}, "invalid --count -1"},
		{[]string{"--batch", "501"}, "invalid --batch 501"},
		{[]string{"--duration", "1h"}, "invalid --duration 1h0m0s"},
		{[]string{"--database", "postgres://db.example/hookd"}, `host "db.example"`},
	}
	for _, tt := range tests {
		_, stderr, code := runHookd(ctx, t, hookdEnv(), append([]string{"bench"}, tt.args...)...)
		if code != 1 || !strings.Contains(stderr, tt.want) {
			t.Errorf("hookd bench %s: exit code %d, stderr %q; want 1 and %q", strings.Join(tt.args, " "), code, stderr, tt.want)
		}
	}
}
