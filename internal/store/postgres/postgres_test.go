package postgres

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/hookd/hookd/internal/store"
	"github.com/hookd/hookd/internal/store/postgres/pgtest"
	"github.com/hookd/hookd/internal/store/storetest"
	"github.com/hookd/hookd/signature"
)

// testOptions keeps each store's pool small, because many tests run at once against one
// server.
var testOptions = Options{MaxConns: 4}

func TestStore(t *testing.T) {
	pgtest.ServerURL(t) // skips the whole suite, not each subtest, without a server
	storetest.Run(t, func(t *testing.T) store.Store {
		s, err := Open(t.Context(), pgtest.NewDatabase(t), testOptions)
		if err != nil {
			t.Fatalf("Open: %v", err)
		}
		return s
	})
}

// openStore opens a store on the database at databaseURL and closes it when the test ends.
func openStore(t *testing.T, databaseURL string, opts Options) *Store {
	t.Helper()
	s, err := Open(t.Context(), databaseURL, opts)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return s
}

// openRaw opens a connection that bypasses the Store, as another program or an operator's
// psql would.
func openRaw(t *testing.T, databaseURL string) *pgx.Conn {
	t.Helper()
	conn, err := pgx.Connect(t.Context(), databaseURL)
	if err != nil {
		t.Fatalf("connect to the test database: %v", err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

func schemaVersions(t *testing.T, conn *pgx.Conn) []int {
	t.Helper()
	rows, err := conn.Query(t.Context(), "SELECT version FROM schema_migrations ORDER BY version")
	if err != nil {
		t.Fatalf("read schema_migrations: %v", err)
	}
	versions, err := pgx.CollectRows(rows, pgx.RowTo[int])
	if err != nil {
		t.Fatalf("read schema_migrations: %v", err)
	}
	return versions
}

// allVersions returns the versions that a fully migrated database records.
func allVersions() []int {
	var versions []int
	for i := range migrations {
		versions = append(versions, i+1)
	}
	return versions
}

func newConsumer(t *testing.T, clientID string) store.Consumer {
	t.Helper()
	secret, err := signature.NewSecret()
	if err != nil {
		t.Fatalf("NewSecret: %v", err)
	}
	return store.Consumer{
		ID:         uuid.NewString(),
		ClientID:   clientID,
		URL:        "https://hooks.example.com/events",
		EventTypes: []string{"DataSyncCompleted"},
		Secret:     secret,
	}
}

func newMessage(clientID string, createdAt time.Time) store.NewMessage {
	id := uuid.NewString()
	return store.NewMessage{Message: store.Message{
		ID:            id,
		ClientID:      clientID,
		EventType:     "DataSyncCompleted",
		GeneratedDate: createdAt,
		Body:          []byte(`{"id":"` + id + `"}`),
		CreatedAt:     createdAt,
	}}
}

func mustClient(t *testing.T, s store.Store, name string) store.Client {
	t.Helper()
	client, _, err := s.EnsureClient(t.Context(), name)
	if err != nil {
		t.Fatalf("EnsureClient(%q): %v", name, err)
	}
	return client
}

func mustCreateConsumer(t *testing.T, s store.Store, c store.Consumer) store.Consumer {
	t.Helper()
	created, err := s.CreateConsumer(t.Context(), c)
	if err != nil {
		t.Fatalf("CreateConsumer: %v", err)
	}
	return created
}

func TestOpenSettings(t *testing.T) {
	t.Parallel()
	databaseURL := pgtest.NewDatabase(t)
	tests := []struct {
		name        string
		query       string
		opts        Options
		maxConns    int32
		lockTimeout string
	}{
		{name: "defaults", opts: Options{}, maxConns: 0, lockTimeout: "5s"},
		{name: "options", opts: Options{MaxConns: 3, LockTimeout: 250 * time.Millisecond}, maxConns: 3, lockTimeout: "250ms"},
		{name: "url", query: "&pool_max_conns=2&lock_timeout=1500", maxConns: 2, lockTimeout: "1500ms"},
		{name: "options-over-url", query: "&pool_max_conns=2&lock_timeout=1500", opts: Options{MaxConns: 5, LockTimeout: time.Second}, maxConns: 5, lockTimeout: "1s"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := openStore(t, databaseURL+tc.query, tc.opts)
			if tc.maxConns > 0 && s.pool.Config().MaxConns != tc.maxConns {
				t.Errorf("MaxConns = %d, want %d", s.pool.Config().MaxConns, tc.maxConns)
			}
			var got string
			if err := s.pool.QueryRow(t.Context(), "SHOW lock_timeout").Scan(&got); err != nil {
				t.Fatalf("SHOW lock_timeout: %v", err)
			}
			if got != tc.lockTimeout {
				t.Errorf("lock_timeout = %q, want %q", got, tc.lockTimeout)
			}
		})
	}
}

func TestOpenInvalidURL(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		url  string
	}{
		{"PoolSize", "postgres://hookd:s3cret@127.0.0.1:1/hookd?pool_max_conns=many"},
		{"Scheme", "mysql://hookd:s3cret@127.0.0.1:1/hookd"},
		{"MinOverMax", "postgres://hookd:s3cret@127.0.0.1:1/hookd?pool_max_conns=2&pool_min_conns=3"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, err := Open(t.Context(), tc.url, Options{})
			if err == nil {
				s.Close()
				t.Fatalf("Open(%q): error = nil, want an error", tc.url)
			}
			if errors.Is(err, store.ErrUnavailable) {
				t.Errorf("Open error = %v, want an error that does not wrap ErrUnavailable", err)
			}
			if strings.Contains(err.Error(), "s3cret") {
				t.Errorf("Open error = %q, want the password masked", err)
			}
		})
	}
}

