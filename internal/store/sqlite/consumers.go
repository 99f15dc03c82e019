package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/hookd/hookd/internal/store"
	"github.com/hookd/hookd/signature"
)

// consumerColumns are the columns scanConsumer reads, in its order.
const consumerColumns = `id, client_id, url, event_types, company_tags, disabled, disabled_reason,
secret, previous_secret, previous_secret_expires_at, failing_since, created_at, updated_at`

// CreateConsumer implements store.Store. The count and the insert share one BEGIN
// IMMEDIATE transaction, so concurrent creates cannot pass the limit together.
func (s *Store) CreateConsumer(ctx context.Context, c store.Consumer) (store.Consumer, error) {
	if c.CreatedAt.IsZero() {
		c.CreatedAt = time.Now()
	}
	c.CreatedAt = c.CreatedAt.UTC().Truncate(time.Millisecond)
	c.UpdatedAt = c.CreatedAt
	if c.EventTypes == nil {
		c.EventTypes = []string{}
	}
	eventTypes, tags, err := encodeConsumerLists(c)
	if err != nil {
		return store.Consumer{}, err
	}

	err = s.write(ctx, "create consumer", func(tx *sql.Tx) error {
		if c.IdempotencyKey != "" {
			since := c.CreatedAt.Add(-store.IdempotencyWindow)
			existing, err := scanConsumer(tx.QueryRowContext(ctx, "SELECT "+consumerColumns+` FROM consumers
WHERE client_id = ? AND idempotency_key = ? AND created_at > ? ORDER BY seq DESC LIMIT 1`,
				c.ClientID, c.IdempotencyKey, millis(since)))
			if err == nil {
				c = existing
				return nil
			}
			if !errors.Is(err, sql.ErrNoRows) {
				return err
			}
		}

		var count int
		err := tx.QueryRowContext(ctx, "SELECT count(*) FROM consumers WHERE client_id = ?", c.ClientID).Scan(&count)
		if err != nil {
			return err
		}
		if count >= store.MaxConsumersPerClient {
			return store.ErrConsumerLimit
		}

		_, err = tx.ExecContext(ctx, `
INSERT INTO consumers (id, client_id, url, event_types, company_tags, disabled, secret, idempotency_key, created_at, updated_at)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			c.ID, c.ClientID, c.URL, eventTypes, tags, c.Disabled, c.Secret.String(), nullString(c.IdempotencyKey),
			millis(c.CreatedAt), millis(c.UpdatedAt))
		return err
	})
	if err != nil {
		return store.Consumer{}, err
	}
	return c, nil
}

// ListConsumers implements store.Store.
func (s *Store) ListConsumers(ctx context.Context, clientID string) ([]store.Consumer, error) {
	rows, err := s.reader.QueryContext(ctx, "SELECT "+consumerColumns+" FROM consumers WHERE client_id = ? ORDER BY seq", clientID)
	if err != nil {
		return nil, wrap("list consumers", err)
	}
	defer rows.Close()

	consumers := []store.Consumer{}
	for rows.Next() {
		c, err := scanConsumer(rows)
		if err != nil {
			return nil, wrap("list consumers", err)
		}
		consumers = append(consumers, c)
	}
	return consumers, wrap("list consumers", rows.Err())
}

// GetConsumer implements store.Store.
func (s *Store) GetConsumer(ctx context.Context, clientID, consumerID string) (store.Consumer, error) {
	row := s.reader.QueryRowContext(ctx, "SELECT "+consumerColumns+" FROM consumers WHERE id = ? AND client_id = ?", consumerID, clientID)
	c, err := scanConsumer(row)
	if errors.Is(err, sql.ErrNoRows) {
		return store.Consumer{}, fmt.Errorf("consumer %s: %w", consumerID, store.ErrNotFound)
	}
	return c, wrap("get consumer", err)
}

// DeleteConsumer implements store.Store. Its deliveries and their attempts go with it,
// which cancels the pending ones.
func (s *Store) DeleteConsumer(ctx context.Context, clientID, consumerID string) error {
	return s.write(ctx, "delete consumer", func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, "DELETE FROM consumers WHERE id = ? AND client_id = ?", consumerID, clientID)
		if err != nil {
			return err
		}
		n, err := res.RowsAffected()
		if err != nil {
			return err
		}
		if n == 0 {
			return fmt.Errorf("consumer %s: %w", consumerID, store.ErrNotFound)
		}
		return nil
	})
}

// UpdateConsumer implements store.Store.
func (s *Store) UpdateConsumer(ctx context.Context, clientID, consumerID string, u store.ConsumerUpdate) (store.Consumer, error) {
	var c store.Consumer
	err := s.write(ctx, "update consumer", func(tx *sql.Tx) error {
		var err error
		c, err = scanConsumer(tx.QueryRowContext(ctx, "SELECT "+consumerColumns+" FROM consumers WHERE id = ? AND client_id = ?", consumerID, clientID))
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("consumer %s: %w", consumerID, store.ErrNotFound)
		}
		if err != nil {
			return err
		}

		c = u.Apply(c)
		c.UpdatedAt = time.Now().UTC().Truncate(time.Millisecond)

		eventTypes, tags, err := encodeConsumerLists(c)
		if err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, `
UPDATE consumers SET url = ?, event_types = ?, company_tags = ?, disabled = ?, disabled_reason = ?,
	failing_since = ?, updated_at = ?
WHERE id = ?`,
			c.URL, eventTypes, tags, c.Disabled, c.DisabledReason, nullMillis(c.FailingSince), millis(c.UpdatedAt), c.ID)
		return err
	})
	return c, err
}

// RotateSecret implements store.Store.
func (s *Store) RotateSecret(ctx context.Context, clientID, consumerID string, secret signature.Secret, now time.Time, overlap time.Duration) (store.Consumer, error) {
	var c store.Consumer
	err := s.write(ctx, "rotate secret", func(tx *sql.Tx) error {
		var err error
		c, err = scanConsumer(tx.QueryRowContext(ctx, "SELECT "+consumerColumns+" FROM consumers WHERE id = ? AND client_id = ?", consumerID, clientID))
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("consumer %s: %w", consumerID, store.ErrNotFound)
		}
		if err != nil {
			return err
		}

		expires := now.Add(overlap).UTC().Truncate(time.Millisecond)
		c.PreviousSecret, c.PreviousSecretExpiresAt = c.Secret, &expires
		c.Secret = secret
		c.UpdatedAt = now.UTC().Truncate(time.Millisecond)
		_, err = tx.ExecContext(ctx, `
UPDATE consumers SET secret = ?, previous_secret = ?, previous_secret_expires_at = ?, updated_at = ? WHERE id = ?`,
			c.Secret.String(), c.PreviousSecret.String(), millis(expires), millis(c.UpdatedAt), c.ID)
		return err
	})
	return c, err
}

// rowScanner is what *sql.Row and *sql.Rows have in common.
type rowScanner interface {
	Scan(dest ...any) error
}

// scanConsumer reads the consumerColumns of one row.
func scanConsumer(row rowScanner) (store.Consumer, error) {
	var (
		c                        store.Consumer
		eventTypes               string
		tags                     sql.NullString
		secret, previous         string
		previousExpires, failing sql.NullInt64
		createdAt, updatedAt     int64
	)
	err := row.Scan(&c.ID, &c.ClientID, &c.URL, &eventTypes, &tags, &c.Disabled, &c.DisabledReason,
		&secret, &previous, &previousExpires, &failing, &createdAt, &updatedAt)
	if err != nil {
		return store.Consumer{}, err
	}
	if err := decodeConsumerLists(&c, eventTypes, tags); err != nil {
		return store.Consumer{}, err
	}
	if c.Secret, err = parseStoredSecret(c.ID, secret); err != nil {
		return store.Consumer{}, err
	}
	if c.PreviousSecret, err = parseStoredSecret(c.ID, previous); err != nil {
		return store.Consumer{}, err
	}
	c.PreviousSecretExpiresAt = nullTime(previousExpires)
	c.FailingSince = nullTime(failing)
	c.CreatedAt = fromMillis(createdAt)
	c.UpdatedAt = fromMillis(updatedAt)
	return c, nil
}

// parseStoredSecret parses a secret column; "" is the zero Secret.
func parseStoredSecret(consumerID, s string) (signature.Secret, error) {
	if s == "" {
		return signature.Secret{}, nil
	}
	secret, err := signature.ParseSecret(s)
	if err != nil {
		return signature.Secret{}, fmt.Errorf("decode secret of consumer %s: %w", consumerID, err)
	}
	return secret, nil
}

// encodeConsumerLists returns the JSON columns of c. A nil CompanyTags becomes SQL NULL.
func encodeConsumerLists(c store.Consumer) (eventTypes string, tags sql.NullString, err error) {
	b, err := json.Marshal(c.EventTypes)
	if err != nil {
		return "", tags, fmt.Errorf("encode event types: %w", err)
	}
	eventTypes = string(b)

	if c.CompanyTags != nil {
		b, err := json.Marshal(c.CompanyTags)
		if err != nil {
			return "", tags, fmt.Errorf("encode company tags: %w", err)
		}
		tags = sql.NullString{String: string(b), Valid: true}
	}
	return eventTypes, tags, nil
}

// decodeConsumerLists fills c's lists from their JSON columns. A malformed column is an
// error naming the consumer, because it means the database was changed outside hookd.
func decodeConsumerLists(c *store.Consumer, eventTypes string, tags sql.NullString) error {
	if err := json.Unmarshal([]byte(eventTypes), &c.EventTypes); err != nil {
		return fmt.Errorf("decode event types of consumer %s: %w", c.ID, err)
	}
	if c.EventTypes == nil {
		c.EventTypes = []string{}
	}

	if tags.Valid {
		if err := json.Unmarshal([]byte(tags.String), &c.CompanyTags); err != nil {
			return fmt.Errorf("decode company tags of consumer %s: %w", c.ID, err)
		}
	}
	return nil
}

// nullMillis converts an optional time to a nullable millisecond column.
func nullMillis(t *time.Time) sql.NullInt64 {
	if t == nil {
		return sql.NullInt64{}
	}
	return sql.NullInt64{Int64: millis(*t), Valid: true}
}
