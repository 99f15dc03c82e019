package delivery

import (
	"context"
	"time"

	"github.com/hookd/hookd/internal/store"
)

// claimRetryDelay is how long the dispatcher waits after a failed claim, for example
// while the store is unavailable.
const claimRetryDelay = time.Second

// maxReadyWait is how long a claimed job may wait in the dispatcher for a free slot of
// its consumer. A job that waited longer is released to the store instead of sent, so that
// its attempt still has the full timeout within the lease.
const maxReadyWait = time.Second

// finishedAttempt is the message a worker sends the dispatcher when it is done with a job.
type finishedAttempt struct {
	consumerID string
	success    bool
}

// readyJob is a claimed job that waits for a slot of its consumer.
type readyJob struct {
	job       store.Job
	claimedAt time.Time
}

// dispatcher is the state of the dispatch loop. Only the dispatch goroutine uses it.
//
// Each consumer has PerConsumer slots for attempts in flight, and a queue of claimed jobs
// that wait for a slot, at most PerConsumer long. The queue lets one claim carry more jobs
// than there are free slots: a claim costs a write transaction however many jobs it
// takes, and a fast consumer would otherwise be claimed for a few jobs at a time. A
// consumer's queue is refilled when it falls to half its length.
//
// A consumer whose last attempt failed gets no queue: its queued jobs are released when the
// failure is reported, because the failure may have disabled the consumer, and a failing
// consumer gains nothing from jobs claimed ahead. It gets a queue again after a success.
// The failing map keeps an entry per consumer until its next success, also for a consumer
// deleted meanwhile; an entry is a few dozen bytes.
//
// A consumer's slot is free once the HTTP exchange is over, but the job counts against
// Workers until its result is committed. So at most Workers deliveries are leased to
// attempts that were made or are being made, and a crash repeats at most that many.
type dispatcher struct {
	e        *Engine
	busy     int                   // jobs handed to the workers whose results are not committed
	inFlight map[string]int        // consumer ID → attempts in flight
	ready    map[string][]readyJob // consumer ID → claimed jobs waiting for a slot, oldest first
	queued   int                   // the sum of len(ready[id])
	failing  map[string]bool       // consumer ID → its last attempt failed
}

// dispatch claims due deliveries while there is room for them and hands them to the
// workers, keeping each consumer within PerConsumer attempts in flight, so that a slow
// consumer cannot hold up the others.
func (e *Engine) dispatch(ctx context.Context) {
	d := &dispatcher{
		e:        e,
		inFlight: map[string]int{},
		ready:    map[string][]readyJob{},
		failing:  map[string]bool{},
	}
	defer d.releaseReady()

	timer := time.NewTimer(0)
	defer timer.Stop()

	claimNow := true
	for {
		// Take note of finished attempts and committed results before claiming, so that
		// their slots count as free.
		for drained := false; !drained; {
			select {
			case f := <-e.finished:
				claimNow = d.finished(f) || claimNow
			case <-e.recordedSignal:
				d.busy -= int(e.recorded.Swap(0))
			default:
				drained = true
			}
		}
		d.handOut()

		wait := e.cfg.PollInterval
		if limit := d.room(); claimNow && limit > 0 {
			claimNow = false
			jobs, err := e.claim(ctx, limit, d.slots())
			switch {
			case ctx.Err() != nil:
				return
			case err != nil:
				e.claimOutage.failed(err, claimRetryDelay)
				wait = claimRetryDelay
			default:
				e.claimOutage.succeeded()
				d.add(jobs)
				d.handOut()
				switch {
				case len(jobs) == limit:
					// There may be more due work: claim again once there is room.
					claimNow = true
				case len(jobs) == 0:
					// Nothing is due: sleep until the earliest scheduled delivery.
					// Otherwise due work that this claim left waits for a busy consumer's
					// queue to run low, a finished attempt wakes the loop for it, and each
					// claim finds the retries that have come due meanwhile.
					if w := e.untilNextDue(ctx); w > 0 && w < wait {
						wait = w
					}
				}
			}
		}
		// A claim that found no room stays wanted until a finished attempt or a commit
		// makes room.
		if claimNow && d.room() > 0 {
			wait = 0
		}

		// The finished channel has room for every worker, so workers never block on it,
		// also after the dispatcher has returned.
		timer.Reset(wait)
		select {
		case <-ctx.Done():
			return
		case <-e.wake:
			claimNow = true
		case <-timer.C:
			claimNow = true
		case f := <-e.finished:
			claimNow = d.finished(f) || claimNow
		case <-e.recordedSignal:
			d.busy -= int(e.recorded.Swap(0))
		}
	}
}

