package bench

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/hookd/hookd/internal/apikey"
)

// Timing of the run's background checks.
const (
	rssSampleInterval = 100 * time.Millisecond
	aliveInterval     = 500 * time.Millisecond
	hookdShutdown     = 10 * time.Second // hookd serve --shutdown-timeout
)

// run is the state of one benchmark run.
type run struct {
	cfg       Config
	clock     clock
	current   atomic.Pointer[tracker]
	receivers []*receiver
	servers   []*hookdProcess
	publisher *publisher
	api       *http.Client // for setup requests and GET /metrics
	rss       *rssSampler
	phases    int // phases started, for the message id tags
	report    *Report
}

// Run runs cfg's scenario and returns its report. It starts and stops every process and
// server it needs, and removes its temporary files.
func Run(ctx context.Context, cfg Config) (*Report, error) {
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	if cfg.Scenario == ScenarioPostgres || cfg.Database != "" {
		ok, err := serveHasFlag(ctx, cfg.Hookd, "--database")
		if err != nil {
			return nil, err
		}
		if !ok {
			return nil, ErrPostgresUnavailable
		}
		if cfg.Database == "" {
			return nil, errors.New("the postgres scenario needs --database postgres://user:password@127.0.0.1:5432/dbname, an empty database on loopback")
		}
	}

	r := &run{
		cfg:   cfg,
		clock: newClock(),
		api:   newHTTPClient(4),
		report: &Report{
			Scenario:  cfg.Scenario,
			Smoke:     cfg.Smoke,
			StartedAt: time.Now().UTC().Truncate(time.Second),
			Settings:  settingsOf(cfg),
			Machine:   machineInfo(),
		},
	}
	defer r.close()

	dir, err := os.MkdirTemp(cfg.TempDir, "hookd-bench-")
	if err != nil {
		return nil, fmt.Errorf("create the temporary data folder: %w", err)
	}
	defer os.RemoveAll(dir)

	if fsync, err := measureFsync(dir); err == nil {
		r.report.Machine.Fsync = &fsync
	}
	if err := r.start(ctx, dir); err != nil {
		return nil, err
	}
	if err := r.runScenario(ctx); err != nil {
		return nil, err
	}
	if err := r.finish(); err != nil {
		return nil, err
	}
	r.report.Machine.LoadAfter = loadAverage()
	r.report.Targets = checkTargets(r.report, cfg)
	return r.report, nil
}

// start starts the receivers and the hookd instances, and creates one consumer per receiver.
func (r *run) start(ctx context.Context, dir string) error {
	for i := range r.cfg.Consumers {
		rcv, err := startReceiver(i, &r.current, r.clock)
		if err != nil {
			return fmt.Errorf("start receiver: %w", err)
		}
		r.receivers = append(r.receivers, rcv)
	}

	for i := range r.cfg.instances() {
		args := []string{
			"--addr", "127.0.0.1:0",
			"--log-format", "json",
			"--log-level", r.cfg.LogLevel,
			"--rate-limit", "0",
			"--allow-destination", "127.0.0.0/8",
			"--workers", strconv.Itoa(r.cfg.Workers),
			"--per-consumer", strconv.Itoa(r.cfg.PerConsumer),
			"--shutdown-timeout", hookdShutdown.String(),
		}
		if r.cfg.Scenario == ScenarioBacklog {
			// The receiver holds its requests while the backlog fills; they must not time
			// out and be retried later, which would mix retries into the drain.
			args = append(args, "--delivery-timeout", (r.cfg.Duration + time.Minute).String())
		}
		// serve rejects --data together with --database.
		if r.cfg.Database != "" {
			args = append(args, "--database", r.cfg.Database)
		} else {
			args = append(args, "--data", filepath.Join(dir, "instance"+strconv.Itoa(i)))
		}
		// Only the first instance finds the store empty and prints a key.
		p, err := startHookd(ctx, r.cfg.Hookd, dir, i == 0, args...)
		if err != nil {
			return err
		}
		r.servers = append(r.servers, p)
		r.progress("hookd serve started: pid %d, %s", p.pid, p.url)
	}
	if r.servers[0].key == "" {
		return errors.New("hookd serve printed no API key because its store was not empty: use an empty database")
	}

	urls := make([]string, len(r.servers))
	for i, p := range r.servers {
		urls[i] = p.url
	}
	r.publisher = &publisher{
		clock:   r.clock,
		client:  newHTTPClient(r.cfg.Publishers),
		urls:    urls,
		auth:    apikey.Header(r.servers[0].key),
		payload: makePayload(r.cfg.PayloadBytes),
	}
	for _, rcv := range r.receivers {
		if err := r.createConsumer(ctx, rcv.url); err != nil {
			return err
		}
	}

	pids := make([]int, len(r.servers))
	for i, p := range r.servers {
		pids[i] = p.pid
	}
	r.rss = startRSSSampler(pids)
	return nil
}

