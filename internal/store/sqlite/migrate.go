package sqlite

import (
	"context"
	"database/sql"
	"fmt"
)

// migrations are applied in order; the database's PRAGMA user_version holds how many have
// been applied. Append new steps; never edit a step that has been released.
//
// Times are integer Unix milliseconds. consumers.seq keeps creation order, which the API
// lists by. event_types and company_tags are JSON arrays; company_tags is NULL when the
// consumer takes events of every company.
var migrations = []string{
	`
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
`,
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
			if _, err := tx.ExecContext(ctx, migrations[i]); err != nil {
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
