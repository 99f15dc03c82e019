package sdk

import (
	"encoding/json"
	"errors"
	"time"
)

// WebhookConsumer is an HTTP endpoint that receives the events it subscribes to, Codat's
// WebhookConsumer schema.
type WebhookConsumer struct {
	// ID is the consumer's UUID, assigned by the server.
	ID string `json:"id"`

	// URL is the absolute http or https URL that receives the events.
	URL string `json:"url"`

	// Disabled is true when the consumer receives no events. The server may send null,
	// which means false.
	Disabled *bool `json:"disabled"`

	// EventTypes are the event types that the consumer receives, matched exactly.
	EventTypes []string `json:"eventTypes"`

	// CompanyTags restrict delivery to events of companies with one of these "key:value"
	// tags. Nil means the server sent null: the consumer takes events of every company.
	CompanyTags []string `json:"companyTags"`

	// DisabledReason is the reason why hookd disabled the consumer by itself: it
	// responded with 410 Gone, or all its attempts failed for too long. It is empty while the consumer is
	// enabled or when a client disabled it. It is a hookd extension.
	DisabledReason string `json:"disabledReason,omitempty"`
}

// WebhookConsumerPrototype is the new consumer of Webhooks.CreateConsumer, Codat's
// WebhookConsumerPrototype schema. URL and EventTypes are required by hookd.
type WebhookConsumerPrototype struct {
	// URL is the absolute http or https URL that receives the events, at most 2048
	// characters, without user information. An empty URL is left out of the request.
	URL string `json:"url,omitempty"`

	// Disabled, when true, creates the consumer disabled. Nil is left out of the request,
	// and the server then creates it enabled.
	Disabled *bool `json:"disabled,omitempty"`

	// EventTypes are the event types to receive, at least one. The server removes
	// duplicates. Nil is left out of the request.
	EventTypes []string `json:"eventTypes,omitzero"`

	// CompanyTags restrict delivery to events of companies with one of these tags, at
	// most 10 of the form "key:value". Nil is left out of the request, as Codat's
	// TypeScript SDK does, and means no filter.
	CompanyTags []string `json:"companyTags,omitzero"`
}

// WebhookConsumers is the result of Webhooks.ListConsumers, Codat's WebhookConsumers
// schema.
type WebhookConsumers struct {
	// Results are all consumers of the caller's client, oldest first. A client has at
	// most 50 consumers, so there is no paging.
	Results []WebhookConsumer `json:"results"`
}

// DeleteWebhookConsumerRequest names the consumer that Webhooks.DeleteConsumer deletes.
type DeleteWebhookConsumerRequest struct {
	// WebhookID is the consumer's id.
	WebhookID string
}

// WebhookConsumerUpdate is the change that Webhooks.UpdateConsumer makes. Nil fields keep
// their value, and the zero WebhookConsumerUpdate changes nothing.
type WebhookConsumerUpdate struct {
	// URL, when not nil, replaces the consumer's URL.
	URL *string

	// EventTypes, when not nil, replaces the whole list of event types. The server
	// rejects an empty list.
	EventTypes []string

	// CompanyTags, when not nil, replaces the whole list of company tags.
	CompanyTags []string

	// RemoveCompanyTags sends "companyTags": null, which removes the tag filter so that
	// the consumer takes events of every company. It cannot be combined with CompanyTags.
	RemoveCompanyTags bool

	// Disabled, when not nil, disables (true) or enables (false) the consumer. Enabling
	// clears DisabledReason and resumes the deliveries that were pending.
	Disabled *bool
}

// errConflictingTags is returned when an update both sets and removes company tags.
var errConflictingTags = errors.New("WebhookConsumerUpdate sets both CompanyTags and RemoveCompanyTags: set one of them")

// MarshalJSON encodes the fields that the update changes, as the PATCH body.
func (u WebhookConsumerUpdate) MarshalJSON() ([]byte, error) {
	if u.CompanyTags != nil && u.RemoveCompanyTags {
		return nil, errConflictingTags
	}
	body := map[string]any{}
	if u.URL != nil {
		body["url"] = *u.URL
	}
	if u.EventTypes != nil {
		body["eventTypes"] = u.EventTypes
	}
	if u.CompanyTags != nil {
		body["companyTags"] = u.CompanyTags
	}
	if u.RemoveCompanyTags {
		body["companyTags"] = nil
	}
	if u.Disabled != nil {
		body["disabled"] = *u.Disabled
	}
	return json.Marshal(body)
}

// Event is an event to publish with Events.PublishEvent or Events.PublishEvents.
type Event struct {
	// ID is your id of the event, unique per client and at most 128 bytes. Publishing an
	// id again returns the stored message. Empty lets the server choose a random UUID.
	ID string `json:"id,omitempty"`

	// EventType is the type that consumers subscribe to, such as "company.created".
	EventType string `json:"eventType"`

	// GeneratedDate is when the event happened. The server keeps milliseconds in UTC.
	// The zero time is left out of the request, and the server then uses the time of
	// publishing.
	GeneratedDate time.Time `json:"generatedDate,omitzero"`

	// Payload is the event's data, encoded as a JSON object: a map, a struct or a
	// json.RawMessage. A payload with a referenceCompany.tags object of string values
	// reaches the consumers whose CompanyTags match one of them.
	Payload any `json:"payload"`
}