func (r *run) createConsumer(ctx context.Context, url string) error {
	body, err := json.Marshal(map[string]any{"url": url, "eventTypes": []string{eventType}})
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, r.servers[0].url+"/webhooks", bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", r.publisher.auth)
	resp, err := r.api.Do(req)
	if err != nil {
		return fmt.Errorf("create consumer for %s: %w", url, err)
	}
	defer resp.Body.Close()
	respBody, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode != http.StatusCreated {
		return fmt.Errorf("create consumer for %s: status %d, want 201: %s", url, resp.StatusCode, truncate(string(respBody), 300))
	}
	return nil
}

func (r *run) runScenario(ctx context.Context) error {
	switch r.cfg.Scenario {
	case ScenarioSteady:
		return r.runThroughput(ctx, true)
	case ScenarioFanout, ScenarioPostgres:
		return r.runThroughput(ctx, false)
	case ScenarioBacklog:
		return r.runBacklog(ctx)
	case ScenarioSlowConsumer:
		return r.runSlowConsumer(ctx)
	}
	return fmt.Errorf("unknown scenario %q", r.cfg.Scenario)
}

// runThroughput publishes single events and batches as fast as the publishers go, then,
// when paced is set, single events at the configured rate, and measures the loopback
// ceiling last.
func (r *run) runThroughput(ctx context.Context, paced bool) error {
	all := r.countAll()
	specs := []loadSpec{
		{mode: modeSingle, count: r.cfg.Count, duration: r.cfg.Duration, publishers: r.cfg.Publishers},
		{mode: modeBatch, batch: r.cfg.Batch, count: r.cfg.Count, duration: r.cfg.Duration, publishers: r.cfg.Publishers},
	}
	if paced && r.cfg.Rate > 0 {
		specs = append(specs, loadSpec{mode: modePaced, rate: r.cfg.Rate, count: r.cfg.Count, duration: r.cfg.Duration, publishers: r.cfg.Publishers})
	}
	for _, spec := range specs {
		if _, err := r.publishPhase(ctx, spec.mode, describe(spec), spec, all); err != nil {
			return err
		}
	}
	return r.ceilingPhase(ctx)
}

