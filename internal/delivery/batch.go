package delivery

import (
	"context"
	"sync"
)

// committer gathers items from many goroutines and writes them in group commits: while one
// transaction runs, new items queue up, and the next transaction takes all of them, up to
// maxItems. Under load this turns many small transactions, each paying for an fsync, into
// a few large ones.
type committer[T, R any] struct {
	in       chan *commitRequest[T, R]
	commit   func(ctx context.Context, items []T) ([]R, error)
	maxItems int
	wg       sync.WaitGroup
}

type commitRequest[T, R any] struct {
	items []T
	done  chan commitResponse[R]
}

type commitResponse[R any] struct {
	results []R
	err     error
}

func newCommitter[T, R any](maxItems int, commit func(context.Context, []T) ([]R, error)) *committer[T, R] {
	return &committer[T, R]{in: make(chan *commitRequest[T, R], 4*maxItems), commit: commit, maxItems: maxItems}
}

// start runs the commit loop until stop.
func (c *committer[T, R]) start(ctx context.Context) {
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		c.run(ctx)
	}()
}

// stop closes the input and waits until everything queued is committed. Nothing may be
// submitted after stop.
func (c *committer[T, R]) stop() {
	close(c.in)
	c.wg.Wait()
}

// submit queues items and waits for their commit. The results are in the order of items.
// When ctx ends first, submit returns ctx's error, and the items may still be committed.
func (c *committer[T, R]) submit(ctx context.Context, items []T) ([]R, error) {
	req := &commitRequest[T, R]{items: items, done: make(chan commitResponse[R], 1)}
	select {
	case c.in <- req:
	case <-ctx.Done():
		return nil, ctx.Err()
	}

	select {
	case resp := <-req.done:
		return resp.results, resp.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

func (c *committer[T, R]) run(ctx context.Context) {
	for {
		first, ok := <-c.in
		if !ok {
			return
		}
		batch := []*commitRequest[T, R]{first}
		count := len(first.items)

		// Take whatever else is already waiting, without waiting for more.
	gather:
		for count < c.maxItems {
			select {
			case req, ok := <-c.in:
				if !ok {
					break gather
				}
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
		resp := commitResponse[R]{err: err}
		if err == nil {
			resp.results = results[offset : offset+len(req.items)]
		}
		offset += len(req.items)
		req.done <- resp
	}
}
