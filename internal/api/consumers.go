package api

import (
	"errors"
	"fmt"
	"net/http"

	"github.com/google/uuid"

	"github.com/hookd/hookd/internal/store"
)

// webhookConsumer is the JSON form of a consumer, Codat's WebhookConsumer schema.
// EventTypes is never null; CompanyTags is null when the consumer takes every company.
type webhookConsumer struct {
	ID          string   `json:"id"`
	URL         string   `json:"url"`
	Disabled    bool     `json:"disabled"`
	EventTypes  []string `json:"eventTypes"`
	CompanyTags []string `json:"companyTags"`
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
	return webhookConsumer{ID: c.ID, URL: c.URL, Disabled: c.Disabled, EventTypes: eventTypes, CompanyTags: c.CompanyTags}
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
	var proto consumerPrototype
	if apiErr := decodeJSONBody(body, &proto); apiErr != nil {
		return apiErr
	}
	in, apiErr := proto.validate()
	if apiErr != nil {
		return apiErr
	}

	consumer, err := s.store.CreateConsumer(r.Context(), store.Consumer{
		ID:          uuid.NewString(),
		ClientID:    credential(r).Client.ID,
		URL:         in.URL,
		EventTypes:  in.EventTypes,
		CompanyTags: in.CompanyTags,
		Disabled:    in.Disabled,
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
	id := r.PathValue("webhookId")

	// A malformed id is 404, not 400: Codat declares no 400 for this operation, and its
	// SDKs would report a 400 as an unexpected error.
	parsed, err := uuid.Parse(id)
	if err != nil {
		return consumerNotFound(id)
	}

	err = s.store.DeleteConsumer(r.Context(), credential(r).Client.ID, parsed.String())
	if errors.Is(err, store.ErrNotFound) {
		return consumerNotFound(id)
	}
	if err != nil {
		return err
	}

	w.WriteHeader(http.StatusNoContent)
	return nil
}

// consumerNotFound is the same for a consumer that does not exist and for another
// client's consumer, so that callers cannot learn which consumer ids exist.
func consumerNotFound(id string) *apiError {
	return newError(http.StatusNotFound, "No webhook consumer with id %q exists for this client. List them with GET /webhooks.", id)
}
