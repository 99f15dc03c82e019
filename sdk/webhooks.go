package sdk

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"time"
)

// Error statuses that each operation declares with an ErrorMessage body. The lists of
// Codat's three operations are those of Codat's SDKs, and the others are those of hookd's
// OpenAPI document.
var (
	listConsumersErrors   = []int{400, 401, 402, 403, 429, 500, 503}
	createConsumerErrors  = []int{400, 401, 402, 403, 429, 500, 503}
	deleteConsumerErrors  = []int{401, 402, 403, 404, 429, 500, 503}
	getConsumerErrors     = []int{401, 402, 404, 429, 500, 503}
	updateConsumerErrors  = []int{400, 401, 402, 403, 404, 429, 500, 503}
	listMessagesErrors    = []int{400, 401, 402, 404, 429, 500, 503}
	recoverMessagesErrors = []int{400, 401, 402, 403, 404, 429, 500, 503}
	getSecretErrors       = []int{401, 402, 403, 404, 429, 500, 503}
	rotateSecretErrors    = []int{401, 402, 403, 404, 429, 500, 503}
	publishEventErrors    = []int{400, 401, 402, 403, 429, 500, 503}
	publishEventsErrors   = []int{400, 401, 402, 403, 429, 500, 503}
	getMessageErrors      = []int{401, 402, 404, 429, 500, 503}
	listAttemptsErrors    = []int{401, 402, 404, 429, 500, 503}
	resendMessageErrors   = []int{400, 401, 402, 403, 404, 429, 500, 503}
)

// Errors of arguments that the SDK rejects before it sends a request.
var (
	errEmptyWebhookID = errors.New("the webhook consumer id is empty")
	errEmptyMessageID = errors.New("the message id is empty")
	errZeroSince      = errors.New("since is the zero time: set the start of the range of failed messages to recover")
	errEmptyBatch     = errors.New("the batch has no events: publish at least one")
)

// Webhooks calls the operations on webhook consumers. Get it from Client.Webhooks.
type Webhooks struct {
	client *Client
}

// ListConsumers returns every webhook consumer of the caller's client, oldest first.
//
// Errors: *ErrorMessage for 400, 401, 402, 403, 429, 500 and 503. Read-only keys may call
// it.
func (w *Webhooks) ListConsumers(ctx context.Context, opts ...CallOption) (*WebhookConsumers, error) {
	op := operation{
		name:          "list webhook consumers",
		method:        http.MethodGet,
		path:          "/webhooks",
		success:       http.StatusOK,
		resultType:    "WebhookConsumers",
		errorStatuses: listConsumersErrors,
	}
	var out WebhookConsumers
	if err := w.client.call(ctx, op, &out, opts); err != nil {
		return nil, err
	}
	return &out, nil
}

// CreateConsumer creates a webhook consumer and returns it with its new id.
//
// A client may have at most 50 consumers. The 51st create fails with a 400 *ErrorMessage
// whose validation item has the ValidatorName "maxConsumers". Delete an unused consumer
// first.
//
// Every attempt of one call sends the same Idempotency-Key header, a new random UUID
// unless the call passes WithIdempotencyKey. When a create repeats a key that the client
// used within 24 hours, hookd returns the consumer that the first request created, so a
// retry after a lost response does not create a second consumer.
//
// Errors: *ErrorMessage for 400, 401, 402, 403, 429, 500 and 503.
func (w *Webhooks) CreateConsumer(ctx context.Context, request WebhookConsumerPrototype, opts ...CallOption) (*WebhookConsumer, error) {
	const name = "create webhook consumer"
	body, err := encodeBody(name, request)
	if err != nil {
		return nil, err
	}
	op := operation{
		name:           name,
		method:         http.MethodPost,
		path:           "/webhooks",
		body:           body,
		success:        http.StatusCreated,
		resultType:     "WebhookConsumer",
		errorStatuses:  createConsumerErrors,
		idempotencyKey: true,
	}
	var out WebhookConsumer
	if err := w.client.call(ctx, op, &out, opts); err != nil {
		return nil, err
	}
	return &out, nil
}

