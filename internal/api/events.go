package api

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"

	"github.com/hookd/hookd/internal/store"
)

// Limits of published events.
const (
	MaxEventBytes      = 256 << 10
	MaxBatchEvents     = 500
	MaxBatchBodyBytes  = 16 << 20
	MaxEventIDLen      = 128
	MaxIdempotencyKey  = 255
	idempotencyKeyName = "Idempotency-Key"
)

// Publisher stores published messages durably, with their fan-out. The delivery engine
// implements it with group commits.
type Publisher interface {
	Publish(ctx context.Context, msgs []store.NewMessage) ([]store.PublishResult, error)
}

// storePublisher publishes straight through the store, one transaction per request.
type storePublisher struct{ store store.Store }

func (p storePublisher) Publish(ctx context.Context, msgs []store.NewMessage) ([]store.PublishResult, error) {
	return p.store.PublishMessages(ctx, msgs)
}

// eventInput is the JSON body of a publish request.
type eventInput struct {
	ID            *string         `json:"id"`
	EventType     *string         `json:"eventType"`
	GeneratedDate *string         `json:"generatedDate"`
	Payload       json.RawMessage `json:"payload"`
}

// envelope is the body delivered to consumers and returned by the publish operations.
type envelope struct {
	ID            string          `json:"id"`
	EventType     string          `json:"eventType"`
	GeneratedDate string          `json:"generatedDate"`
	Payload       json.RawMessage `json:"payload"`
}

// eventBatch is the body of POST /events/batch.
type eventBatch struct {
	Events []json.RawMessage `json:"events"`
}

func (s *Server) publishEvent(w http.ResponseWriter, r *http.Request) error {
	key, apiErr := idempotencyKey(r)
	if apiErr != nil {
		return apiErr
	}
	body, apiErr := readLimited(r.Body, MaxEventBytes)
	if apiErr != nil {
		return apiErr
	}
	msg, apiErr := decodeEvent(body, "", time.Now())
	if apiErr != nil {
		return apiErr
	}
	msg.ClientID = credential(r).Client.ID
	msg.IdempotencyKey = key

	results, err := s.publisher.Publish(r.Context(), []store.NewMessage{msg})
	if err != nil {
		return fmt.Errorf("publish event %s: %w", msg.ID, err)
	}
	writeRawJSON(w, http.StatusAccepted, results[0].Message.Body)
	return nil
}

func (s *Server) publishBatch(w http.ResponseWriter, r *http.Request) error {
	key, apiErr := idempotencyKey(r)
	if apiErr != nil {
		return apiErr
	}
	body, apiErr := readLimited(r.Body, MaxBatchBodyBytes)
	if apiErr != nil {
		return apiErr
	}

	// Every event is checked before any is stored, so that a bad event changes nothing.
	msgs, apiErr := decodeBatch(body, time.Now())
	if apiErr != nil {
		return apiErr
	}
	clientID := credential(r).Client.ID
	for i := range msgs {
		msgs[i].ClientID = clientID
		if key != "" {
			msgs[i].IdempotencyKey = fmt.Sprintf("%s#%d", key, i)
		}
	}

	results, err := s.publisher.Publish(r.Context(), msgs)
	if err != nil {
		return fmt.Errorf("publish batch of %d events: %w", len(msgs), err)
	}
	writeRawJSON(w, http.StatusAccepted, encodeBatchResult(results))
	return nil
}

// encodeBatchResult returns the response body of a batch: {"results": [...]} with the
// envelope of each event. The envelopes are compact JSON already, so they are joined
// as they are rather than checked again by json.Marshal.
func encodeBatchResult(results []store.PublishResult) []byte {
	n := len(`{"results":[]}`)
	for _, res := range results {
		n += len(res.Message.Body) + 1
	}
	buf := make([]byte, 0, n)
	buf = append(buf, `{"results":[`...)
	for i, res := range results {
		if i > 0 {
			buf = append(buf, ',')
		}
		buf = append(buf, res.Message.Body...)
	}
	return append(buf, "]}"...)
}

