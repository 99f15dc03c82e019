package sqlite

import (
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/hookd/hookd/internal/store"
	"github.com/hookd/hookd/internal/store/storetest"
)

func TestStore(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store {
		s, err := Open(t.Context(), t.TempDir(), Options{})
		if err != nil {
			t.Fatalf("Open: %v", err)
		}
		return s
	})
}

// openStore opens the store in dir and closes it when the test ends.
func openStore(t *testing.T, dir string, opts Options) *Store {
	t.Helper()
	s, err := Open(t.Context(), dir, opts)
	if err != nil {
		t.Fatalf("Open(%s): %v", dir, err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return s
}

// openRaw opens a connection to the database file that bypasses the Store, as another
// program or an operator's sqlite3 shell would.
func openRaw(t *testing.T, path string) *sql.DB {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+uriPathEscaper.Replace(path)+"?_busy_timeout=5000")
	if err != nil {
		t.Fatalf("open %s: %v", path, err)
	}
	db.SetMaxOpenConns(1)
	t.Cleanup(func() { db.Close() })
	return db
}

func userVersion(t *testing.T, db *sql.DB) int {
	t.Helper()
	var version int
	if err := db.QueryRowContext(t.Context(), "PRAGMA user_version").Scan(&version); err != nil {
		t.Fatalf("read user_version: %v", err)
	}
	return version
}

// seed creates a client with a key and a consumer.
func seed(t *testing.T, s *Store) (store.Client, store.APIKey, store.Consumer) {
	t.Helper()
	ctx := t.Context()
	client, _, err := s.EnsureClient(ctx, "acme")
	if err != nil {
		t.Fatalf("EnsureClient: %v", err)
	}
	key := store.APIKey{ID: "0123456789abcdef", ClientID: client.ID, Hash: []byte("digest"), ReadOnly: true}
	if err := s.CreateKey(ctx, key); err != nil {
		t.Fatalf("CreateKey: %v", err)
	}
	consumer, err := s.CreateConsumer(ctx, newConsumer(client.ID))
	if err != nil {
		t.Fatalf("CreateConsumer: %v", err)
	}
	return client, key, consumer
}

func newConsumer(clientID string) store.Consumer {
	return store.Consumer{
		ID:          uuid.NewString(),
		ClientID:    clientID,
		URL:         "https://hooks.example.com/events",
		EventTypes:  []string{"DataSyncCompleted"},
		CompanyTags: []string{"region:eu"},
	}
}

func TestReopenKeepsData(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	dir := t.TempDir()

	first, err := Open(ctx, dir, Options{})
	if err != nil {
		t.Fatalf("first Open: %v", err)
	}
	client, key, consumer := seed(t, first)
	if err := first.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}

	s := openStore(t, dir, Options{})
	gotClient, err := s.ClientByName(ctx, client.Name)
	if err != nil {
		t.Fatalf("ClientByName after reopen: %v", err)
	}
	if gotClient.ID != client.ID {
		t.Errorf("client ID after reopen = %q, want %q", gotClient.ID, client.ID)
	}

	cred, err := s.Credential(ctx, key.ID)
	if err != nil {
		t.Fatalf("Credential after reopen: %v", err)
	}
	if cred.Key.ClientID != client.ID || !cred.Key.ReadOnly {
		t.Errorf("key after reopen = client %q, read-only %v, want client %q, read-only true",
			cred.Key.ClientID, cred.Key.ReadOnly, client.ID)
	}

	consumers, err := s.ListConsumers(ctx, client.ID)
	if err != nil {
		t.Fatalf("ListConsumers after reopen: %v", err)
	}
	if len(consumers) != 1 || consumers[0].ID != consumer.ID {
		t.Fatalf("ListConsumers after reopen returned %d consumers, want only %s", len(consumers), consumer.ID)
	}
	if !slices.Equal(consumers[0].CompanyTags, consumer.CompanyTags) {
		t.Errorf("CompanyTags after reopen = %q, want %q", consumers[0].CompanyTags, consumer.CompanyTags)
	}
}

