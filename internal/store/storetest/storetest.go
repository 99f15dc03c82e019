// Package storetest is the conformance suite for store.Store implementations. Each backend
// runs it from its own tests, so that every backend behaves the same behind the interface.
package storetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/hookd/hookd/internal/apikey"
	"github.com/hookd/hookd/internal/store"
)

// clockSlack is how far a time the store sets may lie outside the interval around the
// call that set it. It covers rounding to the precision of the backend and a database
// server whose clock differs slightly from the test's.
const clockSlack = time.Second

// baseTime is a creation time with millisecond precision, which every backend stores
// exactly.
var baseTime = time.Date(2025, 3, 14, 9, 26, 53, 589_000_000, time.UTC)

type storeTest struct {
	name string
	run  func(t *testing.T, s store.Store)
}

// Run runs the suite, one parallel subtest per behavior. open must return a new, empty
// store for each subtest and remove the resources behind it (folders, databases) with
// t.Cleanup. The subtests call open concurrently. Run closes every store that open
// returns, so open must not close it.
//
// Besides the contract of store.Store, the suite requires that CreateConsumer accepts a
// nil or empty EventTypes and that ListConsumers then returns an empty, non-nil slice.
func Run(t *testing.T, open func(t *testing.T) store.Store) {
	tests := []storeTest{
		{"EnsureClientCreatesOnce", testEnsureClientCreatesOnce},
		{"ClientByNameNotFound", testClientByNameNotFound},
		{"SetClientSuspended", testSetClientSuspended},
		{"SetClientSuspendedNotFound", testSetClientSuspendedNotFound},
		{"CredentialRoundTrip", testCredentialRoundTrip},
		{"CredentialNotFound", testCredentialNotFound},
		{"CreateKeyUnknownClient", testCreateKeyUnknownClient},
		{"RevokeKey", testRevokeKey},
		{"RevokeKeyNotFound", testRevokeKeyNotFound},
		{"ListKeysOrder", testListKeysOrder},
		{"InitDefaultClientEmptyStore", testInitDefaultClientEmptyStore},
		{"InitDefaultClientSecondCall", testInitDefaultClientSecondCall},
		{"InitDefaultClientOtherClient", testInitDefaultClientOtherClient},
		{"ConsumerRoundTrip", testConsumerRoundTrip},
		{"ConsumerEventTypesNotNil", testConsumerEventTypesNotNil},
		{"ListConsumersEmpty", testListConsumersEmpty},
		{"ConsumerTenantIsolation", testConsumerTenantIsolation},
		{"DeleteConsumerNotFound", testDeleteConsumerNotFound},
		{"ConsumerLimitSequential", testConsumerLimitSequential},
		{"ConsumerLimitConcurrent", testConsumerLimitConcurrent},
		{"CreateConsumerIdempotent", testCreateConsumerIdempotent},
	}
	tests = append(tests, messageTests...)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := open(t)
			t.Cleanup(func() {
				if err := s.Close(); err != nil {
					t.Errorf("Close: %v", err)
				}
			})
			tc.run(t, s)
		})
	}

	// These subtests close the store themselves, so they register no Close of their own.
	t.Run("ClosedStoreUnavailable", func(t *testing.T) {
		t.Parallel()
		testClosedStoreUnavailable(t, open(t))
	})
	t.Run("ClosedMessageStoreUnavailable", func(t *testing.T) {
		t.Parallel()
		testClosedMessageStoreUnavailable(t, open(t))
	})
}

func testEnsureClientCreatesOnce(t *testing.T, s store.Store) {
	ctx := t.Context()

	before := time.Now()
	first, created, err := s.EnsureClient(ctx, "acme")
	after := time.Now()
	if err != nil {
		t.Fatalf("first EnsureClient: %v", err)
	}
	if !created {
		t.Errorf("first EnsureClient: created = false, want true")
	}
	if first.ID == "" {
		t.Errorf("first EnsureClient: ID is empty")
	}
	if first.Name != "acme" {
		t.Errorf("first EnsureClient: Name = %q, want %q", first.Name, "acme")
	}
	if first.Suspended {
		t.Errorf("first EnsureClient: Suspended = true, want false")
	}
	checkTimeBetween(t, "first EnsureClient: CreatedAt", first.CreatedAt, before, after)

	second, created, err := s.EnsureClient(ctx, "acme")
	if err != nil {
		t.Fatalf("second EnsureClient: %v", err)
	}
	if created {
		t.Errorf("second EnsureClient: created = true, want false")
	}
	checkClient(t, "second EnsureClient", second, first)

	byName, err := s.ClientByName(ctx, "acme")
	if err != nil {
		t.Fatalf("ClientByName: %v", err)
	}
	checkClient(t, "ClientByName", byName, first)

	other, created, err := s.EnsureClient(ctx, "globex")
	if err != nil {
		t.Fatalf("EnsureClient of a second name: %v", err)
	}
	if !created {
		t.Errorf("EnsureClient of a second name: created = false, want true")
	}
	if other.ID == first.ID {
		t.Errorf("EnsureClient of a second name: ID = %q, the same as the first client's", other.ID)
	}
}

