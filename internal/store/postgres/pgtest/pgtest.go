// Package pgtest gives each test its own empty database on the PostgreSQL server that
// the environment variable HOOKD_TEST_DATABASE_URL names, so that parallel tests cannot
// see each other's rows. scripts/postgres starts a throwaway server for it.
package pgtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/url"
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

const (
	// URLVariable names the environment variable with the URL of a database on the test
	// server, for example postgres://postgres@127.0.0.1:55432/postgres?sslmode=disable.
	// Its user must be allowed to create databases.
	URLVariable = "HOOKD_TEST_DATABASE_URL"

	// RequireVariable names the environment variable that, set to 1, makes tests fail
	// instead of skip when URLVariable is not set.
	RequireVariable = "HOOKD_REQUIRE_POSTGRES"
)

// cleanupTimeout bounds dropping a test database, which runs after the test's context
// is canceled.
const cleanupTimeout = 30 * time.Second

// ServerURL returns the value of HOOKD_TEST_DATABASE_URL. Without it, the test is skipped,
// or fails when HOOKD_REQUIRE_POSTGRES is 1.
func ServerURL(t testing.TB) string {
	t.Helper()
	serverURL := os.Getenv(URLVariable)
	if serverURL != "" {
		return serverURL
	}
	const hint = "set " + URLVariable + " to a postgres:// URL of a server where the user may create databases, " +
		"for example the one that scripts/postgres start DIR prints"
	if os.Getenv(RequireVariable) == "1" {
		t.Fatalf("%s is 1 but %s is not set: %s", RequireVariable, URLVariable, hint)
	}
	t.Skip(hint)
	return ""
}

// NewDatabase creates an empty database named hookd_test_ followed by 16 random hex
// digits on the test server and returns its URL. The database is dropped when the test
// and its subtests end, after the cleanup functions registered later, such as closing a
// store on it, have run.
func NewDatabase(t testing.TB) string {
	t.Helper()
	serverURL := ServerURL(t)
	u, err := url.Parse(serverURL)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		t.Fatalf("%s must be a postgres:// URL, for example postgres://postgres@127.0.0.1:55432/postgres?sslmode=disable", URLVariable)
	}

	var suffix [8]byte
	rand.Read(suffix[:])
	name := "hookd_test_" + hex.EncodeToString(suffix[:])

	// The name contains only lowercase letters, digits and underscores, so it needs no
	// quoting, and CREATE DATABASE takes no parameters.
	if err := exec(t.Context(), serverURL, "CREATE DATABASE "+name); err != nil {
		t.Fatalf("create test database %s: %v", name, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), cleanupTimeout)
		defer cancel()
		// FORCE ends the connections that a failed test left open.
		if err := exec(ctx, serverURL, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); err != nil {
			t.Errorf("drop test database %s: %v", name, err)
		}
	})

	u.Path, u.RawPath = "/"+name, ""
	return u.String()
}

// exec runs one statement on a connection of its own.
func exec(ctx context.Context, serverURL, statement string) error {
	conn, err := pgx.Connect(ctx, serverURL)
	if err != nil {
		return err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	_, err = conn.Exec(ctx, statement)
	return err
}
