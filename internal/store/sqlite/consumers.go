package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"time"

	"github.com/hookd/hookd/internal/store"
)

// CreateConsumer implements store.Store. The count and the insert share one BEGIN
// IMMEDIATE transaction, so concurrent creates cannot pass the limit together.
func (s *Store) CreateConsumer(ctx context.Context, c store.Consumer) (store.Consumer, error) {
	if c.CreatedAt.IsZero() {
		c.CreatedAt = time.Now().UTC().Truncate(time.Millisecond)
	}
	eventTypes, tags, err := encodeConsumerLists(c)
	if err != nil {
		return store.Consumer{}, err
	}

	err = s.write(ctx, "create consumer", func(tx *sql.Tx) error {
		var count int
		err := tx.QueryRowContext(ctx, "SELECT count(*) FROM consumers WHERE client_id = ?", c.ClientID).Scan(&count)
		if err != nil {
			return err
		}
		if count >= store.MaxConsumersPerClient {
			return store.ErrConsumerLimit
		}

		_, err = tx.ExecContext(ctx, `
INSERT INTO consumers (id, client_id, url, event_types, company_tags, disabled, created_at)
VALUES (?, ?, ?, ?, ?, ?, ?)`,
			c.ID, c.ClientID, c.URL, eventTypes, tags, c.Disabled, millis(c.CreatedAt))
		return err
	})
	if err != nil {
		return store.Consumer{}, err
	}
	return c, nil
}

// ListConsumers implements store.Store.
func (s *Store) ListConsumers(ctx context.Context, clientID string) ([]store.Consumer, error) {
	rows, err := s.reader.QueryContext(ctx, `
SELECT id, client_id, url, event_types, company_tags, disabled, created_at
FROM consumers WHERE client_id = ? ORDER BY seq`, clientID)
	if err != nil {
		return nil, wrap("list consumers", err)
	}
	defer rows.Close()

	consumers := []store.Consumer{}
	for rows.Next() {
		var (
			c          store.Consumer
			eventTypes string
			tags       sql.NullString
			createdAt  int64
		)
		if err := rows.Scan(&c.ID, &c.ClientID, &c.URL, &eventTypes, &tags, &c.Disabled, &createdAt); err != nil {
			return nil, wrap("list consumers", err)
		}
		if err := decodeConsumerLists(&c, eventTypes, tags); err != nil {
			return nil, fmt.Errorf("list consumers: %w", err)
		}
		c.CreatedAt = fromMillis(createdAt)
		consumers = append(consumers, c)
	}
	return consumers, wrap("list consumers", rows.Err())
}

// DeleteConsumer implements store.Store.
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