func testClientByNameNotFound(t *testing.T, s store.Store) {
	mustClient(t, s, "acme")

	_, err := s.ClientByName(t.Context(), "globex")
	checkErrorIs(t, "ClientByName of an unknown name", err, store.ErrNotFound)
}

func testSetClientSuspended(t *testing.T, s store.Store) {
	ctx := t.Context()
	client := mustClient(t, s, "acme")
	bystander := mustClient(t, s, "globex")

	// Each state is set twice, because setting the current state again must succeed too.
	for _, suspended := range []bool{true, true, false, false} {
		got, err := s.SetClientSuspended(ctx, "acme", suspended)
		if err != nil {
			t.Fatalf("SetClientSuspended(%v): %v", suspended, err)
		}
		want := client
		want.Suspended = suspended
		checkClient(t, "SetClientSuspended result", got, want)

		stored, err := s.ClientByName(ctx, "acme")
		if err != nil {
			t.Fatalf("ClientByName after SetClientSuspended(%v): %v", suspended, err)
		}
		checkClient(t, "ClientByName after SetClientSuspended", stored, want)

		other, err := s.ClientByName(ctx, "globex")
		if err != nil {
			t.Fatalf("ClientByName of the other client: %v", err)
		}
		checkClient(t, "other client after SetClientSuspended", other, bystander)
	}
}

func testSetClientSuspendedNotFound(t *testing.T, s store.Store) {
	ctx := t.Context()
	mustClient(t, s, "acme")

	_, err := s.SetClientSuspended(ctx, "globex", true)
	checkErrorIs(t, "SetClientSuspended of an unknown name", err, store.ErrNotFound)

	_, err = s.ClientByName(ctx, "globex")
	checkErrorIs(t, "ClientByName after SetClientSuspended of an unknown name", err, store.ErrNotFound)
}

func testCredentialRoundTrip(t *testing.T, s store.Store) {
	tests := []struct {
		name      string
		readOnly  bool
		suspended bool
		createdAt time.Time
	}{
		{name: "read-write", createdAt: baseTime},
		{name: "read-only", readOnly: true, createdAt: baseTime.Add(time.Second)},
		{name: "suspended-client", suspended: true, createdAt: baseTime.Add(2 * time.Second)},
		{name: "zero-created-at"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx := t.Context()
			client := mustClient(t, s, tc.name)
			if tc.suspended {
				var err error
				client, err = s.SetClientSuspended(ctx, tc.name, true)
				if err != nil {
					t.Fatalf("SetClientSuspended: %v", err)
				}
			}
			key := newKey(t, client.ID, tc.readOnly, tc.createdAt)

			before := time.Now()
			if err := s.CreateKey(ctx, key); err != nil {
				t.Fatalf("CreateKey: %v", err)
			}
			after := time.Now()

			cred, err := s.Credential(ctx, key.ID)
			if err != nil {
				t.Fatalf("Credential: %v", err)
			}
			if tc.createdAt.IsZero() {
				checkTimeBetween(t, "Credential key CreatedAt", cred.Key.CreatedAt, before, after)
				key.CreatedAt = cred.Key.CreatedAt
			}
			checkKey(t, "Credential key", cred.Key, key)
			checkClient(t, "Credential client", cred.Client, client)
		})
	}
}

func testCredentialNotFound(t *testing.T, s store.Store) {
	client := mustClient(t, s, "acme")
	mustCreateKey(t, s, newKey(t, client.ID, false, baseTime))

	_, err := s.Credential(t.Context(), newKey(t, client.ID, false, baseTime).ID)
	checkErrorIs(t, "Credential of an unknown key", err, store.ErrNotFound)
}

func testCreateKeyUnknownClient(t *testing.T, s store.Store) {
	ctx := t.Context()
	key := newKey(t, uuid.NewString(), false, baseTime)

	if err := s.CreateKey(ctx, key); err == nil {
		t.Fatalf("CreateKey for an unknown client: error = nil, want an error")
	}
	_, err := s.Credential(ctx, key.ID)
	checkErrorIs(t, "Credential after the rejected CreateKey", err, store.ErrNotFound)
}

