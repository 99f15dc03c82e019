// Package postgres implements store.Store on a PostgreSQL database through
// github.com/jackc/pgx/v5 and its connection pool, pgxpool.
//
// Several hookd processes may share one database. Every write runs in a READ COMMITTED
// transaction that takes the row locks or advisory locks it needs, in a fixed order, so
// that the consumer limit, idempotency keys and delivery leases hold across processes:
//
//   - CreateConsumer locks the client row (FOR NO KEY UPDATE) before it checks the
//     Idempotency-Key and counts the client's consumers, which serializes the creates of
//     one client and leaves other writes to the client alone.
//   - PublishMessages takes a transaction-level advisory lock on each (client, event id)
//     and each (client, Idempotency-Key) of the batch, in ascending key order, before it
//     looks for earlier messages. A plain unique index cannot hold the keys, because a key
//     may be used again once it is older than store.IdempotencyWindow.
//   - ClaimDeliveries locks due deliveries with FOR UPDATE SKIP LOCKED, so concurrent
//     claims take disjoint deliveries without waiting for each other.
//   - RecordAttempts locks the consumers and then the deliveries of its results, each in
//     ID order, the same order in which DeleteConsumer locks them.
//
// A write that PostgreSQL aborts with a deadlock or a serialization failure runs again. A
// lock wait longer than Options.LockTimeout fails with store.ErrUnavailable.
//
// Times are stored as timestamptz values truncated to whole milliseconds, the precision of
// the SQLite backend, so both backends return the same times.
package postgres

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/puddle/v2"

	"github.com/hookd/hookd/internal/store"
)

// DefaultLockTimeout is how long a statement waits for a row lock or advisory lock that
// another transaction holds before it fails with store.ErrUnavailable. It is the
// counterpart of the SQLite backend's busy timeout.
const DefaultLockTimeout = 5 * time.Second

// maxTxAttempts is how many times a write transaction runs when PostgreSQL aborts it with
// a deadlock or a serialization failure.
const maxTxAttempts = 3

// Options configures Open. The zero value is valid. Pool settings given in the database
// URL (pool_max_conns, pool_min_conns, pool_max_conn_lifetime, pool_max_conn_idle_time)
// apply where the matching option is zero.
type Options struct {
	// MaxConns is the maximum number of connections of the pool. Zero means the URL's
	// pool_max_conns, or without it pgxpool's default: 4 or the number of CPUs, whichever
	// is greater (pgx v5.13.0).
	MaxConns int32

	// MinConns is the number of idle connections the pool keeps open. Zero means the URL's
	// pool_min_conns, or without it none.
	MinConns int32

	// MaxConnLifetime is how long a connection is used before the pool replaces it. Zero
	// means the URL's pool_max_conn_lifetime, or without it one hour.
	MaxConnLifetime time.Duration

	// MaxConnIdleTime is how long an idle connection stays open. Zero means the URL's
	// pool_max_conn_idle_time, or without it 30 minutes.
	MaxConnIdleTime time.Duration

	// LockTimeout overrides DefaultLockTimeout when positive. A lock_timeout parameter in
	// the URL applies when LockTimeout is zero.
	LockTimeout time.Duration
}

// Store is a store.Store on one PostgreSQL database.
type Store struct {
	pool *pgxpool.Pool
}

var _ store.Store = (*Store)(nil)

// DefaultConnectTimeout bounds the opening of one connection when the URL sets no
// connect_timeout.
const DefaultConnectTimeout = 5 * time.Second

