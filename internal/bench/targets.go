package bench

import (
	"fmt"
	"math"
)

// The performance targets, for the embedded SQLite store on a 2-core machine.
const (
	targetSteadyDeliveries   = 10_000      // deliveries/s in the steady scenario
	targetCeilingFraction    = 0.5         // of the loopback ceiling, in the steady scenario
	targetSingleAccepted     = 10_000      // events/s accepted by POST /events
	targetBatchAccepted      = 50_000      // events/s accepted by POST /events/batch
	targetLatencyRate        = 1000        // events/s at which the latency targets apply
	targetLatencyP50         = 5.0         // ms
	targetLatencyP99         = 50.0        // ms
	targetBacklogMessages    = 1_000_000   // messages of the backlog targets
	targetBacklogRSS         = 200_000_000 // bytes: 200 MB
	targetDrainFraction      = 0.8         // of the steady rate: within 20%
	targetSlowConsumerP99    = 100.0       // ms, healthy consumers
	targetPostgresDeliveries = 5_000       // deliveries/s with two instances
)

// checkTargets returns the targets of the report's scenario with their status.
func checkTargets(r *Report, cfg Config) []Target {
	var targets []Target
	switch r.Scenario {
	case ScenarioSteady:
		targets = steadyTargets(r, cfg)
	case ScenarioBacklog:
		targets = backlogTargets(r)
	case ScenarioSlowConsumer:
		if p := r.phase("paced"); p != nil {
			targets = append(targets, atMost("healthy consumers' p99 latency", p, latencyP99(p), targetSlowConsumerP99, "ms", false))
		}
	case ScenarioPostgres:
		if c := r.Ceiling; c != nil {
			targets = append(targets, atLeast("delivery rate with two instances", r.phase(c.HookdPhase), c.HookdDeliveriesPerSecond,
				targetPostgresDeliveries, "deliveries/s"))
		}
	}
	if r.Smoke {
		for i := range targets {
			targets[i].Note = joinNotes(targets[i].Note, "smoke run")
		}
	}
	return targets
}

func steadyTargets(r *Report, cfg Config) []Target {
	var targets []Target
	if c := r.Ceiling; c != nil {
		best := r.phase(c.HookdPhase)
		t := atLeast("steady delivery rate", best, c.HookdDeliveriesPerSecond, targetSteadyDeliveries, "deliveries/s")
		t.Note = joinNotes(t.Note, "phase "+c.HookdPhase)
		if cfg.Database != "" {
			t.Note = joinNotes(t.Note, "measured on PostgreSQL; the target is for the embedded store")
		}
		targets = append(targets, t)

		f := atLeast("steady share of the loopback ceiling", best, c.Fraction, targetCeilingFraction, "ratio")
		f.Note = joinNotes(f.Note, fmt.Sprintf("%s of %s deliveries/s", formatCount(int64(math.Round(c.HookdDeliveriesPerSecond))),
			formatCount(int64(math.Round(c.DeliveriesPerSecond)))))
		targets = append(targets, f)
	}
	if p := r.phase(modeSingle); p != nil {
		targets = append(targets, atLeast("single-event publishing", p, p.AcceptedPerSecond, targetSingleAccepted, "events/s"))
	}
	if p := r.phase(modeBatch); p != nil {
		t := atLeast("batch publishing", p, p.AcceptedPerSecond, targetBatchAccepted, "events/s")
		t.Note = joinNotes(t.Note, fmt.Sprintf("%d events per request", p.BatchEvents))
		targets = append(targets, t)
	}
	if p := r.phase(modePaced); p != nil {
		for _, lt := range []struct {
			name  string
			value float64
			limit float64
		}{
			{"publish-to-receipt p50 at 1,000 events/s", latencyP50(p), targetLatencyP50},
			{"publish-to-receipt p99 at 1,000 events/s", latencyP99(p), targetLatencyP99},
		} {
			t := atMost(lt.name, p, lt.value, lt.limit, "ms", true)
			if p.PacedRate != targetLatencyRate {
				t.Note = joinNotes(t.Note, fmt.Sprintf("published at %s events/s", formatCount(int64(math.Round(p.PacedRate)))))
			}
			targets = append(targets, t)
		}
	}
	return targets
}

func backlogTargets(r *Report) []Target {
	drain := r.phase("drain")
	if drain == nil {
		return nil
	}
	var sizeNote string
	if drain.ExpectedDeliveries < targetBacklogMessages {
		sizeNote = fmt.Sprintf("drained %s messages; the target is for %s", formatCount(drain.ExpectedDeliveries), formatCount(targetBacklogMessages))
	}
	rss := atMost("hookd RSS while the backlog drains", drain, float64(drain.HookdMaxRSSBytes), targetBacklogRSS, "bytes", false)
	rss.Condition = "< 200 MB"
	rss.Note = joinNotes(rss.Note, sizeNote)
	if drain.HookdMaxRSSBytes == 0 {
		rss.Status, rss.Note = StatusNotChecked, joinNotes(rss.Note, "no RSS samples: /proc is not readable")
	}
	targets := []Target{rss}

	if ref := r.phase("reference"); ref != nil && ref.DeliveriesPerSecond > 0 {
		ratio := drain.DeliveriesPerSecond / ref.DeliveriesPerSecond
		t := atLeast("drain rate as a share of the steady rate", drain, ratio, targetDrainFraction, "ratio")
		t.Note = joinNotes(t.Note, fmt.Sprintf("%s against %s deliveries/s", formatCount(int64(math.Round(drain.DeliveriesPerSecond))),
			formatCount(int64(math.Round(ref.DeliveriesPerSecond)))))
		t.Note = joinNotes(t.Note, sizeNote)
		targets = append(targets, t)
	}
	return targets
}

func latencyP50(p *Phase) float64 {
	if p.Latency == nil {
		return 0
	}
	return p.Latency.P50Ms
}

func latencyP99(p *Phase) float64 {
	if p.Latency == nil {
		return 0
	}
	return p.Latency.P99Ms
}

// atLeast checks measured >= limit. A phase whose deliveries did not all arrive fails.
func atLeast(name string, p *Phase, measured, limit float64, unit string) Target {
	t := Target{Name: name, Condition: ">= " + formatMeasure(limit, unit), Measured: measured, Unit: unit, Status: StatusMet}
	if measured < limit {
		t.Status = StatusNotMet
	}
	return incomplete(t, p)
}

// atMost checks measured <= limit, or measured < limit when inclusive is false. A phase
// without latency samples is not checked, and one whose deliveries did not all arrive
// fails.
func atMost(name string, p *Phase, measured, limit float64, unit string, inclusive bool) Target {
	op, ok := "< ", measured < limit
	if inclusive {
		op, ok = "<= ", measured <= limit
	}
	t := Target{Name: name, Condition: op + formatMeasure(limit, unit), Measured: measured, Unit: unit, Status: StatusMet}
	if !ok {
		t.Status = StatusNotMet
	}
	if unit == "ms" && (p == nil || p.Latency == nil || p.Latency.Samples == 0) {
		t.Status, t.Note = StatusNotChecked, "no deliveries arrived"
		return t
	}
	return incomplete(t, p)
}

func incomplete(t Target, p *Phase) Target {
	if p != nil && !p.Complete {
		t.Status = StatusNotMet
		t.Note = joinNotes(t.Note, fmt.Sprintf("only %s of %s deliveries arrived", formatCount(p.Deliveries), formatCount(p.ExpectedDeliveries)))
	}
	return t
}

func joinNotes(a, b string) string {
	switch {
	case a == "":
		return b
	case b == "":
		return a
	default:
		return a + "; " + b
	}
}