func testRevokeKey(t *testing.T, s store.Store) {
	ctx := t.Context()
	client := mustClient(t, s, "acme")
	key := mustCreateKey(t, s, newKey(t, client.ID, true, baseTime))
	kept := mustCreateKey(t, s, newKey(t, client.ID, false, baseTime))

	before := time.Now()
	first, err := s.RevokeKey(ctx, key.ID)
	after := time.Now()
	if err != nil {
		t.Fatalf("first RevokeKey: %v", err)
	}
	if first.RevokedAt == nil {
		t.Fatalf("first RevokeKey: RevokedAt = nil, want a time")
	}
	checkTimeBetween(t, "first RevokeKey: RevokedAt", *first.RevokedAt, before, after)
	want := key
	want.RevokedAt = first.RevokedAt
	checkKey(t, "first RevokeKey", first, want)

	cred, err := s.Credential(ctx, key.ID)
	if err != nil {
		t.Fatalf("Credential of the revoked key: %v", err)
	}
	checkKey(t, "Credential of the revoked key", cred.Key, want)

	// A second revocation in the same millisecond could not show a changed time.
	waitPast(*first.RevokedAt)
	second, err := s.RevokeKey(ctx, key.ID)
	if err != nil {
		t.Fatalf("second RevokeKey: %v", err)
	}
	checkKey(t, "second RevokeKey", second, want)

	cred, err = s.Credential(ctx, key.ID)
	if err != nil {
		t.Fatalf("Credential after the second RevokeKey: %v", err)
	}
	checkKey(t, "Credential after the second RevokeKey", cred.Key, want)

	cred, err = s.Credential(ctx, kept.ID)
	if err != nil {
		t.Fatalf("Credential of the other key: %v", err)
	}
	checkKey(t, "Credential of the other key", cred.Key, kept)
}

func testRevokeKeyNotFound(t *testing.T, s store.Store) {
	client := mustClient(t, s, "acme")
	mustCreateKey(t, s, newKey(t, client.ID, false, baseTime))

	_, err := s.RevokeKey(t.Context(), newKey(t, client.ID, false, baseTime).ID)
	checkErrorIs(t, "RevokeKey of an unknown key", err, store.ErrNotFound)
}

func testListKeysOrder(t *testing.T, s store.Store) {
	ctx := t.Context()
	acme := mustClient(t, s, "acme")
	globex := mustClient(t, s, "globex")

	// The keys are inserted out of CreatedAt order, and ListKeys must sort them by CreatedAt.
	newest := mustCreateKey(t, s, newKey(t, globex.ID, false, baseTime.Add(2*time.Second)))
	oldest := mustCreateKey(t, s, newKey(t, acme.ID, true, baseTime))
	middle := mustCreateKey(t, s, newKey(t, acme.ID, false, baseTime.Add(time.Second)))

	revoked, err := s.RevokeKey(ctx, middle.ID)
	if err != nil {
		t.Fatalf("RevokeKey: %v", err)
	}

	want := []store.KeyInfo{
		{APIKey: oldest, ClientName: "acme"},
		{APIKey: revoked, ClientName: "acme"},
		{APIKey: newest, ClientName: "globex"},
	}
	got, err := s.ListKeys(ctx)
	if err != nil {
		t.Fatalf("ListKeys: %v", err)
	}
	if len(got) != len(want) {
		t.Fatalf("ListKeys returned %d keys, want %d", len(got), len(want))
	}
	for i := range want {
		checkKey(t, fmt.Sprintf("ListKeys[%d]", i), got[i].APIKey, want[i].APIKey)
		if got[i].ClientName != want[i].ClientName {
			t.Errorf("ListKeys[%d]: ClientName = %q, want %q", i, got[i].ClientName, want[i].ClientName)
		}
	}
}

func testInitDefaultClientEmptyStore(t *testing.T, s store.Store) {
	ctx := t.Context()
	key := newKey(t, "", true, time.Time{})

	before := time.Now()
	created, err := s.InitDefaultClient(ctx, key)
	after := time.Now()
	if err != nil {
		t.Fatalf("InitDefaultClient: %v", err)
	}
	if !created {
		t.Fatalf("InitDefaultClient on an empty store: created = false, want true")
	}

	client, err := s.ClientByName(ctx, store.DefaultClientName)
	if err != nil {
		t.Fatalf("ClientByName(%q): %v", store.DefaultClientName, err)
	}
	if client.Suspended {
		t.Errorf("default client: Suspended = true, want false")
	}
	checkTimeBetween(t, "default client CreatedAt", client.CreatedAt, before, after)

	cred, err := s.Credential(ctx, key.ID)
	if err != nil {
		t.Fatalf("Credential of the initial key: %v", err)
	}
	checkTimeBetween(t, "initial key CreatedAt", cred.Key.CreatedAt, before, after)
	want := key
	want.ClientID = client.ID
	want.CreatedAt = cred.Key.CreatedAt
	checkKey(t, "initial key", cred.Key, want)
	checkClient(t, "client of the initial key", cred.Client, client)
}

