package postgres

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/hookd/hookd/internal/store"
)

// RecordAttempts implements store.Store. Once a connection has prepared the statements, it
// makes four round trips whatever the number of results: BEGIN, one batch that locks and
// reads the consumers and deliveries, one batch that writes the attempts and the new
// states, and COMMIT. The results are applied in memory, one after the other, with the
// outcome the SQLite backend has when it updates the rows one result at a time.
//
// Only the consumers with a failed attempt among the results are locked and read. A
// success changes its consumer only by ending a failure streak, which one conditional
// update does. Locking the row for every success would serialize the record commits of
// all servers on a busy consumer.
func (s *Store) RecordAttempts(ctx context.Context, results []store.AttemptResult) error {
	return s.write(ctx, "record attempts", func(tx pgx.Tx) error {
		r := recorder{}
		if err := r.load(ctx, tx, results); err != nil {
			return err
		}
		for _, res := range results {
			r.apply(res)
		}
		return r.save(ctx, tx)
	})
}

// deliveryState is the row of a delivery that RecordAttempts changes.
type deliveryState struct {
	id            int64
	status        string
	attempts      int
	nextAttemptAt *time.Time
	leaseToken    *string
	lastAttemptAt *time.Time
	updatedAt     time.Time
	changed       bool
}

// consumerState is the row of a consumer that RecordAttempts changes.
type consumerState struct {
	id             string
	disabled       bool
	disabledReason string
	failingSince   *time.Time
	updatedAt      time.Time
	changed        bool
}

type attemptRow struct {
	deliveryID   int64
	attemptedAt  time.Time
	durationUS   int64
	statusCode   int32
	errorText    string
	responseBody string
	success      bool
}

// recorder applies the attempt results of one transaction to rows it loaded.
type recorder struct {
	deliveries map[int64]*deliveryState
	consumers  map[string]*consumerState // the consumers with failed attempts
	recovered  map[string]bool           // the other consumers with an applied success
	attempts   []attemptRow
}

// load locks and reads the consumers and then the deliveries of the results, each in ID
// order. Concurrent calls and DeleteConsumer, which locks a consumer before its
// deliveries, take these locks in the same order, so they wait instead of deadlocking.
func (r *recorder) load(ctx context.Context, tx pgx.Tx, results []store.AttemptResult) error {
	var (
		consumerIDs []string
		deliveryIDs []int64
	)
	for _, res := range results {
		if !res.Success && !res.Released {
			consumerIDs = append(consumerIDs, res.Job.Consumer.ID)
		}
		deliveryIDs = append(deliveryIDs, res.Job.DeliveryID)
	}
	slices.Sort(consumerIDs)
	slices.Sort(deliveryIDs)

	var batch pgx.Batch
	batch.Queue(`SELECT id, disabled, disabled_reason, failing_since, updated_at FROM consumers
WHERE id = ANY($1) ORDER BY id FOR NO KEY UPDATE`, slices.Compact(consumerIDs))
	batch.Queue(`SELECT id, status, attempts, next_attempt_at, lease_token, last_attempt_at, updated_at FROM deliveries
WHERE id = ANY($1) ORDER BY id FOR NO KEY UPDATE`, slices.Compact(deliveryIDs))
	batchResults := tx.SendBatch(ctx, &batch)
	defer batchResults.Close()

	r.consumers = map[string]*consumerState{}
	rows, _ := batchResults.Query()
	for rows.Next() {
		c := &consumerState{}
		if err := rows.Scan(&c.id, &c.disabled, &c.disabledReason, nullUTCTime{&c.failingSince}, utcTime{&c.updatedAt}); err != nil {
			rows.Close()
			return fmt.Errorf("lock consumers: %w", err)
		}
		r.consumers[c.id] = c
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("lock consumers: %w", err)
	}

	r.deliveries = map[int64]*deliveryState{}
	rows, _ = batchResults.Query()
	for rows.Next() {
		d := &deliveryState{}
		err := rows.Scan(&d.id, &d.status, &d.attempts, nullUTCTime{&d.nextAttemptAt}, &d.leaseToken,
			nullUTCTime{&d.lastAttemptAt}, utcTime{&d.updatedAt})
		if err != nil {
			rows.Close()
			return fmt.Errorf("lock deliveries: %w", err)
		}
		r.deliveries[d.id] = d
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("lock deliveries: %w", err)
	}
	return batchResults.Close()
}

