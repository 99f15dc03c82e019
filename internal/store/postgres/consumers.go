package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/hookd/hookd/internal/store"
	"github.com/hookd/hookd/signature"
)

// consumerColumns are the columns scanConsumer reads, in its order.
const consumerColumns = `id, client_id, url, event_types, company_tags, disabled, disabled_reason,
secret, previous_secret, previous_secret_expires_at, failing_since, created_at, updated_at`

// CreateConsumer implements store.Store. The transaction locks the client's row before it
// looks up the Idempotency-Key and counts the consumers, so the creates of one client run
// one at a time, also across processes, and cannot pass the limit together. The lock mode
// (FOR NO KEY UPDATE) leaves the inserts that reference the client, such as publishes,
// free to run.
func (s *Store) CreateConsumer(ctx context.Context, c store.Consumer) (store.Consumer, error) {
	if c.CreatedAt.IsZero() {
		c.CreatedAt = time.Now()
	}
	c.CreatedAt = ts(c.CreatedAt)
	c.UpdatedAt = c.CreatedAt
	if c.EventTypes == nil {
		c.EventTypes = []string{}
	}

	var created store.Consumer
	err := s.write(ctx, "create consumer", func(tx pgx.Tx) error {
		created = c
		if _, err := tx.Exec(ctx, "SELECT FROM clients WHERE id = $1 FOR NO KEY UPDATE", c.ClientID); err != nil {
			return err
		}

		if c.IdempotencyKey != "" {
			since := ts(c.CreatedAt.Add(-store.IdempotencyWindow))
			existing, err := scanConsumer(tx.QueryRow(ctx, "SELECT "+consumerColumns+` FROM consumers
WHERE client_id = $1 AND idempotency_key = $2 AND created_at > $3 ORDER BY seq DESC LIMIT 1`,
				c.ClientID, c.IdempotencyKey, since))
			if err == nil {
				created = existing
				return nil
			}
			if !errors.Is(err, pgx.ErrNoRows) {
				return err
			}
		}

		var count int
		if err := tx.QueryRow(ctx, "SELECT count(*) FROM consumers WHERE client_id = $1", c.ClientID).Scan(&count); err != nil {
			return err
		}
		if count >= store.MaxConsumersPerClient {
			return store.ErrConsumerLimit
		}

		_, err := tx.Exec(ctx, `
INSERT INTO consumers (id, client_id, url, event_types, company_tags, disabled, secret, idempotency_key, created_at, updated_at)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)`,
			c.ID, c.ClientID, c.URL, c.EventTypes, c.CompanyTags, c.Disabled, c.Secret.String(), nullString(c.IdempotencyKey),
			c.CreatedAt, c.UpdatedAt)
		return err
	})
	if err != nil {
		return store.Consumer{}, err
	}
	return created, nil
}

// ListConsumers implements store.Store.
func (s *Store) ListConsumers(ctx context.Context, clientID string) ([]store.Consumer, error) {
	rows, err := s.pool.Query(ctx, "SELECT "+consumerColumns+" FROM consumers WHERE client_id = $1 ORDER BY seq", clientID)
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
	row := s.pool.QueryRow(ctx, "SELECT "+consumerColumns+" FROM consumers WHERE id = $1 AND client_id = $2", consumerID, clientID)
	c, err := scanConsumer(row)
	if errors.Is(err, pgx.ErrNoRows) {
		return store.Consumer{}, fmt.Errorf("consumer %s: %w", consumerID, store.ErrNotFound)
	}
	return c, wrap("get consumer", err)
}

// DeleteConsumer implements store.Store. Its deliveries and their attempts go with it,
// which cancels the pending ones.
func (s *Store) DeleteConsumer(ctx context.Context, clientID, consumerID string) error {
	tag, err := s.pool.Exec(ctx, "DELETE FROM consumers WHERE id = $1 AND client_id = $2", consumerID, clientID)
	if err != nil {
		return wrap("delete consumer", err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("delete consumer: consumer %s: %w", consumerID, store.ErrNotFound)
	}
	return nil
}

// UpdateConsumer implements store.Store.
func (s *Store) UpdateConsumer(ctx context.Context, clientID, consumerID string, u store.ConsumerUpdate) (store.Consumer, error) {
	var c store.Consumer
	err := s.write(ctx, "update consumer", func(tx pgx.Tx) error {
		var err error
		c, err = lockConsumer(ctx, tx, clientID, consumerID)
		if err != nil {
			return err
		}

		c = u.Apply(c)
		c.UpdatedAt = ts(time.Now())

		_, err = tx.Exec(ctx, `
UPDATE consumers SET url = $1, event_types = $2, company_tags = $3, disabled = $4, disabled_reason = $5,
	failing_since = $6, updated_at = $7
WHERE id = $8`,
			c.URL, c.EventTypes, c.CompanyTags, c.Disabled, c.DisabledReason, nullTS(c.FailingSince), c.UpdatedAt, c.ID)
		return err
	})
	return c, err
}

// RotateSecret implements store.Store.
func (s *Store) RotateSecret(ctx context.Context, clientID, consumerID string, secret signature.Secret, now time.Time, overlap time.Duration) (store.Consumer, error) {
	var c store.Consumer
	err := s.write(ctx, "rotate secret", func(tx pgx.Tx) error {
		var err error
		c, err = lockConsumer(ctx, tx, clientID, consumerID)
		if err != nil {
			return err
		}

		expires := ts(now.Add(overlap))
		c.PreviousSecret, c.PreviousSecretExpiresAt = c.Secret, &expires
		c.Secret = secret
		c.UpdatedAt = ts(now)
		_, err = tx.Exec(ctx, `
UPDATE consumers SET secret = $1, previous_secret = $2, previous_secret_expires_at = $3, updated_at = $4 WHERE id = $5`,
			c.Secret.String(), c.PreviousSecret.String(), expires, c.UpdatedAt, c.ID)
		return err
	})
	return c, err
}

// lockConsumer reads the client's consumer and locks its row until the transaction ends,
// or returns ErrNotFound.
func lockConsumer(ctx context.Context, tx pgx.Tx, clientID, consumerID string) (store.Consumer, error) {
	c, err := scanConsumer(tx.QueryRow(ctx, "SELECT "+consumerColumns+" FROM consumers WHERE id = $1 AND client_id = $2 FOR NO KEY UPDATE",
		consumerID, clientID))
	if errors.Is(err, pgx.ErrNoRows) {
		return store.Consumer{}, fmt.Errorf("consumer %s: %w", consumerID, store.ErrNotFound)
	}
	return c, err
}

// scanConsumer reads the consumerColumns of one row.
func scanConsumer(row rowScanner) (store.Consumer, error) {
	var (
		c                store.Consumer
		secret, previous string
	)
	err := row.Scan(&c.ID, &c.ClientID, &c.URL, &c.EventTypes, &c.CompanyTags, &c.Disabled, &c.DisabledReason,
		&secret, &previous, nullUTCTime{&c.PreviousSecretExpiresAt}, nullUTCTime{&c.FailingSince},
		utcTime{&c.CreatedAt}, utcTime{&c.UpdatedAt})
	if err != nil {
		return store.Consumer{}, err
	}
	if c.EventTypes == nil {
		c.EventTypes = []string{}
	}
	if c.Secret, err = parseStoredSecret(c.ID, secret); err != nil {
		return store.Consumer{}, err
	}
	if c.PreviousSecret, err = parseStoredSecret(c.ID, previous); err != nil {
		return store.Consumer{}, err
	}
	return c, nil
}

// parseStoredSecret parses a secret column, where "" is the zero Secret.
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