// runBacklog measures a reference steady rate with batches, then queues the backlog while
// the receiver holds its requests, then releases it and measures the drain.
func (r *run) runBacklog(ctx context.Context) error {
	all := r.countAll()
	steady := defaults[ScenarioSteady]
	ref := loadSpec{mode: modeBatch, batch: r.cfg.Batch, count: min(r.cfg.Count, steady.count),
		duration: min(r.cfg.Duration, steady.duration), publishers: r.cfg.Publishers}
	if _, err := r.publishPhase(ctx, "reference", "steady state for comparison: "+describe(ref), ref, all); err != nil {
		return err
	}

	// Fill: the receiver is down, so every delivery stays queued. hookd's attempts in
	// flight wait at the receiver, and the other deliveries wait in the store.
	for _, rcv := range r.receivers {
		rcv.hang()
	}
	fillSpec := loadSpec{mode: modeBatch, batch: r.cfg.Batch, count: r.cfg.Count, duration: r.cfg.Duration, publishers: r.cfg.Publishers}
	t := r.newTracker(all, fillSpec.count)
	sent := newTimeline(fillSpec.count)
	m := r.beginMeasure(ctx)
	start := r.clock.now()
	r.progress("phase fill: publishing while the receiver holds every request")
	out := r.publisher.run(ctx, t, sent, fillSpec)
	fill := r.publishedPhase("fill", "the receiver holds every request while "+describe(fillSpec), fillSpec, out, start)
	fill.Complete = true
	r.endMeasure(ctx, m, &fill)
	r.report.Phases = append(r.report.Phases, fill)
	if err := r.alive(ctx); err != nil {
		return err
	}

	drain := Phase{Name: "drain", Description: "the receiver answers again and hookd delivers the queued messages"}
	if due, _, err := scrapeQueueDepth(ctx, r.api, r.servers[0].url); err == nil {
		drain.QueuedDeliveries = &due
	}
	m = r.beginMeasure(ctx)
	start = r.clock.now()
	for _, rcv := range r.receivers {
		rcv.resume()
	}
	t.expect(out.accepted.Load() * int64(len(r.receivers)))
	r.progress("phase drain: %d events queued, receiver released", out.accepted.Load())
	complete, err := r.waitDeliveries(ctx, t)
	if err != nil {
		return err
	}
	r.endMeasure(ctx, m, &drain)
	drain.Complete = complete
	r.deliveryStats(&drain, t, nil, out.handedOut, start)
	r.report.Phases = append(r.report.Phases, drain)
	return nil
}

// runSlowConsumer publishes at the paced rate while the first receiver holds every
// request, and measures the other consumers' latency.
func (r *run) runSlowConsumer(ctx context.Context) error {
	healthy := r.countAll()
	healthy[0] = false
	r.receivers[0].hang()
	spec := loadSpec{mode: modePaced, rate: r.cfg.Rate, count: r.cfg.Count, duration: r.cfg.Duration, publishers: r.cfg.Publishers}
	desc := describe(spec) + fmt.Sprintf("; 1 of %d receivers holds every request, and the figures are the other %d's",
		len(r.receivers), len(r.receivers)-1)
	_, err := r.publishPhase(ctx, modePaced, desc, spec, healthy)
	return err
}

// countAll returns a counted flag set for every receiver.
func (r *run) countAll() []bool {
	counted := make([]bool, len(r.receivers))
	for i := range counted {
		counted[i] = true
	}
	return counted
}

func describe(spec loadSpec) string {
	switch spec.mode {
	case modeSingle:
		return fmt.Sprintf("POST /events, one event per request, %d publishers", spec.publishers)
	case modeBatch:
		return fmt.Sprintf("POST /events/batch, %d events per request, %d publishers", spec.batch, spec.publishers)
	default:
		return fmt.Sprintf("POST /events at %s events/s", formatCount(int64(spec.rate)))
	}
}

func (r *run) newTracker(counted []bool, capacity int) *tracker {
	r.phases++
	t := newTracker("p"+strconv.Itoa(r.phases), r.clock, capacity, counted)
	r.current.Store(t)
	return t
}

// publishPhase publishes spec's events, waits for their deliveries at the counted
// receivers and appends the phase's figures to the report.
func (r *run) publishPhase(ctx context.Context, name, desc string, spec loadSpec, counted []bool) (*Phase, error) {
	t := r.newTracker(counted, spec.count)
	sent := newTimeline(spec.count)
	m := r.beginMeasure(ctx)
	start := r.clock.now()
	r.progress("phase %s: publishing", name)
	out := r.publisher.run(ctx, t, sent, spec)
	p := r.publishedPhase(name, desc, spec, out, start)

	countedN := int64(0)
	for _, c := range counted {
		if c {
			countedN++
		}
	}
	t.expect(out.accepted.Load() * countedN)
	r.progress("phase %s: %d events accepted, waiting for their deliveries", name, out.accepted.Load())
	complete, err := r.waitDeliveries(ctx, t)
	if err != nil {
		return nil, err
	}
	r.endMeasure(ctx, m, &p)
	p.Complete = complete
	r.deliveryStats(&p, t, sent, out.handedOut, start)
	r.report.Phases = append(r.report.Phases, p)
	return &r.report.Phases[len(r.report.Phases)-1], nil
}

