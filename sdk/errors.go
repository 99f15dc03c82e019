package sdk

import (
	"encoding/json"
	"fmt"
	"mime"
	"net/http"
	"slices"
	"strings"
	"unicode/utf8"
)

// maxBodyInError is the number of body bytes that SDKError.Error quotes.
const maxBodyInError = 256

// ErrorMessage is an error response of a status that the operation declares, with
// Codat's ErrorMessage body. Every body field is optional and zero when absent.
//
// The body's "error" field is Message, because Error is the method of the error
// interface.
type ErrorMessage struct {
	// StatusCode is the body's statusCode, which hookd sets to the HTTP status.
	StatusCode int `json:"statusCode"`

	// Service names the service that produced the error. hookd sends "hookd".
	Service string `json:"service"`

	// Message is the body's "error" field, a description of the error and, where one
	// exists, of the fix.
	Message string `json:"error"`

	// CorrelationID identifies the request in the server's log. When the body has none,
	// it is the X-Correlation-Id response header.
	CorrelationID string `json:"correlationId"`

	// Validation lists the invalid fields of a 400 response, and is nil otherwise.
	Validation *ErrorValidation `json:"validation"`

	// CanBeRetried is "True", "False" or "Unknown": whether sending the same request
	// again can succeed. It is a string, as in Codat's schema.
	CanBeRetried string `json:"canBeRetried"`

	// DetailedErrorCode refines StatusCode. hookd sends 0.
	DetailedErrorCode int `json:"detailedErrorCode"`

	// HTTPStatus is the status of the HTTP response.
	HTTPStatus int `json:"-"`

	// Body is the raw response body.
	Body []byte `json:"-"`

	// RawResponse is the HTTP response. Its Body reads the bytes of Body.
	RawResponse *http.Response `json:"-"`
}

// ErrorValidation lists the problems found while validating a request.
type ErrorValidation struct {
	// Errors are the problems that caused the request to be rejected.
	Errors []ErrorValidationItem `json:"errors"`

	// Warnings are problems that did not cause a rejection. hookd sends none.
	Warnings []ErrorValidationItem `json:"warnings"`
}

// ErrorValidationItem is one validation problem.
type ErrorValidationItem struct {
	// ItemID names the field, query parameter or header with the problem, such as
	// "url", "eventTypes[1]" or "Idempotency-Key", or "body" for the body as a whole.
	ItemID string `json:"itemId"`

	// Message describes the problem.
	Message string `json:"message"`

	// ValidatorName names the rule that failed, such as "required" or "maxItems".
	ValidatorName string `json:"validatorName"`
}

// Error returns the status, the message, the validation errors when the message does not
// already say them, and the correlation id.
func (e *ErrorMessage) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "hookd: %s", statusText(e.HTTPStatus))
	if e.Message != "" {
		fmt.Fprintf(&b, ": %s", e.Message)
	}
	if e.Validation != nil && !e.messageIsSingleItem() {
		for i, item := range e.Validation.Errors {
			sep := "; "
			if i == 0 {
				sep = " ["
			}
			fmt.Fprintf(&b, "%s%s: %s", sep, item.ItemID, item.Message)
		}
		if len(e.Validation.Errors) > 0 {
			b.WriteString("]")
		}
	}
	if e.CorrelationID != "" {
		fmt.Fprintf(&b, " (correlation id %s)", e.CorrelationID)
	}
	return b.String()
}

// messageIsSingleItem reports whether Message is the message of the only validation
// error, as hookd sends for a request with one invalid field.
func (e *ErrorMessage) messageIsSingleItem() bool {
	return len(e.Validation.Errors) == 1 && e.Validation.Errors[0].Message == e.Message
}

// SDKError is a response that the operation does not declare. It is an error status
// without an ErrorMessage in the operation's OpenAPI description, a success status other
// than the expected one, or a body whose content type or form does not fit the status.
type SDKError struct {
	// Message describes what was unexpected about the response.
	Message string

	// StatusCode is the status of the HTTP response.
	StatusCode int

	// Body is the raw response body.
	Body []byte

	// RawResponse is the HTTP response. Its Body reads the bytes of Body.
	RawResponse *http.Response
}