func testInitDefaultClientSecondCall(t *testing.T, s store.Store) {
	ctx := t.Context()
	first := newKey(t, "", false, time.Time{})
	if created, err := s.InitDefaultClient(ctx, first); err != nil || !created {
		t.Fatalf("first InitDefaultClient = %v, %v, want true, nil", created, err)
	}

	second := newKey(t, "", false, time.Time{})
	created, err := s.InitDefaultClient(ctx, second)
	if err != nil {
		t.Fatalf("second InitDefaultClient: %v", err)
	}
	if created {
		t.Errorf("second InitDefaultClient: created = true, want false")
	}

	_, err = s.Credential(ctx, second.ID)
	checkErrorIs(t, "Credential of the second key", err, store.ErrNotFound)
	keys, err := s.ListKeys(ctx)
	if err != nil {
		t.Fatalf("ListKeys: %v", err)
	}
	if len(keys) != 1 || keys[0].ID != first.ID {
		t.Errorf("ListKeys returned %s, want only the first key %s", keyIDs(keys), first.ID)
	}
}

func testInitDefaultClientOtherClient(t *testing.T, s store.Store) {
	ctx := t.Context()
	mustClient(t, s, "acme")
	key := newKey(t, "", false, time.Time{})

	created, err := s.InitDefaultClient(ctx, key)
	if err != nil {
		t.Fatalf("InitDefaultClient: %v", err)
	}
	if created {
		t.Errorf("InitDefaultClient on a store with a client: created = true, want false")
	}

	_, err = s.ClientByName(ctx, store.DefaultClientName)
	checkErrorIs(t, "ClientByName of the default client", err, store.ErrNotFound)
	_, err = s.Credential(ctx, key.ID)
	checkErrorIs(t, "Credential of the rejected key", err, store.ErrNotFound)
}

func testConsumerRoundTrip(t *testing.T, s store.Store) {
	ctx := t.Context()
	client := mustClient(t, s, "acme")

	// IDs in descending order, so that listing by ID instead of creation order fails.
	ids := []string{uuid.NewString(), uuid.NewString(), uuid.NewString()}
	sort.Sort(sort.Reverse(sort.StringSlice(ids)))

	inputs := []store.Consumer{
		{
			ID:         ids[0],
			ClientID:   client.ID,
			URL:        "https://hooks.example.com/all-companies",
			EventTypes: []string{"DataSyncCompleted"},
		},
		{
			ID:          ids[1],
			ClientID:    client.ID,
			URL:         "https://hooks.example.com/no-companies?token=a%20b",
			EventTypes:  []string{"DataSyncCompleted", "ReadsCompleted"},
			CompanyTags: []string{},
			Disabled:    true,
		},
		{
			ID:          ids[2],
			ClientID:    client.ID,
			URL:         "https://hooks.example.com/tagged",
			EventTypes:  []string{"ConnectionCreated", "DataSyncCompleted", "ReadsCompleted"},
			CompanyTags: []string{"region:eu", "tier:gold"},
		},
	}

	var created []store.Consumer
	for i, in := range inputs {
		before := time.Now()
		got, err := s.CreateConsumer(ctx, in)
		after := time.Now()
		if err != nil {
			t.Fatalf("CreateConsumer %d: %v", i, err)
		}
		checkTimeBetween(t, fmt.Sprintf("CreateConsumer %d: CreatedAt", i), got.CreatedAt, before, after)
		want := in
		want.CreatedAt = got.CreatedAt
		checkConsumer(t, fmt.Sprintf("CreateConsumer %d", i), got, want)
		created = append(created, got)
	}

	listed, err := s.ListConsumers(ctx, client.ID)
	if err != nil {
		t.Fatalf("ListConsumers: %v", err)
	}
	if len(listed) != len(created) {
		t.Fatalf("ListConsumers returned %d consumers, want %d", len(listed), len(created))
	}
	for i := range created {
		checkConsumer(t, fmt.Sprintf("ListConsumers[%d]", i), listed[i], created[i])
	}
	if listed[0].CompanyTags != nil {
		t.Errorf("ListConsumers[0]: CompanyTags = %#v, want nil", listed[0].CompanyTags)
	}
	if listed[1].CompanyTags == nil {
		t.Errorf("ListConsumers[1]: CompanyTags = nil, want an empty non-nil slice")
	}
}

