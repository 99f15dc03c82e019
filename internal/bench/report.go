package bench

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
)

// Report is the result of a run. Every number carries its unit in its JSON name.
type Report struct {
	Scenario  string    `json:"scenario"`
	Smoke     bool      `json:"smoke"`
	StartedAt time.Time `json:"startedAt"`
	Settings  Settings  `json:"settings"`
	Machine   Machine   `json:"machine"`
	Phases    []Phase   `json:"phases"`
	Hookd     Usage     `json:"hookd"`
	Ceiling   *Ceiling  `json:"ceiling,omitempty"`
	Targets   []Target  `json:"targets"`

	// StrayDeliveries counts requests at the receivers whose message id belonged to no
	// phase running at the time, such as late retries of an earlier phase.
	StrayDeliveries int64 `json:"strayDeliveries"`
}

// Settings are the sizes and hookd options of a run.
type Settings struct {
	Publishers          int     `json:"publishers"`
	BatchEvents         int     `json:"batchEvents"`
	PayloadBytes        int     `json:"payloadBytes"`
	MaxEventsPerPhase   int     `json:"maxEventsPerPhase"`
	MaxPhaseSeconds     float64 `json:"maxPhaseSeconds"`
	PacedEventsPerSec   float64 `json:"pacedEventsPerSecond,omitempty"`
	Consumers           int     `json:"consumers"`
	Instances           int     `json:"instances"`
	Workers             int     `json:"workers"`
	PerConsumer         int     `json:"perConsumer"`
	DrainTimeoutSeconds float64 `json:"drainTimeoutSeconds"`
	LogLevel            string  `json:"logLevel"`
	Backend             string  `json:"backend"`
}

// Machine describes where the run happened.
type Machine struct {
	CPUs        int    `json:"cpus"`
	CPUModel    string `json:"cpuModel,omitempty"`
	MemoryBytes int64  `json:"memoryBytes,omitempty"`
	GoVersion   string `json:"goVersion"`
	OS          string `json:"os"`
	Arch        string `json:"arch"`
	Revision    string `json:"vcsRevision,omitempty"` // of the harness binary, from its build information
	Modified    bool   `json:"vcsModified,omitempty"` // the build had uncommitted changes

	// LoadBefore and LoadAfter are the 1-minute load averages of /proc/loadavg when the
	// run started and ended. Above about 0.5 before the run, other processes competed for
	// the CPUs and the disk.
	LoadBefore float64 `json:"loadAverageBefore"`
	LoadAfter  float64 `json:"loadAverageAfter"`

	// Fsync is the time of a 4 KiB write and fsync in the data folder's file system, timed
	// before hookd starts. Every SQLite commit waits for at least one fsync.
	Fsync *Latency `json:"fsync,omitempty"`
}

// Phase is the measurement of one step of a scenario.
type Phase struct {
	Name        string  `json:"name"`
	Description string  `json:"description"`
	Endpoint    string  `json:"endpoint,omitempty"`
	BatchEvents int     `json:"batchEvents,omitempty"`
	PacedRate   float64 `json:"pacedEventsPerSecond,omitempty"`

	Requests          int64   `json:"requests"`
	Events            int64   `json:"events"`
	AcceptedEvents    int64   `json:"acceptedEvents"`
	RejectedEvents    int64   `json:"rejectedEvents"`
	FailedEvents      int64   `json:"failedEvents"`
	FirstError        string  `json:"firstError,omitempty"`
	PublishSeconds    float64 `json:"publishSeconds"`
	AcceptedPerSecond float64 `json:"acceptedEventsPerSecond"`

	ExpectedDeliveries  int64    `json:"expectedDeliveries"`
	Deliveries          int64    `json:"deliveries"`
	DuplicateDeliveries int64    `json:"duplicateDeliveries"`
	Complete            bool     `json:"complete"`
	DeliverySeconds     float64  `json:"deliverySeconds"`
	DeliveriesPerSecond float64  `json:"deliveriesPerSecond"`
	Latency             *Latency `json:"latency,omitempty"`

	// QueuedDeliveries is hookd_queue_depth{state="due"} when the phase began, for the
	// drain phase.
	QueuedDeliveries *int64 `json:"queuedDeliveries,omitempty"`

	HookdCPUSeconds  float64 `json:"hookdCpuSeconds"`
	HookdMaxRSSBytes int64   `json:"hookdMaxRssBytes"`
	BenchCPUSeconds  float64 `json:"benchCpuSeconds"`

	// OtherCPUSeconds is the CPU time that the rest of the machine used during the phase:
	// the busy time of all CPUs from /proc/stat, less hookd's and the harness's. It
	// includes a PostgreSQL server on this machine. Otherwise, more than a few percent of
	// the phase's duration means that other work disturbed the figures.
	OtherCPUSeconds float64 `json:"otherCpuSeconds"`

	// StoreCommits are hookd's group commits during the phase, from its metrics. Claims
	// are write transactions too, but hookd does not export them.
	StoreCommits []CommitStats `json:"storeCommits,omitempty"`
}

