package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/hookd/hookd/internal/store"
)

// deliveryColumns are the columns scanDelivery reads, in its order, from deliveries d
// joined with messages m.
const deliveryColumns = "d.id, m.id, d.consumer_id, d.status, d.attempts, d.next_attempt_at, d.last_attempt_at, d.updated_at"

func scanDelivery(dest []any, d *store.Delivery) []any {
	return append(dest, &d.ID, &d.MessageID, &d.ConsumerID, &d.Status, &d.Attempts,
		nullMillisTime{&d.NextAttemptAt}, nullMillisTime{&d.LastAttemptAt}, (*millisTime)(&d.UpdatedAt))
}

// ListConsumerMessages implements store.Store.
func (s *Store) ListConsumerMessages(ctx context.Context, clientID string, f store.MessageFilter) ([]store.ConsumerMessage, error) {
	if _, err := s.GetConsumer(ctx, clientID, f.ConsumerID); err != nil {
		return nil, err
	}

	where := []string{"d.consumer_id = ?"}
	args := []any{f.ConsumerID}
	if f.Status != "" {
		where = append(where, "d.status = ?")
		args = append(args, f.Status)
	}
	if !f.Since.IsZero() {
		where = append(where, "m.created_at >= ?")
		args = append(args, millis(f.Since))
	}
	if !f.Until.IsZero() {
		where = append(where, "m.created_at < ?")
		args = append(args, millis(f.Until))
	}
	if f.Before > 0 {
		where = append(where, "d.id < ?")
		args = append(args, f.Before)
	}
	args = append(args, f.Limit)

	rows, err := s.reader.QueryContext(ctx, "SELECT "+messageColumnsM+", "+deliveryColumns+`
FROM deliveries d JOIN messages m ON m.seq = d.message_seq
WHERE `+strings.Join(where, " AND ")+`
ORDER BY d.id DESC LIMIT ?`, args...)
	if err != nil {
		return nil, wrap("list messages", err)
	}
	defer rows.Close()

	list := []store.ConsumerMessage{}
	for rows.Next() {
		var cm store.ConsumerMessage
		if err := rows.Scan(scanDelivery(messageDest(&cm.Message), &cm.Delivery)...); err != nil {
			return nil, wrap("list messages", err)
		}
		list = append(list, cm)
	}
	return list, wrap("list messages", rows.Err())
}

// GetMessage implements store.Store.
func (s *Store) GetMessage(ctx context.Context, clientID, messageID string) (store.MessageDetail, error) {
	var detail store.MessageDetail
	msg, err := scanMessage(s.reader.QueryRowContext(ctx, "SELECT "+messageColumns+" FROM messages WHERE client_id = ? AND id = ?",
		clientID, messageID))
	if errors.Is(err, sql.ErrNoRows) {
		return detail, fmt.Errorf("message %s: %w", messageID, store.ErrNotFound)
	}
	if err != nil {
		return detail, wrap("get message", err)
	}
	detail.Message = msg

	rows, err := s.reader.QueryContext(ctx, "SELECT "+deliveryColumns+`
FROM deliveries d JOIN messages m ON m.seq = d.message_seq
WHERE m.client_id = ? AND m.id = ? ORDER BY d.id`, clientID, messageID)
	if err != nil {
		return detail, wrap("get message deliveries", err)
	}
	defer rows.Close()

	detail.Deliveries = []store.Delivery{}
	for rows.Next() {
		var d store.Delivery
		if err := rows.Scan(scanDelivery(nil, &d)...); err != nil {
			return detail, wrap("get message deliveries", err)
		}
		detail.Deliveries = append(detail.Deliveries, d)
	}
	return detail, wrap("get message deliveries", rows.Err())
}