// decodeBatch validates the events of a POST /events/batch body and builds their messages.
//
// A body no larger than MaxEventBytes is first decoded in one go, which reads each byte
// twice. When that succeeds with an acceptable number of events, each event's fields are
// checked as decodeEvent does. No event can exceed MaxEventBytes in such a body. Anything
// else takes the exact path, which decodes each event on its own (each byte four times) so
// that every error names its event.
func decodeBatch(body []byte, now time.Time) ([]store.NewMessage, *apiError) {
	if len(body) <= MaxEventBytes {
		var batch struct {
			Events []eventInput `json:"events"`
		}
		if json.Unmarshal(body, &batch) == nil && len(batch.Events) > 0 && len(batch.Events) <= MaxBatchEvents {
			return buildBatch(len(batch.Events), func(i int, prefix string) (store.NewMessage, *apiError) {
				return buildEvent(batch.Events[i], prefix, now)
			})
		}
	}

	var batch eventBatch
	if apiErr := decodeJSONBody(body, &batch); apiErr != nil {
		return nil, apiErr
	}
	switch {
	case batch.Events == nil:
		return nil, invalid(item("events", "required", `events is missing. Send {"events": [{"eventType": "...", "payload": {...}}, ...]}.`))
	case len(batch.Events) == 0:
		return nil, invalid(item("events", "minItems", "events is empty. Send at least one event."))
	case len(batch.Events) > MaxBatchEvents:
		return nil, invalid(item("events", "maxItems", fmt.Sprintf("events has %d events; the maximum is %d. Split the batch.", len(batch.Events), MaxBatchEvents)))
	}
	return buildBatch(len(batch.Events), func(i int, prefix string) (store.NewMessage, *apiError) {
		if raw := batch.Events[i]; len(raw) <= MaxEventBytes {
			return decodeEvent(raw, prefix, now)
		}
		return store.NewMessage{}, invalid(item(prefix, "maxLength", fmt.Sprintf("%s is larger than %d KiB.", prefix, MaxEventBytes>>10)))
	})
}

// buildBatch builds the n messages of a batch with build, which gets each event's index
// and its name in errors ("events[3]"). It returns every event's errors together.
func buildBatch(n int, build func(i int, prefix string) (store.NewMessage, *apiError)) ([]store.NewMessage, *apiError) {
	msgs := make([]store.NewMessage, 0, n)
	var errs []validationItem
	for i := range n {
		msg, apiErr := build(i, fmt.Sprintf("events[%d]", i))
		if apiErr != nil {
			errs = append(errs, apiErr.validation...)
			continue
		}
		msgs = append(msgs, msg)
	}
	if len(errs) > 0 {
		return nil, invalid(errs...)
	}
	return msgs, nil
}

// idempotencyKey returns the request's Idempotency-Key header, or "" without one.
func idempotencyKey(r *http.Request) (string, *apiError) {
	key := r.Header.Get(idempotencyKeyName)
	if len(key) > MaxIdempotencyKey {
		return "", invalid(item(idempotencyKeyName, "maxLength",
			fmt.Sprintf("The %s header is %d bytes long; the maximum is %d.", idempotencyKeyName, len(key), MaxIdempotencyKey)))
	}
	return key, nil
}

// readLimited reads a request body of at most limit bytes.
func readLimited(body io.Reader, limit int) ([]byte, *apiError) {
	b, err := io.ReadAll(io.LimitReader(body, int64(limit)+1))
	if err != nil {
		return nil, invalid(item("body", "read", fmt.Sprintf("The request body could not be read: %v.", err)))
	}
	if len(b) > limit {
		return nil, invalid(item("body", "maxLength", fmt.Sprintf("The request body is larger than %d KiB. Send a smaller body.", limit>>10)))
	}
	return b, nil
}