// finished frees the consumer's slot of a finished attempt. A failed attempt's result is
// already committed, so its job stops counting against Workers too. finished reports
// whether the consumer's queue has run low, so that a claim should refill it.
func (d *dispatcher) finished(f finishedAttempt) bool {
	id := f.consumerID
	if d.inFlight[id] <= 1 {
		delete(d.inFlight, id)
	} else {
		d.inFlight[id]--
	}

	if f.success {
		delete(d.failing, id)
	} else {
		d.busy--
		d.failing[id] = true
		for _, j := range d.ready[id] {
			d.e.release(j.job)
		}
		d.queued -= len(d.ready[id])
		delete(d.ready, id)
	}
	return len(d.ready[id]) <= d.e.cfg.PerConsumer/2
}

// room returns how many jobs a claim may take: enough to fill every worker and a queue
// as long again.
func (d *dispatcher) room() int {
	return 2*d.e.cfg.Workers - d.busy - d.queued
}

// slots returns how many jobs a claim may take for each consumer with jobs in flight or
// queued, or whose last attempt failed. A consumer not in the map may take 2 × PerConsumer.
func (d *dispatcher) slots() map[string]int {
	slots := make(map[string]int, len(d.inFlight)+len(d.ready)+len(d.failing))
	for id := range d.inFlight {
		slots[id] = d.free(id)
	}
	for id := range d.ready {
		slots[id] = d.free(id)
	}
	for id := range d.failing {
		slots[id] = d.free(id)
	}
	return slots
}

// free returns how many more jobs the consumer may have in flight and queued: 2 ×
// PerConsumer, or PerConsumer while its last attempt failed, since it then gets no queue.
func (d *dispatcher) free(id string) int {
	limit := 2 * d.e.cfg.PerConsumer
	if d.failing[id] {
		limit = d.e.cfg.PerConsumer
	}
	return max(limit-d.inFlight[id]-len(d.ready[id]), 0)
}

// add queues claimed jobs.
func (d *dispatcher) add(jobs []store.Job) {
	now := time.Now()
	for _, job := range jobs {
		d.ready[job.Consumer.ID] = append(d.ready[job.Consumer.ID], readyJob{job: job, claimedAt: now})
	}
	d.queued += len(jobs)
}

// handOut gives queued jobs to the workers while their consumers have free slots. Jobs
// that waited longer than maxReadyWait are released instead.
func (d *dispatcher) handOut() {
	now := time.Now()
	for id, jobs := range d.ready {
		i := 0
		for ; i < len(jobs) && d.busy < d.e.cfg.Workers && d.inFlight[id] < d.e.cfg.PerConsumer; i++ {
			if now.Sub(jobs[i].claimedAt) > maxReadyWait {
				d.e.release(jobs[i].job)
				continue
			}
			d.busy++
			d.inFlight[id]++
			d.e.jobs <- jobs[i].job
		}
		d.queued -= i
		if i == len(jobs) {
			delete(d.ready, id)
		} else {
			d.ready[id] = jobs[i:]
		}
	}
}

// releaseReady releases every queued job when the dispatcher stops.
func (d *dispatcher) releaseReady() {
	for id, jobs := range d.ready {
		for _, j := range jobs {
			d.e.release(j.job)
		}
		delete(d.ready, id)
	}
	d.queued = 0
}

// release hands a claimed job back to the store unattempted, due at once.
func (e *Engine) release(job store.Job) {
	result := store.AttemptResult{Job: job, AttemptedAt: time.Now(), Released: true}
	if err := e.record.enqueue([]store.AttemptResult{result}); err != nil {
		panic("delivery: record committer stopped before the dispatcher: " + err.Error())
	}
}

// claim requests up to limit jobs from the store, offering each consumer in slots its
// free slots and any other consumer 2 × PerConsumer.
func (e *Engine) claim(ctx context.Context, limit int, slots map[string]int) ([]store.Job, error) {
	return e.store.ClaimDeliveries(ctx, store.ClaimRequest{
		Now:          time.Now(),
		Limit:        limit,
		Slots:        slots,
		DefaultSlots: 2 * e.cfg.PerConsumer,
		Lease:        e.lease(),
	})
}

// leaseMargin is how much longer than the attempt timeout and the longest wait in the
// dispatcher a claim lasts, for committing the attempt's result. An attempt lost in a
// crash goes out again after Timeout plus maxReadyWait plus this.
const leaseMargin = 5 * time.Second

// lease is how long a claimed delivery stays with this process: long enough to wait for a
// slot, make the attempt and commit its result.
func (e *Engine) lease() time.Duration {
	return maxReadyWait + e.cfg.Timeout + leaseMargin
}

// untilNextDue returns how long until the earliest scheduled delivery is due, at most the
// poll interval.
func (e *Engine) untilNextDue(ctx context.Context) time.Duration {
	next, ok, err := e.store.NextDue(ctx)
	if err != nil || !ok {
		return e.cfg.PollInterval
	}
	return min(max(time.Until(next), 0), e.cfg.PollInterval)
}
