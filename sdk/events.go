package sdk

import (
	"context"
	"fmt"
	"net/http"
)

// Events publishes events, a hookd extension. Get it from Client.Events.
//
// hookd stores each event as a message and queues one delivery for every consumer of the
// caller's client that is enabled, lists the event type and, when it has company tags,
// shares one with the payload's referenceCompany.tags. It then sends each delivery as a
// signed POST of the envelope, with retries.
type Events struct {
	client *Client
}

// PublishEvent publishes one event and returns the envelope that consumers receive. The
// message is stored before the call returns, and delivery happens later.
//
// Publishing is idempotent. An event whose ID the client published before returns the
// stored envelope and queues nothing new. So does a request with the Idempotency-Key of a
// publish by the same client in the last 24 hours. Every attempt of one call sends the
// same key, a new random UUID unless the call passes WithIdempotencyKey, so retries
// publish the event once.
//
// Errors: *ErrorMessage for 400, 401, 402, 403, 429, 500 and 503.
func (e *Events) PublishEvent(ctx context.Context, event Event, opts ...CallOption) (*EventEnvelope, error) {
	const name = "publish event"
	body, err := encodeBody(name, event)
	if err != nil {
		return nil, err
	}
	op := operation{
		name:           name,
		method:         http.MethodPost,
		path:           "/events",
		body:           body,
		success:        http.StatusAccepted,
		resultType:     "EventEnvelope",
		errorStatuses:  publishEventErrors,
		idempotencyKey: true,
	}
	var out EventEnvelope
	if err := e.client.call(ctx, op, &out, opts); err != nil {
		return nil, err
	}
	return &out, nil
}

// PublishEvents publishes 1 to 500 events in one request and returns their envelopes in
// the order of events. The server checks every event before it stores any, so a batch
// with an invalid event stores nothing and returns a 400 *ErrorMessage with one
// validation item per problem, such as "events[3].eventType".
//
// Each event is idempotent as in PublishEvent. With the Idempotency-Key K, event i is
// published under the key "K#i", so repeating the whole batch with the same key returns
// the first envelopes.
//
// Errors: *ErrorMessage for 400, 401, 402, 403, 429, 500 and 503.
func (e *Events) PublishEvents(ctx context.Context, events []Event, opts ...CallOption) ([]EventEnvelope, error) {
	const name = "publish events"
	if len(events) == 0 {
		return nil, fmt.Errorf("hookd: %s: %w", name, errEmptyBatch)
	}
	body, err := encodeBody(name, struct {
		Events []Event `json:"events"`
	}{events})
	if err != nil {
		return nil, err
	}
	op := operation{
		name:           name,
		method:         http.MethodPost,
		path:           "/events/batch",
		body:           body,
		success:        http.StatusAccepted,
		resultType:     "EventBatchResult",
		errorStatuses:  publishEventsErrors,
		idempotencyKey: true,
	}
	var out struct {
		Results []EventEnvelope `json:"results"`
	}
	if err := e.client.call(ctx, op, &out, opts); err != nil {
		return nil, err
	}
	return out.Results, nil
}