func testConsumerEventTypesNotNil(t *testing.T, s store.Store) {
	tests := []struct {
		name       string
		eventTypes []string
	}{
		{"nil", nil},
		{"empty", []string{}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx := t.Context()
			client := mustClient(t, s, tc.name)
			c := newConsumer(client.ID)
			c.EventTypes = tc.eventTypes
			mustCreateConsumer(t, s, c)

			listed, err := s.ListConsumers(ctx, client.ID)
			if err != nil {
				t.Fatalf("ListConsumers: %v", err)
			}
			if len(listed) != 1 {
				t.Fatalf("ListConsumers returned %d consumers, want 1", len(listed))
			}
			if listed[0].EventTypes == nil {
				t.Errorf("ListConsumers: EventTypes = nil, want an empty non-nil slice")
			}
			if len(listed[0].EventTypes) != 0 {
				t.Errorf("ListConsumers: EventTypes = %q, want empty", listed[0].EventTypes)
			}
		})
	}
}

func testListConsumersEmpty(t *testing.T, s store.Store) {
	busy := mustClient(t, s, "acme")
	idle := mustClient(t, s, "globex")
	mustCreateConsumer(t, s, newConsumer(busy.ID))

	got, err := s.ListConsumers(t.Context(), idle.ID)
	if err != nil {
		t.Fatalf("ListConsumers: %v", err)
	}
	if got == nil {
		t.Errorf("ListConsumers of a client without consumers = nil, want an empty non-nil slice")
	}
	if len(got) != 0 {
		t.Errorf("ListConsumers of a client without consumers returned %s, want none", consumerIDs(got))
	}
}

func testConsumerTenantIsolation(t *testing.T, s store.Store) {
	ctx := t.Context()
	acme := mustClient(t, s, "acme")
	globex := mustClient(t, s, "globex")
	acmeConsumer := mustCreateConsumer(t, s, newConsumer(acme.ID))
	globexConsumer := mustCreateConsumer(t, s, newConsumer(globex.ID))

	checkConsumerIDs(t, s, acme.ID, acmeConsumer.ID)
	checkConsumerIDs(t, s, globex.ID, globexConsumer.ID)

	err := s.DeleteConsumer(ctx, globex.ID, acmeConsumer.ID)
	checkErrorIs(t, "DeleteConsumer of another client's consumer", err, store.ErrNotFound)
	checkConsumerIDs(t, s, acme.ID, acmeConsumer.ID)
	checkConsumerIDs(t, s, globex.ID, globexConsumer.ID)

	if err := s.DeleteConsumer(ctx, acme.ID, acmeConsumer.ID); err != nil {
		t.Fatalf("DeleteConsumer of an own consumer: %v", err)
	}
	checkConsumerIDs(t, s, acme.ID)
	checkConsumerIDs(t, s, globex.ID, globexConsumer.ID)

	err = s.DeleteConsumer(ctx, acme.ID, acmeConsumer.ID)
	checkErrorIs(t, "DeleteConsumer of a deleted consumer", err, store.ErrNotFound)
}

func testDeleteConsumerNotFound(t *testing.T, s store.Store) {
	client := mustClient(t, s, "acme")
	kept := mustCreateConsumer(t, s, newConsumer(client.ID))

	err := s.DeleteConsumer(t.Context(), client.ID, uuid.NewString())
	checkErrorIs(t, "DeleteConsumer of an unknown ID", err, store.ErrNotFound)
	checkConsumerIDs(t, s, client.ID, kept.ID)
}

func testConsumerLimitSequential(t *testing.T, s store.Store) {
	ctx := t.Context()
	client := mustClient(t, s, "acme")

	var ids []string
	for range store.MaxConsumersPerClient {
		ids = append(ids, mustCreateConsumer(t, s, newConsumer(client.ID)).ID)
	}

	_, err := s.CreateConsumer(ctx, newConsumer(client.ID))
	checkErrorIs(t, "CreateConsumer past the limit", err, store.ErrConsumerLimit)
	checkConsumerIDs(t, s, client.ID, ids...)

	if err := s.DeleteConsumer(ctx, client.ID, ids[10]); err != nil {
		t.Fatalf("DeleteConsumer: %v", err)
	}
	ids = slices.Delete(ids, 10, 11)
	ids = append(ids, mustCreateConsumer(t, s, newConsumer(client.ID)).ID)
	checkConsumerIDs(t, s, client.ID, ids...)

	_, err = s.CreateConsumer(ctx, newConsumer(client.ID))
	checkErrorIs(t, "CreateConsumer past the limit after a delete", err, store.ErrConsumerLimit)
}