// publishedPhase returns a phase with the publishing figures of out.
func (r *run) publishedPhase(name, desc string, spec loadSpec, out *publishOutcome, start int64) Phase {
	p := Phase{
		Name:           name,
		Description:    desc,
		Requests:       out.requests.Load(),
		Events:         out.sent.Load(),
		AcceptedEvents: out.accepted.Load(),
		RejectedEvents: out.rejected.Load(),
		FailedEvents:   out.failed.Load(),
	}
	switch spec.mode {
	case modeBatch:
		p.Endpoint, p.BatchEvents = "POST /events/batch", spec.batch
	case modePaced:
		p.Endpoint, p.PacedRate = "POST /events", spec.rate
	default:
		p.Endpoint = "POST /events"
	}
	if e := out.firstError.Load(); e != nil {
		p.FirstError = *e
	}
	if last := out.lastAccept.Load(); last > start {
		p.PublishSeconds = float64(last-start) / 1e9
		p.AcceptedPerSecond = overallRate(int(p.AcceptedEvents), start, last)
	}
	return p
}

// ceilingPhase drives the receivers with a plain HTTP client and records the rate as
// the report's ceiling, compared with the best delivery rate of the phases before it.
func (r *run) ceilingPhase(ctx context.Context) error {
	n := len(r.receivers)
	concurrency := len(r.servers) * min(r.cfg.Workers, r.cfg.PerConsumer*n)
	spec := ceilingSpec{requests: r.cfg.Count * n, concurrency: concurrency, duration: r.cfg.Duration}
	t := r.newTracker(r.countAll(), r.cfg.Count)
	client := newHTTPClient(concurrency)
	defer client.CloseIdleConnections()

	m := r.beginMeasure(ctx)
	start := r.clock.now()
	r.progress("phase ceiling: posting to the receivers")
	out := runCeiling(ctx, client, r.receivers, t, r.publisher.payload, spec)
	p := Phase{
		Name:           "ceiling",
		Description:    fmt.Sprintf("a plain Go HTTP client posts the same envelopes straight to the receivers, %d requests in flight", concurrency),
		Endpoint:       "POST receiver",
		Requests:       out.requests.Load(),
		Events:         out.sent.Load(),
		AcceptedEvents: out.accepted.Load(),
		RejectedEvents: out.rejected.Load(),
		FailedEvents:   out.failed.Load(),
	}
	if e := out.firstError.Load(); e != nil {
		p.FirstError = *e
	}
	t.expect(out.accepted.Load())
	complete, err := r.waitDeliveries(ctx, t)
	if err != nil {
		return err
	}
	r.endMeasure(ctx, m, &p)
	p.Complete = complete
	r.deliveryStats(&p, t, nil, (out.handedOut+n-1)/n, start)
	r.report.Phases = append(r.report.Phases, p)

	c := &Ceiling{DeliveriesPerSecond: p.DeliveriesPerSecond, Concurrency: concurrency}
	for _, ph := range r.report.Phases {
		if (ph.Name == modeSingle || ph.Name == modeBatch) && ph.DeliveriesPerSecond > c.HookdDeliveriesPerSecond {
			c.HookdDeliveriesPerSecond, c.HookdPhase = ph.DeliveriesPerSecond, ph.Name
		}
	}
	if c.DeliveriesPerSecond > 0 {
		c.Fraction = c.HookdDeliveriesPerSecond / c.DeliveriesPerSecond
	}
	r.report.Ceiling = c
	return nil
}

// progress writes one line to cfg.Progress.
func (r *run) progress(format string, args ...any) {
	if r.cfg.Progress != nil {
		fmt.Fprintf(r.cfg.Progress, "hookd bench: "+format+"\n", args...)
	}
}

// waitDeliveries waits until every expected delivery of t has arrived and reports true, or
// reports false after the drain timeout. It fails when a hookd process exits or ctx ends.
func (r *run) waitDeliveries(ctx context.Context, t *tracker) (bool, error) {
	timeout := time.NewTimer(r.cfg.DrainTimeout)
	defer timeout.Stop()
	check := time.NewTicker(aliveInterval)
	defer check.Stop()
	for {
		select {
		case <-t.done:
			return true, nil
		case <-timeout.C:
			return false, nil
		case <-ctx.Done():
			return false, ctx.Err()
		case <-check.C:
			if err := r.alive(ctx); err != nil {
				return false, err
			}
		}
	}
}

