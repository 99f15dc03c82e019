// Package sqlite implements store.Store on an embedded SQLite database through the pure-Go
// driver modernc.org/sqlite.
//
// The database runs in WAL mode with synchronous=FULL, so a transaction that has committed
// survives a crash or a power loss. Writes go through one connection whose transactions
// start with BEGIN IMMEDIATE, which serializes writers inside the process and takes the
// database write lock up front across processes; reads use a separate pool of read-only
// connections, which WAL lets run beside the writer.
package sqlite

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/hookd/hookd/internal/store"
)

// FileName is the name of the database file inside the data folder.
const FileName = "hookd.db"

// DefaultBusyTimeout is how long a statement waits for another connection or process that
// holds the write lock before it fails with store.ErrUnavailable.
const DefaultBusyTimeout = 5 * time.Second

// Options configures Open. The zero value is valid.
type Options struct {
	// BusyTimeout overrides DefaultBusyTimeout when positive.
	BusyTimeout time.Duration

	// MaxReaders is the size of the read pool. Zero means twice the number of CPUs,
	// with at least 4.
	MaxReaders int
}

// Store is a store.Store on one SQLite database file.
type Store struct {
	path   string
	writer *sql.DB
	reader *sql.DB
	stmts  statements
}

var _ store.Store = (*Store)(nil)

// Open opens or creates the database in the folder dir, creating the folder when needed,
// and applies pending schema migrations.
func Open(ctx context.Context, dir string, opts Options) (*Store, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("create data folder %s: %w", dir, err)
	}
	path := filepath.Join(dir, FileName)

	busy := opts.BusyTimeout
	if busy <= 0 {
		busy = DefaultBusyTimeout
	}
	readers := opts.MaxReaders
	if readers <= 0 {
		readers = max(4, 2*runtime.NumCPU())
	}

	writer, err := sql.Open("sqlite", dsn(path, busy, false))
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	writer.SetMaxOpenConns(1)
	writer.SetMaxIdleConns(1)
	writer.SetConnMaxLifetime(0)
	writer.SetConnMaxIdleTime(0)

	s := &Store{path: path, writer: writer}
	if err := s.migrate(ctx); err != nil {
		writer.Close()
		return nil, err
	}
	if err := s.prepareWrites(ctx); err != nil {
		s.closeStatements()
		writer.Close()
		return nil, err
	}

	// The read pool opens after the migration, so that the file is already in WAL mode.
	reader, err := sql.Open("sqlite", dsn(path, busy, true))
	if err != nil {
		writer.Close()
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	reader.SetMaxOpenConns(readers)
	reader.SetMaxIdleConns(readers)
	s.reader = reader

	if err := s.Ping(ctx); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

// dsn builds a modernc.org/sqlite connection string. Every connection enables foreign
// keys and waits up to busy for locks; the writer also starts its transactions with
// BEGIN IMMEDIATE, and readers are query-only.
func dsn(path string, busy time.Duration, readOnly bool) string {
	q := url.Values{}
	q.Set("_busy_timeout", fmt.Sprint(busy.Milliseconds()))
	q.Set("_foreign_keys", "1")
	q.Set("_synchronous", "FULL")
	if readOnly {
		q.Set("_query_only", "1")
	} else {
		q.Set("_journal_mode", "WAL")
		q.Set("_txlock", "immediate")
	}
	return "file:" + uriPathEscaper.Replace(path) + "?" + q.Encode()
}

// uriPathEscaper percent-encodes the characters that SQLite's URI parser reads as an escape
// (%), the start of the query (?) or the start of a fragment (#). Without it, the folder
// "data#2" would open a database file named "data" instead of data#2/hookd.db.
var uriPathEscaper = strings.NewReplacer("%", "%25", "?", "%3f", "#", "%23")

// Path returns the path of the database file.
func (s *Store) Path() string { return s.path }

// Ping implements store.Store.
func (s *Store) Ping(ctx context.Context) error {
	var one int
	if err := s.reader.QueryRowContext(ctx, "SELECT 1").Scan(&one); err != nil {
		return wrap("ping", err)
	}
	return nil
}

// Close implements store.Store.
func (s *Store) Close() error {
	s.closeStatements()
	var errs []error
	if s.reader != nil {
		errs = append(errs, s.reader.Close())
	}
	errs = append(errs, s.writer.Close())
	return errors.Join(errs...)
}

// write runs fn in one write transaction and commits it.
func (s *Store) write(ctx context.Context, op string, fn func(tx *sql.Tx) error) error {
	tx, err := s.writer.BeginTx(ctx, nil)
	return commit(op, tx, err, fn)
}

// commit runs fn in tx and commits it, or rolls it back when fn fails. beginErr is the
// error of starting tx; when it is set, commit only wraps and returns it.
func commit(op string, tx *sql.Tx, beginErr error, fn func(tx *sql.Tx) error) error {
	if beginErr != nil {
		return wrap(op, beginErr)
	}
	defer tx.Rollback()

	if err := fn(tx); err != nil {
		return wrap(op, err)
	}
	if err := tx.Commit(); err != nil {
		return wrap(op, err)
	}
	return nil
}

// writeNoSync is write for transactions that may be lost in a power failure or an
// operating system crash: the commit does not wait for the disk. The transaction still
// survives hookd crashing, and the next commit made by write syncs it along with its own.
func (s *Store) writeNoSync(ctx context.Context, op string, fn func(tx *sql.Tx) error) error {
	conn, err := s.writer.Conn(ctx)
	if err != nil {
		return wrap(op, err)
	}
	defer conn.Close()

	if _, err := conn.ExecContext(ctx, "PRAGMA synchronous = NORMAL"); err != nil {
		return wrap(op, err)
	}
	defer func() {
		// A connection left without synchronous=FULL would lose durable commits in a
		// power failure; when the reset fails, drop the connection instead.
		if _, err := conn.ExecContext(context.WithoutCancel(ctx), "PRAGMA synchronous = FULL"); err != nil {
			conn.Raw(func(any) error { return driver.ErrBadConn })
		}
	}()

	tx, err := conn.BeginTx(ctx, nil)
	return commit(op, tx, err, fn)
}

// wrap adds the operation to err, and marks the SQLite failures that mean "try again
// later" as store.ErrUnavailable. Sentinel errors of the store package pass through with
// the operation prefixed.
func wrap(op string, err error) error {
	if err == nil {
		return nil
	}
	if unavailable(err) {
		return fmt.Errorf("%s: %w: %w", op, store.ErrUnavailable, err)
	}
	return fmt.Errorf("%s: %w", op, err)
}

func unavailable(err error) bool {
	var sqliteErr *sqlite.Error
	if errors.As(err, &sqliteErr) {
		switch sqliteErr.Code() & 0xff {
		case sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED, sqlite3.SQLITE_FULL, sqlite3.SQLITE_IOERR,
			sqlite3.SQLITE_CANTOPEN, sqlite3.SQLITE_NOMEM, sqlite3.SQLITE_READONLY, sqlite3.SQLITE_PROTOCOL:
			return true
		}
	}

	// database/sql reports a closed pool, and the prepared statements that Close closed,
	// with unexported error values.
	msg := err.Error()
	return errors.Is(err, sql.ErrConnDone) || strings.Contains(msg, "sql: database is closed") ||
		strings.Contains(msg, "sql: statement is closed")
}

// millis converts t to the integer Unix milliseconds stored in the database.
func millis(t time.Time) int64 { return t.UnixMilli() }

// fromMillis converts stored Unix milliseconds back to a UTC time.
func fromMillis(ms int64) time.Time { return time.UnixMilli(ms).UTC() }
