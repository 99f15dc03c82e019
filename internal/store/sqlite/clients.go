package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"

	"github.com/hookd/hookd/internal/store"
)

// EnsureClient implements store.Store.
func (s *Store) EnsureClient(ctx context.Context, name string) (store.Client, bool, error) {
	var (
		client  store.Client
		created bool
	)
	err := s.write(ctx, "ensure client", func(tx *sql.Tx) error {
		var err error
		client, err = scanClient(tx.QueryRowContext(ctx, selectClient+" WHERE name = ?", name))
		if err == nil || !errors.Is(err, store.ErrNotFound) {
			return err
		}

		client, err = insertClient(ctx, tx, name)
		created = err == nil
		return err
	})
	return client, created, err
}

// ClientByName implements store.Store.
func (s *Store) ClientByName(ctx context.Context, name string) (store.Client, error) {
	client, err := scanClient(s.reader.QueryRowContext(ctx, selectClient+" WHERE name = ?", name))
	return client, wrap("get client", err)
}

// SetClientSuspended implements store.Store.
func (s *Store) SetClientSuspended(ctx context.Context, name string, suspended bool) (store.Client, error) {
	var client store.Client
	err := s.write(ctx, "set client suspended", func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, "UPDATE clients SET suspended = ? WHERE name = ?", suspended, name)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil {
			return err
		} else if n == 0 {
			return store.ErrNotFound
		}

		client, err = scanClient(tx.QueryRowContext(ctx, selectClient+" WHERE name = ?", name))
		return err
	})
	return client, err
}

// CreateKey implements store.Store.
func (s *Store) CreateKey(ctx context.Context, key store.APIKey) error {
	return s.write(ctx, "create key", func(tx *sql.Tx) error {
		return insertKey(ctx, tx, key)
	})
}

// InitDefaultClient implements store.Store.
func (s *Store) InitDefaultClient(ctx context.Context, key store.APIKey) (bool, error) {
	var created bool
	err := s.write(ctx, "create default client", func(tx *sql.Tx) error {
		var clients int
		if err := tx.QueryRowContext(ctx, "SELECT count(*) FROM clients").Scan(&clients); err != nil {
			return err
		}
		if clients > 0 {
			return nil
		}

		client, err := insertClient(ctx, tx, store.DefaultClientName)
		if err != nil {
			return err
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

const queryCredential = `
SELECT k.id, k.client_id, k.hash, k.read_only, k.created_at, k.revoked_at,
       c.id, c.name, c.suspended, c.created_at
FROM api_keys k JOIN clients c ON c.id = k.client_id
WHERE k.id = ?`

// Credential implements store.Store.
func (s *Store) Credential(ctx context.Context, keyID string) (store.Credential, error) {
	st, err := s.readStmt(ctx, queryCredential)
	if err != nil {
		return store.Credential{}, wrap("get key", err)
	}
	row := st.QueryRowContext(ctx, keyID)

	var (
		cred      store.Credential
		keyAt     int64
		revokedAt sql.NullInt64
		clientAt  int64
	)
	err = row.Scan(&cred.Key.ID, &cred.Key.ClientID, &cred.Key.Hash, &cred.Key.ReadOnly, &keyAt, &revokedAt,
		&cred.Client.ID, &cred.Client.Name, &cred.Client.Suspended, &clientAt)
	if errors.Is(err, sql.ErrNoRows) {
		return store.Credential{}, fmt.Errorf("get key %s: %w", keyID, store.ErrNotFound)
	}
	if err != nil {
		return store.Credential{}, wrap("get key", err)
	}

	cred.Key.CreatedAt = fromMillis(keyAt)
	cred.Key.RevokedAt = nullTime(revokedAt)
	cred.Client.CreatedAt = fromMillis(clientAt)
	return cred, nil
}

// ListKeys implements store.Store.
func (s *Store) ListKeys(ctx context.Context) ([]store.KeyInfo, error) {
	rows, err := s.reader.QueryContext(ctx, `
SELECT k.id, k.client_id, k.hash, k.read_only, k.created_at, k.revoked_at, c.name
FROM api_keys k JOIN clients c ON c.id = k.client_id
ORDER BY k.created_at, k.id`)
	if err != nil {
		return nil, wrap("list keys", err)
	}
	defer rows.Close()

	var keys []store.KeyInfo
	for rows.Next() {
		var (
			info      store.KeyInfo
			createdAt int64
			revokedAt sql.NullInt64
		)
		err := rows.Scan(&info.ID, &info.ClientID, &info.Hash, &info.ReadOnly, &createdAt, &revokedAt, &info.ClientName)
		if err != nil {
			return nil, wrap("list keys", err)
		}
		info.CreatedAt = fromMillis(createdAt)
		info.RevokedAt = nullTime(revokedAt)
		keys = append(keys, info)
	}
	return keys, wrap("list keys", rows.Err())
}

// RevokeKey implements store.Store.
func (s *Store) RevokeKey(ctx context.Context, keyID string) (store.APIKey, error) {
	var key store.APIKey
	err := s.write(ctx, "revoke key", func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, "UPDATE api_keys SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL",
			millis(time.Now()), keyID)
		if err != nil {
			return err
		}

		var (
			createdAt int64
			revokedAt sql.NullInt64
		)
		err = tx.QueryRowContext(ctx, "SELECT id, client_id, hash, read_only, created_at, revoked_at FROM api_keys WHERE id = ?", keyID).
			Scan(&key.ID, &key.ClientID, &key.Hash, &key.ReadOnly, &createdAt, &revokedAt)
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("key %s: %w", keyID, store.ErrNotFound)
		}
		key.CreatedAt = fromMillis(createdAt)
		key.RevokedAt = nullTime(revokedAt)
		return err
	})
	return key, err
}

const selectClient = "SELECT id, name, suspended, created_at FROM clients"

func scanClient(row *sql.Row) (store.Client, error) {
	var (
		client    store.Client
		createdAt int64
	)
	err := row.Scan(&client.ID, &client.Name, &client.Suspended, &createdAt)
	if errors.Is(err, sql.ErrNoRows) {
		return store.Client{}, store.ErrNotFound
	}
	if err != nil {
		return store.Client{}, err
	}
	client.CreatedAt = fromMillis(createdAt)
	return client, nil
}

func insertClient(ctx context.Context, tx *sql.Tx, name string) (store.Client, error) {
	client := store.Client{ID: uuid.NewString(), Name: name, CreatedAt: time.Now().UTC().Truncate(time.Millisecond)}
	_, err := tx.ExecContext(ctx, "INSERT INTO clients (id, name, suspended, created_at) VALUES (?, ?, 0, ?)",
		client.ID, client.Name, millis(client.CreatedAt))
	if err != nil {
		return store.Client{}, fmt.Errorf("insert client %q: %w", name, err)
	}
	return client, nil
}

func insertKey(ctx context.Context, tx *sql.Tx, key store.APIKey) error {
	createdAt := key.CreatedAt
	if createdAt.IsZero() {
		createdAt = time.Now()
	}
	_, err := tx.ExecContext(ctx, "INSERT INTO api_keys (id, client_id, hash, read_only, created_at) VALUES (?, ?, ?, ?, ?)",
		key.ID, key.ClientID, key.Hash, key.ReadOnly, millis(createdAt))
	if err != nil {
		return fmt.Errorf("insert key %s: %w", key.ID, err)
	}
	return nil
}

func nullTime(v sql.NullInt64) *time.Time {
	if !v.Valid {
		return nil
	}
	t := fromMillis(v.Int64)
	return &t
}