// Open connects to the database at databaseURL, a postgres:// URL or a key=value
// connection string as libpq accepts it, and applies pending schema migrations. The
// database must exist. The tables are created in the first schema of the connection's
// search_path. A server that cannot be reached makes Open fail with an error wrapping
// store.ErrUnavailable.
func Open(ctx context.Context, databaseURL string, opts Options) (*Store, error) {
	config, err := pgxpool.ParseConfig(databaseURL)
	if err != nil {
		// The error text masks the password of the URL.
		return nil, fmt.Errorf("invalid database URL: %w", err)
	}
	if opts.MaxConns > 0 {
		config.MaxConns = opts.MaxConns
	}
	if opts.MinConns > 0 {
		config.MinConns = opts.MinConns
	}
	if config.MinConns > config.MaxConns {
		return nil, fmt.Errorf("invalid pool size: %d minimum connections is more than the maximum of %d", config.MinConns, config.MaxConns)
	}
	if opts.MaxConnLifetime > 0 {
		config.MaxConnLifetime = opts.MaxConnLifetime
	}
	if opts.MaxConnIdleTime > 0 {
		config.MaxConnIdleTime = opts.MaxConnIdleTime
	}

	// Without connect_timeout in the URL, a host that drops packets would hold every new
	// connection for the operating system's TCP timeout, often more than a minute.
	if config.ConnConfig.ConnectTimeout == 0 {
		config.ConnConfig.ConnectTimeout = DefaultConnectTimeout
	}

	params := config.ConnConfig.RuntimeParams
	if _, ok := params["lock_timeout"]; !ok || opts.LockTimeout > 0 {
		timeout := opts.LockTimeout
		if timeout <= 0 {
			timeout = DefaultLockTimeout
		}
		// lock_timeout takes whole milliseconds, and at least 1, because 0 turns it off.
		params["lock_timeout"] = strconv.FormatInt(max(1, timeout.Milliseconds()), 10)
	}

	pool, err := pgxpool.NewWithConfig(ctx, config)
	if err != nil {
		return nil, wrap("open connection pool", err)
	}
	s := &Store{pool: pool}
	if err := s.migrate(ctx); err != nil {
		pool.Close()
		return nil, err
	}
	return s, nil
}

// Ping implements store.Store.
func (s *Store) Ping(ctx context.Context) error {
	return wrap("ping", s.pool.Ping(ctx))
}

// Close implements store.Store. It waits for the connections in use to be released.
func (s *Store) Close() error {
	s.pool.Close()
	return nil
}

// write runs fn in one transaction and commits it. A transaction that PostgreSQL aborts
// with a deadlock or a serialization failure runs again, up to maxTxAttempts times, so fn
// must set its results from scratch on each run.
func (s *Store) write(ctx context.Context, op string, fn func(tx pgx.Tx) error) error {
	for attempt := 1; ; attempt++ {
		err := pgx.BeginFunc(ctx, s.pool, fn)
		if err == nil {
			return nil
		}
		if attempt < maxTxAttempts && retryable(err) && ctx.Err() == nil {
			continue
		}
		return wrap(op, err)
	}
}

// SQLSTATE codes this package tests for. The full list is in the appendix "PostgreSQL
// Error Codes" of the PostgreSQL documentation.
const (
	codeSerializationFailure = "40001"
	codeDeadlockDetected     = "40P01"
	codeLockNotAvailable     = "55P03"
	codeQueryCanceled        = "57014"
	codeAdminShutdown        = "57P01"
	codeCrashShutdown        = "57P02"
	codeCannotConnectNow     = "57P03"
	codeReadOnlyTransaction  = "25006"
)

func retryable(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && (pgErr.Code == codeSerializationFailure || pgErr.Code == codeDeadlockDetected)
}

// wrap adds the operation to err, and marks the failures that mean "try again later" as
// store.ErrUnavailable. Sentinel errors of the store package pass through with the
// operation prefixed.
func wrap(op string, err error) error {
	if err == nil {
		return nil
	}
	if unavailable(err) {
		return fmt.Errorf("%s: %w: %w", op, store.ErrUnavailable, err)
	}
	return fmt.Errorf("%s: %w", op, err)
}

// unavailable reports whether err means that the database cannot serve the request now.
// That is the case when the pool is closed or got no connection before the deadline, or
// the connection failed. It is also the case when the server is shutting down, out of
// resources or read-only (a standby), or when a statement waited too long for a lock.
func unavailable(err error) bool {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		switch class := pgErr.Code[:min(2, len(pgErr.Code))]; {
		case class == "08", // connection exception
			class == "53", // insufficient resources: disk full, out of memory, too many connections
			class == "58": // system error: I/O error
			return true
		}
		switch pgErr.Code {
		case codeAdminShutdown, codeCrashShutdown, codeCannotConnectNow,
			codeLockNotAvailable, codeQueryCanceled, codeReadOnlyTransaction,
			codeSerializationFailure, codeDeadlockDetected:
			return true
		}
		return false
	}

	var connectErr *pgconn.ConnectError
	var netErr net.Error
	switch {
	case errors.As(err, &connectErr),
		errors.As(err, &netErr),
		errors.Is(err, pgconn.ErrConnClosed),
		errors.Is(err, io.EOF),
		errors.Is(err, io.ErrUnexpectedEOF),
		errors.Is(err, syscall.ECONNREFUSED),
		errors.Is(err, syscall.ECONNRESET),
		errors.Is(err, syscall.EPIPE),
		errors.Is(err, context.DeadlineExceeded),
		errors.Is(err, puddle.ErrClosedPool): // pgxpool returns it unchanged after Close
		return true
	}
	return false
}