func testCreateConsumerIdempotent(t *testing.T, s store.Store) {
	ctx := t.Context()
	acme := mustClient(t, s, "acme")
	globex := mustClient(t, s, "globex")

	first := newConsumer(acme.ID)
	first.IdempotencyKey = "create-1"
	created := mustCreateConsumer(t, s, first)

	// A retry carries a new ID but the same key: it gets the first consumer back.
	retry := newConsumer(acme.ID)
	retry.IdempotencyKey = "create-1"
	got, err := s.CreateConsumer(ctx, retry)
	if err != nil {
		t.Fatalf("CreateConsumer with a repeated key: %v", err)
	}
	if got.ID != created.ID {
		t.Errorf("repeated key created %s, want the first consumer %s", got.ID, created.ID)
	}
	checkConsumerIDs(t, s, acme.ID, created.ID)

	// Another client's key space is separate, and an old key is forgotten.
	other := newConsumer(globex.ID)
	other.IdempotencyKey = "create-1"
	if got := mustCreateConsumer(t, s, other); got.ID != other.ID {
		t.Errorf("another client's create with the same key returned %s, want %s", got.ID, other.ID)
	}
	late := newConsumer(acme.ID)
	late.IdempotencyKey = "create-1"
	late.CreatedAt = created.CreatedAt.Add(store.IdempotencyWindow + time.Minute)
	if got := mustCreateConsumer(t, s, late); got.ID != late.ID {
		t.Errorf("create with a key older than the window returned %s, want a new consumer %s", got.ID, late.ID)
	}
	checkConsumerIDs(t, s, acme.ID, created.ID, late.ID)
}

func testConsumerLimitConcurrent(t *testing.T, s store.Store) {
	clients := []store.Client{mustClient(t, s, "acme"), mustClient(t, s, "globex")}
	attempts := 2 * store.MaxConsumersPerClient

	var creators []ConsumerCreator
	for _, client := range clients {
		creators = append(creators, ConsumerCreator{Store: s, ClientID: client.ID, Attempts: attempts})
	}
	results := CreateConsumersConcurrently(t.Context(), creators)

	for i, client := range clients {
		results[i].Check(t, client.Name, store.MaxConsumersPerClient)

		// Goroutines record their results in no particular order, so compare sorted IDs.
		listed, err := s.ListConsumers(t.Context(), client.ID)
		if err != nil {
			t.Fatalf("ListConsumers: %v", err)
		}
		got := consumerIDs(listed)
		slices.Sort(got)
		want := slices.Sorted(slices.Values(results[i].Created))
		if !slices.Equal(got, want) {
			t.Errorf("%s: ListConsumers returned %d consumers %q, want the %d created %q", client.Name, len(got), got, len(want), want)
		}
	}
}

func testClosedStoreUnavailable(t *testing.T, s store.Store) {
	ctx := t.Context()
	client := mustClient(t, s, "acme")
	key := mustCreateKey(t, s, newKey(t, client.ID, false, baseTime))
	consumer := mustCreateConsumer(t, s, newConsumer(client.ID))

	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}

	calls := []struct {
		name string
		call func() error
	}{
		{"Ping", func() error { return s.Ping(ctx) }},
		{"EnsureClient", func() error { _, _, err := s.EnsureClient(ctx, "acme"); return err }},
		{"ClientByName", func() error { _, err := s.ClientByName(ctx, "acme"); return err }},
		{"SetClientSuspended", func() error { _, err := s.SetClientSuspended(ctx, "acme", true); return err }},
		{"CreateKey", func() error { return s.CreateKey(ctx, newKey(t, client.ID, false, baseTime)) }},
		{"InitDefaultClient", func() error { _, err := s.InitDefaultClient(ctx, newKey(t, "", false, baseTime)); return err }},
		{"Credential", func() error { _, err := s.Credential(ctx, key.ID); return err }},
		{"ListKeys", func() error { _, err := s.ListKeys(ctx); return err }},
		{"RevokeKey", func() error { _, err := s.RevokeKey(ctx, key.ID); return err }},
		{"CreateConsumer", func() error { _, err := s.CreateConsumer(ctx, newConsumer(client.ID)); return err }},
		{"ListConsumers", func() error { _, err := s.ListConsumers(ctx, client.ID); return err }},
		{"DeleteConsumer", func() error { return s.DeleteConsumer(ctx, client.ID, consumer.ID) }},
	}
	for _, c := range calls {
		checkErrorIs(t, c.name+" after Close", c.call(), store.ErrUnavailable)
	}
}