// apply applies one result to the loaded rows.
func (r *recorder) apply(res store.AttemptResult) {
	job := res.Job
	now := ts(res.AttemptedAt.Add(res.Duration))
	d, ok := r.deliveries[job.DeliveryID]

	if res.Released {
		if ok && d.leaseToken != nil && *d.leaseToken == job.LeaseToken {
			d.nextAttemptAt, d.leaseToken, d.changed = &now, nil, true
		}
		return
	}

	// The delivery is gone when its consumer was deleted during the attempt: then
	// there is nothing to log it against.
	if !ok {
		return
	}
	r.attempts = append(r.attempts, attemptRow{
		deliveryID:   job.DeliveryID,
		attemptedAt:  ts(res.AttemptedAt),
		durationUS:   res.Duration.Microseconds(),
		statusCode:   int32(res.StatusCode),
		errorText:    storableText(res.Error),
		responseBody: storableText(res.ResponseBody),
		success:      res.Success,
	})

	// Another claim owns the delivery when this lease expired before the result arrived.
	// The consumer is left alone too, because a late failure would otherwise set
	// FailingSince after a newer success, or disable the consumer.
	if d.leaseToken == nil || *d.leaseToken != job.LeaseToken {
		return
	}
	r.updateDelivery(d, res, now)
	if c, ok := r.consumers[job.Consumer.ID]; ok {
		r.updateConsumer(c, res)
	} else if res.Success {
		if r.recovered == nil {
			r.recovered = map[string]bool{}
		}
		r.recovered[job.Consumer.ID] = true
	}
}

func (r *recorder) updateDelivery(d *deliveryState, res store.AttemptResult, now time.Time) {
	status := store.StatusSuccess
	if !res.Success {
		d.attempts++
		status = store.StatusFailure
		if res.NextAttemptAt != nil {
			status = store.StatusAttempting
		}
	}
	d.nextAttemptAt = nil
	if status == store.StatusAttempting {
		d.nextAttemptAt = nullTS(res.NextAttemptAt)
	}
	attemptedAt := ts(res.AttemptedAt)
	d.status = string(status)
	d.leaseToken = nil
	d.lastAttemptAt = &attemptedAt
	d.updatedAt = now
	d.changed = true
}

// updateConsumer tracks how long the consumer has been failing, and disables it when the
// result sets DisableConsumer or when it has failed for too long.
func (r *recorder) updateConsumer(c *consumerState, res store.AttemptResult) {
	if res.Success {
		if c.failingSince != nil {
			c.failingSince, c.changed = nil, true
		}
		return
	}

	at := ts(res.AttemptedAt)
	if c.failingSince == nil {
		c.failingSince, c.changed = &at, true
	}

	reason := res.DisableConsumer
	if reason == "" && res.DisableFailingFor > 0 {
		since := *c.failingSince
		if at.Sub(since).Milliseconds() >= res.DisableFailingFor.Milliseconds() {
			reason = fmt.Sprintf("every attempt failed from %s to %s", since.Format(time.RFC3339), res.AttemptedAt.UTC().Format(time.RFC3339))
		}
	}
	if reason == "" || c.disabled {
		return
	}
	c.disabled, c.disabledReason, c.updatedAt, c.changed = true, reason, at, true
}

// save writes the attempts and the changed rows in one batch.
func (r *recorder) save(ctx context.Context, tx pgx.Tx) error {
	var batch pgx.Batch
	r.queueAttempts(&batch)
	r.queueDeliveries(&batch)
	r.queueConsumers(&batch)
	if batch.Len() == 0 {
		return nil
	}
	return tx.SendBatch(ctx, &batch).Close()
}

