// Package store defines hookd's persistent data model and the Store interface that every
// storage backend implements. The HTTP API and the command-line tools depend only on this
// package; the backends live in the sqlite subpackage (and, later, others).
package store

import (
	"context"
	"errors"
	"time"

	"github.com/hookd/hookd/signature"
)

// MaxConsumersPerClient is the number of webhook consumers one client may have at a time.
// Codat's Platform API documents the same limit.
const MaxConsumersPerClient = 50

// DefaultClientName is the client that hookd serve creates on its first start with an
// empty store.
const DefaultClientName = "default"

var (
	// ErrNotFound is returned when the requested client, key or consumer does not exist,
	// or belongs to another client.
	ErrNotFound = errors.New("not found")

	// ErrConsumerLimit is returned by CreateConsumer when the client already has
	// MaxConsumersPerClient consumers.
	ErrConsumerLimit = errors.New("consumer limit reached")

	// ErrUnavailable wraps failures that mean the store cannot serve requests right now:
	// the database is locked by another writer for longer than the busy timeout, the disk
	// is full or failing, or the store was closed. Callers may retry later.
	ErrUnavailable = errors.New("store unavailable")
)

// Client is a tenant of hookd. Every consumer and API key belongs to exactly one client.
type Client struct {
	ID        string
	Name      string
	Suspended bool
	CreatedAt time.Time
}

// APIKey is the stored form of an API key. The raw key is never stored: Hash is its
// SHA-256 digest.
type APIKey struct {
	ID        string
	ClientID  string
	Hash      []byte
	ReadOnly  bool
	CreatedAt time.Time

	// RevokedAt is nil while the key is valid.
	RevokedAt *time.Time
}

// KeyInfo is an API key listed with the name of its client, for operators.
type KeyInfo struct {
	APIKey
	ClientName string
}

// Credential is the pair of key and client that authenticating a request needs.
type Credential struct {
	Key    APIKey
	Client Client
}

// Consumer is a webhook consumer: an HTTP endpoint that receives the events it subscribes to.
type Consumer struct {
	ID       string
	ClientID string
	URL      string

	// EventTypes is never empty and holds no duplicates.
	EventTypes []string

	// CompanyTags is nil when the consumer receives events of every company. Each tag has
	// the form key:value.
	CompanyTags []string

	Disabled bool

	// DisabledReason is why hookd disabled the consumer by itself: 410 Gone, or failing
	// for too long. It is empty when the consumer is enabled or a client disabled it.
	DisabledReason string

	// Secret signs the messages sent to the consumer. During a rotation, PreviousSecret
	// signs them too, until PreviousSecretExpiresAt.
	Secret                  signature.Secret
	PreviousSecret          signature.Secret
	PreviousSecretExpiresAt *time.Time

	// FailingSince is the time of the first failed attempt since the last success; nil
	// when the last attempt succeeded or none was made.
	FailingSince *time.Time

	CreatedAt time.Time
	UpdatedAt time.Time

	// IdempotencyKey, when not empty, is the Idempotency-Key of the request that created
	// the consumer. CreateConsumer returns the existing consumer for a repeated key.
	IdempotencyKey string
}

// Store is the storage boundary of hookd. Implementations must be safe for concurrent use
// by many goroutines and by several processes that open the same database.
//
// Methods return ErrNotFound, ErrConsumerLimit or an error wrapping ErrUnavailable where
// their comments say so, and other errors for unexpected failures.
type Store interface {
	// Ping checks that the store can serve reads.
	Ping(ctx context.Context) error

	// Close releases the store's resources. Calls made after Close fail with ErrUnavailable.
	Close() error

	// EnsureClient returns the client with the given name, creating it when it does not
	// exist. created reports whether it was created by this call.
	EnsureClient(ctx context.Context, name string) (client Client, created bool, err error)

	// ClientByName returns the client with the given name, or ErrNotFound.
	ClientByName(ctx context.Context, name string) (Client, error)

	// SetClientSuspended suspends or resumes the named client, or returns ErrNotFound.
	SetClientSuspended(ctx context.Context, name string, suspended bool) (Client, error)

	// CreateKey stores a new API key. The key's client must exist.
	CreateKey(ctx context.Context, key APIKey) error

	// InitDefaultClient creates DefaultClientName with the given key, in one transaction,
	// only when the store holds no client at all. It reports whether it did so.
	InitDefaultClient(ctx context.Context, key APIKey) (bool, error)

	// Credential returns the key with the given ID and its client, or ErrNotFound. It
	// returns revoked keys too: the caller decides what revocation means.
	Credential(ctx context.Context, keyID string) (Credential, error)

	// ListKeys returns every key with its client name, oldest first.
	ListKeys(ctx context.Context) ([]KeyInfo, error)

	// RevokeKey marks the key as revoked, or returns ErrNotFound. Revoking a revoked key
	// changes nothing.
	RevokeKey(ctx context.Context, keyID string) (APIKey, error)

	// CreateConsumer stores a new consumer for c.ClientID, or returns ErrConsumerLimit when
	// that client already has MaxConsumersPerClient consumers. The check and the insert are
	// atomic, also across processes. c.ID must be set by the caller. When c.IdempotencyKey
	// is set and the client created a consumer with the same key within
	// IdempotencyWindow before c.CreatedAt, it returns that consumer instead, without
	// checking the limit.
	CreateConsumer(ctx context.Context, c Consumer) (Consumer, error)

	// ListConsumers returns the client's consumers in creation order.
	ListConsumers(ctx context.Context, clientID string) ([]Consumer, error)

	// DeleteConsumer deletes the client's consumer with its pending deliveries, or
	// returns ErrNotFound when no consumer with that ID belongs to the client.
	DeleteConsumer(ctx context.Context, clientID, consumerID string) error

	// GetConsumer returns the client's consumer, or ErrNotFound.
	GetConsumer(ctx context.Context, clientID, consumerID string) (Consumer, error)

	// UpdateConsumer applies u to the client's consumer and returns the result, or
	// ErrNotFound. Enabling a consumer clears DisabledReason and FailingSince.
	UpdateConsumer(ctx context.Context, clientID, consumerID string, u ConsumerUpdate) (Consumer, error)

	// RotateSecret makes secret the consumer's signing secret and keeps the current one as
	// PreviousSecret until now+overlap, or returns ErrNotFound.
	RotateSecret(ctx context.Context, clientID, consumerID string, secret signature.Secret, now time.Time, overlap time.Duration) (Consumer, error)

	MessageStore
}