func TestPragmas(t *testing.T) {
	t.Parallel()
	s := openStore(t, t.TempDir(), Options{BusyTimeout: 1234 * time.Millisecond})

	tests := []struct {
		pool   string
		db     *sql.DB
		pragma string
		want   string
	}{
		{"writer", s.writer, "journal_mode", "wal"},
		{"writer", s.writer, "synchronous", "2"},
		{"writer", s.writer, "foreign_keys", "1"},
		{"writer", s.writer, "busy_timeout", "1234"},
		{"writer", s.writer, "query_only", "0"},
		{"reader", s.reader, "journal_mode", "wal"},
		{"reader", s.reader, "synchronous", "2"},
		{"reader", s.reader, "busy_timeout", "1234"},
		{"reader", s.reader, "query_only", "1"},
	}
	for _, tc := range tests {
		t.Run(tc.pool+"/"+tc.pragma, func(t *testing.T) {
			var got string
			if err := tc.db.QueryRowContext(t.Context(), "PRAGMA "+tc.pragma).Scan(&got); err != nil {
				t.Fatalf("PRAGMA %s: %v", tc.pragma, err)
			}
			if got != tc.want {
				t.Errorf("PRAGMA %s = %q, want %q", tc.pragma, got, tc.want)
			}
		})
	}

	// journal_mode=WAL is stored in the file, so a connection opened without options reports it too.
	t.Run("file/journal_mode", func(t *testing.T) {
		var got string
		if err := openRaw(t, s.Path()).QueryRowContext(t.Context(), "PRAGMA journal_mode").Scan(&got); err != nil {
			t.Fatalf("PRAGMA journal_mode: %v", err)
		}
		if got != "wal" {
			t.Errorf("PRAGMA journal_mode = %q, want %q", got, "wal")
		}
	})
}

func TestReaderRejectsWrites(t *testing.T) {
	t.Parallel()
	s := openStore(t, t.TempDir(), Options{})

	_, err := s.reader.ExecContext(t.Context(), "INSERT INTO clients (id, name, created_at) VALUES ('x', 'x', 0)")
	if err == nil {
		t.Errorf("INSERT through the read pool: error = nil, want an error")
	}
}

func TestMigrateIdempotent(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	dir := t.TempDir()

	first, err := Open(ctx, dir, Options{})
	if err != nil {
		t.Fatalf("first Open: %v", err)
	}
	client, _, consumer := seed(t, first)
	if err := first.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	raw := openRaw(t, filepath.Join(dir, FileName))
	schema := readSchema(t, raw)

	s := openStore(t, dir, Options{})
	if got := userVersion(t, raw); got != len(migrations) {
		t.Errorf("user_version after reopen = %d, want %d", got, len(migrations))
	}
	if got := readSchema(t, raw); !slices.Equal(got, schema) {
		t.Errorf("schema after reopen =\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(schema, "\n"))
	}

	consumers, err := s.ListConsumers(ctx, client.ID)
	if err != nil {
		t.Fatalf("ListConsumers after reopen: %v", err)
	}
	if len(consumers) != 1 || consumers[0].ID != consumer.ID {
		t.Errorf("ListConsumers after reopen returned %d consumers, want only %s", len(consumers), consumer.ID)
	}
}

// readSchema returns the statements that created the schema's tables and indexes.
func readSchema(t *testing.T, db *sql.DB) []string {
	t.Helper()
	rows, err := db.QueryContext(t.Context(), "SELECT type || ' ' || name || ': ' || coalesce(sql, '') FROM sqlite_schema ORDER BY type, name")
	if err != nil {
		t.Fatalf("read schema: %v", err)
	}
	defer rows.Close()

	var schema []string
	for rows.Next() {
		var entry string
		if err := rows.Scan(&entry); err != nil {
			t.Fatalf("read schema: %v", err)
		}
		schema = append(schema, entry)
	}
	if err := rows.Err(); err != nil {
		t.Fatalf("read schema: %v", err)
	}
	if len(schema) == 0 {
		t.Fatalf("read schema: sqlite_schema is empty")
	}
	return schema
}

func TestOpenNewerSchema(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	dir := t.TempDir()

	first, err := Open(ctx, dir, Options{})
	if err != nil {
		t.Fatalf("first Open: %v", err)
	}
	if err := first.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}

	newer := len(migrations) + 1
	raw := openRaw(t, filepath.Join(dir, FileName))
	if _, err := raw.ExecContext(ctx, fmt.Sprintf("PRAGMA user_version = %d", newer)); err != nil {
		t.Fatalf("set user_version: %v", err)
	}

	s, err := Open(ctx, dir, Options{})
	if err == nil {
		s.Close()
		t.Fatalf("Open of a database with user_version %d: error = nil, want an error", newer)
	}
	for _, want := range []string{fmt.Sprint(newer), "newer", "upgrade hookd"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("Open error = %q, want it to contain %q", err, want)
		}
	}
	if errors.Is(err, store.ErrUnavailable) {
		t.Errorf("Open error = %v, want an error that does not wrap ErrUnavailable", err)
	}
	if got := userVersion(t, raw); got != newer {
		t.Errorf("user_version after the rejected Open = %d, want %d", got, newer)
	}
}