// alive returns an error when ctx has ended or a hookd process has exited.
func (r *run) alive(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	for _, p := range r.servers {
		if err := p.running(); err != nil {
			return err
		}
	}
	return nil
}

// deliveryStats fills in the delivery figures of p from the arrivals of events 0 to
// events-1, measured from start. sent, when not nil, gives the publish times for the
// latency.
func (r *run) deliveryStats(p *Phase, t *tracker, sent *timeline, events int, start int64) {
	p.ExpectedDeliveries = max(t.expected.Load(), 0)
	p.Deliveries = t.received.Load()
	p.DuplicateDeliveries = t.duplicates.Load()

	var arrivals, latencies []int64
	for k, counted := range t.counted {
		if !counted {
			continue
		}
		for i := range events {
			at := t.arrivals[k].get(i)
			if at == 0 {
				continue
			}
			arrivals = append(arrivals, at)
			if sent != nil {
				if s := sent.get(i); s > 0 {
					latencies = append(latencies, at-s)
				}
			}
		}
	}
	if len(arrivals) == 0 {
		return
	}
	last := arrivals[0]
	for _, at := range arrivals {
		last = max(last, at)
	}
	p.DeliverySeconds = float64(last-start) / 1e9
	p.DeliveriesPerSecond = steadyRate(arrivals, start)
	if sent != nil {
		l := latencyOf(latencies)
		p.Latency = &l
	}
}

// measurement is the CPU times and the store commit counters at the start of a phase.
type measurement struct {
	hookdCPU, benchCPU, machineCPU float64
	commits                        metricValues
}

func (r *run) beginMeasure(ctx context.Context) measurement {
	r.rss.reset()
	busy, _ := machineBusySeconds()
	return measurement{hookdCPU: r.hookdCPU(), benchCPU: benchCPU(), machineCPU: busy, commits: r.scrapeCommits(ctx)}
}

func (r *run) endMeasure(ctx context.Context, m measurement, p *Phase) {
	p.HookdCPUSeconds = r.hookdCPU() - m.hookdCPU
	p.BenchCPUSeconds = benchCPU() - m.benchCPU
	p.HookdMaxRSSBytes = r.rss.max()
	if busy, err := machineBusySeconds(); err == nil && m.machineCPU > 0 {
		p.OtherCPUSeconds = max(busy-m.machineCPU-p.HookdCPUSeconds-p.BenchCPUSeconds, 0)
	}
	if m.commits != nil {
		if end := r.scrapeCommits(ctx); end != nil {
			p.StoreCommits = commitStats(m.commits, end)
		}
	}
}

// scrapeCommits returns the store commit series of GET /metrics, summed over the hookd
// instances, or nil when a scrape fails.
func (r *run) scrapeCommits(ctx context.Context) metricValues {
	total := metricValues{}
	for _, p := range r.servers {
		values, err := scrapeMetrics(ctx, r.api, p.url, "hookd_store_commit_")
		if err != nil {
			return nil
		}
		for k, v := range values {
			total[k] += v
		}
	}
	return total
}

// hookdCPU returns the CPU seconds of all hookd instances so far, or 0 when /proc is not
// readable.
func (r *run) hookdCPU() float64 {
	total := 0.0
	for _, p := range r.servers {
		s, err := procCPUSeconds(p.pid)
		if err != nil {
			return 0
		}
		total += s
	}
	return total
}

func benchCPU() float64 {
	s, err := procCPUSeconds(0)
	if err != nil {
		return 0
	}
	return s
}

