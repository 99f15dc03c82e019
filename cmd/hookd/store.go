package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strconv"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/hookd/hookd/internal/store"
	"github.com/hookd/hookd/internal/store/postgres"
	"github.com/hookd/hookd/internal/store/sqlite"
)

// defaultDataDir is the folder of the embedded database when neither --data nor HOOKD_DATA
// is set.
const defaultDataDir = "./hookd-data"

// Environment variables of the store flags.
const (
	dataEnv     = "HOOKD_DATA"
	databaseEnv = "HOOKD_DATABASE_URL"
)

// Connection pool sizes on PostgreSQL. hookd serve uses at most five connections outside
// API requests (the publish and record committers, the dispatcher, the retention cleaner
// and a metrics scrape), so its default leaves 15 for requests in flight. Operator
// commands make one call at a time.
const (
	defaultServeMaxConns   = 20
	defaultCommandMaxConns = 2
)

// storeFlags are the flags that choose the store of a command: the embedded SQLite
// database in --data, or the PostgreSQL database at --database.
type storeFlags struct {
	dataDir     string
	databaseURL string
	flags       *pflag.FlagSet
}

// addStoreFlags adds --data and --database to cmd.
func addStoreFlags(cmd *cobra.Command, f *storeFlags) {
	f.flags = cmd.Flags()
	f.flags.StringVar(&f.dataDir, "data", envDefault(dataEnv, defaultDataDir),
		"folder of the embedded SQLite database (env "+dataEnv+")")
	// The default stays empty, so that --help never prints a URL with its password.
	f.flags.StringVar(&f.databaseURL, "database", "",
		"URL of a PostgreSQL database, postgres://USER:PASSWORD@HOST:PORT/DATABASE, to use in place of the SQLite database in --data (env "+databaseEnv+")")
}

// postgresURL returns the PostgreSQL URL from --database or HOOKD_DATABASE_URL, or "" for
// the SQLite store. Setting both a PostgreSQL URL and a data folder is an error, because
// the command would otherwise ignore one of them.
func (f *storeFlags) postgresURL() (string, error) {
	databaseURL := f.databaseURL
	if databaseURL == "" {
		databaseURL = os.Getenv(databaseEnv)
	}
	if databaseURL == "" {
		return "", nil
	}
	if f.flags.Changed("data") || os.Getenv(dataEnv) != "" {
		return "", fmt.Errorf("both --data (or %s) and --database (or %s) are set: give only --database to use PostgreSQL, or only --data to use the embedded SQLite store",
			dataEnv, databaseEnv)
	}
	return databaseURL, nil
}

// openedStore is an open store with a description of where its data is.
type openedStore struct {
	store.Store

	// backend is "sqlite" or "postgres".
	backend string

	// location is the SQLite file, or the PostgreSQL server, user and database without the
	// password.
	location string
}

// openExistingStore opens the store of an operator command that only makes sense on an
// existing database, so that a mistyped --data is reported instead of creating a new,
// empty database there. On PostgreSQL the database must exist, and Open creates hookd's
// tables in it when they are missing.
func openExistingStore(ctx context.Context, f *storeFlags) (*openedStore, error) {
	databaseURL, err := f.postgresURL()
	if err != nil {
		return nil, err
	}
	if databaseURL == "" {
		path := filepath.Join(f.dataDir, sqlite.FileName)
		if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("no hookd database at %s: check --data (or %s), or start hookd serve there first", path, dataEnv)
		}
	}
	return openStore(ctx, f)
}

// openStore opens the store of an operator command, creating the SQLite database when
// needed. It works while servers run on the same store: SQLite's locks serialize the
// processes' writes, and PostgreSQL's transactions isolate them.
func openStore(ctx context.Context, f *storeFlags) (*openedStore, error) {
	databaseURL, err := f.postgresURL()
	if err != nil {
		return nil, err
	}
	if databaseURL != "" {
		return openPostgres(ctx, databaseURL, defaultCommandMaxConns)
	}
	return openSQLite(ctx, f.dataDir, sqlite.Options{MaxReaders: 1})
}

// openServeStore opens the store of hookd serve. maxConns is --database-max-conns, where 0
// means the URL's pool_max_conns, or defaultServeMaxConns without it.
func openServeStore(ctx context.Context, f *storeFlags, maxConns int) (*openedStore, error) {
	databaseURL, err := f.postgresURL()
	if err != nil {
		return nil, err
	}
	if databaseURL == "" {
		if maxConns != 0 {
			return nil, errors.New("--database-max-conns applies only to PostgreSQL: remove it, or give --database")
		}
		return openSQLite(ctx, f.dataDir, sqlite.Options{})
	}

	if maxConns == 0 && !hasParameter(databaseURL, "pool_max_conns") {
		maxConns = defaultServeMaxConns
	}
	return openPostgres(ctx, databaseURL, int32(maxConns))
}

func openSQLite(ctx context.Context, dir string, opts sqlite.Options) (*openedStore, error) {
	st, err := sqlite.Open(ctx, dir, opts)
	if err != nil {
		return nil, fmt.Errorf("open store in %s: %w", dir, err)
	}
	return &openedStore{Store: st, backend: "sqlite", location: st.Path()}, nil
}

// openPostgres opens the PostgreSQL store with a pool of at most maxConns connections, or
// as the URL sets when maxConns is 0. No message contains the URL itself: Open's errors
// mask the password, and the location leaves it out.
func openPostgres(ctx context.Context, databaseURL string, maxConns int32) (*openedStore, error) {
	location := describePostgres(databaseURL)
	st, err := postgres.Open(ctx, databaseURL, postgres.Options{MaxConns: maxConns})
	if err != nil {
		if location == "" {
			return nil, fmt.Errorf("open PostgreSQL store: %w", err)
		}
		return nil, fmt.Errorf("open PostgreSQL store at %s: %w", location, err)
	}
	return &openedStore{Store: st, backend: "postgres", location: location}, nil
}

// describePostgres returns postgres://USER@HOST:PORT/DATABASE for a connection string in
// URL or key=value form, without the password and the other parameters, or "" when the
// string does not parse.
func describePostgres(databaseURL string) string {
	config, err := pgconn.ParseConfig(databaseURL)
	if err != nil {
		return ""
	}
	host := net.JoinHostPort(config.Host, strconv.Itoa(int(config.Port)))
	return "postgres://" + config.User + "@" + host + "/" + config.Database
}

// hasParameter reports whether a PostgreSQL connection string sets the run-time parameter
// name, such as pool_max_conns. pgconn keeps the parameters it does not know in
// RuntimeParams, where pgxpool looks for its own.
func hasParameter(databaseURL, name string) bool {
	config, err := pgconn.ParseConfig(databaseURL)
	if err != nil {
		return false
	}
	_, ok := config.RuntimeParams[name]
	return ok
}
