package sdk_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/hookd/hookd/sdk"
)

func TestUndeclaredResponses(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	none := sdk.WithRetries(sdk.RetryConfig{Strategy: sdk.StrategyNone})
	create := func(c *sdk.Client) error {
		_, err := c.Webhooks.CreateConsumer(ctx, sdk.WebhookConsumerPrototype{URL: "https://example.com/a", EventTypes: []string{"a"}}, none)
		return err
	}
	list := func(c *sdk.Client) error { _, err := c.Webhooks.ListConsumers(ctx, none); return err }
	del := func(c *sdk.Client) error {
		return c.Webhooks.DeleteConsumer(ctx, sdk.DeleteWebhookConsumerRequest{WebhookID: "w1"}, none)
	}
	get := func(c *sdk.Client) error { _, err := c.Webhooks.GetConsumer(ctx, "w1", none); return err }

	tests := []struct {
		name        string
		call        func(*sdk.Client) error
		step        http.HandlerFunc
		wantStatus  int
		wantMessage string
	}{
		{"409 on create", create, errorReply(http.StatusConflict), http.StatusConflict, "unexpected error response of create webhook consumer"},
		{"400 on delete", del, errorReply(http.StatusBadRequest), http.StatusBadRequest, "unexpected error response"},
		{"404 on list", list, errorReply(http.StatusNotFound), http.StatusNotFound, "unexpected error response"},
		{"403 on get", get, errorReply(http.StatusForbidden), http.StatusForbidden, "unexpected error response"},
		{"500 as plain text", list, reply(http.StatusInternalServerError, "upstream failed", "Content-Type", "text/plain"),
			http.StatusInternalServerError, "unexpected error response"},
		{"declared status with a body that is not an ErrorMessage", list, reply(http.StatusBadRequest, `{"statusCode":"400"}`),
			http.StatusBadRequest, "error body is not a valid ErrorMessage"},
		{"200 on create", create, reply(http.StatusOK, consumerJSON), http.StatusOK, "unexpected status of create webhook consumer"},
		{"200 on delete", del, reply(http.StatusOK, `{}`), http.StatusOK, "unexpected status"},
		{"success as HTML", list, reply(http.StatusOK, "<html></html>", "Content-Type", "text/html"),
			http.StatusOK, "unexpected content type of a success response"},
		{"redirect", list, reply(http.StatusNotModified, ""), http.StatusNotModified, "unexpected status"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			url, _ := scripted(t, tt.step)
			err := tt.call(sdk.New(sdk.WithServerURL(url)))

			var sdkErr *sdk.SDKError
			if !errors.As(err, &sdkErr) {
				t.Fatalf("error = %v (%T), want *sdk.SDKError", err, err)
			}
			var msg *sdk.ErrorMessage
			if errors.As(err, &msg) {
				t.Errorf("error is also an *sdk.ErrorMessage: %v", msg)
			}
			if sdkErr.StatusCode != tt.wantStatus || sdkErr.RawResponse == nil || sdkErr.RawResponse.StatusCode != tt.wantStatus {
				t.Errorf("StatusCode = %d, want %d", sdkErr.StatusCode, tt.wantStatus)
			}
			if !strings.Contains(sdkErr.Message, tt.wantMessage) {
				t.Errorf("Message = %q, want it to contain %q", sdkErr.Message, tt.wantMessage)
			}
			if !strings.Contains(err.Error(), http.StatusText(tt.wantStatus)) {
				t.Errorf("Error() = %q, want the status", err.Error())
			}
			raw, _ := io.ReadAll(sdkErr.RawResponse.Body)
			if string(raw) != string(sdkErr.Body) {
				t.Errorf("RawResponse.Body = %q, want Body %q", raw, sdkErr.Body)
			}
		})
	}
}

func TestSDKErrorTruncatesBody(t *testing.T) {
	t.Parallel()
	body := strings.Repeat("é", 400)
	url, _ := scripted(t, reply(http.StatusTeapot, body, "Content-Type", "text/plain; charset=utf-8"))
	_, err := sdk.New(sdk.WithServerURL(url)).Webhooks.ListConsumers(context.Background())
	var sdkErr *sdk.SDKError
	if !errors.As(err, &sdkErr) {
		t.Fatalf("error = %v, want *sdk.SDKError", err)
	}
	if string(sdkErr.Body) != body {
		t.Error("Body lost bytes of the response")
	}
	text := err.Error()
	if len(text) > 400 || !strings.Contains(text, `...`) || !strings.Contains(text, "text/plain") {
		t.Errorf("Error() = %q, want the content type and at most 256 bytes of the body", text)
	}
}

func TestResponseValidationError(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	tests := []struct {
		name     string
		call     func(*sdk.Client) error
		step     http.HandlerFunc
		wantType string
	}{
		{"consumer id of the wrong type", func(c *sdk.Client) error {
			_, err := c.Webhooks.CreateConsumer(ctx, sdk.WebhookConsumerPrototype{})
			return err
		}, reply(http.StatusCreated, `{"id": 5}`), "WebhookConsumer"},
		{"bare array of consumers", func(c *sdk.Client) error {
			_, err := c.Webhooks.ListConsumers(ctx)
			return err
		}, reply(http.StatusOK, `[]`), "WebhookConsumers"},
		{"truncated envelope", func(c *sdk.Client) error {
			_, err := c.Events.PublishEvent(ctx, sdk.Event{EventType: "a", Payload: map[string]any{}})
			return err
		}, reply(http.StatusAccepted, `{"id": "e1", "payload": {`), "EventEnvelope"},
		{"attempts as a number", func(c *sdk.Client) error {
			_, err := c.Messages.ListAttempts(ctx, "m1")
			return err
		}, reply(http.StatusOK, `{"results": 3}`), "MessageAttempts"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			url, _ := scripted(t, tt.step)
			err := tt.call(sdk.New(sdk.WithServerURL(url)))

			var valErr *sdk.ResponseValidationError
			if !errors.As(err, &valErr) {
				t.Fatalf("error = %v (%T), want *sdk.ResponseValidationError", err, err)
			}
			if valErr.Type != tt.wantType || valErr.Err == nil || valErr.RawResponse == nil || len(valErr.Body) == 0 {
				t.Errorf("error = %+v, want type %s with the decoding error and the response", valErr, tt.wantType)
			}
			if !strings.Contains(err.Error(), tt.wantType) {
				t.Errorf("Error() = %q, want the type %s", err.Error(), tt.wantType)
			}
			var syntaxErr *json.SyntaxError
			var typeErr *json.UnmarshalTypeError
			if !errors.As(err, &syntaxErr) && !errors.As(err, &typeErr) {
				t.Errorf("Unwrap does not lead to the JSON error: %v", err)
			}
		})
	}
}
