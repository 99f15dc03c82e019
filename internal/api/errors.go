package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
)

// serviceName is the ErrorMessage "service" field of every error hookd sends.
const serviceName = "hookd"

// Values of ErrorMessage.CanBeRetried. Codat's schema declares the field as a string, and
// its TypeScript SDK fails to parse an error body where it is a JSON boolean.
const (
	retryTrue    = "True"
	retryFalse   = "False"
	retryUnknown = "Unknown"
)

// errorMessage is the body of every error response, shaped as Codat's ErrorMessage schema.
type errorMessage struct {
	StatusCode        int              `json:"statusCode"`
	Service           string           `json:"service"`
	Error             string           `json:"error"`
	CorrelationID     string           `json:"correlationId"`
	Validation        *validationError `json:"validation"`
	CanBeRetried      string           `json:"canBeRetried"`
	DetailedErrorCode int              `json:"detailedErrorCode"`
}

type validationError struct {
	Errors   []validationItem `json:"errors"`
	Warnings []validationItem `json:"warnings"`
}

// validationItem names one invalid field: ItemID is the JSON field name ("body" for the
// request body as a whole), Message says what is wrong and how to fix it, and
// ValidatorName names the rule that failed.
type validationItem struct {
	ItemID        string `json:"itemId"`
	Message       string `json:"message"`
	ValidatorName string `json:"validatorName"`
}

// apiError is an error that handlers return to send a specific error response. Any other
// error a handler returns becomes a 500 response.
type apiError struct {
	status     int
	message    string
	validation []validationItem

	// header holds extra response headers, such as Allow or Retry-After.
	header http.Header
}

func (e *apiError) Error() string {
	return fmt.Sprintf("%d %s", e.status, e.message)
}

func newError(status int, format string, args ...any) *apiError {
	return &apiError{status: status, message: fmt.Sprintf(format, args...)}
}

// invalid returns a 400 error listing the invalid fields.
func invalid(items ...validationItem) *apiError {
	msg := "The request is invalid."
	if len(items) == 1 {
		msg = items[0].Message
	} else if len(items) > 1 {
		msg = fmt.Sprintf("The request has %d invalid fields: see validation.errors.", len(items))
	}
	return &apiError{status: http.StatusBadRequest, message: msg, validation: items}
}

// withRetryAfter sets the Retry-After header, in whole seconds, on the error's response.
func (e *apiError) withRetryAfter(seconds int) *apiError {
	return e.withHeader("Retry-After", strconv.Itoa(max(seconds, 1)))
}

func (e *apiError) withHeader(key, value string) *apiError {
	if e.header == nil {
		e.header = http.Header{}
	}
	e.header.Set(key, value)
	return e
}

// canBeRetried returns whether repeating the same request may succeed.
func canBeRetried(status int) string {
	switch {
	case status == http.StatusTooManyRequests, status == http.StatusServiceUnavailable:
		return retryTrue
	case status >= 500:
		return retryUnknown
	default:
		return retryFalse
	}
}

// writeError sends err as an ErrorMessage. Errors that are not *apiError must already be
// logged by the caller; they are sent as a 500 without any detail.
func writeError(w http.ResponseWriter, correlationID string, err error) {
	var e *apiError
	if !errors.As(err, &e) {
		e = newError(http.StatusInternalServerError,
			"An unexpected error occurred. Report the correlation id %s to the operator of this hookd server.", correlationID)
	}

	body := errorMessage{
		StatusCode:    e.status,
		Service:       serviceName,
		Error:         e.message,
		CorrelationID: correlationID,
		CanBeRetried:  canBeRetried(e.status),
	}
	if len(e.validation) > 0 {
		body.Validation = &validationError{Errors: e.validation, Warnings: []validationItem{}}
	}

	for key, values := range e.header {
		w.Header()[key] = values
	}
	writeJSON(w, e.status, body)
}

// writeJSON sends v as a JSON body with the given status.
func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		// Only hookd's own response types reach here, and they always encode.
		panic(fmt.Sprintf("encode response: %v", err))
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(b)+1))
	w.WriteHeader(status)
	w.Write(append(b, '\n'))
}