// EventEnvelope is the body that consumers receive for a message.
type EventEnvelope struct {
	// ID is the message id, which consumers also receive in the webhook-id header.
	ID            string          `json:"id"`
	EventType     string          `json:"eventType"`
	GeneratedDate time.Time       `json:"generatedDate"`
	Payload       json.RawMessage `json:"payload"`
}

// MessageStatus is the state of a message for one consumer.
type MessageStatus string

// Message statuses.
const (
	// MessageStatusSending means that no attempt was made since the message was queued,
	// resent or recovered.
	MessageStatusSending MessageStatus = "sending"

	// MessageStatusAttempting means that attempts failed and a retry is scheduled.
	MessageStatusAttempting MessageStatus = "attempting"

	// MessageStatusSuccess means that an attempt got a 2xx response.
	MessageStatusSuccess MessageStatus = "success"

	// MessageStatusFailure means that every attempt of the retry schedule failed, or the
	// consumer responded with 410 Gone.
	MessageStatusFailure MessageStatus = "failure"
)

// MessageFilter selects the messages of Webhooks.ListMessages. The zero MessageFilter
// selects every message and lets the server choose the page size.
type MessageFilter struct {
	// Status, when not empty, selects messages in this status.
	Status MessageStatus

	// Since, when not zero, selects messages created at or after this time.
	Since time.Time

	// Until, when not zero, selects messages created before this time.
	Until time.Time

	// Limit is the maximum number of messages on the page, from 1 to 250. Zero means the
	// server's default of 50.
	Limit int

	// Cursor is the Next field of the previous page, to read the following page with the
	// same filter. Empty reads the first page.
	Cursor string
}

// ConsumerMessages is one page of Webhooks.ListMessages.
type ConsumerMessages struct {
	// Results are the messages, newest first.
	Results []ConsumerMessage `json:"results"`

	// Next is the cursor of the following page, to pass as MessageFilter.Cursor. It is
	// empty on the last page.
	Next string `json:"next"`
}

// ConsumerMessage is a message with its delivery state for one consumer.
type ConsumerMessage struct {
	ID            string        `json:"id"`
	EventType     string        `json:"eventType"`
	GeneratedDate time.Time     `json:"generatedDate"`
	CreatedAt     time.Time     `json:"createdAt"`
	Status        MessageStatus `json:"status"`

	// FailedAttempts counts the failed attempts since the message was queued, resent or
	// recovered.
	FailedAttempts int `json:"failedAttempts"`

	// NextAttemptAt is when the next attempt is due, and nil once the status is success
	// or failure.
	NextAttemptAt *time.Time `json:"nextAttemptAt"`

	// LastAttemptAt is when the last attempt started, and nil before the first attempt.
	LastAttemptAt *time.Time `json:"lastAttemptAt"`
}

// MessageDetail is a message with its payload and its delivery to each consumer.
type MessageDetail struct {
	ID            string          `json:"id"`
	EventType     string          `json:"eventType"`
	GeneratedDate time.Time       `json:"generatedDate"`
	CreatedAt     time.Time       `json:"createdAt"`
	Payload       json.RawMessage `json:"payload"`

	// Deliveries has one entry per consumer that the message was queued for, in the
	// order they were queued. It is empty when no consumer matched.
	Deliveries []MessageDelivery `json:"deliveries"`
}

// MessageDelivery is the delivery state of a message for one consumer.
type MessageDelivery struct {
	WebhookID      string        `json:"webhookId"`
	Status         MessageStatus `json:"status"`
	FailedAttempts int           `json:"failedAttempts"`
	NextAttemptAt  *time.Time    `json:"nextAttemptAt"`
	LastAttemptAt  *time.Time    `json:"lastAttemptAt"`
}

// Attempt is one recorded delivery attempt.
type Attempt struct {
	// ID increases in the order the attempts were recorded.
	ID          int64     `json:"id"`
	WebhookID   string    `json:"webhookId"`
	AttemptedAt time.Time `json:"attemptedAt"`

	// DurationMs is the time from the start of the attempt to its end, in milliseconds.
	DurationMs float64 `json:"durationMs"`

	// StatusCode is the consumer's HTTP status, or 0 when no response arrived.
	StatusCode int  `json:"statusCode"`
	Success    bool `json:"success"`

	// Error is the reason why the attempt failed, and is empty on success.
	Error string `json:"error"`

	// ResponseBody is the start of the consumer's response body, at most 64 KiB.
	ResponseBody string `json:"responseBody"`
}

// Duration returns DurationMs as a time.Duration.
func (a Attempt) Duration() time.Duration {
	return time.Duration(a.DurationMs * float64(time.Millisecond))
}

// ResendResult is the delivery that Messages.ResendMessage queued.
type ResendResult struct {
	// ID is the message id.
	ID        string        `json:"id"`
	WebhookID string        `json:"webhookId"`
	Status    MessageStatus `json:"status"`
}

// WebhookSecret is a consumer's signing secret.
type WebhookSecret struct {
	// Key is "whsec_" followed by the base64 encoding of the 32-byte key. The signature
	// package's ParseSecret reads it.
	Key string `json:"key"`

	// PreviousKeyExpiresAt is set while the secret replaced by the last rotation still
	// signs deliveries, until this time. It is nil otherwise.
	PreviousKeyExpiresAt *time.Time `json:"previousKeyExpiresAt,omitempty"`
}

// Bool returns a pointer to b, for the optional fields of the models.
func Bool(b bool) *bool { return &b }

// String returns a pointer to s, for the optional fields of the models.
func String(s string) *string { return &s }
