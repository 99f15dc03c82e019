package bench

import (
	"strings"
	"testing"
	"time"
)

func TestConfigDefaults(t *testing.T) {
	tests := []struct {
		name string
		in   Config
		want Config
	}{
		{
			"steady",
			Config{Scenario: ScenarioSteady},
			Config{Scenario: ScenarioSteady, Publishers: 32, Batch: 100, PayloadBytes: 1024, Count: 200_000, Duration: 10 * time.Second,
				Rate: 1000, Consumers: 1, Workers: 128, PerConsumer: 32, DrainTimeout: 5 * time.Minute, LogLevel: "info"},
		},
		{
			"fanout keeps explicit values",
			Config{Scenario: ScenarioFanout, Publishers: 3, Count: 7, Consumers: 4},
			Config{Scenario: ScenarioFanout, Publishers: 3, Batch: 100, PayloadBytes: 1024, Count: 7, Duration: 10 * time.Second,
				Consumers: 4, Workers: 128, PerConsumer: 32, DrainTimeout: 5 * time.Minute, LogLevel: "info"},
		},
		{
			"smoke caps sizes",
			Config{Scenario: ScenarioBacklog, Smoke: true, Count: 1_000_000, Batch: 500},
			Config{Scenario: ScenarioBacklog, Smoke: true, Publishers: 32, Batch: 50, PayloadBytes: 1024, Count: 300, Duration: 2 * time.Second,
				Consumers: 1, Workers: 128, PerConsumer: 32, DrainTimeout: 20 * time.Second, LogLevel: "info"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.in.withDefaults(); got != tt.want {
				t.Errorf("withDefaults =\n%+v\nwant\n%+v", got, tt.want)
			}
		})
	}
}

func TestConfigValidate(t *testing.T) {
	valid := Config{Hookd: "/bin/hookd", Scenario: ScenarioSteady}
	tests := []struct {
		name    string
		change  func(*Config)
		wantErr string // empty for a valid configuration
	}{
		{"defaults", func(*Config) {}, ""},
		{"slow-consumer", func(c *Config) { c.Scenario = ScenarioSlowConsumer }, ""},
		{"unknown scenario", func(c *Config) { c.Scenario = "burst" }, `invalid --scenario "burst"`},
		{"no binary", func(c *Config) { c.Hookd = "" }, "hookd binary"},
		{"negative publishers", func(c *Config) { c.Publishers = -1 }, "invalid --publishers -1"},
		{"too many publishers", func(c *Config) { c.Publishers = MaxPublishers + 1 }, "invalid --publishers"},
		{"batch above the API limit", func(c *Config) { c.Batch = 501 }, "invalid --batch 501"},
		{"payload too small", func(c *Config) { c.PayloadBytes = minPayloadBytes - 1 }, "invalid --payload-size"},
		{"payload too large", func(c *Config) { c.PayloadBytes = MaxPayloadBytes + 1 }, "invalid --payload-size"},
		{"batch body too large", func(c *Config) { c.Batch, c.PayloadBytes = 500, 64<<10 }, "exceed hookd's limit"},
		{"count above the cap", func(c *Config) { c.Count = MaxCount + 1 }, "invalid --count"},
		{"negative count", func(c *Config) { c.Count = -5 }, "invalid --count -5"},
		{"duration above the cap", func(c *Config) { c.Duration = MaxDuration + time.Second }, "invalid --duration"},
		{"negative rate", func(c *Config) { c.Rate = -1 }, "invalid --rate"},
		{"too many consumers", func(c *Config) { c.Consumers = 51 }, "invalid --fanout 51"},
		{"slow-consumer with one consumer", func(c *Config) { c.Scenario, c.Consumers = ScenarioSlowConsumer, 1 }, "at least 2"},
		{"negative workers", func(c *Config) { c.Workers = -1 }, "invalid --workers"},
		{"negative per-consumer", func(c *Config) { c.PerConsumer = -2 }, "invalid --per-consumer"},
		{"drain timeout above the cap", func(c *Config) { c.DrainTimeout = time.Hour }, "invalid --drain-timeout"},
		{"log level", func(c *Config) { c.LogLevel = "loud" }, `invalid --log-level "loud"`},
		{"database on loopback", func(c *Config) { c.Database = "postgres://u:p@127.0.0.1:5432/hookd" }, ""},
		{"database on localhost", func(c *Config) { c.Database = "postgresql://localhost/hookd" }, ""},
		{"database on IPv6 loopback", func(c *Config) { c.Database = "postgres://[::1]:5432/hookd" }, ""},
		{"database elsewhere", func(c *Config) { c.Database = "postgres://u:p@db.example:5432/hookd" }, `host "db.example"`},
		{"database on a private address", func(c *Config) { c.Database = "postgres://10.0.0.5/hookd" }, `host "10.0.0.5"`},
		{"database not a URL", func(c *Config) { c.Database = "host=127.0.0.1 dbname=hookd" }, "postgres://"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := valid
			tt.change(&cfg)
			err := cfg.withDefaults().validate()
			switch {
			case tt.wantErr == "" && err != nil:
				t.Errorf("validate = %v, want nil", err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Errorf("validate = %v, want an error containing %q", err, tt.wantErr)
			}
		})
	}
}

func TestScenarioDefaultsComplete(t *testing.T) {
	for _, s := range Scenarios {
		d, ok := defaults[s]
		if !ok {
			t.Errorf("scenario %s has no defaults", s)
			continue
		}
		if d.count < 1 || d.count > MaxCount || d.duration <= 0 || d.duration > MaxDuration || d.consumers < 1 || d.instances < 1 {
			t.Errorf("defaults of %s = %+v, outside the limits", s, d)
		}
	}
	if len(defaults) != len(Scenarios) {
		t.Errorf("%d scenarios have defaults, %d are listed", len(defaults), len(Scenarios))
	}
}