// ListAttempts implements store.Store.
func (s *Store) ListAttempts(ctx context.Context, clientID, messageID string) ([]store.Attempt, error) {
	var exists int
	err := s.reader.QueryRowContext(ctx, "SELECT 1 FROM messages WHERE client_id = ? AND id = ?", clientID, messageID).Scan(&exists)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("message %s: %w", messageID, store.ErrNotFound)
	}
	if err != nil {
		return nil, wrap("list attempts", err)
	}

	rows, err := s.reader.QueryContext(ctx, `
SELECT a.id, m.id, d.consumer_id, a.attempted_at, a.duration_us, a.status_code, a.error, a.response_body, a.success
FROM attempts a JOIN deliveries d ON d.id = a.delivery_id JOIN messages m ON m.seq = d.message_seq
WHERE m.client_id = ? AND m.id = ? ORDER BY a.id`, clientID, messageID)
	if err != nil {
		return nil, wrap("list attempts", err)
	}
	defer rows.Close()

	attempts := []store.Attempt{}
	for rows.Next() {
		var (
			a      store.Attempt
			micros int64
		)
		err := rows.Scan(&a.ID, &a.MessageID, &a.ConsumerID, (*millisTime)(&a.AttemptedAt), &micros, &a.StatusCode,
			&a.Error, &a.ResponseBody, &a.Success)
		if err != nil {
			return nil, wrap("list attempts", err)
		}
		a.Duration = time.Duration(micros) * time.Microsecond
		attempts = append(attempts, a)
	}
	return attempts, wrap("list attempts", rows.Err())
}

// ResendMessage implements store.Store.
func (s *Store) ResendMessage(ctx context.Context, clientID, messageID, consumerID string, now time.Time) error {
	return s.write(ctx, "resend message", func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `
UPDATE deliveries SET status = ?, attempts = 0, next_attempt_at = ?, lease_token = NULL, updated_at = ?
WHERE consumer_id = ? AND message_seq = (SELECT seq FROM messages WHERE client_id = ? AND id = ?)`,
			store.StatusSending, millis(now), millis(now), consumerID, clientID, messageID)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil {
			return err
		} else if n == 0 {
			return fmt.Errorf("message %s for consumer %s: %w", messageID, consumerID, store.ErrNotFound)
		}
		return nil
	})
}

// RecoverMessages implements store.Store.
func (s *Store) RecoverMessages(ctx context.Context, clientID, consumerID string, since, until, now time.Time) (int, error) {
	if until.IsZero() {
		until = now
	}
	var n int64
	err := s.write(ctx, "recover messages", func(tx *sql.Tx) error {
		var exists int
		err := tx.QueryRowContext(ctx, "SELECT 1 FROM consumers WHERE id = ? AND client_id = ?", consumerID, clientID).Scan(&exists)
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("consumer %s: %w", consumerID, store.ErrNotFound)
		}
		if err != nil {
			return err
		}

		res, err := tx.ExecContext(ctx, `
UPDATE deliveries SET status = ?, attempts = 0, next_attempt_at = ?, lease_token = NULL, updated_at = ?
WHERE consumer_id = ? AND status = ? AND message_seq IN (
	SELECT seq FROM messages WHERE client_id = ? AND created_at >= ? AND created_at < ?)`,
			store.StatusSending, millis(now), millis(now), consumerID, store.StatusFailure, clientID, millis(since), millis(until))
		if err != nil {
			return err
		}
		n, err = res.RowsAffected()
		return err
	})
	return int(n), err
}

// DeleteExpired implements store.Store. Each call deletes at most limit messages and limit
// attempts, so that it holds the write lock only briefly.
func (s *Store) DeleteExpired(ctx context.Context, cutoff time.Time, limit int) (int, error) {
	var deleted int64
	err := s.write(ctx, "delete expired messages", func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `
DELETE FROM messages WHERE seq IN (
	SELECT m.seq FROM messages m
	WHERE m.created_at < ? AND NOT EXISTS (
		SELECT 1 FROM deliveries d WHERE d.message_seq = m.seq AND d.next_attempt_at IS NOT NULL)
	ORDER BY m.created_at LIMIT ?)`, millis(cutoff), limit)
		if err != nil {
			return err
		}
		n, err := res.RowsAffected()
		if err != nil {
			return err
		}
		deleted += n

		res, err = tx.ExecContext(ctx, `
DELETE FROM attempts WHERE id IN (SELECT id FROM attempts WHERE attempted_at < ? ORDER BY attempted_at LIMIT ?)`,
			millis(cutoff), limit)
		if err != nil {
			return err
		}
		n, err = res.RowsAffected()
		deleted += n
		return err
	})
	return int(deleted), err
}

// nullMillisTime scans a nullable integer millisecond column into a *time.Time, which
// stays nil for NULL.
type nullMillisTime struct{ dest **time.Time }

func (n nullMillisTime) Scan(v any) error {
	if v == nil {
		*n.dest = nil
		return nil
	}
	ms, ok := v.(int64)
	if !ok {
		return fmt.Errorf("scan time: got %T, want an integer of Unix milliseconds", v)
	}
	t := fromMillis(ms)
	*n.dest = &t
	return nil
}
