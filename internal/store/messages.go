package store

import (
	"context"
	"strings"
	"time"
)

// IdempotencyWindow is how long the Idempotency-Key of a publish or of a consumer create
// is remembered.
const IdempotencyWindow = 24 * time.Hour

// Message is an event a client published, with the body that hookd delivers for it.
type Message struct {
	ID            string
	ClientID      string
	EventType     string
	GeneratedDate time.Time

	// Body is the JSON envelope sent to consumers, which contains the payload:
	// {"id", "eventType", "generatedDate", "payload"}. The store keeps it as it is.
	Body      []byte
	CreatedAt time.Time
}

// NewMessage is a message to publish. Tags are the company tags of the event
// (payload.referenceCompany.tags), which consumers with companyTags filter on.
type NewMessage struct {
	Message
	Tags map[string]string

	// IdempotencyKey, when not empty, makes a repeated publish with the same key within
	// IdempotencyWindow return the first message.
	IdempotencyKey string
}

// PublishResult is the outcome of publishing one message.
type PublishResult struct {
	Message Message

	// Duplicate is true when the message had been published before, under the same event
	// id or Idempotency-Key: Message is then the stored one, and nothing new was queued.
	Duplicate bool

	// Consumers is the number of deliveries queued for the message.
	Consumers int
}

// DeliveryStatus is the state of one message for one consumer. The names are those of
// Codat's message states.
type DeliveryStatus string

const (
	// StatusSending means no attempt has been made yet.
	StatusSending DeliveryStatus = "sending"
	// StatusAttempting means attempts have failed and a retry is scheduled.
	StatusAttempting DeliveryStatus = "attempting"
	// StatusSuccess means an attempt succeeded.
	StatusSuccess DeliveryStatus = "success"
	// StatusFailure means every attempt of the schedule failed, or the consumer responded
	// 410 Gone.
	StatusFailure DeliveryStatus = "failure"
)

// Delivery is the state of one message for one consumer.
type Delivery struct {
	ID            int64
	MessageID     string
	ConsumerID    string
	Status        DeliveryStatus
	Attempts      int
	NextAttemptAt *time.Time
	LastAttemptAt *time.Time
	UpdatedAt     time.Time
}

// Job is a claimed delivery: everything a worker needs to make one attempt.
type Job struct {
	DeliveryID int64

	// LeaseToken identifies this claim. Recording the attempt with it fails harmlessly
	// when the lease expired and another claim took the delivery.
	LeaseToken string

	Message  Message
	Consumer Consumer

	// FailedAttempts counts the failed attempts since the delivery was queued, resent or
	// recovered; the retry schedule is indexed by it.
	FailedAttempts int
}

// ClaimRequest is a request for due deliveries.
type ClaimRequest struct {
	Now time.Time

	// Limit is the maximum number of jobs to return.
	Limit int

	// Slots is the number of further jobs each consumer may take, for consumers with
	// attempts in flight. Consumers that are not listed may take DefaultSlots.
	Slots        map[string]int
	DefaultSlots int

	// Lease is how long a claimed delivery stays invisible to other claims. A delivery
	// whose attempt has not been recorded by then is claimed again: this is how attempts
	// lost in a crash are retried.
	Lease time.Duration
}

// AttemptResult is the outcome of one attempt, with the state it leads to.
type AttemptResult struct {
	Job Job

	AttemptedAt  time.Time
	Duration     time.Duration
	StatusCode   int // 0 when no HTTP response arrived
	Error        string
	ResponseBody string
	Success      bool

	// NextAttemptAt is when to retry; nil when the delivery is finished (success, or
	// failure with the schedule exhausted or after 410 Gone). A delivery with a retry stays
	// pending even when DisableConsumer disables its consumer, and goes out when the
	// consumer is enabled again.
	NextAttemptAt *time.Time

	// DisableConsumer, when not empty, disables the consumer with this reason.
	DisableConsumer string

	// Released marks an attempt cut short by a shutdown: it is not logged and does not
	// count, and the delivery is due again at once.
	Released bool

	// DisableFailingFor disables the consumer when this attempt failed and its attempts
	// have all failed for at least this long. Zero turns the check off.
	DisableFailingFor time.Duration
}

// Attempt is a recorded attempt.
type Attempt struct {
	ID           int64
	MessageID    string
	ConsumerID   string
	AttemptedAt  time.Time
	Duration     time.Duration
	StatusCode   int
	Error        string
	ResponseBody string
	Success      bool
}

// MessageFilter selects a consumer's messages for listing, newest first.
type MessageFilter struct {
	ConsumerID string
	Status     DeliveryStatus // empty for every status
	Since      time.Time      // inclusive lower bound on the creation time; zero for none
	Until      time.Time      // exclusive upper bound on the creation time; zero for none
	Before     int64          // a cursor: only deliveries with a smaller ID; 0 for none
	Limit      int
}

