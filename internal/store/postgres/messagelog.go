package postgres

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/hookd/hookd/internal/store"
)

// deliveryColumns are the columns deliveryDest reads, in its order, from deliveries d
// joined with messages m.
const deliveryColumns = "d.id, m.id, d.consumer_id, d.status, d.attempts, d.next_attempt_at, d.last_attempt_at, d.updated_at"

func deliveryDest(dest []any, d *store.Delivery) []any {
	return append(dest, &d.ID, &d.MessageID, &d.ConsumerID, &d.Status, &d.Attempts,
		nullUTCTime{&d.NextAttemptAt}, nullUTCTime{&d.LastAttemptAt}, utcTime{&d.UpdatedAt})
}

// ListConsumerMessages implements store.Store.
func (s *Store) ListConsumerMessages(ctx context.Context, clientID string, f store.MessageFilter) ([]store.ConsumerMessage, error) {
	if _, err := s.GetConsumer(ctx, clientID, f.ConsumerID); err != nil {
		return nil, err
	}

	where := []string{"d.consumer_id = $1"}
	args := []any{f.ConsumerID}
	add := func(condition string, arg any) {
		args = append(args, arg)
		where = append(where, strings.Replace(condition, "?", "$"+strconv.Itoa(len(args)), 1))
	}
	if f.Status != "" {
		add("d.status = ?", string(f.Status))
	}
	if !f.Since.IsZero() {
		add("m.created_at >= ?", ts(f.Since))
	}
	if !f.Until.IsZero() {
		add("m.created_at < ?", ts(f.Until))
	}
	if f.Before > 0 {
		add("d.id < ?", f.Before)
	}
	args = append(args, sqlLimit(f.Limit))

	rows, err := s.pool.Query(ctx, "SELECT "+prefixed("m.", messageColumns)+", "+deliveryColumns+`
FROM deliveries d JOIN messages m ON m.seq = d.message_seq
WHERE `+strings.Join(where, " AND ")+`
ORDER BY d.id DESC LIMIT $`+strconv.Itoa(len(args)), args...)
	if err != nil {
		return nil, wrap("list messages", err)
	}
	defer rows.Close()

	list := []store.ConsumerMessage{}
	for rows.Next() {
		var cm store.ConsumerMessage
		if err := rows.Scan(deliveryDest(messageDest(&cm.Message), &cm.Delivery)...); err != nil {
			return nil, wrap("list messages", err)
		}
		list = append(list, cm)
	}
	return list, wrap("list messages", rows.Err())
}

// GetMessage implements store.Store.
func (s *Store) GetMessage(ctx context.Context, clientID, messageID string) (store.MessageDetail, error) {
	var detail store.MessageDetail
	err := s.pool.QueryRow(ctx, "SELECT "+messageColumns+" FROM messages WHERE client_id = $1 AND id = $2", clientID, messageID).
		Scan(messageDest(&detail.Message)...)
	if errors.Is(err, pgx.ErrNoRows) {
		return detail, fmt.Errorf("message %s: %w", messageID, store.ErrNotFound)
	}
	if err != nil {
		return detail, wrap("get message", err)
	}

	rows, err := s.pool.Query(ctx, "SELECT "+deliveryColumns+`
FROM deliveries d JOIN messages m ON m.seq = d.message_seq
WHERE m.client_id = $1 AND m.id = $2 ORDER BY d.id`, clientID, messageID)
	if err != nil {
		return detail, wrap("get message deliveries", err)
	}
	defer rows.Close()

	detail.Deliveries = []store.Delivery{}
	for rows.Next() {
		var d store.Delivery
		if err := rows.Scan(deliveryDest(nil, &d)...); err != nil {
			return detail, wrap("get message deliveries", err)
		}
		detail.Deliveries = append(detail.Deliveries, d)
	}
	return detail, wrap("get message deliveries", rows.Err())
}

// ListAttempts implements store.Store.
func (s *Store) ListAttempts(ctx context.Context, clientID, messageID string) ([]store.Attempt, error) {
	var exists bool
	err := s.pool.QueryRow(ctx, "SELECT EXISTS (SELECT FROM messages WHERE client_id = $1 AND id = $2)", clientID, messageID).Scan(&exists)
	if err != nil {
		return nil, wrap("list attempts", err)
	}
	if !exists {
		return nil, fmt.Errorf("message %s: %w", messageID, store.ErrNotFound)
	}

	rows, err := s.pool.Query(ctx, `
SELECT a.id, m.id, d.consumer_id, a.attempted_at, a.duration_us, a.status_code, a.error, a.response_body, a.success
FROM attempts a JOIN deliveries d ON d.id = a.delivery_id JOIN messages m ON m.seq = d.message_seq
WHERE m.client_id = $1 AND m.id = $2 ORDER BY a.id`, clientID, messageID)
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
		err := rows.Scan(&a.ID, &a.MessageID, &a.ConsumerID, utcTime{&a.AttemptedAt}, &micros, &a.StatusCode,
			&a.Error, &a.ResponseBody, &a.Success)
		if err != nil {
			return nil, wrap("list attempts", err)
		}
		a.Duration = time.Duration(micros) * time.Microsecond
		attempts = append(attempts, a)
	}
	return attempts, wrap("list attempts", rows.Err())
}