// finish records the hookd processes' total usage, stops them with SIGTERM and stops the
// receivers.
func (r *run) finish() error {
	r.rss.stop()
	for _, rcv := range r.receivers {
		rcv.resume()
	}
	for _, s := range r.receivers {
		r.report.StrayDeliveries += s.strays.Load()
	}
	r.report.Hookd.CPUSeconds = r.hookdCPU()
	for _, p := range r.servers {
		if m, err := procMemory(p.pid); err == nil {
			r.report.Hookd.PeakRSSBytes = max(r.report.Hookd.PeakRSSBytes, m.peakRSS)
		}
	}

	var errs []error
	for _, p := range r.servers {
		if err := p.stop(); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// close kills whatever is still running, after a failed run too.
func (r *run) close() {
	if r.rss != nil {
		r.rss.stop()
	}
	for _, rcv := range r.receivers {
		rcv.close()
	}
	for _, p := range r.servers {
		p.kill()
	}
}

// rssSampler records the largest resident set size of a group of processes.
type rssSampler struct {
	pids    []int
	maxRSS  atomic.Int64
	quit    chan struct{}
	done    chan struct{}
	stopped atomic.Bool
}

func startRSSSampler(pids []int) *rssSampler {
	s := &rssSampler{pids: pids, quit: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(s.done)
		ticker := time.NewTicker(rssSampleInterval)
		defer ticker.Stop()
		for {
			s.sample()
			select {
			case <-s.quit:
				return
			case <-ticker.C:
			}
		}
	}()
	return s
}

func (s *rssSampler) sample() {
	for _, pid := range s.pids {
		if m, err := procMemory(pid); err == nil {
			storeMax(&s.maxRSS, m.rss)
		}
	}
}

// reset starts a new maximum from a fresh sample.
func (s *rssSampler) reset() {
	s.maxRSS.Store(0)
	s.sample()
}

// max returns the largest sample since the last reset, including one taken now.
func (s *rssSampler) max() int64 {
	s.sample()
	return s.maxRSS.Load()
}

func (s *rssSampler) stop() {
	if s.stopped.Swap(true) {
		return
	}
	close(s.quit)
	<-s.done
}

func settingsOf(cfg Config) Settings {
	s := Settings{
		Publishers:          cfg.Publishers,
		BatchEvents:         cfg.Batch,
		PayloadBytes:        cfg.PayloadBytes,
		MaxEventsPerPhase:   cfg.Count,
		MaxPhaseSeconds:     cfg.Duration.Seconds(),
		Consumers:           cfg.Consumers,
		Instances:           cfg.instances(),
		Workers:             cfg.Workers,
		PerConsumer:         cfg.PerConsumer,
		DrainTimeoutSeconds: cfg.DrainTimeout.Seconds(),
		LogLevel:            cfg.LogLevel,
		Backend:             "SQLite",
	}
	if cfg.Scenario == ScenarioSteady || cfg.Scenario == ScenarioSlowConsumer {
		s.PacedEventsPerSec = cfg.Rate
	}
	if cfg.Database != "" {
		s.Backend = "PostgreSQL"
	}
	return s
}

// machineInfo describes this machine and the binary's build, from /proc where readable.
func machineInfo() Machine {
	m := Machine{CPUs: runtime.NumCPU(), GoVersion: runtime.Version(), OS: runtime.GOOS, Arch: runtime.GOARCH, LoadBefore: loadAverage()}
	m.CPUModel = procField("/proc/cpuinfo", "model name")
	if v := procField("/proc/meminfo", "MemTotal"); strings.HasSuffix(v, " kB") {
		if kib, err := strconv.ParseInt(strings.TrimSuffix(v, " kB"), 10, 64); err == nil {
			m.MemoryBytes = kib << 10
		}
	}
	if info, ok := debug.ReadBuildInfo(); ok {
		for _, s := range info.Settings {
			switch s.Key {
			case "vcs.revision":
				m.Revision = s.Value
			case "vcs.modified":
				m.Modified = s.Value == "true"
			}
		}
	}
	return m
}

// loadAverage returns the 1-minute load average from /proc/loadavg, or 0.
func loadAverage() float64 {
	data, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return 0
	}
	fields := strings.Fields(string(data))
	if len(fields) == 0 {
		return 0
	}
	v, _ := strconv.ParseFloat(fields[0], 64)
	return v
}

// procField returns the value of the first "name: value" line of a /proc file, or "".
func procField(path, name string) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	scanner := bufio.NewScanner(f)
	for scanner.Scan() {
		k, v, ok := strings.Cut(scanner.Text(), ":")
		if ok && strings.TrimSpace(k) == name {
			return strings.TrimSpace(v)
		}
	}
	return ""
}