// ConsumerCreator describes one batch of CreateConsumer calls for
// CreateConsumersConcurrently: Attempts calls on Store for ClientID.
type ConsumerCreator struct {
	Store    store.Store
	ClientID string
	Attempts int
}

// CreateResult counts the outcomes of one ConsumerCreator's calls.
type CreateResult struct {
	// Created contains the IDs of the consumers that were created.
	Created []string

	// Limited is the number of calls that failed with store.ErrConsumerLimit.
	Limited int

	// Errors contains the other failures.
	Errors []error
}

// Check reports a test error unless exactly want calls succeeded, the others failed with
// store.ErrConsumerLimit and no call failed otherwise. label names the batch.
func (r CreateResult) Check(t *testing.T, label string, want int) {
	t.Helper()
	attempts := len(r.Created) + r.Limited + len(r.Errors)
	for _, err := range r.Errors {
		t.Errorf("%s: CreateConsumer: %v, want nil or ErrConsumerLimit", label, err)
	}
	if len(r.Created) != want {
		t.Errorf("%s: %d of %d CreateConsumer calls succeeded, want %d", label, len(r.Created), attempts, want)
	}
	if r.Limited != attempts-want {
		t.Errorf("%s: %d of %d CreateConsumer calls returned ErrConsumerLimit, want %d",
			label, r.Limited, attempts, attempts-want)
	}
}

// CreateConsumersConcurrently runs the CreateConsumer calls of all creators at once, one
// goroutine per call, and returns one result per creator, in the order of creators.
// Backends use it to check that the consumer limit holds across several stores that open
// the same database.
func CreateConsumersConcurrently(ctx context.Context, creators []ConsumerCreator) []CreateResult {
	var (
		mu      sync.Mutex
		results = make([]CreateResult, len(creators))
		start   = make(chan struct{})
		wg      sync.WaitGroup
	)
	for i, creator := range creators {
		for range creator.Attempts {
			wg.Go(func() {
				c := newConsumer(creator.ClientID)
				<-start
				_, err := creator.Store.CreateConsumer(ctx, c)

				mu.Lock()
				defer mu.Unlock()
				switch {
				case err == nil:
					results[i].Created = append(results[i].Created, c.ID)
				case errors.Is(err, store.ErrConsumerLimit):
					results[i].Limited++
				default:
					results[i].Errors = append(results[i].Errors, err)
				}
			})
		}
	}
	close(start)
	wg.Wait()
	return results
}

func newKey(t *testing.T, clientID string, readOnly bool, createdAt time.Time) store.APIKey {
	t.Helper()
	k, err := apikey.New()
	if err != nil {
		t.Fatalf("generate API key: %v", err)
	}
	return store.APIKey{ID: k.ID, ClientID: clientID, Hash: apikey.Hash(k.Raw), ReadOnly: readOnly, CreatedAt: createdAt}
}

func newConsumer(clientID string) store.Consumer {
	return store.Consumer{
		ID:         uuid.NewString(),
		ClientID:   clientID,
		URL:        "https://hooks.example.com/events",
		EventTypes: []string{"DataSyncCompleted"},
	}
}

func mustClient(t *testing.T, s store.Store, name string) store.Client {
	t.Helper()
	client, _, err := s.EnsureClient(t.Context(), name)
	if err != nil {
		t.Fatalf("EnsureClient(%q): %v", name, err)
	}
	return client
}

func mustCreateKey(t *testing.T, s store.Store, key store.APIKey) store.APIKey {
	t.Helper()
	if err := s.CreateKey(t.Context(), key); err != nil {
		t.Fatalf("CreateKey: %v", err)
	}
	return key
}

func mustCreateConsumer(t *testing.T, s store.Store, c store.Consumer) store.Consumer {
	t.Helper()
	created, err := s.CreateConsumer(t.Context(), c)
	if err != nil {
		t.Fatalf("CreateConsumer: %v", err)
	}
	return created
}

// waitPast returns once the clock is at least one millisecond past ts.
func waitPast(ts time.Time) {
	for !time.Now().After(ts.Add(time.Millisecond)) {
		time.Sleep(time.Millisecond)
	}
}

func checkErrorIs(t *testing.T, label string, err, target error) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Errorf("%s: error = %v, want an error wrapping %q", label, err, target)
	}
}