// decodeEvent validates one event and builds the message to store. prefix names the event
// in a batch ("events[3]"), and is empty for a single event.
func decodeEvent(raw []byte, prefix string, now time.Time) (store.NewMessage, *apiError) {
	field := func(name string) string { return fieldPath(prefix, name) }

	var in eventInput
	if apiErr := decodeJSONBody(raw, &in); apiErr != nil {
		if prefix != "" {
			// The batch body was valid JSON, so the event is either not an object or
			// has a field of the wrong type, and the message starts with that field.
			for i := range apiErr.validation {
				v := &apiErr.validation[i]
				if v.ItemID == "body" {
					v.ItemID, v.Message = prefix, prefix+" must be a JSON object."
				} else {
					v.ItemID, v.Message = field(v.ItemID), prefix+"."+v.Message
				}
			}
		}
		return store.NewMessage{}, apiErr
	}
	return buildEvent(in, prefix, now)
}

// fieldPath names a field of the event that prefix names ("events[3].eventType"), or the
// field alone for a single event.
func fieldPath(prefix, name string) string {
	if prefix == "" {
		return name
	}
	return prefix + "." + name
}

// buildEvent validates a decoded event and builds the message to store. prefix is as for
// decodeEvent.
func buildEvent(in eventInput, prefix string, now time.Time) (store.NewMessage, *apiError) {
	field := func(name string) string { return fieldPath(prefix, name) }

	var (
		errs []validationItem
		msg  store.NewMessage
	)

	switch {
	case in.EventType == nil:
		errs = append(errs, item(field("eventType"), "required", field("eventType")+" is missing. Set it to the type of the event, such as company.created."))
	case strings.TrimSpace(*in.EventType) == "":
		errs = append(errs, item(field("eventType"), "minLength", field("eventType")+" is empty. Set it to the type of the event, such as company.created."))
	case utf8.RuneCountInString(*in.EventType) > MaxEventTypeLen:
		errs = append(errs, item(field("eventType"), "maxLength", fmt.Sprintf("%s is %d characters long; the maximum is %d.", field("eventType"), utf8.RuneCountInString(*in.EventType), MaxEventTypeLen)))
	case hasControl(*in.EventType):
		errs = append(errs, item(field("eventType"), "pattern", field("eventType")+" contains a control character. Remove it."))
	default:
		msg.EventType = *in.EventType
	}

	payload := bytes.TrimSpace(in.Payload)
	if len(payload) == 0 || bytes.Equal(payload, []byte("null")) {
		errs = append(errs, item(field("payload"), "required", field("payload")+" is missing. Set it to the event's data as a JSON object."))
	} else if payload[0] != '{' {
		errs = append(errs, item(field("payload"), "type", field("payload")+" must be a JSON object."))
	}

	msg.ID = uuid.NewString()
	if in.ID != nil {
		switch id := *in.ID; {
		case strings.TrimSpace(id) == "":
			errs = append(errs, item(field("id"), "minLength", field("id")+" is empty. Leave it out to let hookd choose an id, or set your own event id."))
		case len(id) > MaxEventIDLen:
			errs = append(errs, item(field("id"), "maxLength", fmt.Sprintf("%s is %d bytes long; the maximum is %d.", field("id"), len(id), MaxEventIDLen)))
		case hasControl(id):
			errs = append(errs, item(field("id"), "pattern", field("id")+" contains a control character. Remove it."))
		default:
			msg.ID = id
		}
	}

	msg.GeneratedDate = now.UTC().Truncate(time.Millisecond)
	if in.GeneratedDate != nil {
		t, err := time.Parse(time.RFC3339Nano, *in.GeneratedDate)
		if err != nil {
			errs = append(errs, item(field("generatedDate"), "format",
				fmt.Sprintf("%s %q is not an RFC 3339 date-time. Use the form 2026-01-02T15:04:05Z, or leave it out to use the time of publishing.", field("generatedDate"), *in.GeneratedDate)))
		} else {
			// The store keeps milliseconds, so the envelope keeps no more, and GET
			// /messages/{messageId} shows the date that consumers receive.
			msg.GeneratedDate = t.UTC().Truncate(time.Millisecond)
		}
	}

	if len(errs) > 0 {
		return store.NewMessage{}, invalid(errs...)
	}

	body, err := encodeEnvelope(msg, payload)
	if err != nil {
		return store.NewMessage{}, invalid(item(field("payload"), "json", fmt.Sprintf("%s is not valid JSON: %v.", field("payload"), err)))
	}
	msg.Body = body
	msg.CreatedAt = now
	msg.Tags = companyTags(payload)
	return msg, nil
}

