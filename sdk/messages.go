package sdk

import (
	"context"
	"fmt"
	"net/http"
)

// Messages inspects published messages and sends them again, a hookd extension. Get it
// from Client.Messages.
//
// A message id is the event's ID given at publishing, or the one the server chose. The
// SDK escapes it in the path, so an id may contain "/". The id of another client's
// message returns 404, as does a message deleted after the server's retention period,
// 30 days by default.
type Messages struct {
	client *Client
}

// GetMessage returns a message with its payload and its delivery state for each consumer
// it was queued for.
//
// Errors: *ErrorMessage for 401, 402, 404, 429, 500 and 503. Read-only keys may call it.
func (m *Messages) GetMessage(ctx context.Context, messageID string, opts ...CallOption) (*MessageDetail, error) {
	const name = "get message"
	if messageID == "" {
		return nil, fmt.Errorf("hookd: %s: %w", name, errEmptyMessageID)
	}
	op := operation{
		name:          name,
		method:        http.MethodGet,
		path:          "/messages/" + pathSegment(messageID),
		success:       http.StatusOK,
		resultType:    "MessageDetail",
		errorStatuses: getMessageErrors,
	}
	var out MessageDetail
	if err := m.client.call(ctx, op, &out, opts); err != nil {
		return nil, err
	}
	return &out, nil
}

// ListAttempts returns every recorded delivery attempt of a message, to all its
// consumers, oldest first. Unlike FailedAttempts, the log keeps the attempts made before
// a resend or a recovery.
//
// Errors: *ErrorMessage for 401, 402, 404, 429, 500 and 503. Read-only keys may call it.
func (m *Messages) ListAttempts(ctx context.Context, messageID string, opts ...CallOption) ([]Attempt, error) {
	const name = "list message attempts"
	if messageID == "" {
		return nil, fmt.Errorf("hookd: %s: %w", name, errEmptyMessageID)
	}
	op := operation{
		name:          name,
		method:        http.MethodGet,
		path:          "/messages/" + pathSegment(messageID) + "/attempts",
		success:       http.StatusOK,
		resultType:    "MessageAttempts",
		errorStatuses: listAttemptsErrors,
	}
	var out struct {
		Results []Attempt `json:"results"`
	}
	if err := m.client.call(ctx, op, &out, opts); err != nil {
		return nil, err
	}
	return out.Results, nil
}

// ResendMessage queues a message again for one consumer that it was queued for before,
// whatever its status. The delivery starts again with status sending and a full retry
// schedule. A message that was never queued for the consumer returns a 404
// *ErrorMessage.
//
// A retry after a lost response queues the message once more, so the consumer may
// receive it twice, with the same webhook-id header.
//
// Errors: *ErrorMessage for 400, 401, 402, 403, 404, 429, 500 and 503.
func (m *Messages) ResendMessage(ctx context.Context, messageID, webhookID string, opts ...CallOption) (*ResendResult, error) {
	const name = "resend message"
	switch {
	case messageID == "":
		return nil, fmt.Errorf("hookd: %s: %w", name, errEmptyMessageID)
	case webhookID == "":
		return nil, fmt.Errorf("hookd: %s: %w", name, errEmptyWebhookID)
	}
	body, err := encodeBody(name, struct {
		WebhookID string `json:"webhookId"`
	}{webhookID})
	if err != nil {
		return nil, err
	}
	op := operation{
		name:          name,
		method:        http.MethodPost,
		path:          "/messages/" + pathSegment(messageID) + "/resend",
		body:          body,
		success:       http.StatusAccepted,
		resultType:    "ResendResult",
		errorStatuses: resendMessageErrors,
	}
	var out ResendResult
	if err := m.client.call(ctx, op, &out, opts); err != nil {
		return nil, err
	}
	return &out, nil
}