func checkTimeBetween(t *testing.T, label string, got, before, after time.Time) {
	t.Helper()
	if got.Before(before.Add(-clockSlack)) || got.After(after.Add(clockSlack)) {
		t.Errorf("%s = %v, want between %v and %v", label, got, before.UTC(), after.UTC())
	}
}

func checkClient(t *testing.T, label string, got, want store.Client) {
	t.Helper()
	if got.ID != want.ID {
		t.Errorf("%s: ID = %q, want %q", label, got.ID, want.ID)
	}
	if got.Name != want.Name {
		t.Errorf("%s: Name = %q, want %q", label, got.Name, want.Name)
	}
	if got.Suspended != want.Suspended {
		t.Errorf("%s: Suspended = %v, want %v", label, got.Suspended, want.Suspended)
	}
	if !got.CreatedAt.Equal(want.CreatedAt) {
		t.Errorf("%s: CreatedAt = %v, want %v", label, got.CreatedAt, want.CreatedAt)
	}
}

func checkKey(t *testing.T, label string, got, want store.APIKey) {
	t.Helper()
	if got.ID != want.ID {
		t.Errorf("%s: ID = %q, want %q", label, got.ID, want.ID)
	}
	if got.ClientID != want.ClientID {
		t.Errorf("%s: ClientID = %q, want %q", label, got.ClientID, want.ClientID)
	}
	if !bytes.Equal(got.Hash, want.Hash) {
		t.Errorf("%s: Hash = %x, want %x", label, got.Hash, want.Hash)
	}
	if got.ReadOnly != want.ReadOnly {
		t.Errorf("%s: ReadOnly = %v, want %v", label, got.ReadOnly, want.ReadOnly)
	}
	if !got.CreatedAt.Equal(want.CreatedAt) {
		t.Errorf("%s: CreatedAt = %v, want %v", label, got.CreatedAt, want.CreatedAt)
	}
	switch {
	case got.RevokedAt == nil && want.RevokedAt == nil:
	case got.RevokedAt == nil:
		t.Errorf("%s: RevokedAt = nil, want %v", label, *want.RevokedAt)
	case want.RevokedAt == nil:
		t.Errorf("%s: RevokedAt = %v, want nil", label, *got.RevokedAt)
	case !got.RevokedAt.Equal(*want.RevokedAt):
		t.Errorf("%s: RevokedAt = %v, want %v", label, *got.RevokedAt, *want.RevokedAt)
	}
}

func checkConsumer(t *testing.T, label string, got, want store.Consumer) {
	t.Helper()
	if got.ID != want.ID {
		t.Errorf("%s: ID = %q, want %q", label, got.ID, want.ID)
	}
	if got.ClientID != want.ClientID {
		t.Errorf("%s: ClientID = %q, want %q", label, got.ClientID, want.ClientID)
	}
	if got.URL != want.URL {
		t.Errorf("%s: URL = %q, want %q", label, got.URL, want.URL)
	}
	if !slices.Equal(got.EventTypes, want.EventTypes) {
		t.Errorf("%s: EventTypes = %q, want %q", label, got.EventTypes, want.EventTypes)
	}
	if !slices.Equal(got.CompanyTags, want.CompanyTags) || (got.CompanyTags == nil) != (want.CompanyTags == nil) {
		t.Errorf("%s: CompanyTags = %#v, want %#v", label, got.CompanyTags, want.CompanyTags)
	}
	if got.Disabled != want.Disabled {
		t.Errorf("%s: Disabled = %v, want %v", label, got.Disabled, want.Disabled)
	}
	if !got.CreatedAt.Equal(want.CreatedAt) {
		t.Errorf("%s: CreatedAt = %v, want %v", label, got.CreatedAt, want.CreatedAt)
	}
}

// checkConsumerIDs checks that the client's consumers are exactly want, in that order.
func checkConsumerIDs(t *testing.T, s store.Store, clientID string, want ...string) {
	t.Helper()
	listed, err := s.ListConsumers(t.Context(), clientID)
	if err != nil {
		t.Fatalf("ListConsumers: %v", err)
	}
	got := consumerIDs(listed)
	if !slices.Equal(got, want) {
		t.Errorf("ListConsumers of client %s returned %d consumers %q, want %d %q", clientID, len(got), got, len(want), want)
	}
}

func consumerIDs(consumers []store.Consumer) []string {
	ids := []string{}
	for _, c := range consumers {
		ids = append(ids, c.ID)
	}
	return ids
}

func keyIDs(keys []store.KeyInfo) []string {
	ids := []string{}
	for _, k := range keys {
		ids = append(ids, k.ID)
	}
	return ids
}