// CommitStats counts the group commits of one operation.
type CommitStats struct {
	Operation      string  `json:"operation"` // publish or record
	Commits        int64   `json:"commits"`
	Items          int64   `json:"items"`
	CommitSeconds  float64 `json:"commitSeconds"`
	ItemsPerCommit float64 `json:"itemsPerCommit"`
	MeanCommitMs   float64 `json:"meanCommitMs"`
}

// Usage is the resource use of the hookd processes over the whole run, up to SIGTERM.
type Usage struct {
	PeakRSSBytes int64   `json:"peakRssBytes"` // the largest VmHWM of any instance
	CPUSeconds   float64 `json:"cpuSeconds"`   // user and system time of all instances
}

// Ceiling compares hookd's delivery rate with the plain-client rate of the same receivers.
type Ceiling struct {
	DeliveriesPerSecond      float64 `json:"deliveriesPerSecond"`
	Concurrency              int     `json:"concurrency"`
	HookdDeliveriesPerSecond float64 `json:"hookdDeliveriesPerSecond"`
	HookdPhase               string  `json:"hookdPhase"`
	Fraction                 float64 `json:"fraction"`
}

// Target statuses.
const (
	StatusMet        = "met"
	StatusNotMet     = "not met"
	StatusNotChecked = "not checked"
)

// Target is one performance target and what the run measured for it.
type Target struct {
	Name      string  `json:"name"`
	Condition string  `json:"condition"` // the requirement, such as ">= 10,000 deliveries/s"
	Measured  float64 `json:"measured"`
	Unit      string  `json:"unit"`
	Status    string  `json:"status"`
	Note      string  `json:"note,omitempty"`
}

// phase returns the phase with the given name, or nil.
func (r *Report) phase(name string) *Phase {
	for i := range r.Phases {
		if r.Phases[i].Name == name {
			return &r.Phases[i]
		}
	}
	return nil
}

// WriteJSON writes the report as indented JSON.
func (r *Report) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

