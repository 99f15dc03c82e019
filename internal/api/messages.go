package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/google/uuid"

	"github.com/hookd/hookd/internal/store"
	"github.com/hookd/hookd/signature"
)

// Paging of GET /webhooks/{webhookId}/messages.
const (
	DefaultMessagePage = 50
	MaxMessagePage     = 250
)

// DefaultSecretOverlap is how long the previous secret keeps signing deliveries after a
// rotation, so that receivers can switch to the new secret without losing messages.
const DefaultSecretOverlap = 24 * time.Hour

// consumerMessage is a message with its delivery state for one consumer. Attempts counts
// the failed attempts since the message was queued, resent or recovered; the attempt log
// (GET /messages/{messageId}/attempts) has every attempt.
type consumerMessage struct {
	ID            string               `json:"id"`
	EventType     string               `json:"eventType"`
	GeneratedDate time.Time            `json:"generatedDate"`
	CreatedAt     time.Time            `json:"createdAt"`
	Status        store.DeliveryStatus `json:"status"`
	Attempts      int                  `json:"failedAttempts"`
	NextAttemptAt *time.Time           `json:"nextAttemptAt"`
	LastAttemptAt *time.Time           `json:"lastAttemptAt"`
}

type consumerMessages struct {
	Results []consumerMessage `json:"results"`

	// Next is the cursor of the following page, or null on the last page.
	Next *string `json:"next"`
}

// messageDetail is a message with its payload and its state for each consumer.
type messageDetail struct {
	ID            string            `json:"id"`
	EventType     string            `json:"eventType"`
	GeneratedDate time.Time         `json:"generatedDate"`
	CreatedAt     time.Time         `json:"createdAt"`
	Payload       json.RawMessage   `json:"payload"`
	Deliveries    []messageDelivery `json:"deliveries"`
}

type messageDelivery struct {
	WebhookID     string               `json:"webhookId"`
	Status        store.DeliveryStatus `json:"status"`
	Attempts      int                  `json:"failedAttempts"`
	NextAttemptAt *time.Time           `json:"nextAttemptAt"`
	LastAttemptAt *time.Time           `json:"lastAttemptAt"`
}

type attempt struct {
	ID           int64     `json:"id"`
	WebhookID    string    `json:"webhookId"`
	AttemptedAt  time.Time `json:"attemptedAt"`
	DurationMs   float64   `json:"durationMs"`
	StatusCode   int       `json:"statusCode"`
	Success      bool      `json:"success"`
	Error        string    `json:"error"`
	ResponseBody string    `json:"responseBody"`
}

type attempts struct {
	Results []attempt `json:"results"`
}

type secretResponse struct {
	Key string `json:"key"`

	// PreviousKeyExpiresAt is set while a rotated-out secret still signs deliveries.
	PreviousKeyExpiresAt *time.Time `json:"previousKeyExpiresAt,omitempty"`
}

// nextAttempt returns when the delivery is due next, or nil once it has finished. While an
// attempt is in flight, the stored time is the end of its lease, after which the delivery
// is claimed again.
func nextAttempt(d store.Delivery) *time.Time {
	if d.Status == store.StatusSuccess || d.Status == store.StatusFailure {
		return nil
	}
	return d.NextAttemptAt
}

func (s *Server) listConsumerMessages(w http.ResponseWriter, r *http.Request) error {
	id, apiErr := webhookID(r)
	if apiErr != nil {
		return apiErr
	}
	filter, apiErr := messageFilter(r)
	if apiErr != nil {
		return apiErr
	}
	filter.ConsumerID = id

	// Reading one more than a page shows whether another page follows.
	page := filter.Limit
	filter.Limit++
	list, err := s.store.ListConsumerMessages(r.Context(), credential(r).Client.ID, filter)
	if errors.Is(err, store.ErrNotFound) {
		return consumerNotFound(r.PathValue("webhookId"))
	}
	if err != nil {
		return err
	}

	resp := consumerMessages{Results: make([]consumerMessage, 0, min(len(list), page))}
	for i, cm := range list {
		if i == page {
			next := strconv.FormatInt(list[i-1].Delivery.ID, 10)
			resp.Next = &next
			break
		}
		resp.Results = append(resp.Results, consumerMessage{
			ID:            cm.Message.ID,
			EventType:     cm.Message.EventType,
			GeneratedDate: cm.Message.GeneratedDate,
			CreatedAt:     cm.Message.CreatedAt,
			Status:        cm.Delivery.Status,
			Attempts:      cm.Delivery.Attempts,
			NextAttemptAt: nextAttempt(cm.Delivery),
			LastAttemptAt: cm.Delivery.LastAttemptAt,
		})
	}
	writeJSON(w, http.StatusOK, resp)
	return nil
}