// DeleteConsumer deletes a webhook consumer and its pending deliveries.
//
// An unknown or malformed id, or the id of another client's consumer, returns a 404
// *ErrorMessage. A retry after a lost response of a successful delete also returns 404.
//
// Errors: *ErrorMessage for 401, 402, 403, 404, 429, 500 and 503.
func (w *Webhooks) DeleteConsumer(ctx context.Context, request DeleteWebhookConsumerRequest, opts ...CallOption) error {
	const name = "delete webhook consumer"
	if request.WebhookID == "" {
		return fmt.Errorf("hookd: %s: %w", name, errEmptyWebhookID)
	}
	op := operation{
		name:          name,
		method:        http.MethodDelete,
		path:          "/webhooks/" + pathSegment(request.WebhookID),
		success:       http.StatusNoContent,
		errorStatuses: deleteConsumerErrors,
	}
	return w.client.call(ctx, op, nil, opts)
}

// GetConsumer returns one webhook consumer. It is a hookd extension.
//
// Errors: *ErrorMessage for 401, 402, 404, 429, 500 and 503. Read-only keys may call it.
func (w *Webhooks) GetConsumer(ctx context.Context, webhookID string, opts ...CallOption) (*WebhookConsumer, error) {
	const name = "get webhook consumer"
	if webhookID == "" {
		return nil, fmt.Errorf("hookd: %s: %w", name, errEmptyWebhookID)
	}
	op := operation{
		name:          name,
		method:        http.MethodGet,
		path:          "/webhooks/" + pathSegment(webhookID),
		success:       http.StatusOK,
		resultType:    "WebhookConsumer",
		errorStatuses: getConsumerErrors,
	}
	var out WebhookConsumer
	if err := w.client.call(ctx, op, &out, opts); err != nil {
		return nil, err
	}
	return &out, nil
}

// UpdateConsumer changes the fields that update sets, with a PATCH request, and returns
// the whole consumer. It is a hookd extension.
//
// A changed EventTypes or CompanyTags applies to events published afterwards. Enabling a
// consumer resumes its pending deliveries, but events published while it was disabled
// were never queued for it.
//
// Errors: *ErrorMessage for 400, 401, 402, 403, 404, 429, 500 and 503.
func (w *Webhooks) UpdateConsumer(ctx context.Context, webhookID string, update WebhookConsumerUpdate, opts ...CallOption) (*WebhookConsumer, error) {
	const name = "update webhook consumer"
	if webhookID == "" {
		return nil, fmt.Errorf("hookd: %s: %w", name, errEmptyWebhookID)
	}
	if update.CompanyTags != nil && update.RemoveCompanyTags {
		return nil, fmt.Errorf("hookd: %s: %w", name, errConflictingTags)
	}
	body, err := encodeBody(name, update)
	if err != nil {
		return nil, err
	}
	op := operation{
		name:          name,
		method:        http.MethodPatch,
		path:          "/webhooks/" + pathSegment(webhookID),
		body:          body,
		success:       http.StatusOK,
		resultType:    "WebhookConsumer",
		errorStatuses: updateConsumerErrors,
	}
	var out WebhookConsumer
	if err := w.client.call(ctx, op, &out, opts); err != nil {
		return nil, err
	}
	return &out, nil
}

// ListMessages returns one page of the messages queued for a consumer, newest first, with
// their delivery state. To read the following page, call it again with the same filter
// and Cursor set to the page's Next, until Next is empty. It is a hookd extension.
//
// Errors: *ErrorMessage for 400, 401, 402, 404, 429, 500 and 503. Read-only keys may call
// it.
func (w *Webhooks) ListMessages(ctx context.Context, webhookID string, filter MessageFilter, opts ...CallOption) (*ConsumerMessages, error) {
	const name = "list webhook consumer messages"
	if webhookID == "" {
		return nil, fmt.Errorf("hookd: %s: %w", name, errEmptyWebhookID)
	}
	op := operation{
		name:          name,
		method:        http.MethodGet,
		path:          "/webhooks/" + pathSegment(webhookID) + "/messages",
		query:         filter.query(),
		success:       http.StatusOK,
		resultType:    "ConsumerMessages",
		errorStatuses: listMessagesErrors,
	}
	var out ConsumerMessages
	if err := w.client.call(ctx, op, &out, opts); err != nil {
		return nil, err
	}
	return &out, nil
}

