package sqlite

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	mathrand "math/rand/v2"
	"strings"
	"time"

	"github.com/hookd/hookd/internal/store"
)

// PublishMessages implements store.Store.
func (s *Store) PublishMessages(ctx context.Context, msgs []store.NewMessage) ([]store.PublishResult, error) {
	results := make([]store.PublishResult, len(msgs))
	err := s.write(ctx, "publish messages", func(tx *sql.Tx) error {
		p := publisher{ctx: ctx, tx: tx, consumers: map[string][]store.Consumer{}}
		defer p.close()
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
	ctx        context.Context
	tx         *sql.Tx
	consumers  map[string][]store.Consumer
	insertMsg  *sql.Stmt
	insertDlvr *sql.Stmt
}

func (p *publisher) close() {
	if p.insertMsg != nil {
		p.insertMsg.Close()
	}
	if p.insertDlvr != nil {
		p.insertDlvr.Close()
	}
}

func (p *publisher) publish(m store.NewMessage) (store.PublishResult, error) {
	if existing, ok, err := p.existing(m); err != nil || ok {
		return store.PublishResult{Message: existing, Duplicate: ok}, err
	}

	consumers, err := p.clientConsumers(m.ClientID)
	if err != nil {
		return store.PublishResult{}, err
	}

	if p.insertMsg == nil {
		if p.insertMsg, err = p.tx.PrepareContext(p.ctx, `
INSERT INTO messages (id, client_id, event_type, generated_date, body, idempotency_key, created_at)
VALUES (?, ?, ?, ?, ?, ?, ?)`); err != nil {
			return store.PublishResult{}, err
		}
		if p.insertDlvr, err = p.tx.PrepareContext(p.ctx, `
INSERT INTO deliveries (message_seq, consumer_id, status, next_attempt_at, updated_at) VALUES (?, ?, ?, ?, ?)`); err != nil {
			return store.PublishResult{}, err
		}
	}

	msg := m.Message
	msg.GeneratedDate = msg.GeneratedDate.UTC().Truncate(time.Millisecond)
	msg.CreatedAt = msg.CreatedAt.UTC().Truncate(time.Millisecond)
	if msg.CreatedAt.IsZero() {
		msg.CreatedAt = time.Now().UTC().Truncate(time.Millisecond)
	}
	res, err := p.insertMsg.ExecContext(p.ctx, msg.ID, msg.ClientID, msg.EventType, millis(msg.GeneratedDate), msg.Body,
		nullString(m.IdempotencyKey), millis(msg.CreatedAt))
	if err != nil {
		return store.PublishResult{}, fmt.Errorf("insert message: %w", err)
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
		if _, err := p.insertDlvr.ExecContext(p.ctx, seq, c.ID, store.StatusSending, millis(msg.CreatedAt), millis(msg.CreatedAt)); err != nil {
			return store.PublishResult{}, fmt.Errorf("queue delivery to consumer %s: %w", c.ID, err)
		}
		queued++
	}
	return store.PublishResult{Message: msg, Consumers: queued}, nil
}

// existing returns the message stored earlier under the same id, or under the same
// idempotency key within store.IdempotencyWindow.
func (p *publisher) existing(m store.NewMessage) (store.Message, bool, error) {
	msg, err := scanMessage(p.tx.QueryRowContext(p.ctx, "SELECT "+messageColumns+" FROM messages WHERE client_id = ? AND id = ?",
		m.ClientID, m.ID))
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
	msg, err = scanMessage(p.tx.QueryRowContext(p.ctx, "SELECT "+messageColumns+` FROM messages
WHERE client_id = ? AND idempotency_key = ? AND created_at > ? ORDER BY created_at DESC LIMIT 1`,
		m.ClientID, m.IdempotencyKey, millis(since)))
	if errors.Is(err, sql.ErrNoRows) {
		return store.Message{}, false, nil
	}
	return msg, err == nil, err
}

func (p *publisher) clientConsumers(clientID string) ([]store.Consumer, error) {
	if cs, ok := p.consumers[clientID]; ok {
		return cs, nil
	}
	rows, err := p.tx.QueryContext(p.ctx, "SELECT "+consumerColumns+" FROM consumers WHERE client_id = ? AND disabled = 0 ORDER BY seq", clientID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()

	var cs []store.Consumer
	for rows.Next() {
		c, err := scanConsumer(rows)
		if err != nil {
			return nil, err
		}
		cs = append(cs, c)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	p.consumers[clientID] = cs
	return cs, nil
}

// ClaimDeliveries implements store.Store. Consumers with due work are visited in random
// order, each contributing at most its free slots, so that one consumer's backlog cannot
// fill a claim.
func (s *Store) ClaimDeliveries(ctx context.Context, req store.ClaimRequest) ([]store.Job, error) {
	var jobs []store.Job
	err := s.write(ctx, "claim deliveries", func(tx *sql.Tx) error {
		now := millis(req.Now)
		consumers, err := dueConsumers(ctx, tx, now)
		if err != nil {
			return err
		}
		mathrand.Shuffle(len(consumers), func(i, j int) { consumers[i], consumers[j] = consumers[j], consumers[i] })

		token := newLeaseToken()
		leaseUntil := millis(req.Now.Add(req.Lease))
		pick, err := tx.PrepareContext(ctx, `
SELECT d.id, d.attempts, `+prefixed("m.", messageColumns)+`
FROM deliveries d JOIN messages m ON m.seq = d.message_seq
WHERE d.consumer_id = ? AND d.next_attempt_at IS NOT NULL AND d.next_attempt_at <= ?
ORDER BY d.next_attempt_at LIMIT ?`)
		if err != nil {
			return err
		}
		defer pick.Close()
		lease, err := tx.PrepareContext(ctx, "UPDATE deliveries SET next_attempt_at = ?, lease_token = ? WHERE id = ?")
		if err != nil {
			return err
		}
		defer lease.Close()

		for _, c := range consumers {
			free, ok := req.Slots[c.ID]
			if !ok {
				free = req.DefaultSlots
			}
			free = min(free, req.Limit-len(jobs))
			if free <= 0 {
				continue
			}

			claimed, err := pickJobs(ctx, pick, c, now, free)
			if err != nil {
				return err
			}
			for i := range claimed {
				if _, err := lease.ExecContext(ctx, leaseUntil, token, claimed[i].DeliveryID); err != nil {
					return err
				}
				claimed[i].LeaseToken = token
			}
			jobs = append(jobs, claimed...)
			if len(jobs) >= req.Limit {
				break
			}
		}
		return nil
	})
	return jobs, err
}

// dueConsumers returns the enabled consumers that have at least one due delivery.
func dueConsumers(ctx context.Context, tx *sql.Tx, now int64) ([]store.Consumer, error) {
	rows, err := tx.QueryContext(ctx, "SELECT "+consumerColumns+` FROM consumers c
WHERE c.disabled = 0 AND EXISTS (
	SELECT 1 FROM deliveries d
	WHERE d.consumer_id = c.id AND d.next_attempt_at IS NOT NULL AND d.next_attempt_at <= ?)`, now)
	if err != nil {
		return nil, err
	}
	defer rows.Close()

	var consumers []store.Consumer
	for rows.Next() {
		c, err := scanConsumer(rows)
		if err != nil {
			return nil, err
		}
		consumers = append(consumers, c)
	}
	return consumers, rows.Err()
}

func pickJobs(ctx context.Context, pick *sql.Stmt, c store.Consumer, now int64, limit int) ([]store.Job, error) {
	rows, err := pick.QueryContext(ctx, c.ID, now, limit)
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

// RecordAttempts implements store.Store.
func (s *Store) RecordAttempts(ctx context.Context, results []store.AttemptResult) error {
	return s.write(ctx, "record attempts", func(tx *sql.Tx) error {
		r := recorder{ctx: ctx, tx: tx}
		defer r.close()
		for _, res := range results {
			if err := r.record(res); err != nil {
				return fmt.Errorf("delivery %d: %w", res.Job.DeliveryID, err)
			}
		}
		return nil
	})
}

// recorder writes the attempt results of one transaction with prepared statements.
type recorder struct {
	ctx   context.Context
	tx    *sql.Tx
	stmts map[string]*sql.Stmt
}

func (r *recorder) exec(query string, args ...any) (sql.Result, error) {
	if r.stmts == nil {
		r.stmts = map[string]*sql.Stmt{}
	}
	stmt, ok := r.stmts[query]
	if !ok {
		var err error
		if stmt, err = r.tx.PrepareContext(r.ctx, query); err != nil {
			return nil, err
		}
		r.stmts[query] = stmt
	}
	return stmt.ExecContext(r.ctx, args...)
}

func (r *recorder) close() {
	for _, stmt := range r.stmts {
		stmt.Close()
	}
}

func (r *recorder) record(res store.AttemptResult) error {
	job := res.Job
	now := millis(res.AttemptedAt.Add(res.Duration))

	if res.Released {
		_, err := r.exec("UPDATE deliveries SET next_attempt_at = ?, lease_token = NULL WHERE id = ? AND lease_token = ?",
			now, job.DeliveryID, job.LeaseToken)
		return err
	}

	// The delivery is gone when its consumer was deleted during the attempt: then
	// there is nothing to log it against.
	var token sql.NullString
	err := r.tx.QueryRowContext(r.ctx, "SELECT lease_token FROM deliveries WHERE id = ?", job.DeliveryID).Scan(&token)
	if errors.Is(err, sql.ErrNoRows) {
		return nil
	}
	if err != nil {
		return err
	}

	_, err = r.exec(`
INSERT INTO attempts (delivery_id, attempted_at, duration_us, status_code, error, response_body, success)
VALUES (?, ?, ?, ?, ?, ?, ?)`,
		job.DeliveryID, millis(res.AttemptedAt), res.Duration.Microseconds(), res.StatusCode, res.Error, res.ResponseBody, res.Success)
	if err != nil {
		return fmt.Errorf("insert attempt: %w", err)
	}

	// Another claim owns the delivery when this lease expired before the result arrived.
	// The consumer is left alone too, because a late failure would otherwise set
	// FailingSince after a newer success, or disable the consumer.
	if !token.Valid || token.String != job.LeaseToken {
		return nil
	}
	if err := r.updateDelivery(res, now); err != nil {
		return err
	}
	return r.updateConsumer(res)
}

func (r *recorder) updateDelivery(res store.AttemptResult, now int64) error {
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
	_, err := r.exec(`
UPDATE deliveries SET status = ?, attempts = attempts + ?, next_attempt_at = ?, lease_token = NULL,
	last_attempt_at = ?, updated_at = ?
WHERE id = ?`,
		status, failed, next, millis(res.AttemptedAt), now, res.Job.DeliveryID)
	return err
}

// updateConsumer tracks how long the consumer has been failing, and disables it when the
// result sets DisableConsumer or when it has failed for too long.
func (r *recorder) updateConsumer(res store.AttemptResult) error {
	id := res.Job.Consumer.ID
	if res.Success {
		_, err := r.exec("UPDATE consumers SET failing_since = NULL WHERE id = ? AND failing_since IS NOT NULL", id)
		return err
	}

	at := millis(res.AttemptedAt)
	if _, err := r.exec("UPDATE consumers SET failing_since = ? WHERE id = ? AND failing_since IS NULL", at, id); err != nil {
		return err
	}

	reason := res.DisableConsumer
	if reason == "" && res.DisableFailingFor > 0 {
		var since int64
		err := r.tx.QueryRowContext(r.ctx, "SELECT failing_since FROM consumers WHERE id = ?", id).Scan(&since)
		if err != nil {
			return err
		}
		if at-since >= res.DisableFailingFor.Milliseconds() {
			reason = fmt.Sprintf("every attempt failed from %s to %s", fromMillis(since).Format(time.RFC3339), res.AttemptedAt.UTC().Format(time.RFC3339))
		}
	}
	if reason == "" {
		return nil
	}
	_, err := r.exec("UPDATE consumers SET disabled = 1, disabled_reason = ?, updated_at = ? WHERE id = ? AND disabled = 0",
		reason, at, id)
	return err
}

// NextDue implements store.Store.
func (s *Store) NextDue(ctx context.Context) (time.Time, bool, error) {
	var next sql.NullInt64
	err := s.reader.QueryRowContext(ctx, `
SELECT d.next_attempt_at FROM deliveries d JOIN consumers c ON c.id = d.consumer_id
WHERE d.next_attempt_at IS NOT NULL AND c.disabled = 0
ORDER BY d.next_attempt_at LIMIT 1`).Scan(&next)
	if errors.Is(err, sql.ErrNoRows) {
		return time.Time{}, false, nil
	}
	if err != nil {
		return time.Time{}, false, wrap("next due delivery", err)
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

// messageColumns are the columns messageDest reads, in its order.
const messageColumns = "id, client_id, event_type, generated_date, body, created_at"

// prefixed qualifies each column of a column list with a table alias.
func prefixed(alias, columns string) string {
	parts := strings.Split(columns, ",")
	for i, p := range parts {
		parts[i] = alias + strings.TrimSpace(p)
	}
	return strings.Join(parts, ", ")
}

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
