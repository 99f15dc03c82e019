package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/hookd/hookd/internal/store"
)

// EnsureClient implements store.Store. When two processes create the same name at once,
// the unique name makes one insert wait for the other and then do nothing, so exactly one
// call reports created.
func (s *Store) EnsureClient(ctx context.Context, name string) (store.Client, bool, error) {
	var (
		client  store.Client
		created bool
	)
	err := s.write(ctx, "ensure client", func(tx pgx.Tx) error {
		var err error
		client, err = scanClient(tx.QueryRow(ctx, selectClient+" WHERE name = $1", name))
		if err == nil || !errors.Is(err, store.ErrNotFound) {
			created = false
			return err
		}

		client = newClient(name)
		tag, err := tx.Exec(ctx, `
INSERT INTO clients (id, name, suspended, created_at) VALUES ($1, $2, false, $3)
ON CONFLICT (name) DO NOTHING`, client.ID, client.Name, client.CreatedAt)
		if err != nil {
			return fmt.Errorf("insert client %q: %w", name, err)
		}
		created = tag.RowsAffected() == 1
		if !created {
			client, err = scanClient(tx.QueryRow(ctx, selectClient+" WHERE name = $1", name))
		}
		return err
	})
	return client, created, err
}

// ClientByName implements store.Store.
func (s *Store) ClientByName(ctx context.Context, name string) (store.Client, error) {
	client, err := scanClient(s.pool.QueryRow(ctx, selectClient+" WHERE name = $1", name))
	return client, wrap("get client", err)
}

// SetClientSuspended implements store.Store.
func (s *Store) SetClientSuspended(ctx context.Context, name string, suspended bool) (store.Client, error) {
	client, err := scanClient(s.pool.QueryRow(ctx,
		"UPDATE clients SET suspended = $1 WHERE name = $2 RETURNING id, name, suspended, created_at", suspended, name))
	return client, wrap("set client suspended", err)
}

// CreateKey implements store.Store.
func (s *Store) CreateKey(ctx context.Context, key store.APIKey) error {
	return wrap("create key", insertKey(ctx, s.pool, key))
}

// InitDefaultClient implements store.Store. The transaction locks the clients table
// against inserts (SHARE ROW EXCLUSIVE), so that processes starting together on an empty
// database create the default client once, and no other client appears between the check
// and the insert. Reads and row locks on clients go on meanwhile.
func (s *Store) InitDefaultClient(ctx context.Context, key store.APIKey) (bool, error) {
	var created bool
	err := s.write(ctx, "create default client", func(tx pgx.Tx) error {
		created = false
		if _, err := tx.Exec(ctx, "LOCK TABLE clients IN SHARE ROW EXCLUSIVE MODE"); err != nil {
			return err
		}
		var exists bool
		if err := tx.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM clients)").Scan(&exists); err != nil {
			return err
		}
		if exists {
			return nil
		}

		client := newClient(store.DefaultClientName)
		_, err := tx.Exec(ctx, "INSERT INTO clients (id, name, suspended, created_at) VALUES ($1, $2, false, $3)",
			client.ID, client.Name, client.CreatedAt)
		if err != nil {
			return fmt.Errorf("insert client %q: %w", client.Name, err)
		}
		key.ClientID = client.ID
		if err := insertKey(ctx, tx, key); err != nil {
			return err
		}
		created = true
		return nil
	})
	return created, err
}

// Credential implements store.Store.
func (s *Store) Credential(ctx context.Context, keyID string) (store.Credential, error) {
	row := s.pool.QueryRow(ctx, `
SELECT k.id, k.client_id, k.hash, k.read_only, k.created_at, k.revoked_at,
       c.id, c.name, c.suspended, c.created_at
FROM api_keys k JOIN clients c ON c.id = k.client_id
WHERE k.id = $1`, keyID)

	var cred store.Credential
	err := row.Scan(&cred.Key.ID, &cred.Key.ClientID, &cred.Key.Hash, &cred.Key.ReadOnly,
		utcTime{&cred.Key.CreatedAt}, nullUTCTime{&cred.Key.RevokedAt},
		&cred.Client.ID, &cred.Client.Name, &cred.Client.Suspended, utcTime{&cred.Client.CreatedAt})
	if errors.Is(err, pgx.ErrNoRows) {
		return store.Credential{}, fmt.Errorf("get key %s: %w", keyID, store.ErrNotFound)
	}
	if err != nil {
		return store.Credential{}, wrap("get key", err)
	}
	return cred, nil
}

