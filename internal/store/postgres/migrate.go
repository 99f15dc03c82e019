package postgres

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
)

// migrationLockKey is the key of the transaction-level advisory lock that the migration
// transaction holds, so that hookd processes starting together on one database apply the
// migrations once. The value is "hookdmig" read as a big-endian integer, and any other
// constant would work as well.
const migrationLockKey int64 = 0x686f6f6b646d6967

// migrations are applied in order, and schema_migrations contains the versions that have
// been applied, version i+1 being migrations[i]. Append new steps, and never edit a step
// that has been released.
var migrations = []string{schemaV1, schemaV2}

// schemaV1 creates the tables of the SQLite backend in PostgreSQL types.
//
// Times are timestamptz. consumers.seq, messages.seq and the deliveries and attempts IDs
// are identity columns that keep creation and publish order, which the API lists by.
// event_types and company_tags are text arrays. company_tags is NULL when the consumer
// takes events of every company. Bodies are bytea, so they come back byte for byte.
//
// deliveries.next_attempt_at is when the delivery is due: the scheduled retry while it
// waits, the lease expiry while an attempt is in flight, and NULL once it is finished. A
// claim moves it to the lease expiry and sets lease_token, so a crashed attempt comes due
// again when its lease runs out. attempts counts the failed attempts since the delivery was
// queued, resent or recovered, and the retry schedule is indexed by it.
//
// deliveries_due serves ClaimDeliveries, which probes it once per enabled consumer to find
// the consumers with due work and then reads their due deliveries in order from it. It
// contains only pending deliveries, so its size follows the backlog, not the history.
const schemaV1 = `
CREATE TABLE clients (
	id         text PRIMARY KEY,
	name       text NOT NULL UNIQUE,
	suspended  boolean NOT NULL DEFAULT false,
	created_at timestamptz NOT NULL
);

CREATE TABLE api_keys (
	id         text PRIMARY KEY,
	client_id  text NOT NULL REFERENCES clients (id),
	hash       bytea NOT NULL,
	read_only  boolean NOT NULL,
	created_at timestamptz NOT NULL,
	revoked_at timestamptz
);

CREATE INDEX api_keys_client ON api_keys (client_id);

CREATE TABLE consumers (
	id                         text PRIMARY KEY,
	seq                        bigint GENERATED ALWAYS AS IDENTITY UNIQUE,
	client_id                  text NOT NULL REFERENCES clients (id),
	url                        text NOT NULL,
	event_types                text[] NOT NULL,
	company_tags               text[],
	disabled                   boolean NOT NULL,
	disabled_reason            text NOT NULL DEFAULT '',
	secret                     text NOT NULL DEFAULT '',
	previous_secret            text NOT NULL DEFAULT '',
	previous_secret_expires_at timestamptz,
	failing_since              timestamptz,
	idempotency_key            text,
	created_at                 timestamptz NOT NULL,
	updated_at                 timestamptz NOT NULL
);

CREATE INDEX consumers_client ON consumers (client_id, seq);
CREATE INDEX consumers_idempotency ON consumers (client_id, idempotency_key, created_at)
	WHERE idempotency_key IS NOT NULL;

CREATE TABLE messages (
	seq             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	id              text NOT NULL,
	client_id       text NOT NULL REFERENCES clients (id),
	event_type      text NOT NULL,
	generated_date  timestamptz NOT NULL,
	body            bytea NOT NULL,
	idempotency_key text,
	created_at      timestamptz NOT NULL,
	UNIQUE (client_id, id)
);

CREATE INDEX messages_idempotency ON messages (client_id, idempotency_key, created_at)
	WHERE idempotency_key IS NOT NULL;
CREATE INDEX messages_created ON messages (created_at);

CREATE TABLE deliveries (
	id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	message_seq     bigint NOT NULL REFERENCES messages (seq) ON DELETE CASCADE,
	consumer_id     text NOT NULL REFERENCES consumers (id) ON DELETE CASCADE,
	status          text NOT NULL CHECK (status IN ('sending', 'attempting', 'success', 'failure')),
	attempts        integer NOT NULL DEFAULT 0,
	next_attempt_at timestamptz,
	lease_token     text,
	last_attempt_at timestamptz,
	updated_at      timestamptz NOT NULL,
	UNIQUE (message_seq, consumer_id)
);

CREATE INDEX deliveries_due ON deliveries (consumer_id, next_attempt_at, id)
	WHERE next_attempt_at IS NOT NULL;
CREATE INDEX deliveries_next ON deliveries (next_attempt_at)
	WHERE next_attempt_at IS NOT NULL;
CREATE INDEX deliveries_consumer ON deliveries (consumer_id, id);

CREATE TABLE attempts (
	id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	delivery_id   bigint NOT NULL REFERENCES deliveries (id) ON DELETE CASCADE,
	attempted_at  timestamptz NOT NULL,
	duration_us   bigint NOT NULL,
	status_code   integer NOT NULL,
	error         text NOT NULL,
	response_body text NOT NULL,
	success       boolean NOT NULL
);

CREATE INDEX attempts_delivery ON attempts (delivery_id, id);
CREATE INDEX attempts_time ON attempts (attempted_at);
`

// schemaV2 drops deliveries_next, an index of every pending delivery by due time. NextDue
// and QueueDepth read deliveries_due instead, and every claim and record updated the
// dropped index for nothing.
const schemaV2 = `DROP INDEX IF EXISTS deliveries_next`

// migrate applies the pending migrations in one transaction that holds the migration
// advisory lock. A second process that starts at the same time waits for the lock, then
// finds the migrations applied.
func (s *Store) migrate(ctx context.Context) error {
	return s.write(ctx, "migrate schema", func(tx pgx.Tx) error {
		// The wait for another process's migration is bounded by ctx, not by lock_timeout.
		if _, err := tx.Exec(ctx, "SET LOCAL lock_timeout = 0"); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock($1)", migrationLockKey); err != nil {
			return fmt.Errorf("lock schema migrations: %w", err)
		}
		_, err := tx.Exec(ctx, `
CREATE TABLE IF NOT EXISTS schema_migrations (
	version    integer PRIMARY KEY,
	applied_at timestamptz NOT NULL DEFAULT now()
)`)
		if err != nil {
			return fmt.Errorf("create schema_migrations: %w", err)
		}

		var version int
		if err := tx.QueryRow(ctx, "SELECT coalesce(max(version), 0) FROM schema_migrations").Scan(&version); err != nil {
			return fmt.Errorf("read schema version: %w", err)
		}
		if version > len(migrations) {
			return fmt.Errorf("database schema version %d is newer than this hookd knows (%d): upgrade hookd", version, len(migrations))
		}

		for i := version; i < len(migrations); i++ {
			if _, err := tx.Exec(ctx, migrations[i]); err != nil {
				return fmt.Errorf("apply migration %d: %w", i+1, err)
			}
			if _, err := tx.Exec(ctx, "INSERT INTO schema_migrations (version) VALUES ($1)", i+1); err != nil {
				return fmt.Errorf("record migration %d: %w", i+1, err)
			}
		}
		return nil
	})
}