func TestMigrateIdempotent(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	databaseURL := pgtest.NewDatabase(t)

	first := openStore(t, databaseURL, testOptions)
	client := mustClient(t, first, "acme")
	consumer := mustCreateConsumer(t, first, newConsumer(t, client.ID))
	if err := first.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}

	s := openStore(t, databaseURL, testOptions)
	if got := schemaVersions(t, openRaw(t, databaseURL)); !slices.Equal(got, allVersions()) {
		t.Errorf("schema_migrations after reopen = %v, want %v", got, allVersions())
	}
	consumers, err := s.ListConsumers(ctx, client.ID)
	if err != nil {
		t.Fatalf("ListConsumers after reopen: %v", err)
	}
	if len(consumers) != 1 || consumers[0].ID != consumer.ID {
		t.Errorf("ListConsumers after reopen returned %d consumers, want only %s", len(consumers), consumer.ID)
	}
}

// TestMigrateRace opens one new database from several stores at once, as hookd processes
// that start together would. A second run of a migration would fail on the tables that
// exist, so every Open succeeding shows that each migration ran once.
func TestMigrateRace(t *testing.T) {
	t.Parallel()
	databaseURL := pgtest.NewDatabase(t)

	const stores = 5
	var (
		wg     sync.WaitGroup
		start  = make(chan struct{})
		opened = make([]*Store, stores)
		errs   = make([]error, stores)
	)
	for i := range stores {
		wg.Go(func() {
			<-start
			opened[i], errs[i] = Open(t.Context(), databaseURL, Options{MaxConns: 2})
		})
	}
	close(start)
	wg.Wait()

	for i, err := range errs {
		if err != nil {
			t.Errorf("Open %d: %v", i, err)
			continue
		}
		if err := opened[i].Close(); err != nil {
			t.Errorf("Close %d: %v", i, err)
		}
	}
	if got := schemaVersions(t, openRaw(t, databaseURL)); !slices.Equal(got, allVersions()) {
		t.Errorf("schema_migrations = %v, want %v", got, allVersions())
	}
}

