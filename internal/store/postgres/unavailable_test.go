package postgres

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgproto3"
	"github.com/jackc/puddle/v2"

	"github.com/hookd/hookd/internal/store"
	"github.com/hookd/hookd/internal/store/postgres/pgtest"
)

func TestUnavailableErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		err  error
		want bool
	}{
		{"ConnectionFailure", &pgconn.PgError{Code: "08006"}, true},
		{"AdminShutdown", &pgconn.PgError{Code: "57P01"}, true},
		{"CrashShutdown", &pgconn.PgError{Code: "57P02"}, true},
		{"StartingUp", &pgconn.PgError{Code: "57P03"}, true},
		{"TooManyConnections", &pgconn.PgError{Code: "53300"}, true},
		{"DiskFull", &pgconn.PgError{Code: "53100"}, true},
		{"IOError", &pgconn.PgError{Code: "58030"}, true},
		{"LockTimeout", &pgconn.PgError{Code: "55P03"}, true},
		{"StatementTimeout", &pgconn.PgError{Code: "57014"}, true},
		{"ReadOnlyStandby", &pgconn.PgError{Code: "25006"}, true},
		{"Deadlock", &pgconn.PgError{Code: "40P01"}, true},
		{"UniqueViolation", &pgconn.PgError{Code: "23505"}, false},
		{"ForeignKeyViolation", &pgconn.PgError{Code: "23503"}, false},
		{"InvalidPassword", &pgconn.PgError{Code: "28P01"}, false},
		{"UndefinedTable", &pgconn.PgError{Code: "42P01"}, false},
		{"ClosedPool", puddle.ErrClosedPool, true},
		{"DeadlineWrapped", fmt.Errorf("acquire: %w", context.DeadlineExceeded), true},
		{"Canceled", context.Canceled, false},
		{"ConnectionReset", &net.OpError{Op: "read", Net: "tcp", Err: errors.New("connection reset by peer")}, true},
		{"UnexpectedEOF", fmt.Errorf("receive message: %w", io.ErrUnexpectedEOF), true},
		{"ConnClosed", fmt.Errorf("begin: %w", pgconn.ErrConnClosed), true},
		{"NotFound", store.ErrNotFound, false},
		{"Other", errors.New("decode secret of consumer c1: invalid"), false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := wrap("op", tc.err)
			if got := errors.Is(err, store.ErrUnavailable); got != tc.want {
				t.Errorf("wrap(%v) wraps ErrUnavailable = %v, want %v", tc.err, got, tc.want)
			}
			if !errors.Is(err, tc.err) {
				t.Errorf("wrap(%v) = %v, which does not wrap the original error", tc.err, err)
			}
		})
	}
}

// freeAddress returns a 127.0.0.1 address that nothing listens on.
func freeAddress(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

func TestOpenClosedPort(t *testing.T) {
	t.Parallel()
	start := time.Now()
	s, err := Open(t.Context(), "postgres://postgres@"+freeAddress(t)+"/hookd?sslmode=disable", Options{})
	if err == nil {
		s.Close()
		t.Fatalf("Open on a closed port: error = nil, want an error")
	}
	if !errors.Is(err, store.ErrUnavailable) {
		t.Errorf("Open on a closed port: error = %v, want an error wrapping ErrUnavailable", err)
	}
	if elapsed := time.Since(start); elapsed > 5*time.Second {
		t.Errorf("Open on a closed port took %v, want a quick failure", elapsed)
	}
}

// serveStartupError accepts connections on 127.0.0.1 and replies to each startup message
// with a FATAL error of the given SQLSTATE, as a server that rejects connections does.
func serveStartupError(t *testing.T, code string) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer conn.Close()
				conn.SetDeadline(time.Now().Add(10 * time.Second))
				backend := pgproto3.NewBackend(conn, conn)
				if _, err := backend.ReceiveStartupMessage(); err != nil {
					return
				}
				backend.Send(&pgproto3.ErrorResponse{Severity: "FATAL", Code: code, Message: "refused by the test server"})
				backend.Flush()
			}()
		}
	}()
	return "postgres://postgres@" + ln.Addr().String() + "/hookd?sslmode=disable"
}

