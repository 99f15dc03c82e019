package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"

	"github.com/google/uuid"

	"github.com/hookd/hookd/internal/store"
	"github.com/hookd/hookd/signature"
)

// webhookConsumer is the JSON form of a consumer, Codat's WebhookConsumer schema.
// EventTypes is never null; CompanyTags is null when the consumer takes every company.
// DisabledReason is a hookd extension, which Codat's SDKs ignore.
type webhookConsumer struct {
	ID             string   `json:"id"`
	URL            string   `json:"url"`
	Disabled       bool     `json:"disabled"`
	EventTypes     []string `json:"eventTypes"`
	CompanyTags    []string `json:"companyTags"`
	DisabledReason string   `json:"disabledReason,omitempty"`
}

// webhookConsumers is Codat's WebhookConsumers schema.
type webhookConsumers struct {
	Results []webhookConsumer `json:"results"`
}

func toWebhookConsumer(c store.Consumer) webhookConsumer {
	eventTypes := c.EventTypes
	if eventTypes == nil {
		eventTypes = []string{}
	}
	return webhookConsumer{
		ID:             c.ID,
		URL:            c.URL,
		Disabled:       c.Disabled,
		EventTypes:     eventTypes,
		CompanyTags:    c.CompanyTags,
		DisabledReason: c.DisabledReason,
	}
}

func (s *Server) listConsumers(w http.ResponseWriter, r *http.Request) error {
	consumers, err := s.store.ListConsumers(r.Context(), credential(r).Client.ID)
	if err != nil {
		return err
	}

	resp := webhookConsumers{Results: make([]webhookConsumer, 0, len(consumers))}
	for _, c := range consumers {
		resp.Results = append(resp.Results, toWebhookConsumer(c))
	}
	writeJSON(w, http.StatusOK, resp)
	return nil
}

func (s *Server) createConsumer(w http.ResponseWriter, r *http.Request) error {
	body, apiErr := readBody(r.Body)
	if apiErr != nil {
		return apiErr
	}
	key, apiErr := idempotencyKey(r)
	if apiErr != nil {
		return apiErr
	}
	in, apiErr := decodePrototype(body)
	if apiErr != nil {
		return apiErr
	}
	if apiErr := s.checkDestination(in.URL); apiErr != nil {
		return apiErr
	}
	secret, err := signature.NewSecret()
	if err != nil {
		return err
	}

	consumer, err := s.store.CreateConsumer(r.Context(), store.Consumer{
		ID:             uuid.NewString(),
		ClientID:       credential(r).Client.ID,
		URL:            in.URL,
		EventTypes:     in.EventTypes,
		CompanyTags:    in.CompanyTags,
		Disabled:       in.Disabled,
		Secret:         secret,
		IdempotencyKey: key,
	})
	if errors.Is(err, store.ErrConsumerLimit) {
		return invalid(item("body", "maxConsumers", fmt.Sprintf(
			"This client already has the maximum of %d webhook consumers. Delete an unused consumer first (DELETE /webhooks/{webhookId}), then create this one.",
			store.MaxConsumersPerClient)))
	}
	if err != nil {
		return err
	}

	writeJSON(w, http.StatusCreated, toWebhookConsumer(consumer))
	return nil
}

func (s *Server) deleteConsumer(w http.ResponseWriter, r *http.Request) error {
	id, apiErr := webhookID(r)
	if apiErr != nil {
		return apiErr
	}

	err := s.store.DeleteConsumer(r.Context(), credential(r).Client.ID, id)
	if errors.Is(err, store.ErrNotFound) {
		return consumerNotFound(r.PathValue("webhookId"))
	}
	if err != nil {
		return err
	}

	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Server) getConsumer(w http.ResponseWriter, r *http.Request) error {
	c, err := s.consumer(r)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, toWebhookConsumer(c))
	return nil
}

// consumer loads the consumer named by the request's webhookId, or returns a 404 error.
func (s *Server) consumer(r *http.Request) (store.Consumer, error) {
	id, apiErr := webhookID(r)
	if apiErr != nil {
		return store.Consumer{}, apiErr
	}
	c, err := s.store.GetConsumer(r.Context(), credential(r).Client.ID, id)
	if errors.Is(err, store.ErrNotFound) {
		return store.Consumer{}, consumerNotFound(r.PathValue("webhookId"))
	}
	return c, err
}