func TestOpenNewerSchema(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	databaseURL := pgtest.NewDatabase(t)
	first := openStore(t, databaseURL, testOptions)
	first.Close()

	newer := len(migrations) + 1
	raw := openRaw(t, databaseURL)
	if _, err := raw.Exec(ctx, "INSERT INTO schema_migrations (version) VALUES ($1)", newer); err != nil {
		t.Fatalf("record version %d: %v", newer, err)
	}

	s, err := Open(ctx, databaseURL, testOptions)
	if err == nil {
		s.Close()
		t.Fatalf("Open of a database with schema version %d: error = nil, want an error", newer)
	}
	for _, want := range []string{fmt.Sprint(newer), "newer", "upgrade hookd"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("Open error = %q, want it to contain %q", err, want)
		}
	}
	if errors.Is(err, store.ErrUnavailable) {
		t.Errorf("Open error = %v, want an error that does not wrap ErrUnavailable", err)
	}
	if got := schemaVersions(t, raw); !slices.Equal(got, append(allVersions(), newer)) {
		t.Errorf("schema_migrations after the rejected Open = %v, want %v", got, append(allVersions(), newer))
	}
}

// TestTwoStoresConsumerLimit opens the database from two stores, as two hookd processes
// would, and creates consumers for one client through both at once.
func TestTwoStoresConsumerLimit(t *testing.T) {
	t.Parallel()
	databaseURL := pgtest.NewDatabase(t)
	first := openStore(t, databaseURL, testOptions)
	second := openStore(t, databaseURL, testOptions)
	client := mustClient(t, first, "acme")

	results := storetest.CreateConsumersConcurrently(t.Context(), []storetest.ConsumerCreator{
		{Store: first, ClientID: client.ID, Attempts: store.MaxConsumersPerClient},
		{Store: second, ClientID: client.ID, Attempts: store.MaxConsumersPerClient},
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

// TestTwoStoresCreateIdempotent repeats one create with the same Idempotency-Key through
// two stores at once: exactly one consumer may come of it.
func TestTwoStoresCreateIdempotent(t *testing.T) {
	t.Parallel()
	databaseURL := pgtest.NewDatabase(t)
	stores := []*Store{openStore(t, databaseURL, testOptions), openStore(t, databaseURL, testOptions)}
	client := mustClient(t, stores[0], "acme")

	const calls = 20
	var (
		wg    sync.WaitGroup
		start = make(chan struct{})
		ids   = make([]string, calls)
		errs  = make([]error, calls)
	)
	for i := range calls {
		c := newConsumer(t, client.ID)
		c.IdempotencyKey = "create-once"
		wg.Go(func() {
			<-start
			got, err := stores[i%2].CreateConsumer(t.Context(), c)
			ids[i], errs[i] = got.ID, err
		})
	}
	close(start)
	wg.Wait()

	for i, err := range errs {
		if err != nil {
			t.Errorf("CreateConsumer %d: %v", i, err)
		}
	}
	consumers, err := stores[1].ListConsumers(t.Context(), client.ID)
	if err != nil {
		t.Fatalf("ListConsumers: %v", err)
	}
	if len(consumers) != 1 {
		t.Fatalf("ListConsumers returned %d consumers, want 1", len(consumers))
	}
	for i, id := range ids {
		if errs[i] == nil && id != consumers[0].ID {
			t.Errorf("CreateConsumer %d returned consumer %s, want the only one created, %s", i, id, consumers[0].ID)
		}
	}
}

// TestTwoStoresPublishOnce publishes the same event ID, and another event under one
// Idempotency-Key, through two stores at once.
func TestTwoStoresPublishOnce(t *testing.T) {
	t.Parallel()
	databaseURL := pgtest.NewDatabase(t)
	stores := []*Store{openStore(t, databaseURL, testOptions), openStore(t, databaseURL, testOptions)}
	client := mustClient(t, stores[0], "acme")
	consumer := mustCreateConsumer(t, stores[0], newConsumer(t, client.ID))

	now := time.Now().UTC().Truncate(time.Millisecond)
	sameID := newMessage(client.ID, now)
	tests := []struct {
		name    string
		message func() store.NewMessage
	}{
		{"event-id", func() store.NewMessage {
			m := newMessage(client.ID, now)
			m.ID = sameID.ID
			return m
		}},
		{"idempotency-key", func() store.NewMessage {
			m := newMessage(client.ID, now)
			m.IdempotencyKey = "publish-once"
			return m
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			const calls = 20
			var (
				wg      sync.WaitGroup
				start   = make(chan struct{})
				results = make([]store.PublishResult, calls)
				errs    = make([]error, calls)
			)
			for i := range calls {
				wg.Go(func() {
					// Each call publishes one message of its own first, so that the batches
					// lock more than one key.
					msgs := []store.NewMessage{newMessage(client.ID, now), tc.message()}
					<-start
					res, err := stores[i%2].PublishMessages(t.Context(), msgs)
					if err == nil {
						results[i] = res[1]
					}
					errs[i] = err
				})
			}
			close(start)
			wg.Wait()

			var first []store.PublishResult
			for i, err := range errs {
				if err != nil {
					t.Errorf("PublishMessages %d: %v", i, err)
				} else if !results[i].Duplicate {
					first = append(first, results[i])
				}
			}
			if len(first) != 1 {
				t.Fatalf("%d of %d publishes stored the message, want 1", len(first), calls)
			}
			if first[0].Consumers != 1 {
				t.Errorf("the first publish queued %d deliveries, want 1", first[0].Consumers)
			}
			for i, res := range results {
				if errs[i] == nil && res.Message.ID != first[0].Message.ID {
					t.Errorf("publish %d returned message %s, want the stored %s", i, res.Message.ID, first[0].Message.ID)
				}
			}
			detail, err := stores[0].GetMessage(t.Context(), client.ID, first[0].Message.ID)
			if err != nil {
				t.Fatalf("GetMessage: %v", err)
			}
			if len(detail.Deliveries) != 1 || detail.Deliveries[0].ConsumerID != consumer.ID {
				t.Errorf("GetMessage shows %d deliveries, want 1 to consumer %s", len(detail.Deliveries), consumer.ID)
			}
		})
	}
}

// TestTwoStoresClaim claims a backlog through two stores at once, as the delivery engines
// of two hookd processes would, until nothing is left.
func TestTwoStoresClaim(t *testing.T) {
	t.Parallel()
	databaseURL := pgtest.NewDatabase(t)
	stores := []*Store{openStore(t, databaseURL, testOptions), openStore(t, databaseURL, testOptions)}
	client := mustClient(t, stores[0], "acme")
	base := time.Date(2025, 3, 14, 9, 0, 0, 0, time.UTC)

	const consumers, perConsumer = 4, 30
	for range consumers {
		mustCreateConsumer(t, stores[0], newConsumer(t, client.ID))
	}
	var msgs []store.NewMessage
	for i := range perConsumer {
		msgs = append(msgs, newMessage(client.ID, base.Add(time.Duration(i)*time.Millisecond)))
	}
	if _, err := stores[0].PublishMessages(t.Context(), msgs); err != nil {
		t.Fatalf("PublishMessages: %v", err)
	}

	const claimers, maxClaims, slots = 4, 200, 3
	var (
		mu      sync.Mutex
		claimed = map[int64]int{}
		errs    []error
		wg      sync.WaitGroup
	)
	req := store.ClaimRequest{Now: base.Add(time.Second), Limit: 7, DefaultSlots: slots, Lease: time.Hour}
	for i := range claimers {
		wg.Go(func() {
			for range maxClaims {
				jobs, err := stores[i%2].ClaimDeliveries(t.Context(), req)
				mu.Lock()
				if err != nil {
					errs = append(errs, err)
				}
				for consumer, n := range countByConsumer(jobs) {
					if n > slots {
						errs = append(errs, fmt.Errorf("a claim gave consumer %s %d jobs, more than DefaultSlots %d", consumer, n, slots))
					}
				}
				for _, job := range jobs {
					claimed[job.DeliveryID]++
				}
				mu.Unlock()
				if err != nil || len(jobs) == 0 {
					return
				}
			}
		})
	}
	wg.Wait()

	for _, err := range errs {
		t.Error(err)
	}
	if len(claimed) != consumers*perConsumer {
		t.Errorf("%d deliveries were claimed, want all %d", len(claimed), consumers*perConsumer)
	}
	for id, n := range claimed {
		if n != 1 {
			t.Errorf("delivery %d was claimed %d times, want once", id, n)
		}
	}
}

func countByConsumer(jobs []store.Job) map[string]int {
	counts := map[string]int{}
	for _, job := range jobs {
		counts[job.Consumer.ID]++
	}
	return counts
}

// TestRecordAttemptsText records texts that a PostgreSQL text column rejects as they are.
func TestRecordAttemptsText(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	s := openStore(t, pgtest.NewDatabase(t), testOptions)
	client := mustClient(t, s, "acme")
	mustCreateConsumer(t, s, newConsumer(t, client.ID))
	base := time.Date(2025, 3, 14, 9, 0, 0, 0, time.UTC)
	msg := newMessage(client.ID, base)
	if _, err := s.PublishMessages(ctx, []store.NewMessage{msg}); err != nil {
		t.Fatalf("PublishMessages: %v", err)
	}
	jobs, err := s.ClaimDeliveries(ctx, store.ClaimRequest{Now: base, Limit: 1, DefaultSlots: 1, Lease: time.Minute})
	if err != nil || len(jobs) != 1 {
		t.Fatalf("ClaimDeliveries = %d jobs, %v; want 1 job", len(jobs), err)
	}

	result := store.AttemptResult{
		Job: jobs[0], AttemptedAt: base.Add(time.Second), Duration: time.Millisecond, StatusCode: 200,
		Error: "bad \xff byte", ResponseBody: "nul\x00byte", Success: true,
	}
	if err := s.RecordAttempts(ctx, []store.AttemptResult{result}); err != nil {
		t.Fatalf("RecordAttempts: %v", err)
	}
	attempts, err := s.ListAttempts(ctx, client.ID, msg.ID)
	if err != nil {
		t.Fatalf("ListAttempts: %v", err)
	}
	if len(attempts) != 1 {
		t.Fatalf("ListAttempts returned %d attempts, want 1", len(attempts))
	}
	if want := "bad \uFFFD byte"; attempts[0].Error != want {
		t.Errorf("Error = %q, want %q", attempts[0].Error, want)
	}
	if want := "nul\uFFFDbyte"; attempts[0].ResponseBody != want {
		t.Errorf("ResponseBody = %q, want %q", attempts[0].ResponseBody, want)
	}
}

// TestNegativeLimit checks that a negative limit means no limit, as it does in SQLite,
// where PostgreSQL would reject a negative LIMIT.
func TestNegativeLimit(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	s := openStore(t, pgtest.NewDatabase(t), testOptions)
	client := mustClient(t, s, "acme")
	consumer := mustCreateConsumer(t, s, newConsumer(t, client.ID))
	base := time.Date(2025, 3, 14, 9, 0, 0, 0, time.UTC)
	msgs := []store.NewMessage{newMessage(client.ID, base), newMessage(client.ID, base), newMessage(client.ID, base)}
	if _, err := s.PublishMessages(ctx, msgs); err != nil {
		t.Fatalf("PublishMessages: %v", err)
	}

	listed, err := s.ListConsumerMessages(ctx, client.ID, store.MessageFilter{ConsumerID: consumer.ID, Limit: -1})
	if err != nil {
		t.Fatalf("ListConsumerMessages with Limit -1: %v", err)
	}
	if len(listed) != len(msgs) {
		t.Errorf("ListConsumerMessages with Limit -1 returned %d messages, want all %d", len(listed), len(msgs))
	}

	if err := s.DeleteConsumer(ctx, client.ID, consumer.ID); err != nil {
		t.Fatalf("DeleteConsumer: %v", err)
	}
	n, err := s.DeleteExpired(ctx, base.Add(time.Hour), -1)
	if err != nil {
		t.Fatalf("DeleteExpired with limit -1: %v", err)
	}
	if n != len(msgs) {
		t.Errorf("DeleteExpired with limit -1 returned %d, want all %d messages", n, len(msgs))
	}
}