// Error returns the message, the status, the content type and the start of the body.
func (e *SDKError) Error() string {
	var contentType string
	if e.RawResponse != nil {
		contentType = e.RawResponse.Header.Get("Content-Type")
	}
	msg := fmt.Sprintf("hookd: %s: %s", e.Message, statusText(e.StatusCode))
	if contentType != "" {
		msg += fmt.Sprintf(", content type %q", contentType)
	}
	if len(e.Body) > 0 {
		msg += fmt.Sprintf(", body %q", truncate(e.Body, maxBodyInError))
	}
	return msg
}

// ResponseValidationError is a response with the expected success status whose body does
// not decode into the operation's result type.
type ResponseValidationError struct {
	// Type names the result type, such as "WebhookConsumer".
	Type string

	// StatusCode is the status of the HTTP response.
	StatusCode int

	// Body is the raw response body.
	Body []byte

	// RawResponse is the HTTP response. Its Body reads the bytes of Body.
	RawResponse *http.Response

	// Err is the decoding error.
	Err error
}

// Error returns the status, the result type and the decoding error.
func (e *ResponseValidationError) Error() string {
	return fmt.Sprintf("hookd: the %s response body is not a valid %s: %v", statusText(e.StatusCode), e.Type, e.Err)
}

// Unwrap returns the decoding error.
func (e *ResponseValidationError) Unwrap() error { return e.Err }

// decodeResponse turns resp into op's result, decoded into out, or into the error that
// the package documentation describes.
func decodeResponse(resp *response, op operation, out any) error {
	isJSON := isJSONContentType(resp.header.Get("Content-Type"))

	switch {
	case resp.status == op.success && out == nil:
		return nil
	case resp.status == op.success && !isJSON:
		return resp.sdkError("unexpected content type of a success response")
	case resp.status == op.success:
		if err := json.Unmarshal(resp.body, out); err != nil {
			return &ResponseValidationError{
				Type:        op.resultType,
				StatusCode:  resp.status,
				Body:        resp.body,
				RawResponse: resp.raw,
				Err:         err,
			}
		}
		return nil
	case slices.Contains(op.errorStatuses, resp.status) && isJSON:
		return resp.errorMessage()
	case resp.status >= 400:
		return resp.sdkError("unexpected error response of " + op.name)
	default:
		return resp.sdkError("unexpected status of " + op.name)
	}
}

// errorMessage decodes resp as an ErrorMessage, or returns an SDKError when the body is
// not one.
func (resp *response) errorMessage() error {
	e := &ErrorMessage{}
	if err := json.Unmarshal(resp.body, e); err != nil {
		return resp.sdkError(fmt.Sprintf("error body is not a valid ErrorMessage (%v)", err))
	}
	e.HTTPStatus = resp.status
	e.Body = resp.body
	e.RawResponse = resp.raw
	if e.CorrelationID == "" {
		e.CorrelationID = resp.header.Get("X-Correlation-Id")
	}
	return e
}

func (resp *response) sdkError(message string) *SDKError {
	return &SDKError{Message: message, StatusCode: resp.status, Body: resp.body, RawResponse: resp.raw}
}

// isJSONContentType reports whether a Content-Type header names application/json, with
// any parameters.
func isJSONContentType(header string) bool {
	mediaType, _, err := mime.ParseMediaType(header)
	return err == nil && mediaType == "application/json"
}

// statusText returns a status such as "404 Not Found".
func statusText(status int) string {
	if text := http.StatusText(status); text != "" {
		return fmt.Sprintf("%d %s", status, text)
	}
	return fmt.Sprintf("status %d", status)
}

// truncate returns at most n bytes of b, cut at a rune boundary, with "..." when it cut.
func truncate(b []byte, n int) string {
	if len(b) <= n {
		return string(b)
	}
	cut := n
	for cut > 0 && !utf8.RuneStart(b[cut]) {
		cut--
	}
	return string(b[:cut]) + "..."
}