// ResendMessage implements store.Store. The message row is locked (FOR KEY SHARE) first,
// so that DeleteExpired, which skips locked messages, cannot delete the message while its
// delivery becomes pending again.
func (s *Store) ResendMessage(ctx context.Context, clientID, messageID, consumerID string, now time.Time) error {
	at := ts(now)
	tag, err := s.pool.Exec(ctx, `
WITH m AS (SELECT seq FROM messages WHERE client_id = $1 AND id = $2 FOR KEY SHARE)
UPDATE deliveries SET status = $3, attempts = 0, next_attempt_at = $4, lease_token = NULL, updated_at = $4
WHERE consumer_id = $5 AND message_seq = (SELECT seq FROM m)`,
		clientID, messageID, string(store.StatusSending), at, consumerID)
	if err != nil {
		return wrap("resend message", err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("resend message: message %s for consumer %s: %w", messageID, consumerID, store.ErrNotFound)
	}
	return nil
}

// RecoverMessages implements store.Store. It locks the consumer (FOR SHARE), which
// serializes it with RecordAttempts for that consumer, then the deliveries in ID order and
// their messages (FOR KEY SHARE), which keeps DeleteExpired from deleting them.
func (s *Store) RecoverMessages(ctx context.Context, clientID, consumerID string, since, until, now time.Time) (int, error) {
	if until.IsZero() {
		until = now
	}
	var n int64
	err := s.write(ctx, "recover messages", func(tx pgx.Tx) error {
		n = 0
		var found bool
		err := tx.QueryRow(ctx, "SELECT true FROM consumers WHERE id = $1 AND client_id = $2 FOR SHARE", consumerID, clientID).Scan(&found)
		if errors.Is(err, pgx.ErrNoRows) {
			return fmt.Errorf("consumer %s: %w", consumerID, store.ErrNotFound)
		}
		if err != nil {
			return err
		}

		at := ts(now)
		tag, err := tx.Exec(ctx, `
UPDATE deliveries d SET status = $1, attempts = 0, next_attempt_at = $2, lease_token = NULL, updated_at = $2
FROM (
	SELECT f.id FROM deliveries f JOIN messages m ON m.seq = f.message_seq
	WHERE f.consumer_id = $3 AND f.status = $4 AND m.client_id = $5 AND m.created_at >= $6 AND m.created_at < $7
	ORDER BY f.id
	FOR NO KEY UPDATE OF f FOR KEY SHARE OF m
) failed
WHERE d.id = failed.id`,
			string(store.StatusSending), at, consumerID, string(store.StatusFailure), clientID, ts(since), ts(until))
		if err != nil {
			return err
		}
		n = tag.RowsAffected()
		return nil
	})
	return int(n), err
}

// DeleteExpired implements store.Store. Each call deletes at most limit messages and limit
// attempts. Rows that another transaction has locked are skipped until a later call, so
// that processes running retention at the same time delete disjoint rows, and a message
// that ResendMessage or RecoverMessages is queuing again stays.
func (s *Store) DeleteExpired(ctx context.Context, cutoff time.Time, limit int) (int, error) {
	var deleted int64
	err := s.write(ctx, "delete expired messages", func(tx pgx.Tx) error {
		deleted = 0
		tag, err := tx.Exec(ctx, `
DELETE FROM messages WHERE seq IN (
	SELECT m.seq FROM messages m
	WHERE m.created_at < $1 AND NOT EXISTS (
		SELECT FROM deliveries d WHERE d.message_seq = m.seq AND d.next_attempt_at IS NOT NULL)
	ORDER BY m.created_at LIMIT $2
	FOR UPDATE SKIP LOCKED)`, ts(cutoff), sqlLimit(limit))
		if err != nil {
			return err
		}
		deleted += tag.RowsAffected()

		tag, err = tx.Exec(ctx, `
DELETE FROM attempts WHERE id IN (
	SELECT id FROM attempts WHERE attempted_at < $1 ORDER BY attempted_at LIMIT $2 FOR UPDATE SKIP LOCKED)`,
			ts(cutoff), sqlLimit(limit))
		if err != nil {
			return err
		}
		deleted += tag.RowsAffected()
		return nil
	})
	return int(deleted), err
}

// sqlLimit converts a limit to a LIMIT parameter. A negative limit means no limit, as in
// SQLite, and becomes NULL, because PostgreSQL rejects a negative LIMIT.
func sqlLimit(limit int) *int {
	if limit < 0 {
		return nil
	}
	return &limit
}
