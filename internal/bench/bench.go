// Package bench is hookd's end-to-end benchmark harness. It runs hookd serve as a child
// process on a temporary data folder, starts webhook receivers on loopback and publishes
// events through the HTTP API. It measures accepted events per second, deliveries per
// second, publish-to-receipt latency, and the CPU time and memory of the hookd process.
// It also measures the loopback ceiling, the delivery rate that a plain Go HTTP client
// reaches against the same receivers, and checks the results against hookd's performance
// targets.
//
// All traffic stays on 127.0.0.1 (and on the PostgreSQL server of --database, which must
// be on loopback too). Every phase is bounded in events and in time.
package bench

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/hookd/hookd/internal/api"
	"github.com/hookd/hookd/internal/delivery"
	"github.com/hookd/hookd/internal/store"
)

// Scenarios.
const (
	ScenarioSteady       = "steady"
	ScenarioFanout       = "fanout"
	ScenarioBacklog      = "backlog"
	ScenarioSlowConsumer = "slow-consumer"
	ScenarioPostgres     = "postgres"
)

// Scenarios lists the scenario names in the order the documentation describes them.
var Scenarios = []string{ScenarioSteady, ScenarioFanout, ScenarioBacklog, ScenarioSlowConsumer, ScenarioPostgres}

// Hard limits that no flag lifts.
const (
	MaxCount        = 2_000_000
	MaxDuration     = 10 * time.Minute
	MaxDrainTimeout = 30 * time.Minute
	MaxPublishers   = 1024
	MaxPayloadBytes = 200 << 10
)

// Limits of a --smoke run, which only checks that the harness works. The events per phase
// are smokeDeliveries divided by the fan-out, so that a phase delivers about as many
// messages in every scenario.
const (
	smokeDeliveries   = 300
	smokeDuration     = 2 * time.Second
	smokeDrainTimeout = 20 * time.Second
	smokeBatch        = 50
)

// ErrPostgresUnavailable is returned when the scenario or --database needs a hookd serve
// that supports PostgreSQL and the binary's serve has no --database flag.
var ErrPostgresUnavailable = errors.New("not available: the PostgreSQL backend is not built into hookd serve yet")

// Config configures a run. Zero values of the numeric fields mean the scenario's default
// (see Defaults).
type Config struct {
	// Hookd is the hookd binary that is run as `Hookd serve ...`.
	Hookd string

	Scenario     string
	Publishers   int
	Batch        int           // events per POST /events/batch request
	PayloadBytes int           // size of each event's payload object
	Count        int           // events per publishing phase
	Duration     time.Duration // time limit of each publishing phase
	Rate         float64       // events per second of the paced phase
	Consumers    int           // consumers that every event goes to, the fan-out
	Workers      int           // hookd serve --workers
	PerConsumer  int           // hookd serve --per-consumer
	DrainTimeout time.Duration // how long a phase waits for its deliveries after publishing
	Database     string        // PostgreSQL URL passed to hookd serve --database; empty for SQLite
	LogLevel     string        // hookd serve --log-level
	TempDir      string        // parent of the temporary data folders; empty for the system's
	Smoke        bool          // cap the sizes so that the run only checks the harness

	// Progress receives one line when a hookd process starts and when each phase starts
	// and ends, for watching a long run or attaching a profiler. Nil writes nothing.
	Progress io.Writer
}

// scenarioDefaults are the defaults of one scenario.
type scenarioDefaults struct {
	count     int
	duration  time.Duration
	consumers int
	rate      float64
	instances int
}

var defaults = map[string]scenarioDefaults{
	ScenarioSteady:       {count: 200_000, duration: 10 * time.Second, consumers: 1, rate: 1000, instances: 1},
	ScenarioFanout:       {count: 50_000, duration: 10 * time.Second, consumers: 10, instances: 1},
	ScenarioBacklog:      {count: 100_000, duration: 3 * time.Minute, consumers: 1, instances: 1},
	ScenarioSlowConsumer: {count: 100_000, duration: 10 * time.Second, consumers: 10, rate: 100, instances: 1},
	ScenarioPostgres:     {count: 200_000, duration: 10 * time.Second, consumers: 1, instances: 2},
}

// Default values of the settings that do not depend on the scenario.
const (
	DefaultPublishers   = 32
	DefaultBatch        = 100
	DefaultPayloadBytes = 1024
	DefaultDrainTimeout = 5 * time.Minute
	DefaultLogLevel     = "info"
)