// messageFilter reads the query parameters status, since, until, limit and cursor.
func messageFilter(r *http.Request) (store.MessageFilter, *apiError) {
	q := r.URL.Query()
	f := store.MessageFilter{Limit: DefaultMessagePage}
	var errs []validationItem

	switch status := store.DeliveryStatus(q.Get("status")); status {
	case "", store.StatusSending, store.StatusAttempting, store.StatusSuccess, store.StatusFailure:
		f.Status = status
	default:
		errs = append(errs, item("status", "enum", fmt.Sprintf("status %q is not a message status. Use sending, attempting, success or failure.", status)))
	}

	for _, p := range []struct {
		name string
		dest *time.Time
	}{{"since", &f.Since}, {"until", &f.Until}} {
		if v := q.Get(p.name); v != "" {
			t, err := time.Parse(time.RFC3339Nano, v)
			if err != nil {
				errs = append(errs, item(p.name, "format", fmt.Sprintf("%s %q is not an RFC 3339 date-time such as 2026-01-02T15:04:05Z.", p.name, v)))
				continue
			}
			*p.dest = t
		}
	}

	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > MaxMessagePage {
			errs = append(errs, item("limit", "range", fmt.Sprintf("limit %q must be a whole number from 1 to %d.", v, MaxMessagePage)))
		} else {
			f.Limit = n
		}
	}

	if v := q.Get("cursor"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 1 {
			errs = append(errs, item("cursor", "format", fmt.Sprintf("cursor %q is not a cursor from the next field of an earlier page.", v)))
		} else {
			f.Before = n
		}
	}

	if !f.Since.IsZero() && !f.Until.IsZero() && !f.Until.After(f.Since) {
		errs = append(errs, item("until", "range", "until must be after since."))
	}

	if len(errs) > 0 {
		return f, invalid(errs...)
	}
	return f, nil
}

func (s *Server) getMessage(w http.ResponseWriter, r *http.Request) error {
	id := r.PathValue("messageId")
	detail, err := s.store.GetMessage(r.Context(), credential(r).Client.ID, id)
	if errors.Is(err, store.ErrNotFound) {
		return messageNotFound(id)
	}
	if err != nil {
		return err
	}

	var env envelope
	if err := json.Unmarshal(detail.Message.Body, &env); err != nil {
		return fmt.Errorf("decode stored body of message %s: %w", id, err)
	}
	resp := messageDetail{
		ID:            detail.Message.ID,
		EventType:     detail.Message.EventType,
		GeneratedDate: detail.Message.GeneratedDate,
		CreatedAt:     detail.Message.CreatedAt,
		Payload:       env.Payload,
		Deliveries:    make([]messageDelivery, 0, len(detail.Deliveries)),
	}
	for _, d := range detail.Deliveries {
		resp.Deliveries = append(resp.Deliveries, messageDelivery{
			WebhookID:     d.ConsumerID,
			Status:        d.Status,
			Attempts:      d.Attempts,
			NextAttemptAt: nextAttempt(d),
			LastAttemptAt: d.LastAttemptAt,
		})
	}
	writeJSON(w, http.StatusOK, resp)
	return nil
}

func (s *Server) listAttempts(w http.ResponseWriter, r *http.Request) error {
	id := r.PathValue("messageId")
	list, err := s.store.ListAttempts(r.Context(), credential(r).Client.ID, id)
	if errors.Is(err, store.ErrNotFound) {
		return messageNotFound(id)
	}
	if err != nil {
		return err
	}

	resp := attempts{Results: make([]attempt, 0, len(list))}
	for _, a := range list {
		resp.Results = append(resp.Results, attempt{
			ID:           a.ID,
			WebhookID:    a.ConsumerID,
			AttemptedAt:  a.AttemptedAt,
			DurationMs:   float64(a.Duration.Microseconds()) / 1000,
			StatusCode:   a.StatusCode,
			Success:      a.Success,
			Error:        a.Error,
			ResponseBody: a.ResponseBody,
		})
	}
	writeJSON(w, http.StatusOK, resp)
	return nil
}