// webhookID returns the request's webhookId in canonical form. A malformed id is 404, not
// 400: Codat declares no 400 for its delete operation, and its SDKs would report a 400 as
// an unexpected error.
func webhookID(r *http.Request) (string, *apiError) {
	raw := r.PathValue("webhookId")
	parsed, err := uuid.Parse(raw)
	if err != nil {
		return "", consumerNotFound(raw)
	}
	return parsed.String(), nil
}

// consumerPatch is the JSON body of PATCH /webhooks/{webhookId}. Raw fields tell a
// missing field (nil) from a null one.
type consumerPatch struct {
	URL         json.RawMessage `json:"url"`
	EventTypes  json.RawMessage `json:"eventTypes"`
	CompanyTags json.RawMessage `json:"companyTags"`
	Disabled    json.RawMessage `json:"disabled"`
}

func (s *Server) updateConsumer(w http.ResponseWriter, r *http.Request) error {
	id, apiErr := webhookID(r)
	if apiErr != nil {
		return apiErr
	}
	body, apiErr := readBody(r.Body)
	if apiErr != nil {
		return apiErr
	}
	var patch consumerPatch
	if apiErr := decodeJSONBody(body, &patch); apiErr != nil {
		return apiErr
	}
	update, apiErr := patch.validate()
	if apiErr != nil {
		return apiErr
	}
	if update.URL != nil {
		if apiErr := s.checkDestination(*update.URL); apiErr != nil {
			return apiErr
		}
	}

	c, err := s.store.UpdateConsumer(r.Context(), credential(r).Client.ID, id, update)
	if errors.Is(err, store.ErrNotFound) {
		return consumerNotFound(r.PathValue("webhookId"))
	}
	if err != nil {
		return err
	}
	if !c.Disabled {
		s.wake()
	}
	writeJSON(w, http.StatusOK, toWebhookConsumer(c))
	return nil
}

// validate checks the fields present in the patch with the rules of create.
func (p consumerPatch) validate() (store.ConsumerUpdate, *apiError) {
	var (
		u    store.ConsumerUpdate
		errs []validationItem
	)
	present := func(raw json.RawMessage) bool { return raw != nil }
	isNull := func(raw json.RawMessage) bool { return string(raw) == "null" }
	decode := func(name string, raw json.RawMessage, v any, want string) bool {
		if err := json.Unmarshal(raw, v); err != nil {
			errs = append(errs, item(name, "type", fmt.Sprintf("%s must be %s.", name, want)))
			return false
		}
		return true
	}

	if present(p.URL) {
		var url string
		if isNull(p.URL) {
			errs = append(errs, item("url", "required", "url cannot be null. Leave it out to keep the current URL."))
		} else if decode("url", p.URL, &url, "a string") {
			if msg := validateURL(url); msg != "" {
				errs = append(errs, item("url", "url", msg))
			} else {
				u.URL = &url
			}
		}
	}

	if present(p.EventTypes) {
		var types []string
		if isNull(p.EventTypes) {
			errs = append(errs, item("eventTypes", "required", "eventTypes cannot be null. Leave it out to keep the current event types."))
		} else if decode("eventTypes", p.EventTypes, &types, "an array of strings") {
			if types == nil {
				types = []string{}
			}
			unique, typeErrs := validateEventTypes(types)
			errs = append(errs, typeErrs...)
			u.EventTypes = unique
		}
	}

	if present(p.CompanyTags) {
		var tags []string
		if decode("companyTags", p.CompanyTags, &tags, "an array of strings or null") {
			unique, tagErrs := validateCompanyTags(tags)
			errs = append(errs, tagErrs...)
			u.SetCompanyTags, u.CompanyTags = true, unique
		}
	}

	if present(p.Disabled) {
		var disabled *bool
		if decode("disabled", p.Disabled, &disabled, "a boolean or null") {
			u.Disabled = new(bool)
			*u.Disabled = disabled != nil && *disabled
		}
	}

	if len(errs) > 0 {
		return store.ConsumerUpdate{}, invalid(errs...)
	}
	return u, nil
}

// checkDestination applies the server's destination check to a consumer URL.
func (s *Server) checkDestination(url string) *apiError {
	if s.checkURL == nil {
		return nil
	}
	if err := s.checkURL(url); err != nil {
		return invalid(item("url", "destination", fmt.Sprintf("url %q cannot receive webhooks from this server: %v.", url, err)))
	}
	return nil
}

// consumerNotFound is the same for a consumer that does not exist and for another
// client's consumer, so that callers cannot learn which consumer ids exist.
func consumerNotFound(id string) *apiError {
	return newError(http.StatusNotFound, "No webhook consumer with id %q exists for this client. List them with GET /webhooks.", id)
}
