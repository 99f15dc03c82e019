package delivery

import (
	"context"
	"time"
)

// Retention defaults: messages and attempt logs older than DefaultRetention are deleted,
// in batches of retentionBatch rows with a pause between batches, so that the cleanup
// never holds the store's write lock for long.
const (
	DefaultRetention       = 30 * 24 * time.Hour
	retentionBatch         = 1000
	retentionPause         = 50 * time.Millisecond
	defaultRetentionPeriod = time.Hour
)

// clean deletes expired messages and attempts every period until ctx ends.
func (e *Engine) clean(ctx context.Context) {
	ticker := time.NewTicker(e.cfg.RetentionInterval)
	defer ticker.Stop()
	for {
		e.cleanOnce(ctx)
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
		}
	}
}

// cleanOnce deletes everything older than the retention period, one batch at a time.
func (e *Engine) cleanOnce(ctx context.Context) {
	cutoff := time.Now().Add(-e.cfg.Retention)
	total := 0
	for ctx.Err() == nil {
		n, err := e.store.DeleteExpired(ctx, cutoff, retentionBatch)
		if err != nil {
			if ctx.Err() == nil {
				e.logger.Warn("delete expired messages failed", "error", err)
			}
			return
		}
		total += n
		if n == 0 {
			break
		}
		select {
		case <-ctx.Done():
		case <-time.After(retentionPause):
		}
	}
	if total > 0 {
		e.logger.Info("deleted expired messages and attempts", "rows", total, "cutoff", cutoff.UTC().Format(time.RFC3339))
	}
}