// query encodes the filter's set fields as query parameters.
func (f MessageFilter) query() url.Values {
	q := url.Values{}
	if f.Status != "" {
		q.Set("status", string(f.Status))
	}
	if !f.Since.IsZero() {
		q.Set("since", f.Since.Format(time.RFC3339Nano))
	}
	if !f.Until.IsZero() {
		q.Set("until", f.Until.Format(time.RFC3339Nano))
	}
	if f.Limit != 0 {
		q.Set("limit", strconv.Itoa(f.Limit))
	}
	if f.Cursor != "" {
		q.Set("cursor", f.Cursor)
	}
	return q
}

// RecoverMessages queues again every message of the consumer whose status is failure and
// that was created at or after since and before until, and returns how many. The zero
// until means the time of the request. since must not be in the future. It is a hookd
// extension.
//
// A retry after a lost response returns 0, because the first attempt already queued the
// messages.
//
// Errors: *ErrorMessage for 400, 401, 402, 403, 404, 429, 500 and 503.
func (w *Webhooks) RecoverMessages(ctx context.Context, webhookID string, since, until time.Time, opts ...CallOption) (int, error) {
	const name = "recover webhook consumer messages"
	switch {
	case webhookID == "":
		return 0, fmt.Errorf("hookd: %s: %w", name, errEmptyWebhookID)
	case since.IsZero():
		return 0, fmt.Errorf("hookd: %s: %w", name, errZeroSince)
	}
	request := struct {
		Since time.Time `json:"since"`
		Until time.Time `json:"until,omitzero"`
	}{since, until}
	body, err := encodeBody(name, request)
	if err != nil {
		return 0, err
	}
	op := operation{
		name:          name,
		method:        http.MethodPost,
		path:          "/webhooks/" + pathSegment(webhookID) + "/recover",
		body:          body,
		success:       http.StatusAccepted,
		resultType:    "RecoverResult",
		errorStatuses: recoverMessagesErrors,
	}
	var out struct {
		Recovered int `json:"recovered"`
	}
	if err := w.client.call(ctx, op, &out, opts); err != nil {
		return 0, err
	}
	return out.Recovered, nil
}

// GetSecret returns the secret that signs the consumer's deliveries. Receivers verify
// deliveries with it, for example with the signature package. It is a hookd extension.
//
// Errors: *ErrorMessage for 401, 402, 403, 404, 429, 500 and 503. Read-only keys get 403.
func (w *Webhooks) GetSecret(ctx context.Context, webhookID string, opts ...CallOption) (*WebhookSecret, error) {
	const name = "get webhook consumer secret"
	if webhookID == "" {
		return nil, fmt.Errorf("hookd: %s: %w", name, errEmptyWebhookID)
	}
	op := operation{
		name:          name,
		method:        http.MethodGet,
		path:          "/webhooks/" + pathSegment(webhookID) + "/secret",
		success:       http.StatusOK,
		resultType:    "WebhookSecret",
		errorStatuses: getSecretErrors,
	}
	var out WebhookSecret
	if err := w.client.call(ctx, op, &out, opts); err != nil {
		return nil, err
	}
	return &out, nil
}

// RotateSecret replaces the consumer's signing secret with a new random one and returns
// it. The replaced secret keeps signing deliveries until PreviousKeyExpiresAt, 24 hours
// later unless the server is configured otherwise. It is a hookd extension.
//
// RotateSecret is sent once unless the call passes WithRetries, whatever the client's
// retry rules. A repeated rotation during the overlap makes the secret from before the
// first rotation stop signing at once, so a retry after a lost response would break
// receivers that still check that secret.
//
// Errors: *ErrorMessage for 401, 402, 403, 404, 429, 500 and 503.
func (w *Webhooks) RotateSecret(ctx context.Context, webhookID string, opts ...CallOption) (*WebhookSecret, error) {
	const name = "rotate webhook consumer secret"
	if webhookID == "" {
		return nil, fmt.Errorf("hookd: %s: %w", name, errEmptyWebhookID)
	}
	op := operation{
		name:           name,
		method:         http.MethodPost,
		path:           "/webhooks/" + pathSegment(webhookID) + "/secret/rotate",
		success:        http.StatusOK,
		resultType:     "WebhookSecret",
		errorStatuses:  rotateSecretErrors,
		noDefaultRetry: true,
	}
	var out WebhookSecret
	if err := w.client.call(ctx, op, &out, opts); err != nil {
		return nil, err
	}
	return &out, nil
}