// withDefaults returns cfg with its zero values replaced by the scenario's defaults and,
// for a smoke run, its sizes capped.
func (cfg Config) withDefaults() Config {
	d := defaults[cfg.Scenario]
	setDefault(&cfg.Publishers, DefaultPublishers)
	setDefault(&cfg.Batch, DefaultBatch)
	setDefault(&cfg.PayloadBytes, DefaultPayloadBytes)
	setDefault(&cfg.Count, d.count)
	setDefault(&cfg.Duration, d.duration)
	setDefault(&cfg.Rate, d.rate)
	setDefault(&cfg.Consumers, d.consumers)
	setDefault(&cfg.Workers, delivery.DefaultWorkers)
	setDefault(&cfg.PerConsumer, delivery.DefaultPerConsumer)
	setDefault(&cfg.DrainTimeout, DefaultDrainTimeout)
	setDefault(&cfg.LogLevel, DefaultLogLevel)
	if cfg.Smoke {
		cfg.Count = min(cfg.Count, max(smokeDeliveries/cfg.Consumers, 20))
		cfg.Duration = min(cfg.Duration, smokeDuration)
		cfg.DrainTimeout = min(cfg.DrainTimeout, smokeDrainTimeout)
		cfg.Batch = min(cfg.Batch, smokeBatch)
	}
	return cfg
}

func setDefault[T comparable](v *T, def T) {
	var zero T
	if *v == zero {
		*v = def
	}
}

// instances returns the number of hookd processes the scenario runs.
func (cfg Config) instances() int {
	return defaults[cfg.Scenario].instances
}

// validate checks a configuration that withDefaults has completed.
func (cfg Config) validate() error {
	if _, ok := defaults[cfg.Scenario]; !ok {
		return fmt.Errorf("invalid --scenario %q: use one of %s", cfg.Scenario, strings.Join(Scenarios, ", "))
	}
	eventBytes := cfg.PayloadBytes + 128 // the id, the event type and the JSON around them
	switch {
	case cfg.Hookd == "":
		return errors.New("the path of the hookd binary is missing")
	case cfg.Publishers < 1 || cfg.Publishers > MaxPublishers:
		return fmt.Errorf("invalid --publishers %d: use 1 to %d", cfg.Publishers, MaxPublishers)
	case cfg.Batch < 1 || cfg.Batch > api.MaxBatchEvents:
		return fmt.Errorf("invalid --batch %d: use 1 to %d events per request", cfg.Batch, api.MaxBatchEvents)
	case cfg.PayloadBytes < minPayloadBytes || cfg.PayloadBytes > MaxPayloadBytes:
		return fmt.Errorf("invalid --payload-size %d: use %d to %d bytes", cfg.PayloadBytes, minPayloadBytes, MaxPayloadBytes)
	case cfg.Batch*eventBytes > api.MaxBatchBodyBytes:
		return fmt.Errorf("invalid --batch %d with --payload-size %d: a batch request would exceed hookd's limit of %d MiB; use a smaller batch or payload",
			cfg.Batch, cfg.PayloadBytes, api.MaxBatchBodyBytes>>20)
	case cfg.Count < 1 || cfg.Count > MaxCount:
		return fmt.Errorf("invalid --count %d: use 1 to %d events", cfg.Count, MaxCount)
	case cfg.Duration <= 0 || cfg.Duration > MaxDuration:
		return fmt.Errorf("invalid --duration %s: use a positive duration of at most %s", cfg.Duration, MaxDuration)
	case cfg.Rate < 0:
		return fmt.Errorf("invalid --rate %v: use a positive number of events per second", cfg.Rate)
	case cfg.Consumers < 1 || cfg.Consumers > store.MaxConsumersPerClient:
		return fmt.Errorf("invalid --fanout %d: use 1 to %d, the limit of consumers per client", cfg.Consumers, store.MaxConsumersPerClient)
	case cfg.Scenario == ScenarioSlowConsumer && cfg.Consumers < 2:
		return fmt.Errorf("invalid --fanout %d: the slow-consumer scenario needs at least 2 consumers, one of which hangs", cfg.Consumers)
	case cfg.Workers < 1:
		return fmt.Errorf("invalid --workers %d: use 1 or more", cfg.Workers)
	case cfg.PerConsumer < 1:
		return fmt.Errorf("invalid --per-consumer %d: use 1 or more", cfg.PerConsumer)
	case cfg.DrainTimeout <= 0 || cfg.DrainTimeout > MaxDrainTimeout:
		return fmt.Errorf("invalid --drain-timeout %s: use a positive duration of at most %s", cfg.DrainTimeout, MaxDrainTimeout)
	case !slices.Contains([]string{"debug", "info", "warn", "error"}, cfg.LogLevel):
		return fmt.Errorf("invalid --log-level %q: use debug, info, warn or error", cfg.LogLevel)
	}
	if cfg.Database != "" {
		if err := checkLoopbackDatabase(cfg.Database); err != nil {
			return err
		}
	}
	return nil
}

// checkLoopbackDatabase accepts only a postgres:// or postgresql:// URL whose host is a
// loopback address or localhost, so that the benchmark's traffic stays on this machine.
func checkLoopbackDatabase(raw string) error {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		return fmt.Errorf("invalid --database: use a URL of the form postgres://user:password@127.0.0.1:5432/dbname")
	}
	host := u.Hostname()
	if host == "localhost" {
		return nil
	}
	ip := net.ParseIP(host)
	if ip == nil || !ip.IsLoopback() {
		return fmt.Errorf("invalid --database host %q: the benchmark only talks to servers on loopback; use 127.0.0.1 or ::1", host)
	}
	return nil
}
