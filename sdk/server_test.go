package sdk_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/hookd/hookd/internal/api"
	"github.com/hookd/hookd/internal/apikey"
	"github.com/hookd/hookd/internal/store"
	"github.com/hookd/hookd/internal/store/sqlite"
	"github.com/hookd/hookd/sdk"
	"github.com/hookd/hookd/signature"
)

// hookdServer is a hookd API server on a loopback port, over a SQLite store in dir.
type hookdServer struct {
	URL   string
	Store *sqlite.Store

	dir    string
	server *api.Server
	done   chan error
}

// startHookd starts a hookd API server on a new SQLite store in dir.
func startHookd(dir string, cfg api.Config) (*hookdServer, error) {
	st, err := sqlite.Open(context.Background(), dir, sqlite.Options{})
	if err != nil {
		return nil, fmt.Errorf("open store: %w", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		st.Close()
		return nil, fmt.Errorf("listen: %w", err)
	}

	cfg.Store = st
	s := &hookdServer{
		URL:    "http://" + ln.Addr().String(),
		Store:  st,
		dir:    dir,
		server: api.New(cfg),
		done:   make(chan error, 1),
	}
	go func() { s.done <- s.server.Serve(ln) }()
	return s, nil
}

// Close shuts the server down and closes its store.
func (s *hookdServer) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err := s.server.Shutdown(ctx)
	err = errors.Join(err, <-s.done)
	s.Store.Close()
	return err
}

// createKey creates an API key for the named client, creating the client when needed,
// and returns the raw key.
func (s *hookdServer) createKey(client string, readOnly bool) (string, error) {
	ctx := context.Background()
	c, _, err := s.Store.EnsureClient(ctx, client)
	if err != nil {
		return "", fmt.Errorf("ensure client %s: %w", client, err)
	}
	k, err := apikey.New()
	if err != nil {
		return "", err
	}
	key := store.APIKey{ID: k.ID, ClientID: c.ID, Hash: apikey.Hash(k.Raw), ReadOnly: readOnly}
	if err := s.Store.CreateKey(ctx, key); err != nil {
		return "", fmt.Errorf("create key: %w", err)
	}
	return k.Raw, nil
}

// seedConsumer stores a consumer with a chosen id for the named client, which the API
// cannot do because it assigns ids itself.
func (s *hookdServer) seedConsumer(client, id, url string, eventTypes ...string) error {
	ctx := context.Background()
	c, _, err := s.Store.EnsureClient(ctx, client)
	if err != nil {
		return fmt.Errorf("ensure client %s: %w", client, err)
	}
	secret, err := signature.NewSecret()
	if err != nil {
		return err
	}
	_, err = s.Store.CreateConsumer(ctx, store.Consumer{ID: id, ClientID: c.ID, URL: url, EventTypes: eventTypes, Secret: secret})
	return err
}

// newHookd starts a hookd API server for the test, stopped when the test ends.
func newHookd(t *testing.T, cfg api.Config) *hookdServer {
	t.Helper()
	s, err := startHookd(t.TempDir(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("stop hookd: %v", err)
		}
	})
	return s
}

// key creates an API key for the named client and returns the raw key.
func (s *hookdServer) key(t *testing.T, client string, readOnly bool) string {
	t.Helper()
	raw, err := s.createKey(client, readOnly)
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

// client returns an SDK client of the server that authenticates with rawKey and sends
// each request once, unless opts set other retry rules.
func (s *hookdServer) client(rawKey string, opts ...sdk.Option) *sdk.Client {
	base := []sdk.Option{
		sdk.WithServerURL(s.URL),
		sdk.WithAPIKey(rawKey),
		sdk.WithRetryConfig(sdk.RetryConfig{Strategy: sdk.StrategyNone}),
	}
	return sdk.New(append(base, opts...)...)
}

// openRaw opens the server's database file directly, to change rows behind hookd's back.
func (s *hookdServer) openRaw(t *testing.T) *sql.DB {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+filepath.Join(s.dir, sqlite.FileName)+"?_busy_timeout=5000")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// exampleServer is a hookd server for the runnable examples, which have no testing.T.
type exampleServer struct {
	*hookdServer

	// AuthHeader is the Authorization header value of an API key of the client "example".
	AuthHeader string
}

// exampleConsumerID is the id of the consumer that startExampleServer stores, the id of
// Codat's Python example for delete_consumer.
const exampleConsumerID = "8a210b68-6988-11ed-a1eb-0242ac120002"

// startExampleServer starts a hookd server in a temporary folder with one API key and one
// consumer, exampleConsumerID. It panics on failure, because examples cannot fail a test.
func startExampleServer() *exampleServer {
	dir, err := os.MkdirTemp("", "hookd-sdk-example-")
	if err != nil {
		panic(err)
	}
	s, err := startHookd(dir, api.Config{})
	if err != nil {
		panic(err)
	}
	raw, err := s.createKey("example", false)
	if err != nil {
		panic(err)
	}
	if err := s.seedConsumer("example", exampleConsumerID, "https://example.com/webhook-consumer", "DataSyncCompleted"); err != nil {
		panic(err)
	}
	return &exampleServer{hookdServer: s, AuthHeader: apikey.Header(raw)}
}

// Close stops the server and removes its folder.
func (s *exampleServer) Close() {
	if err := s.hookdServer.Close(); err != nil {
		panic(err)
	}
	os.RemoveAll(s.dir)
}

// serve starts an HTTP server with handler on a loopback port for the test and returns
// its URL.
func serve(t *testing.T, handler http.Handler) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: handler}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return "http://" + ln.Addr().String()
}