// TestTwoStoresConsumerLimit opens the same file twice, as two hookd processes would, and
// creates consumers for one client through both at once.
func TestTwoStoresConsumerLimit(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	first := openStore(t, dir, Options{})
	second := openStore(t, dir, Options{})

	client, _, err := first.EnsureClient(t.Context(), "acme")
	if err != nil {
		t.Fatalf("EnsureClient: %v", err)
	}

	attempts := store.MaxConsumersPerClient
	results := storetest.CreateConsumersConcurrently(t.Context(), []storetest.ConsumerCreator{
		{Store: first, ClientID: client.ID, Attempts: attempts},
		{Store: second, ClientID: client.ID, Attempts: attempts},
	})

	var total storetest.CreateResult
	for _, r := range results {
		total.Created = append(total.Created, r.Created...)
		total.Limited += r.Limited
		total.Errors = append(total.Errors, r.Errors...)
	}
	total.Check(t, "both stores", store.MaxConsumersPerClient)

	for name, s := range map[string]*Store{"first": first, "second": second} {
		consumers, err := s.ListConsumers(t.Context(), client.ID)
		if err != nil {
			t.Fatalf("ListConsumers through the %s store: %v", name, err)
		}
		if len(consumers) != store.MaxConsumersPerClient {
			t.Errorf("ListConsumers through the %s store returned %d consumers, want %d",
				name, len(consumers), store.MaxConsumersPerClient)
		}
	}
}

