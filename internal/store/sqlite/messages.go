package sqlite

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	mathrand "math/rand/v2"
	"strconv"
	"time"

	"github.com/hookd/hookd/internal/store"
)

// Statements of PublishMessages.
const (
	queryMessageByID             = "SELECT " + messageColumns + " FROM messages WHERE client_id = ? AND id = ?"
	queryMessageByIdempotencyKey = "SELECT " + messageColumns + ` FROM messages
WHERE client_id = ? AND idempotency_key = ? AND created_at > ? ORDER BY created_at DESC LIMIT 1`
	queryEnabledConsumers = "SELECT " + consumerColumns + " FROM consumers WHERE client_id = ? AND disabled = 0 ORDER BY seq"
	queryInsertMessage    = `
INSERT INTO messages (id, client_id, event_type, generated_date, body, idempotency_key, created_at)
VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (client_id, id) DO NOTHING`
	queryInsertDelivery = `
INSERT INTO deliveries (message_seq, consumer_id, status, next_attempt_at, updated_at) VALUES (?, ?, ?, ?, ?)`
)

// PublishMessages implements store.Store.
func (s *Store) PublishMessages(ctx context.Context, msgs []store.NewMessage) ([]store.PublishResult, error) {
	results := make([]store.PublishResult, len(msgs))
	err := s.write(ctx, "publish messages", func(tx *sql.Tx) error {
		p := publisher{ctx: ctx, tx: newTxStmts(s, ctx, tx), consumers: map[string][]store.Consumer{}}
		for i, m := range msgs {
			r, err := p.publish(m)
			if err != nil {
				return fmt.Errorf("message %q: %w", m.ID, err)
			}
			results[i] = r
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return results, nil
}

// publisher publishes the messages of one transaction, loading each client's consumers
// once.
type publisher struct {
	ctx       context.Context
	tx        *txStmts
	consumers map[string][]store.Consumer
}

func (p *publisher) publish(m store.NewMessage) (store.PublishResult, error) {
	// A message with an idempotency key is looked up first, by id and then by key. One
	// without is inserted unless its id exists, which the insert reports, so the usual
	// case costs no lookup.
	if m.IdempotencyKey != "" {
		if existing, ok, err := p.existing(m); err != nil || ok {
			return store.PublishResult{Message: existing, Duplicate: ok}, err
		}
	}

	consumers, err := p.clientConsumers(m.ClientID)
	if err != nil {
		return store.PublishResult{}, err
	}

	msg := m.Message
	msg.GeneratedDate = msg.GeneratedDate.UTC().Truncate(time.Millisecond)
	msg.CreatedAt = msg.CreatedAt.UTC().Truncate(time.Millisecond)
	if msg.CreatedAt.IsZero() {
		msg.CreatedAt = time.Now().UTC().Truncate(time.Millisecond)
	}
	res, err := p.tx.exec(queryInsertMessage, msg.ID, msg.ClientID, msg.EventType, millis(msg.GeneratedDate), msg.Body,
		nullString(m.IdempotencyKey), millis(msg.CreatedAt))
	if err != nil {
		return store.PublishResult{}, fmt.Errorf("insert message: %w", err)
	}
	inserted, err := res.RowsAffected()
	if err != nil {
		return store.PublishResult{}, err
	}
	if inserted == 0 {
		existing, ok, err := p.existing(m)
		if err == nil && !ok {
			err = fmt.Errorf("insert message: no row was inserted, and none has the id %q", m.ID)
		}
		return store.PublishResult{Message: existing, Duplicate: ok}, err
	}
	seq, err := res.LastInsertId()
	if err != nil {
		return store.PublishResult{}, err
	}

	queued := 0
	for _, c := range consumers {
		if !c.Matches(msg.EventType, m.Tags) {
			continue
		}
		if _, err := p.tx.exec(queryInsertDelivery, seq, c.ID, store.StatusSending, millis(msg.CreatedAt), millis(msg.CreatedAt)); err != nil {
			return store.PublishResult{}, fmt.Errorf("queue delivery to consumer %s: %w", c.ID, err)
		}
		queued++
	}
	return store.PublishResult{Message: msg, Consumers: queued}, nil
}

// existing returns the message stored earlier under the same id, or under the same
// idempotency key within store.IdempotencyWindow.
func (p *publisher) existing(m store.NewMessage) (store.Message, bool, error) {
	row, err := p.tx.queryRow(queryMessageByID, m.ClientID, m.ID)
	if err != nil {
		return store.Message{}, false, err
	}
	msg, err := scanMessage(row)
	if err == nil {
		return msg, true, nil
	}
	if !errors.Is(err, sql.ErrNoRows) {
		return store.Message{}, false, err
	}
	if m.IdempotencyKey == "" {
		return store.Message{}, false, nil
	}

	now := m.CreatedAt
	if now.IsZero() {
		now = time.Now()
	}
	since := now.Add(-store.IdempotencyWindow)
	if row, err = p.tx.queryRow(queryMessageByIdempotencyKey, m.ClientID, m.IdempotencyKey, millis(since)); err != nil {
		return store.Message{}, false, err
	}
	msg, err = scanMessage(row)
	if errors.Is(err, sql.ErrNoRows) {
		return store.Message{}, false, nil
	}
	return msg, err == nil, err
}

func (p *publisher) clientConsumers(clientID string) ([]store.Consumer, error) {
	if cs, ok := p.consumers[clientID]; ok {
		return cs, nil
	}
	rows, err := p.tx.query(queryEnabledConsumers, clientID)
	if err != nil {
		return nil, err
	}
	cs, err := scanConsumers(rows)
	if err != nil {
		return nil, err
	}
	p.consumers[clientID] = cs
	return cs, nil
}

// scanConsumers reads every row of rows and closes it.
func scanConsumers(rows *sql.Rows) ([]store.Consumer, error) {
	defer rows.Close()
	var cs []store.Consumer
	for rows.Next() {
		c, err := scanConsumer(rows)
		if err != nil {
			return nil, err
		}
		cs = append(cs, c)
	}
	return cs, rows.Err()
}

// Statements of ClaimDeliveries.
const (
	queryDueConsumers = "SELECT " + consumerColumns + ` FROM consumers c
WHERE c.disabled = 0 AND EXISTS (
	SELECT 1 FROM deliveries d
	WHERE d.consumer_id = c.id AND d.next_attempt_at IS NOT NULL AND d.next_attempt_at <= ?)`
	queryPickDeliveries = `
SELECT d.id, d.attempts, ` + messageColumnsM + `
FROM deliveries d JOIN messages m ON m.seq = d.message_seq
WHERE d.consumer_id = ? AND d.next_attempt_at IS NOT NULL AND d.next_attempt_at <= ?
ORDER BY d.next_attempt_at LIMIT ?`
	queryLeaseDeliveries = "UPDATE deliveries SET next_attempt_at = ?, lease_token = ? WHERE id IN (SELECT value FROM json_each(?))"
)

// ClaimDeliveries implements store.Store. Consumers with due work are visited in random
// order, each contributing at most its free slots, so that one consumer's backlog cannot
// fill a claim.
//
// The claim commits without waiting for the disk (synchronous=NORMAL). A claim lost in a
// crash only makes its deliveries due again at once instead of when the lease expires, and
// the next durable commit on the connection syncs the claim with it.
func (s *Store) ClaimDeliveries(ctx context.Context, req store.ClaimRequest) ([]store.Job, error) {
	var jobs []store.Job
	err := s.writeNoSync(ctx, "claim deliveries", func(tx *sql.Tx) error {
		ts := newTxStmts(s, ctx, tx)
		now := millis(req.Now)
		rows, err := ts.query(queryDueConsumers, now)
		if err != nil {
			return err
		}
		consumers, err := scanConsumers(rows)
		if err != nil {
			return err
		}
		mathrand.Shuffle(len(consumers), func(i, j int) { consumers[i], consumers[j] = consumers[j], consumers[i] })

		token := newLeaseToken()
		leaseUntil := millis(req.Now.Add(req.Lease))
		for _, c := range consumers {
			free, ok := req.Slots[c.ID]
			if !ok {
				free = req.DefaultSlots
			}
			free = min(free, req.Limit-len(jobs))
			if free <= 0 {
				continue
			}

			claimed, err := pickJobs(ts, c, now, free)
			if err != nil {
				return err
			}
			jobs = append(jobs, claimed...)
			if len(jobs) >= req.Limit {
				break
			}
		}
		if len(jobs) == 0 {
			return nil
		}

		// One statement leases every job: the IDs go in as a JSON array.
		ids := make([]byte, 0, 12*len(jobs))
		ids = append(ids, '[')
		for i := range jobs {
			if i > 0 {
				ids = append(ids, ',')
			}
			ids = strconv.AppendInt(ids, jobs[i].DeliveryID, 10)
			jobs[i].LeaseToken = token
		}
		ids = append(ids, ']')
		res, err := ts.exec(queryLeaseDeliveries, leaseUntil, token, string(ids))
		if err != nil {
			return err
		}
		leased, err := res.RowsAffected()
		if err != nil {
			return err
		}
		if leased != int64(len(jobs)) {
			return fmt.Errorf("lease deliveries: %d of %d picked deliveries were updated", leased, len(jobs))
		}
		return nil
	})
	return jobs, err
}

func pickJobs(ts *txStmts, c store.Consumer, now int64, limit int) ([]store.Job, error) {
	rows, err := ts.query(queryPickDeliveries, c.ID, now, limit)
	if err != nil {
		return nil, err
	}
	defer rows.Close()

	var jobs []store.Job
	for rows.Next() {
		job := store.Job{Consumer: c}
		dest := append([]any{&job.DeliveryID, &job.FailedAttempts}, messageDest(&job.Message)...)
		if err := rows.Scan(dest...); err != nil {
			return nil, err
		}
		jobs = append(jobs, job)
	}
	return jobs, rows.Err()
}

// Statements of RecordAttempts.
const (
	queryReleaseDelivery = "UPDATE deliveries SET next_attempt_at = ?, lease_token = NULL WHERE id = ? AND lease_token = ?"
	queryFinishDelivery  = `
UPDATE deliveries SET status = ?, attempts = attempts + ?, next_attempt_at = ?, lease_token = NULL,
	last_attempt_at = ?, updated_at = ?
WHERE id = ? AND lease_token = ?`
	queryDeliveryExists = "SELECT 1 FROM deliveries WHERE id = ?"
	queryInsertAttempt  = `
INSERT INTO attempts (delivery_id, attempted_at, duration_us, status_code, error, response_body, success)
VALUES (?, ?, ?, ?, ?, ?, ?)`
	queryConsumerRecovered    = "UPDATE consumers SET failing_since = NULL WHERE id = ? AND failing_since IS NOT NULL"
	queryConsumerFailing      = "UPDATE consumers SET failing_since = ? WHERE id = ? AND failing_since IS NULL"
	queryConsumerFailingSince = "SELECT failing_since FROM consumers WHERE id = ?"
	queryDisableConsumer      = "UPDATE consumers SET disabled = 1, disabled_reason = ?, updated_at = ? WHERE id = ? AND disabled = 0"
)

// RecordAttempts implements store.Store.
func (s *Store) RecordAttempts(ctx context.Context, results []store.AttemptResult) error {
	return s.write(ctx, "record attempts", func(tx *sql.Tx) error {
		r := recorder{tx: newTxStmts(s, ctx, tx)}
		for _, res := range results {
			if err := r.record(res); err != nil {
				return fmt.Errorf("delivery %d: %w", res.Job.DeliveryID, err)
			}
		}
		return nil
	})
}

// recorder writes the attempt results of one transaction.
type recorder struct {
	tx *txStmts

	// recovered holds the consumers whose failure streak this transaction has ended, and
	// that have not failed again in it, so that further successes need no update.
	recovered map[string]bool
}

func (r *recorder) record(res store.AttemptResult) error {
	job := res.Job
	now := millis(res.AttemptedAt.Add(res.Duration))

	if res.Released {
		_, err := r.tx.exec(queryReleaseDelivery, now, job.DeliveryID, job.LeaseToken)
		return err
	}

	// The update matches only while this claim's lease holds. Otherwise another claim
	// owns the delivery, because this lease expired before the result arrived. The
	// consumer is then left alone too: a late failure would otherwise set FailingSince
	// after a newer success, or disable the consumer.
	owned, err := r.finishDelivery(res, now)
	if err != nil {
		return err
	}
	if !owned {
		// The delivery is gone when its consumer was deleted during the attempt: then
		// there is nothing to log it against.
		row, err := r.tx.queryRow(queryDeliveryExists, job.DeliveryID)
		if err != nil {
			return err
		}
		var exists int
		err = row.Scan(&exists)
		if errors.Is(err, sql.ErrNoRows) {
			return nil
		}
		if err != nil {
			return err
		}
	}

	_, err = r.tx.exec(queryInsertAttempt,
		job.DeliveryID, millis(res.AttemptedAt), res.Duration.Microseconds(), res.StatusCode, res.Error, res.ResponseBody, res.Success)
	if err != nil {
		return fmt.Errorf("insert attempt: %w", err)
	}
	if !owned {
		return nil
	}
	return r.updateConsumer(res)
}

// finishDelivery applies res to its delivery if the delivery is still leased under the
// job's token, and reports whether it was.
func (r *recorder) finishDelivery(res store.AttemptResult, now int64) (bool, error) {
	status := store.StatusSuccess
	failed := 0
	if !res.Success {
		failed = 1
		status = store.StatusFailure
		if res.NextAttemptAt != nil {
			status = store.StatusAttempting
		}
	}
	var next sql.NullInt64
	if status == store.StatusAttempting {
		next = sql.NullInt64{Int64: millis(*res.NextAttemptAt), Valid: true}
	}
	result, err := r.tx.exec(queryFinishDelivery,
		status, failed, next, millis(res.AttemptedAt), now, res.Job.DeliveryID, res.Job.LeaseToken)
	if err != nil {
		return false, err
	}
	n, err := result.RowsAffected()
	return n == 1, err
}

// updateConsumer tracks how long the consumer has been failing, and disables it when the
// result sets DisableConsumer or when it has failed for too long.
func (r *recorder) updateConsumer(res store.AttemptResult) error {
	id := res.Job.Consumer.ID
	if res.Success {
		if r.recovered[id] {
			return nil
		}
		if _, err := r.tx.exec(queryConsumerRecovered, id); err != nil {
			return err
		}
		if r.recovered == nil {
			r.recovered = map[string]bool{}
		}
		r.recovered[id] = true
		return nil
	}
	delete(r.recovered, id)

	at := millis(res.AttemptedAt)
	if _, err := r.tx.exec(queryConsumerFailing, at, id); err != nil {
		return err
	}

	reason := res.DisableConsumer
	if reason == "" && res.DisableFailingFor > 0 {
		row, err := r.tx.queryRow(queryConsumerFailingSince, id)
		if err != nil {
			return err
		}
		var since int64
		if err := row.Scan(&since); err != nil {
			return err
		}
		if at-since >= res.DisableFailingFor.Milliseconds() {
			reason = fmt.Sprintf("every attempt failed from %s to %s", fromMillis(since).Format(time.RFC3339), res.AttemptedAt.UTC().Format(time.RFC3339))
		}
	}
	if reason == "" {
		return nil
	}
	_, err := r.tx.exec(queryDisableConsumer, reason, at, id)
	return err
}

// queryNextDue takes the earliest delivery of each enabled consumer from deliveries_due,
// one index probe per consumer, whatever the size of the queue.
const queryNextDue = `
SELECT min((
	SELECT d.next_attempt_at FROM deliveries d
	WHERE d.consumer_id = c.id AND d.next_attempt_at IS NOT NULL
	ORDER BY d.next_attempt_at LIMIT 1))
FROM consumers c WHERE c.disabled = 0`

// NextDue implements store.Store.
func (s *Store) NextDue(ctx context.Context) (time.Time, bool, error) {
	st, err := s.readStmt(ctx, queryNextDue)
	if err != nil {
		return time.Time{}, false, wrap("next due delivery", err)
	}
	var next sql.NullInt64
	if err := st.QueryRowContext(ctx).Scan(&next); err != nil {
		return time.Time{}, false, wrap("next due delivery", err)
	}
	if !next.Valid {
		return time.Time{}, false, nil
	}
	return fromMillis(next.Int64), true, nil
}

// QueueDepth implements store.Store.
func (s *Store) QueueDepth(ctx context.Context, now time.Time) (due, scheduled int, err error) {
	err = s.reader.QueryRowContext(ctx, `
SELECT coalesce(sum(d.next_attempt_at <= ?), 0), coalesce(sum(d.next_attempt_at > ?), 0)
FROM deliveries d JOIN consumers c ON c.id = d.consumer_id
WHERE d.next_attempt_at IS NOT NULL AND c.disabled = 0`, millis(now), millis(now)).Scan(&due, &scheduled)
	return due, scheduled, wrap("queue depth", err)
}

// messageColumns are the columns messageDest reads, in its order, and messageColumnsM
// the same columns of the table alias m.
const (
	messageColumns  = "id, client_id, event_type, generated_date, body, created_at"
	messageColumnsM = "m.id, m.client_id, m.event_type, m.generated_date, m.body, m.created_at"
)

// messageDest returns scan destinations for messageColumns.
func messageDest(m *store.Message) []any {
	return []any{&m.ID, &m.ClientID, &m.EventType, (*millisTime)(&m.GeneratedDate), &m.Body, (*millisTime)(&m.CreatedAt)}
}

func scanMessage(row rowScanner) (store.Message, error) {
	var m store.Message
	err := row.Scan(messageDest(&m)...)
	return m, err
}

// millisTime scans an integer millisecond column into a time.Time.
type millisTime time.Time

func (t *millisTime) Scan(v any) error {
	ms, ok := v.(int64)
	if !ok {
		return fmt.Errorf("scan time: got %T, want an integer of Unix milliseconds", v)
	}
	*t = millisTime(fromMillis(ms))
	return nil
}

func newLeaseToken() string {
	var b [8]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

func nullString(s string) sql.NullString {
	return sql.NullString{String: s, Valid: s != ""}
}