func TestOpenServerRefuses(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name        string
		code        string
		unavailable bool
	}{
		{"StartingUp", "57P03", true},
		{"ShuttingDown", "57P01", true},
		{"TooManyConnections", "53300", true},
		{"InvalidPassword", "28P01", false},
		{"UnknownDatabase", "3D000", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, err := Open(t.Context(), serveStartupError(t, tc.code), Options{})
			if err == nil {
				s.Close()
				t.Fatalf("Open: error = nil, want an error")
			}
			if got := errors.Is(err, store.ErrUnavailable); got != tc.unavailable {
				t.Errorf("Open error = %v; wraps ErrUnavailable = %v, want %v", err, got, tc.unavailable)
			}
			var pgErr *pgconn.PgError
			if !errors.As(err, &pgErr) || pgErr.Code != tc.code {
				t.Errorf("Open error = %v, want the server's error with SQLSTATE %s", err, tc.code)
			}
		})
	}
}

// proxy forwards TCP connections from a 127.0.0.1 port to the test server, and can cut
// them all, as a network failure or a server restart would.
type proxy struct {
	t      *testing.T
	target string
	addr   string

	mu    sync.Mutex
	ln    net.Listener
	conns []net.Conn
}

func startProxy(t *testing.T, target string) *proxy {
	t.Helper()
	p := &proxy{t: t, target: target}
	p.listen("127.0.0.1:0")
	p.addr = p.ln.Addr().String()
	t.Cleanup(p.cut)
	return p
}

func (p *proxy) listen(addr string) {
	p.t.Helper()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		p.t.Fatalf("proxy: listen on %s: %v", addr, err)
	}
	p.mu.Lock()
	p.ln = ln
	p.mu.Unlock()
	go p.serve(ln)
}

func (p *proxy) serve(ln net.Listener) {
	for {
		client, err := ln.Accept()
		if err != nil {
			return
		}
		server, err := net.Dial("tcp", p.target)
		if err != nil {
			client.Close()
			continue
		}
		p.mu.Lock()
		p.conns = append(p.conns, client, server)
		p.mu.Unlock()
		go func() { io.Copy(server, client); server.Close() }()
		go func() { io.Copy(client, server); client.Close() }()
	}
}

// cut closes the listener and every forwarded connection.
func (p *proxy) cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.ln.Close()
	for _, c := range p.conns {
		c.Close()
	}
	p.conns = nil
}

// restore listens again on the same address.
func (p *proxy) restore() { p.listen(p.addr) }

// TestConnectionLost cuts the connections of an open store, checks that calls fail with
// ErrUnavailable, and that the store works again once the server can be reached.
func TestConnectionLost(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	u, err := url.Parse(pgtest.NewDatabase(t))
	if err != nil {
		t.Fatalf("parse the test database URL: %v", err)
	}
	p := startProxy(t, u.Host)
	u.Host = p.addr
	s := openStore(t, u.String(), testOptions)
	client := mustClient(t, s, "acme")
	consumer := mustCreateConsumer(t, s, newConsumer(t, client.ID))

	p.cut()
	base := time.Date(2025, 3, 14, 9, 0, 0, 0, time.UTC)
	calls := []struct {
		name string
		call func() error
	}{
		{"Ping", func() error { return s.Ping(ctx) }},
		{"ClientByName", func() error { _, err := s.ClientByName(ctx, "acme"); return err }},
		{"CreateConsumer", func() error { _, err := s.CreateConsumer(ctx, newConsumer(t, client.ID)); return err }},
		{"PublishMessages", func() error {
			_, err := s.PublishMessages(ctx, []store.NewMessage{newMessage(client.ID, base)})
			return err
		}},
		{"ClaimDeliveries", func() error {
			_, err := s.ClaimDeliveries(ctx, store.ClaimRequest{Now: base, Limit: 1, DefaultSlots: 1, Lease: time.Minute})
			return err
		}},
		{"GetConsumer", func() error { _, err := s.GetConsumer(ctx, client.ID, consumer.ID); return err }},
	}
	for _, c := range calls {
		err := c.call()
		if !errors.Is(err, store.ErrUnavailable) {
			t.Errorf("%s with the connections cut: error = %v, want an error wrapping ErrUnavailable", c.name, err)
		}
	}

	p.restore()
	deadline := time.Now().Add(10 * time.Second)
	for s.Ping(ctx) != nil {
		if time.Now().After(deadline) {
			t.Fatalf("Ping still fails 10s after the connections were restored: %v", s.Ping(ctx))
		}
		time.Sleep(10 * time.Millisecond)
	}
	got, err := s.GetConsumer(ctx, client.ID, consumer.ID)
	if err != nil {
		t.Fatalf("GetConsumer after the connections were restored: %v", err)
	}
	if got.ID != consumer.ID {
		t.Errorf("GetConsumer after the connections were restored returned %s, want %s", got.ID, consumer.ID)
	}
}