// WriteTable writes the report for people.
func (r *Report) WriteTable(w io.Writer) error {
	var b strings.Builder
	s := r.Settings
	title := "hookd bench: scenario " + r.Scenario
	if r.Smoke {
		title += " (smoke run: sizes are too small for the figures to mean anything)"
	}
	fmt.Fprintln(&b, title)
	fmt.Fprintf(&b, "machine: %d CPUs (%s), %s RAM, %s %s/%s", r.Machine.CPUs, orUnknown(r.Machine.CPUModel),
		formatBytes(r.Machine.MemoryBytes), r.Machine.GoVersion, r.Machine.OS, r.Machine.Arch)
	if r.Machine.Revision != "" {
		fmt.Fprintf(&b, ", revision %s", r.Machine.Revision)
		if r.Machine.Modified {
			b.WriteString(" with uncommitted changes")
		}
	}
	fmt.Fprintf(&b, "; load average %.2f at the start, %.2f at the end\n", r.Machine.LoadBefore, r.Machine.LoadAfter)
	if f := r.Machine.Fsync; f != nil {
		fmt.Fprintf(&b, "data folder: 4 KiB write and fsync p50 %s, p99 %s over %d samples\n", formatMs(f.P50Ms), formatMs(f.P99Ms), f.Samples)
	}
	fmt.Fprintf(&b, "publishing: %s, %d publishers, %s payloads, batches of %d events, phases of at most %s events or %s\n",
		plural(s.Consumers, "consumer"), s.Publishers, formatCount(int64(s.PayloadBytes))+" B", s.BatchEvents,
		formatCount(int64(s.MaxEventsPerPhase)), formatSeconds(s.MaxPhaseSeconds))
	fmt.Fprintf(&b, "hookd: %s on %s, --workers %d, --per-consumer %d, --log-level %s\n\n",
		plural(s.Instances, "instance"), s.Backend, s.Workers, s.PerConsumer, s.LogLevel)

	tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "phase\tevents\taccepted\tdeliveries\tdelivered\tp50\tp95\tp99\tmax\thookd CPU\thookd RSS\tbench CPU\tother CPU\t")
	for _, p := range r.Phases {
		lat := []string{"-", "-", "-", "-"}
		if p.Latency != nil && p.Latency.Samples > 0 {
			lat = []string{formatMs(p.Latency.P50Ms), formatMs(p.Latency.P95Ms), formatMs(p.Latency.P99Ms), formatMs(p.Latency.MaxMs)}
		}
		accepted := "-"
		if p.AcceptedPerSecond > 0 {
			accepted = formatCount(int64(math.Round(p.AcceptedPerSecond))) + " events/s"
		}
		delivered := "-"
		if p.DeliveriesPerSecond > 0 {
			delivered = formatCount(int64(math.Round(p.DeliveriesPerSecond))) + " /s"
		}
		deliveries := formatCount(p.Deliveries)
		if !p.Complete {
			deliveries += " of " + formatCount(p.ExpectedDeliveries)
		}
		events := "-"
		if p.Events > 0 {
			events = formatCount(p.Events)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t\n", p.Name, events, accepted,
			deliveries, delivered, lat[0], lat[1], lat[2], lat[3], formatSeconds(p.HookdCPUSeconds),
			formatBytes(p.HookdMaxRSSBytes), formatSeconds(p.BenchCPUSeconds), formatSeconds(p.OtherCPUSeconds))
	}
	tw.Flush()

	b.WriteString("\n")
	for _, p := range r.Phases {
		fmt.Fprintf(&b, "%s: %s", p.Name, p.Description)
		if p.QueuedDeliveries != nil {
			fmt.Fprintf(&b, "; %s deliveries were queued when it began", formatCount(*p.QueuedDeliveries))
		}
		if p.DuplicateDeliveries > 0 {
			fmt.Fprintf(&b, "; %s duplicate deliveries", formatCount(p.DuplicateDeliveries))
		}
		if p.RejectedEvents+p.FailedEvents > 0 {
			fmt.Fprintf(&b, "; %s events rejected and %s failed, first error: %s",
				formatCount(p.RejectedEvents), formatCount(p.FailedEvents), p.FirstError)
		}
		if !p.Complete {
			fmt.Fprintf(&b, "; INCOMPLETE: %s of %s deliveries arrived", formatCount(p.Deliveries), formatCount(p.ExpectedDeliveries))
		}
		for _, c := range p.StoreCommits {
			if c.Commits > 0 {
				fmt.Fprintf(&b, "; %s commits: %s of %.1f items, %s each on average", c.Operation, formatCount(c.Commits),
					c.ItemsPerCommit, formatMs(c.MeanCommitMs))
			}
		}
		b.WriteString("\n")
	}
	fmt.Fprintf(&b, "hookd process: peak RSS %s (VmHWM), %s of CPU in total\n", formatBytes(r.Hookd.PeakRSSBytes), formatSeconds(r.Hookd.CPUSeconds))
	if c := r.Ceiling; c != nil {
		fmt.Fprintf(&b, "loopback ceiling: %s deliveries/s from a plain Go client with %d requests in flight; hookd's %s deliveries/s (phase %s) are %.2f of it\n",
			formatCount(int64(math.Round(c.DeliveriesPerSecond))), c.Concurrency,
			formatCount(int64(math.Round(c.HookdDeliveriesPerSecond))), c.HookdPhase, c.Fraction)
	}
	if r.StrayDeliveries > 0 {
		fmt.Fprintf(&b, "stray deliveries (outside their phase): %s\n", formatCount(r.StrayDeliveries))
	}

	if len(r.Targets) > 0 {
		b.WriteString("\ntargets:\n")
		tw = tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
		for _, t := range r.Targets {
			note := ""
			if t.Note != "" {
				note = "(" + t.Note + ")"
			}
			fmt.Fprintf(tw, "  %s\t%s %s\t%s\t%s\n", t.Status, t.Name, t.Condition, formatMeasure(t.Measured, t.Unit), note)
		}
		tw.Flush()
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func orUnknown(s string) string {
	if s == "" {
		return "unknown model"
	}
	return s
}

func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return strconv.Itoa(n) + " " + noun + "s"
}

// formatCount writes n with thousands separators.
func formatCount(n int64) string {
	s := strconv.FormatInt(n, 10)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}

func formatMs(ms float64) string {
	switch {
	case ms >= 1000:
		return strconv.FormatFloat(ms/1000, 'f', 2, 64) + " s"
	case ms >= 100:
		return strconv.FormatFloat(ms, 'f', 0, 64) + " ms"
	case ms >= 10:
		return strconv.FormatFloat(ms, 'f', 1, 64) + " ms"
	default:
		return strconv.FormatFloat(ms, 'f', 2, 64) + " ms"
	}
}

func formatSeconds(s float64) string {
	return strconv.FormatFloat(s, 'f', 1, 64) + " s"
}

func formatBytes(n int64) string {
	switch {
	case n >= 1<<30:
		return strconv.FormatFloat(float64(n)/(1<<30), 'f', 1, 64) + " GiB"
	case n >= 1<<20:
		return strconv.FormatFloat(float64(n)/(1<<20), 'f', 1, 64) + " MiB"
	case n > 0:
		return strconv.FormatFloat(float64(n)/(1<<10), 'f', 1, 64) + " KiB"
	default:
		return "-"
	}
}

// formatMeasure writes a measured value in its unit.
func formatMeasure(v float64, unit string) string {
	switch unit {
	case "ms":
		return formatMs(v)
	case "bytes":
		return fmt.Sprintf("%s (%s bytes)", formatBytes(int64(v)), formatCount(int64(v)))
	case "ratio":
		return strconv.FormatFloat(v, 'f', 2, 64)
	default:
		return formatCount(int64(math.Round(v))) + " " + unit
	}
}