// ConsumerMessage is a message with its delivery state for one consumer.
type ConsumerMessage struct {
	Message  Message
	Delivery Delivery
}

// Matches reports whether the consumer takes a message of the given event type and
// company tags: it must be enabled, list the event type (exact, case-sensitive match) and,
// when it has company tags, share at least one key:value pair with tags.
func (c Consumer) Matches(eventType string, tags map[string]string) bool {
	if c.Disabled {
		return false
	}
	subscribed := false
	for _, t := range c.EventTypes {
		if t == eventType {
			subscribed = true
			break
		}
	}
	if !subscribed {
		return false
	}
	if len(c.CompanyTags) == 0 {
		return true
	}
	for _, tag := range c.CompanyTags {
		key, value, _ := strings.Cut(tag, ":")
		if v, ok := tags[key]; ok && v == value {
			return true
		}
	}
	return false
}

// ConsumerUpdate changes a consumer. Nil fields stay as they are; SetCompanyTags
// distinguishes "set to null" from "leave alone".
type ConsumerUpdate struct {
	URL            *string
	EventTypes     []string
	SetCompanyTags bool
	CompanyTags    []string
	Disabled       *bool
}

// Apply returns c with u's changes. Enabling a disabled consumer clears DisabledReason and
// FailingSince, so that a consumer hookd disabled starts afresh. Backends call it inside
// the transaction that writes the result.
func (u ConsumerUpdate) Apply(c Consumer) Consumer {
	if u.URL != nil {
		c.URL = *u.URL
	}
	if u.EventTypes != nil {
		c.EventTypes = u.EventTypes
	}
	if u.SetCompanyTags {
		c.CompanyTags = u.CompanyTags
	}
	if u.Disabled != nil {
		if c.Disabled && !*u.Disabled {
			c.DisabledReason = ""
			c.FailingSince = nil
		}
		c.Disabled = *u.Disabled
	}
	return c
}

// MessageDetail is a message with its delivery to each consumer.
type MessageDetail struct {
	Message    Message
	Deliveries []Delivery
}

// MessageStore is the part of Store that the delivery engine and the message API use.
type MessageStore interface {
	// PublishMessages stores the messages and queues one delivery for each consumer of
	// the message's client that is enabled, subscribes to its event type and, when it
	// has company tags, shares one with the message, all in one transaction. A message
	// whose (client, id) exists, or whose (client, idempotency key) was used within
	// IdempotencyWindow before its CreatedAt, returns the stored message with Duplicate
	// set. The results are in the order of msgs.
	PublishMessages(ctx context.Context, msgs []NewMessage) ([]PublishResult, error)

	// ClaimDeliveries leases due deliveries of enabled consumers and returns them as jobs.
	ClaimDeliveries(ctx context.Context, req ClaimRequest) ([]Job, error)

	// RecordAttempts stores attempt results and updates their deliveries and consumers,
	// all in one transaction. A result whose lease was taken by another claim changes
	// nothing but the attempt log, and one whose delivery no longer exists (its consumer
	// was deleted) changes nothing at all.
	RecordAttempts(ctx context.Context, results []AttemptResult) error

	// NextDue returns when the earliest pending delivery of an enabled consumer is due,
	// or false when there is none.
	NextDue(ctx context.Context) (time.Time, bool, error)

	// QueueDepth counts the pending deliveries of enabled consumers that are due at now,
	// and those due later (scheduled retries and attempts in flight).
	QueueDepth(ctx context.Context, now time.Time) (due, scheduled int, err error)

	// ListConsumerMessages returns a consumer's messages with their delivery state, newest
	// first by publish order, or ErrNotFound when the consumer does not belong to the
	// client.
	ListConsumerMessages(ctx context.Context, clientID string, filter MessageFilter) ([]ConsumerMessage, error)

	// GetMessage returns the client's message with its deliveries, or ErrNotFound.
	GetMessage(ctx context.Context, clientID, messageID string) (MessageDetail, error)

	// ListAttempts returns the attempts of the client's message, oldest first, or
	// ErrNotFound when the message does not exist.
	ListAttempts(ctx context.Context, clientID, messageID string) ([]Attempt, error)

	// ResendMessage queues the message for the consumer again, due at now, whatever its
	// state. It returns ErrNotFound when the message was never queued for that consumer.
	ResendMessage(ctx context.Context, clientID, messageID, consumerID string, now time.Time) error

	// RecoverMessages queues again, due at now, the consumer's failed deliveries of
	// messages created in [since, until), and returns how many. A zero until means now.
	RecoverMessages(ctx context.Context, clientID, consumerID string, since, until, now time.Time) (int, error)

	// DeleteExpired deletes up to limit messages created before cutoff that have no
	// pending delivery, with their deliveries and attempts, and up to limit attempts made
	// before cutoff. It returns the number of messages and attempts it deleted, without
	// the rows removed along with a message. Callers repeat it until that is 0.
	DeleteExpired(ctx context.Context, cutoff time.Time, limit int) (int, error)
}