// TestLockTimeout holds row locks on a separate connection, as another process in a long
// transaction would.
func TestLockTimeout(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	databaseURL := pgtest.NewDatabase(t)
	s := openStore(t, databaseURL, Options{MaxConns: 4, LockTimeout: 100 * time.Millisecond})
	client := mustClient(t, s, "acme")
	consumer := mustCreateConsumer(t, s, newConsumer(t, client.ID))

	tx, err := openRaw(t, databaseURL).Begin(ctx)
	if err != nil {
		t.Fatalf("begin: %v", err)
	}
	if _, err := tx.Exec(ctx, "SELECT FROM clients WHERE id = $1 FOR UPDATE", client.ID); err != nil {
		t.Fatalf("lock the client: %v", err)
	}
	if _, err := tx.Exec(ctx, "SELECT FROM consumers WHERE id = $1 FOR UPDATE", consumer.ID); err != nil {
		t.Fatalf("lock the consumer: %v", err)
	}

	url := "https://hooks.example.com/moved"
	writes := []struct {
		name  string
		write func() error
	}{
		{"CreateConsumer", func() error { _, err := s.CreateConsumer(ctx, newConsumer(t, client.ID)); return err }},
		{"UpdateConsumer", func() error {
			_, err := s.UpdateConsumer(ctx, client.ID, consumer.ID, store.ConsumerUpdate{URL: &url})
			return err
		}},
		{"DeleteConsumer", func() error { return s.DeleteConsumer(ctx, client.ID, consumer.ID) }},
	}
	for _, w := range writes {
		start := time.Now()
		err := w.write()
		elapsed := time.Since(start)
		if !errors.Is(err, store.ErrUnavailable) {
			t.Errorf("%s while locked: error = %v, want an error wrapping ErrUnavailable", w.name, err)
		}
		// DefaultLockTimeout is 5s, so a shorter wait shows that Options.LockTimeout applies.
		if elapsed > 2*time.Second {
			t.Errorf("%s while locked took %v, want about the 100ms lock timeout", w.name, elapsed)
		}
	}

	// Reads do not wait for row locks.
	if _, err := s.GetConsumer(ctx, client.ID, consumer.ID); err != nil {
		t.Errorf("GetConsumer while locked: %v", err)
	}

	if err := tx.Rollback(ctx); err != nil {
		t.Fatalf("rollback: %v", err)
	}
	if _, err := s.CreateConsumer(ctx, newConsumer(t, client.ID)); err != nil {
		t.Errorf("CreateConsumer after the locks are released: %v", err)
	}
	got, err := s.GetConsumer(ctx, client.ID, consumer.ID)
	if err != nil {
		t.Fatalf("GetConsumer after the locks are released: %v", err)
	}
	if got.URL == url {
		t.Errorf("consumer URL = %q after the failed UpdateConsumer, want it unchanged", got.URL)
	}
}
