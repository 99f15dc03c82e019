package delivery

import (
	"context"
	"errors"
	"sync"
)

// committer gathers items from many goroutines and writes them in group commits: while one
// transaction runs, new items queue up, and the next transaction takes all of them, up to
// maxItems. Under load this turns many small transactions, each paying for an fsync, into
// a few large ones.
type committer[T, R any] struct {
	in       chan *commitRequest[T, R]
	quit     chan struct{}
	commit   func(ctx context.Context, items []T) ([]R, error)
	maxItems int
	wg       sync.WaitGroup
}

// errCommitterStopped is returned by submit after stop.
var errCommitterStopped = errors.New("hookd is shutting down: the write was not accepted")

type commitRequest[T, R any] struct {
	items []T
	done  chan commitResponse[R] // nil when no caller waits
}

type commitResponse[R any] struct {
	results []R
	err     error
}

func newCommitter[T, R any](maxItems int, commit func(context.Context, []T) ([]R, error)) *committer[T, R] {
	return &committer[T, R]{
		in:       make(chan *commitRequest[T, R], 4*maxItems),
		quit:     make(chan struct{}),
		commit:   commit,
		maxItems: maxItems,
	}
}

// start runs the commit loop until stop.
func (c *committer[T, R]) start(ctx context.Context) {
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		c.run(ctx)
	}()
}

// stop waits until everything queued is committed and ends the commit loop. A submit
// that comes after it fails with errCommitterStopped.
func (c *committer[T, R]) stop() {
	close(c.quit)
	c.wg.Wait()
}

// submit queues items and waits for their commit. The results are in the order of items.
// When ctx ends first, submit returns ctx's error, and the items may still be committed.
func (c *committer[T, R]) submit(ctx context.Context, items []T) ([]R, error) {
	req := &commitRequest[T, R]{items: items, done: make(chan commitResponse[R], 1)}
	select {
	case c.in <- req:
	case <-c.quit:
		return nil, errCommitterStopped
	case <-ctx.Done():
		return nil, ctx.Err()
	}

	select {
	case resp := <-req.done:
		return resp.results, resp.err
	case <-c.quit:
		// The loop commits what was queued before it ends, so wait for that answer; a
		// request queued after the loop's last look gets none.
		c.wg.Wait()
		select {
		case resp := <-req.done:
			return resp.results, resp.err
		default:
			return nil, errCommitterStopped
		}
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// enqueue queues items for a commit and returns without waiting for it. It blocks only
// while the queue is full, which slows the callers down to the pace of the commits. The
// commit function must then deal with its own failures, since no caller receives them.
func (c *committer[T, R]) enqueue(items []T) error {
	req := &commitRequest[T, R]{items: items}
	select {
	case c.in <- req:
		return nil
	case <-c.quit:
		return errCommitterStopped
	}
}

func (c *committer[T, R]) run(ctx context.Context) {
	for {
		var first *commitRequest[T, R]
		select {
		case first = <-c.in:
		case <-c.quit:
			// Commit what is still queued, then end.
			select {
			case first = <-c.in:
			default:
				return
			}
		}
		batch := []*commitRequest[T, R]{first}
		count := len(first.items)

		// Take whatever else is already waiting, without waiting for more.
	gather:
		for count < c.maxItems {
			select {
			case req := <-c.in:
				batch = append(batch, req)
				count += len(req.items)
			default:
				break gather
			}
		}

		c.flush(ctx, batch, count)
	}
}

func (c *committer[T, R]) flush(ctx context.Context, batch []*commitRequest[T, R], count int) {
	items := make([]T, 0, count)
	for _, req := range batch {
		items = append(items, req.items...)
	}

	results, err := c.commit(ctx, items)
	offset := 0
	for _, req := range batch {
		if req.done != nil {
			resp := commitResponse[R]{err: err}
			if err == nil {
				resp.results = results[offset : offset+len(req.items)]
			}
			req.done <- resp
		}
		offset += len(req.items)
	}
}