// ListKeys implements store.Store. The C collation orders equal times by the bytes of the
// key IDs, as SQLite does, whatever the database's default collation is.
func (s *Store) ListKeys(ctx context.Context) ([]store.KeyInfo, error) {
	rows, err := s.pool.Query(ctx, `
SELECT k.id, k.client_id, k.hash, k.read_only, k.created_at, k.revoked_at, c.name
FROM api_keys k JOIN clients c ON c.id = k.client_id
ORDER BY k.created_at, k.id COLLATE "C"`)
	if err != nil {
		return nil, wrap("list keys", err)
	}
	defer rows.Close()

	var keys []store.KeyInfo
	for rows.Next() {
		var info store.KeyInfo
		err := rows.Scan(&info.ID, &info.ClientID, &info.Hash, &info.ReadOnly,
			utcTime{&info.CreatedAt}, nullUTCTime{&info.RevokedAt}, &info.ClientName)
		if err != nil {
			return nil, wrap("list keys", err)
		}
		keys = append(keys, info)
	}
	return keys, wrap("list keys", rows.Err())
}

// RevokeKey implements store.Store.
func (s *Store) RevokeKey(ctx context.Context, keyID string) (store.APIKey, error) {
	var key store.APIKey
	err := s.write(ctx, "revoke key", func(tx pgx.Tx) error {
		_, err := tx.Exec(ctx, "UPDATE api_keys SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL", ts(time.Now()), keyID)
		if err != nil {
			return err
		}

		key = store.APIKey{}
		err = tx.QueryRow(ctx, "SELECT id, client_id, hash, read_only, created_at, revoked_at FROM api_keys WHERE id = $1", keyID).
			Scan(&key.ID, &key.ClientID, &key.Hash, &key.ReadOnly, utcTime{&key.CreatedAt}, nullUTCTime{&key.RevokedAt})
		if errors.Is(err, pgx.ErrNoRows) {
			return fmt.Errorf("key %s: %w", keyID, store.ErrNotFound)
		}
		return err
	})
	return key, err
}

const selectClient = "SELECT id, name, suspended, created_at FROM clients"

func scanClient(row pgx.Row) (store.Client, error) {
	var client store.Client
	err := row.Scan(&client.ID, &client.Name, &client.Suspended, utcTime{&client.CreatedAt})
	if errors.Is(err, pgx.ErrNoRows) {
		return store.Client{}, store.ErrNotFound
	}
	if err != nil {
		return store.Client{}, err
	}
	return client, nil
}

func newClient(name string) store.Client {
	return store.Client{ID: uuid.NewString(), Name: name, CreatedAt: ts(time.Now())}
}

// execer is the Exec method that pgx.Tx and *pgxpool.Pool share.
type execer interface {
	Exec(ctx context.Context, sql string, arguments ...any) (pgconn.CommandTag, error)
}

func insertKey(ctx context.Context, db execer, key store.APIKey) error {
	createdAt := key.CreatedAt
	if createdAt.IsZero() {
		createdAt = time.Now()
	}
	_, err := db.Exec(ctx, "INSERT INTO api_keys (id, client_id, hash, read_only, created_at) VALUES ($1, $2, $3, $4, $5)",
		key.ID, key.ClientID, key.Hash, key.ReadOnly, ts(createdAt))
	if err != nil {
		return fmt.Errorf("insert key %s: %w", key.ID, err)
	}
	return nil
}