// encodeEnvelope returns the envelope of msg that consumers receive, with payload
// compacted. It writes the JSON itself, in the field order of envelope, because
// json.Marshal would scan the payload once more to check and compact it again.
func encodeEnvelope(msg store.NewMessage, payload []byte) ([]byte, error) {
	id, err := json.Marshal(msg.ID)
	if err != nil {
		return nil, err
	}
	eventType, err := json.Marshal(msg.EventType)
	if err != nil {
		return nil, err
	}

	buf := bytes.NewBuffer(make([]byte, 0, len(payload)+len(id)+len(eventType)+96))
	buf.WriteString(`{"id":`)
	buf.Write(id)
	buf.WriteString(`,"eventType":`)
	buf.Write(eventType)
	buf.WriteString(`,"generatedDate":"`)
	buf.Write(msg.GeneratedDate.AppendFormat(buf.AvailableBuffer(), time.RFC3339Nano))
	buf.WriteString(`","payload":`)
	if bytes.IndexAny(payload, " \t\r\n") < 0 {
		// The request decoder has checked the payload, and without white space anywhere it
		// is already compact.
		buf.Write(payload)
	} else if err := json.Compact(buf, payload); err != nil {
		return nil, err
	}
	buf.WriteByte('}')
	return buf.Bytes(), nil
}

// companyTags returns payload.referenceCompany.tags, the tags that consumers' companyTags
// filter on. Values that are not strings are left out.
func companyTags(payload []byte) map[string]string {
	// Most payloads have no tags, and parsing the payload again costs as much as decoding
	// the request. encoding/json decodes escapes in keys, so only a payload without a
	// backslash can be skipped on the grounds that it does not spell the key.
	if bytes.IndexByte(payload, '\\') < 0 && !mayHaveTagsKey(payload) {
		return nil
	}

	var p struct {
		ReferenceCompany struct {
			Tags map[string]any `json:"tags"`
		} `json:"referenceCompany"`
	}
	if err := json.Unmarshal(payload, &p); err != nil || len(p.ReferenceCompany.Tags) == 0 {
		return nil
	}
	tags := make(map[string]string, len(p.ReferenceCompany.Tags))
	for k, v := range p.ReferenceCompany.Tags {
		if s, ok := v.(string); ok {
			tags[k] = s
		}
	}
	return tags
}

// mayHaveTagsKey reports whether payload may contain the key "tags" as encoding/json
// matches keys: in any case, with Unicode folding (the long s, U+017F, folds to s).
func mayHaveTagsKey(payload []byte) bool {
	for i := 0; i+3 < len(payload); i++ {
		if payload[i]|0x20 != 't' || payload[i+1]|0x20 != 'a' || payload[i+2]|0x20 != 'g' {
			continue
		}
		if payload[i+3]|0x20 == 's' || bytes.HasPrefix(payload[i+3:], []byte("\u017f")) {
			return true
		}
	}
	return false
}

// writeRawJSON sends an already encoded JSON body.
func writeRawJSON(w http.ResponseWriter, status int, body []byte) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	w.Write(body)
}
