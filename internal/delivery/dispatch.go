package delivery

import (
	"context"
	"time"

	"github.com/hookd/hookd/internal/store"
)

// claimRetryDelay is how long the dispatcher waits after a failed claim, for example
// while the store is unavailable.
const claimRetryDelay = time.Second

// dispatch claims due deliveries while workers are free and hands them to the workers. It
// counts the attempts in flight per consumer, so that no consumer takes more than
// PerConsumer workers and a slow consumer cannot hold up the others.
func (e *Engine) dispatch(ctx context.Context) {
	var (
		busy     int
		inFlight = map[string]int{}
		timer    = time.NewTimer(0)
	)
	defer timer.Stop()

	for {
		// Take note of finished attempts before claiming, so that their slots count as free.
		for drained := false; !drained; {
			select {
			case consumerID := <-e.finished:
				busy--
				release(inFlight, consumerID)
			default:
				drained = true
			}
		}

		wait := e.cfg.PollInterval
		if free := e.cfg.Workers - busy; free > 0 {
			jobs, err := e.claim(ctx, free, inFlight)
			switch {
			case ctx.Err() != nil:
				return
			case err != nil:
				e.claimOutage.failed(err, claimRetryDelay)
				wait = claimRetryDelay
			default:
				e.claimOutage.succeeded()
				for _, job := range jobs {
					busy++
					inFlight[job.Consumer.ID]++
					e.jobs <- job
				}
				if len(jobs) == free {
					// There may be more due work: claim again once a slot frees up.
					wait = 0
				} else if w := e.untilNextDue(ctx); w > 0 && w < wait {
					// Due work that this claim left waits for a busy consumer's slot. A
					// finished attempt wakes the loop for it, so waiting for it here would spin.
					wait = w
				}
			}
		}

		// The finished channel has room for every worker, so workers never block on it,
		// also after the dispatcher has returned.
		timer.Reset(wait)
		select {
		case <-ctx.Done():
			return
		case <-e.wake:
		case <-timer.C:
		case consumerID := <-e.finished:
			busy--
			release(inFlight, consumerID)
		}
	}
}

// claim requests up to limit jobs from the store, offering each consumer its free slots.
func (e *Engine) claim(ctx context.Context, limit int, inFlight map[string]int) ([]store.Job, error) {
	slots := make(map[string]int, len(inFlight))
	for id, n := range inFlight {
		slots[id] = max(e.cfg.PerConsumer-n, 0)
	}
	return e.store.ClaimDeliveries(ctx, store.ClaimRequest{
		Now:          time.Now(),
		Limit:        limit,
		Slots:        slots,
		DefaultSlots: e.cfg.PerConsumer,
		Lease:        e.lease(),
	})
}

// leaseMargin is how much longer than the attempt timeout a claim lasts, for committing
// the attempt's result. An attempt lost in a crash goes out again after Timeout plus this.
const leaseMargin = 5 * time.Second

// lease is how long a claimed delivery stays with this process: long enough for an
// attempt and the commit of its result.
func (e *Engine) lease() time.Duration {
	return e.cfg.Timeout + leaseMargin
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

func release(inFlight map[string]int, consumerID string) {
	if inFlight[consumerID] <= 1 {
		delete(inFlight, consumerID)
		return
	}
	inFlight[consumerID]--
}
