package main

import (
	"fmt"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/hookd/hookd/internal/bench"
)

func newBenchCommand() *cobra.Command {
	var (
		cfg      bench.Config
		jsonOut  bool
		quiet    bool
		scenario string
	)
	cmd := &cobra.Command{
		Use:   "bench [--scenario NAME]",
		Short: "Benchmark hookd end to end on this machine",
		Long: `Benchmark hookd end to end: start hookd serve as a child process on a temporary data
folder, start webhook receivers on 127.0.0.1, publish events from concurrent publishers and
report accepted events/s, deliveries/s, publish-to-receipt latency, the CPU time and peak
memory of hookd, the loopback ceiling (a plain Go HTTP client against the same receivers)
and whether hookd's performance targets are met.

Scenarios:
  steady          one consumer: POST /events, POST /events/batch, then POST /events at --rate
                  events/s for the latency, then the loopback ceiling
  fanout          every event goes to 10 consumers (--fanout); the same phases without --rate
  backlog         --count messages queue while the receiver holds every request, then drain
  slow-consumer   10 consumers, one of which holds every request; POST /events at --rate
                  events/s, and the latency of the other consumers
  postgres        two hookd instances on the empty PostgreSQL database of --database, one
                  consumer; the phases of fanout

Each publishing phase ends after --count events or --duration, whichever comes first. All
traffic stays on loopback. Zero values of the numeric flags mean the scenario's default.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			exe, err := os.Executable()
			if err != nil {
				return fmt.Errorf("find the hookd binary to run as the server: %w", err)
			}
			cfg.Hookd = exe
			cfg.Scenario = scenario
			if !quiet {
				cfg.Progress = cmd.ErrOrStderr()
			}
			report, err := bench.Run(cmd.Context(), cfg)
			if err != nil {
				return err
			}
			if jsonOut {
				return report.WriteJSON(cmd.OutOrStdout())
			}
			return report.WriteTable(cmd.OutOrStdout())
		},
	}

	f := cmd.Flags()
	f.StringVar(&scenario, "scenario", bench.ScenarioSteady, "scenario to run: "+strings.Join(bench.Scenarios, ", "))
	f.IntVar(&cfg.Publishers, "publishers", bench.DefaultPublishers, "concurrent publishers, each with one request in flight")
	f.IntVar(&cfg.Batch, "batch", bench.DefaultBatch, "events per POST /events/batch request")
	f.IntVar(&cfg.PayloadBytes, "payload-size", bench.DefaultPayloadBytes, "size of each event's JSON payload, in bytes")
	f.IntVar(&cfg.Count, "count", 0, fmt.Sprintf("events per publishing phase, at most %d; 0 uses the scenario's default (200,000 for steady, 100,000 for backlog)", bench.MaxCount))
	f.DurationVar(&cfg.Duration, "duration", 0, fmt.Sprintf("time limit of each publishing phase, at most %s; 0 uses the scenario's default (10s, and 3m for backlog)", bench.MaxDuration))
	f.Float64Var(&cfg.Rate, "rate", 0, "events per second of the paced latency phase; 0 uses the scenario's default (1000 for steady, 100 for slow-consumer)")
	f.IntVar(&cfg.Consumers, "fanout", 0, "consumers that every event is delivered to, each with its own receiver; 0 uses the scenario's default (1, or 10 for fanout and slow-consumer)")
	f.IntVar(&cfg.Workers, "workers", 0, "hookd serve --workers; 0 uses serve's default")
	f.IntVar(&cfg.PerConsumer, "per-consumer", 0, "hookd serve --per-consumer; 0 uses serve's default")
	f.DurationVar(&cfg.DrainTimeout, "drain-timeout", bench.DefaultDrainTimeout, fmt.Sprintf("how long a phase waits for its deliveries after publishing, at most %s", bench.MaxDrainTimeout))
	f.StringVar(&cfg.Database, "database", "", "PostgreSQL URL on loopback for hookd serve --database; empty runs the embedded SQLite store")
	f.StringVar(&cfg.LogLevel, "log-level", bench.DefaultLogLevel, "hookd serve --log-level; info logs every request, as serve does by default")
	f.StringVar(&cfg.TempDir, "temp-dir", "", "folder for the temporary data folders, which decides the disk that SQLite syncs to; empty uses the system's temporary folder")
	f.BoolVar(&cfg.Smoke, "smoke", false, "cap every phase at 300 deliveries (at least 20 events) and 2s, to check that the harness works")
	f.BoolVar(&jsonOut, "json", false, "print the report as JSON instead of a table")
	f.BoolVar(&quiet, "quiet", false, "print no progress lines on standard error")
	return cmd
}