func (s *Server) resendMessage(w http.ResponseWriter, r *http.Request) error {
	id := r.PathValue("messageId")
	body, apiErr := readBody(r.Body)
	if apiErr != nil {
		return apiErr
	}
	var req struct {
		WebhookID *string `json:"webhookId"`
	}
	if apiErr := decodeJSONBody(body, &req); apiErr != nil {
		return apiErr
	}
	if req.WebhookID == nil || *req.WebhookID == "" {
		return invalid(item("webhookId", "required", "webhookId is missing. Name the consumer to send the message to again."))
	}
	// Consumer ids are stored in the canonical lowercase form of a UUID.
	parsed, err := uuid.Parse(*req.WebhookID)
	if err != nil {
		return invalid(item("webhookId", "format", fmt.Sprintf("webhookId %q is not a webhook consumer id. Use the id field of a consumer from GET /webhooks.", *req.WebhookID)))
	}
	consumerID := parsed.String()

	err = s.store.ResendMessage(r.Context(), credential(r).Client.ID, id, consumerID, time.Now())
	if errors.Is(err, store.ErrNotFound) {
		if _, getErr := s.store.GetMessage(r.Context(), credential(r).Client.ID, id); errors.Is(getErr, store.ErrNotFound) {
			return messageNotFound(id)
		}
		return newError(http.StatusNotFound,
			"Message %q has no delivery to consumer %q: the consumer does not exist, or the message never went to it. GET /messages/%s lists the consumers it went to.", id, consumerID, id)
	}
	if err != nil {
		return err
	}
	s.wake()
	writeJSON(w, http.StatusAccepted, map[string]string{"id": id, "webhookId": consumerID, "status": string(store.StatusSending)})
	return nil
}

func (s *Server) recoverMessages(w http.ResponseWriter, r *http.Request) error {
	id, apiErr := webhookID(r)
	if apiErr != nil {
		return apiErr
	}
	body, apiErr := readBody(r.Body)
	if apiErr != nil {
		return apiErr
	}
	// The times are strings here, so that a malformed one is reported under its own name
	// rather than as invalid JSON.
	var req struct {
		Since *string `json:"since"`
		Until *string `json:"until"`
	}
	if apiErr := decodeJSONBody(body, &req); apiErr != nil {
		return apiErr
	}
	if req.Since == nil {
		return invalid(item("since", "required", "since is missing. Set it to the RFC 3339 time from which failed messages are sent again."))
	}
	since, apiErr := parseTimeField("since", *req.Since)
	if apiErr != nil {
		return apiErr
	}
	var until time.Time
	if req.Until != nil {
		if until, apiErr = parseTimeField("until", *req.Until); apiErr != nil {
			return apiErr
		}
	}
	now := time.Now()
	switch {
	case since.After(now):
		return invalid(item("since", "range", "since is in the future. Set it to a past time."))
	case !until.IsZero() && !until.After(since):
		return invalid(item("until", "range", "until must be after since."))
	}

	n, err := s.store.RecoverMessages(r.Context(), credential(r).Client.ID, id, since, until, now)
	if errors.Is(err, store.ErrNotFound) {
		return consumerNotFound(r.PathValue("webhookId"))
	}
	if err != nil {
		return err
	}
	s.wake()
	writeJSON(w, http.StatusAccepted, map[string]int{"recovered": n})
	return nil
}

func (s *Server) getSecret(w http.ResponseWriter, r *http.Request) error {
	c, err := s.consumer(r)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, toSecretResponse(c, time.Now()))
	return nil
}

func (s *Server) rotateSecret(w http.ResponseWriter, r *http.Request) error {
	id, apiErr := webhookID(r)
	if apiErr != nil {
		return apiErr
	}
	secret, err := signature.NewSecret()
	if err != nil {
		return err
	}
	now := time.Now()
	c, err := s.store.RotateSecret(r.Context(), credential(r).Client.ID, id, secret, now, s.secretOverlap)
	if errors.Is(err, store.ErrNotFound) {
		return consumerNotFound(r.PathValue("webhookId"))
	}
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, toSecretResponse(c, now))
	return nil
}

// parseTimeField parses an RFC 3339 date-time from the named field of a request body.
func parseTimeField(name, value string) (time.Time, *apiError) {
	t, err := time.Parse(time.RFC3339Nano, value)
	if err != nil {
		return time.Time{}, invalid(item(name, "format", fmt.Sprintf("%s %q is not an RFC 3339 date-time such as 2026-01-02T15:04:05Z.", name, value)))
	}
	return t, nil
}

func toSecretResponse(c store.Consumer, now time.Time) secretResponse {
	resp := secretResponse{Key: c.Secret.String()}
	if c.PreviousSecretExpiresAt != nil && now.Before(*c.PreviousSecretExpiresAt) {
		resp.PreviousKeyExpiresAt = c.PreviousSecretExpiresAt
	}
	return resp
}

func messageNotFound(id string) *apiError {
	return newError(http.StatusNotFound, "No message with id %q exists for this client.", id)
}