// TestWriteWhileLocked holds the database write lock on a separate connection, as another
// process in a long write transaction would.
func TestWriteWhileLocked(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	s := openStore(t, t.TempDir(), Options{BusyTimeout: 100 * time.Millisecond})
	client, key, consumer := seed(t, s)

	conn, err := openRaw(t, s.Path()).Conn(ctx)
	if err != nil {
		t.Fatalf("get connection: %v", err)
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, "BEGIN IMMEDIATE"); err != nil {
		t.Fatalf("BEGIN IMMEDIATE: %v", err)
	}

	writes := []struct {
		name  string
		write func() error
	}{
		{"CreateConsumer", func() error { _, err := s.CreateConsumer(ctx, newConsumer(client.ID)); return err }},
		{"DeleteConsumer", func() error { return s.DeleteConsumer(ctx, client.ID, consumer.ID) }},
		{"RevokeKey", func() error { _, err := s.RevokeKey(ctx, key.ID); return err }},
	}
	for _, w := range writes {
		start := time.Now()
		err := w.write()
		elapsed := time.Since(start)
		if !errors.Is(err, store.ErrUnavailable) {
			t.Errorf("%s while locked: error = %v, want an error wrapping ErrUnavailable", w.name, err)
		}
		// DefaultBusyTimeout is 5s, so a shorter wait shows that Options.BusyTimeout applies.
		if elapsed > 2*time.Second {
			t.Errorf("%s while locked took %v, want about the 100ms busy timeout", w.name, elapsed)
		}
	}

	// WAL lets reads proceed beside the writer that holds the lock.
	consumers, err := s.ListConsumers(ctx, client.ID)
	if err != nil {
		t.Fatalf("ListConsumers while locked: %v", err)
	}
	if len(consumers) != 1 || consumers[0].ID != consumer.ID {
		t.Errorf("ListConsumers while locked returned %d consumers, want only %s", len(consumers), consumer.ID)
	}

	if _, err := conn.ExecContext(ctx, "ROLLBACK"); err != nil {
		t.Fatalf("ROLLBACK: %v", err)
	}

	created, err := s.CreateConsumer(ctx, newConsumer(client.ID))
	if err != nil {
		t.Fatalf("CreateConsumer after the lock is released: %v", err)
	}
	cred, err := s.Credential(ctx, key.ID)
	if err != nil {
		t.Fatalf("Credential: %v", err)
	}
	if cred.Key.RevokedAt != nil {
		t.Errorf("key RevokedAt = %v after the failed RevokeKey, want nil", *cred.Key.RevokedAt)
	}
	consumers, err = s.ListConsumers(ctx, client.ID)
	if err != nil {
		t.Fatalf("ListConsumers after the lock is released: %v", err)
	}
	var got []string
	for _, c := range consumers {
		got = append(got, c.ID)
	}
	if want := []string{consumer.ID, created.ID}; !slices.Equal(got, want) {
		t.Errorf("ListConsumers after the lock is released returned %q, want %q", got, want)
	}
}

func TestListConsumersCorruptJSON(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		column string
		value  string
	}{
		{"EventTypesNotJSON", "event_types", "not json"},
		{"EventTypesObject", "event_types", `{"type": "DataSyncCompleted"}`},
		{"CompanyTagsTruncated", "company_tags", `["region:eu"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx := t.Context()
			s := openStore(t, t.TempDir(), Options{})
			client, _, consumer := seed(t, s)

			// The column name comes from the test table, never from input.
			query := fmt.Sprintf("UPDATE consumers SET %s = ? WHERE id = ?", tc.column)
			if _, err := openRaw(t, s.Path()).ExecContext(ctx, query, tc.value, consumer.ID); err != nil {
				t.Fatalf("corrupt %s: %v", tc.column, err)
			}

			_, err := s.ListConsumers(ctx, client.ID)
			if err == nil {
				t.Fatalf("ListConsumers: error = nil, want an error")
			}
			if errors.Is(err, store.ErrUnavailable) {
				t.Errorf("ListConsumers error = %v, want an error that does not wrap ErrUnavailable", err)
			}
			if !strings.Contains(err.Error(), consumer.ID) {
				t.Errorf("ListConsumers error = %q, want it to name consumer %s", err, consumer.ID)
			}
		})
	}
}

func TestOpenSpecialCharactersInPath(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		dir  string
	}{
		{"Space", "hookd data"},
		{"Hash", "data#1"},
		{"Percent", "data%20x"},
		{"QuestionMark", "data?mode=ro"},
		{"Ampersand", "a&b=c"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), tc.dir)
			s := openStore(t, dir, Options{})
			seed(t, s)

			want := filepath.Join(dir, FileName)
			if s.Path() != want {
				t.Errorf("Path() = %q, want %q", s.Path(), want)
			}
			if _, err := os.Stat(want); err != nil {
				t.Errorf("database file: %v", err)
			}
			entries, err := os.ReadDir(filepath.Dir(dir))
			if err != nil {
				t.Fatalf("read parent folder: %v", err)
			}
			if len(entries) != 1 || entries[0].Name() != tc.dir {
				var names []string
				for _, e := range entries {
					names = append(names, e.Name())
				}
				t.Errorf("parent folder contains %q, want only %q", names, tc.dir)
			}
		})
	}
}