// queueAttempts queues the insert of the attempts in result order, so that their IDs
// follow it.
func (r *recorder) queueAttempts(batch *pgx.Batch) {
	if n := len(r.attempts); n > 0 {
		var (
			deliveryIDs, durations = make([]int64, n), make([]int64, n)
			attemptedAt            = make([]time.Time, n)
			statusCodes            = make([]int32, n)
			errorTexts, bodies     = make([]string, n), make([]string, n)
			successes              = make([]bool, n)
		)
		for i, a := range r.attempts {
			deliveryIDs[i], attemptedAt[i], durations[i], statusCodes[i] = a.deliveryID, a.attemptedAt, a.durationUS, a.statusCode
			errorTexts[i], bodies[i], successes[i] = a.errorText, a.responseBody, a.success
		}
		batch.Queue(`
INSERT INTO attempts (delivery_id, attempted_at, duration_us, status_code, error, response_body, success)
SELECT delivery_id, attempted_at, duration_us, status_code, error, response_body, success
FROM unnest($1::bigint[], $2::timestamptz[], $3::bigint[], $4::int[], $5::text[], $6::text[], $7::boolean[])
	WITH ORDINALITY AS a(delivery_id, attempted_at, duration_us, status_code, error, response_body, success, ord)
ORDER BY ord`, deliveryIDs, attemptedAt, durations, statusCodes, errorTexts, bodies, successes)
	}
}

// queueDeliveries queues the update of the changed deliveries.
func (r *recorder) queueDeliveries(batch *pgx.Batch) {
	var (
		dIDs         []int64
		dStatuses    []string
		dAttempts    []int32
		dNext, dLast []*time.Time
		dTokens      []*string
		dUpdated     []time.Time
	)
	for _, d := range r.deliveries {
		if !d.changed {
			continue
		}
		dIDs = append(dIDs, d.id)
		dStatuses = append(dStatuses, d.status)
		dAttempts = append(dAttempts, int32(d.attempts))
		dNext = append(dNext, d.nextAttemptAt)
		dTokens = append(dTokens, d.leaseToken)
		dLast = append(dLast, d.lastAttemptAt)
		dUpdated = append(dUpdated, d.updatedAt)
	}
	if len(dIDs) > 0 {
		batch.Queue(`
UPDATE deliveries d SET status = u.status, attempts = u.attempts, next_attempt_at = u.next_attempt_at,
	lease_token = u.lease_token, last_attempt_at = u.last_attempt_at, updated_at = u.updated_at
FROM unnest($1::bigint[], $2::text[], $3::int[], $4::timestamptz[], $5::text[], $6::timestamptz[], $7::timestamptz[])
	AS u(id, status, attempts, next_attempt_at, lease_token, last_attempt_at, updated_at)
WHERE d.id = u.id`, dIDs, dStatuses, dAttempts, dNext, dTokens, dLast, dUpdated)
	}
}

// queueConsumers queues the update of the changed consumers.
func (r *recorder) queueConsumers(batch *pgx.Batch) {
	var (
		cIDs, cReasons []string
		cDisabled      []bool
		cFailing       []*time.Time
		cUpdated       []time.Time
	)
	for _, c := range r.consumers {
		if !c.changed {
			continue
		}
		cIDs = append(cIDs, c.id)
		cDisabled = append(cDisabled, c.disabled)
		cReasons = append(cReasons, c.disabledReason)
		cFailing = append(cFailing, c.failingSince)
		cUpdated = append(cUpdated, c.updatedAt)
	}
	if len(r.recovered) > 0 {
		ids := make([]string, 0, len(r.recovered))
		for id := range r.recovered {
			ids = append(ids, id)
		}
		slices.Sort(ids)
		batch.Queue("UPDATE consumers SET failing_since = NULL WHERE id = ANY($1) AND failing_since IS NOT NULL", ids)
	}
	if len(cIDs) > 0 {
		batch.Queue(`
UPDATE consumers c SET disabled = u.disabled, disabled_reason = u.disabled_reason, failing_since = u.failing_since,
	updated_at = u.updated_at
FROM unnest($1::text[], $2::boolean[], $3::text[], $4::timestamptz[], $5::timestamptz[])
	AS u(id, disabled, disabled_reason, failing_since, updated_at)
WHERE c.id = u.id`, cIDs, cDisabled, cReasons, cFailing, cUpdated)
	}
}
