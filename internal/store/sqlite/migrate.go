package sqlite

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/hookd/hookd/signature"
)

// migration is one step of the schema, run inside the migration transaction.
type migration func(ctx context.Context, tx *sql.Tx) error

// sqlStep is a migration made of SQL statements only.
func sqlStep(statements string) migration {
	return func(ctx context.Context, tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, statements)
		return err
	}
}

// migrations are applied in order; the database's PRAGMA user_version holds how many have
// been applied. Append new steps; never edit a step that has been released.
//
// Times are integer Unix milliseconds. consumers.seq keeps creation order, which the API
// lists by. event_types and company_tags are JSON arrays; company_tags is NULL when the
// consumer takes events of every company.
var migrations = []migration{
	sqlStep(`
CREATE TABLE clients (
	id         TEXT PRIMARY KEY,
	name       TEXT NOT NULL UNIQUE,
	suspended  INTEGER NOT NULL DEFAULT 0,
	created_at INTEGER NOT NULL
);

CREATE TABLE api_keys (
	id         TEXT PRIMARY KEY,
	client_id  TEXT NOT NULL REFERENCES clients (id),
	hash       BLOB NOT NULL,
	read_only  INTEGER NOT NULL,
	created_at INTEGER NOT NULL,
	revoked_at INTEGER
);

CREATE INDEX api_keys_client ON api_keys (client_id);

CREATE TABLE consumers (
	seq          INTEGER PRIMARY KEY AUTOINCREMENT,
	id           TEXT NOT NULL UNIQUE,
	client_id    TEXT NOT NULL REFERENCES clients (id),
	url          TEXT NOT NULL,
	event_types  TEXT NOT NULL,
	company_tags TEXT,
	disabled     INTEGER NOT NULL,
	created_at   INTEGER NOT NULL
);

CREATE INDEX consumers_client ON consumers (client_id, seq);
`),
	sqlStep(schemaDelivery),
	addSecrets,
	sqlStep(`
ALTER TABLE consumers ADD COLUMN idempotency_key TEXT;
CREATE INDEX consumers_idempotency ON consumers (client_id, idempotency_key, created_at)
	WHERE idempotency_key IS NOT NULL;
`),
	// deliveries_next indexed every pending delivery by due time. NextDue and QueueDepth
	// read deliveries_due instead, and every claim and record updated it for nothing.
	sqlStep(`DROP INDEX deliveries_next;`),
}

// migrate applies the pending migrations in one write transaction. BEGIN IMMEDIATE makes
// processes that start together on the same file apply them once.
func (s *Store) migrate(ctx context.Context) error {
	return s.write(ctx, "migrate schema", func(tx *sql.Tx) error {
		var version int
		if err := tx.QueryRowContext(ctx, "PRAGMA user_version").Scan(&version); err != nil {
			return fmt.Errorf("read schema version: %w", err)
		}
		if version > len(migrations) {
			return fmt.Errorf("database schema version %d is newer than this hookd knows (%d): upgrade hookd", version, len(migrations))
		}

		for i := version; i < len(migrations); i++ {
			if err := migrations[i](ctx, tx); err != nil {
				return fmt.Errorf("apply migration %d: %w", i+1, err)
			}
		}

		// PRAGMA takes no bound parameters; the value is an integer this code computed.
		if _, err := tx.ExecContext(ctx, fmt.Sprintf("PRAGMA user_version = %d", len(migrations))); err != nil {
			return fmt.Errorf("write schema version: %w", err)
		}
		return nil
	})
}

// schemaDelivery adds published messages, one delivery row per message and consumer, and
// the attempt log.
//
// deliveries.next_attempt_at is when the delivery is due: the scheduled retry while it
// waits, the lease expiry while an attempt is in flight, and NULL once it is finished.
// A claim moves it to the lease expiry and sets lease_token, so a crashed attempt comes due
// again when its lease runs out. attempts counts the failed attempts since the delivery was
// queued, resent or recovered; the retry schedule is indexed by it.
const schemaDelivery = `
ALTER TABLE consumers ADD COLUMN secret TEXT NOT NULL DEFAULT '';
ALTER TABLE consumers ADD COLUMN previous_secret TEXT NOT NULL DEFAULT '';
ALTER TABLE consumers ADD COLUMN previous_secret_expires_at INTEGER;
ALTER TABLE consumers ADD COLUMN disabled_reason TEXT NOT NULL DEFAULT '';
ALTER TABLE consumers ADD COLUMN failing_since INTEGER;
ALTER TABLE consumers ADD COLUMN updated_at INTEGER NOT NULL DEFAULT 0;

CREATE TABLE messages (
	seq             INTEGER PRIMARY KEY AUTOINCREMENT,
	id              TEXT NOT NULL,
	client_id       TEXT NOT NULL REFERENCES clients (id),
	event_type      TEXT NOT NULL,
	generated_date  INTEGER NOT NULL,
	body            BLOB NOT NULL,
	idempotency_key TEXT,
	created_at      INTEGER NOT NULL,
	UNIQUE (client_id, id)
);

CREATE INDEX messages_idempotency ON messages (client_id, idempotency_key, created_at)
	WHERE idempotency_key IS NOT NULL;
CREATE INDEX messages_created ON messages (created_at);

CREATE TABLE deliveries (
	id              INTEGER PRIMARY KEY AUTOINCREMENT,
	message_seq     INTEGER NOT NULL REFERENCES messages (seq) ON DELETE CASCADE,
	consumer_id     TEXT NOT NULL REFERENCES consumers (id) ON DELETE CASCADE,
	status          TEXT NOT NULL,
	attempts        INTEGER NOT NULL DEFAULT 0,
	next_attempt_at INTEGER,
	lease_token     TEXT,
	last_attempt_at INTEGER,
	updated_at      INTEGER NOT NULL,
	UNIQUE (message_seq, consumer_id)
);

CREATE INDEX deliveries_due ON deliveries (consumer_id, next_attempt_at)
	WHERE next_attempt_at IS NOT NULL;
CREATE INDEX deliveries_next ON deliveries (next_attempt_at)
	WHERE next_attempt_at IS NOT NULL;
CREATE INDEX deliveries_consumer ON deliveries (consumer_id, id);

CREATE TABLE attempts (
	id            INTEGER PRIMARY KEY AUTOINCREMENT,
	delivery_id   INTEGER NOT NULL REFERENCES deliveries (id) ON DELETE CASCADE,
	attempted_at  INTEGER NOT NULL,
	duration_us   INTEGER NOT NULL,
	status_code   INTEGER NOT NULL,
	error         TEXT NOT NULL,
	response_body TEXT NOT NULL,
	success       INTEGER NOT NULL
);

CREATE INDEX attempts_delivery ON attempts (delivery_id, id);
CREATE INDEX attempts_time ON attempts (attempted_at);
`

// addSecrets gives every consumer created before signing existed its own secret.
func addSecrets(ctx context.Context, tx *sql.Tx) error {
	rows, err := tx.QueryContext(ctx, "SELECT id FROM consumers WHERE secret = ''")
	if err != nil {
		return err
	}
	var ids []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			rows.Close()
			return err
		}
		ids = append(ids, id)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}

	for _, id := range ids {
		secret, err := signature.NewSecret()
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, "UPDATE consumers SET secret = ? WHERE id = ?", secret.String(), id); err != nil {
			return err
		}
	}
	return nil
}
