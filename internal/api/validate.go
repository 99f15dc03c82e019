package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"reflect"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Limits of a consumer prototype. The tag and event type limits are Codat's; the URL
// limit is hookd's, because browsers and proxies commonly reject longer URLs.
const (
	MaxBodyBytes     = 64 << 10
	MaxURLLength     = 2048
	MaxEventTypeLen  = 128
	MaxCompanyTags   = 10
	MaxCompanyTagLen = 128
)

// consumerPrototype is the JSON body of a create request. Pointers and nil slices tell a
// missing or null field from an empty one.
type consumerPrototype struct {
	URL         *string  `json:"url"`
	EventTypes  []string `json:"eventTypes"`
	CompanyTags []string `json:"companyTags"`
	Disabled    *bool    `json:"disabled"`
}

// consumerInput is a validated prototype.
type consumerInput struct {
	URL         string
	EventTypes  []string
	CompanyTags []string
	Disabled    bool
}

// jsonWhitespace is the white space that JSON allows between tokens.
const jsonWhitespace = " \t\r\n"

// readBody reads a request body of at most MaxBodyBytes.
func readBody(body io.Reader) ([]byte, *apiError) {
	b, err := io.ReadAll(io.LimitReader(body, MaxBodyBytes+1))
	if err != nil {
		return nil, invalid(item("body", "read", fmt.Sprintf("The request body could not be read: %v.", err)))
	}
	if len(b) > MaxBodyBytes {
		return nil, bodyTooLarge()
	}
	return b, nil
}

// decodeJSONBody decodes body, which must be one JSON object, into v. Unknown fields are
// ignored. It returns a 400 *apiError naming the problem.
func decodeJSONBody(body []byte, v any) *apiError {
	if len(bytes.Trim(body, jsonWhitespace)) == 0 {
		return invalid(item("body", "required",
			"The request body is missing. Send a JSON object with this operation's fields; GET /openapi.yaml lists them."))
	}

	dec := json.NewDecoder(bytes.NewReader(body))
	err := dec.Decode(v)
	if err == nil {
		// Anything but white space after the object is an error too.
		if _, err := dec.Token(); !errors.Is(err, io.EOF) {
			return invalid(item("body", "json", "The request body must contain a single JSON object, with nothing after it."))
		}
		return nil
	}

	var (
		syntaxErr *json.SyntaxError
		typeErr   *json.UnmarshalTypeError
	)
	switch {
	case errors.As(err, &syntaxErr):
		return invalid(item("body", "json", fmt.Sprintf("The request body is not valid JSON: %s at byte %d.", syntaxErr, syntaxErr.Offset)))
	case errors.Is(err, io.ErrUnexpectedEOF):
		return invalid(item("body", "json", "The request body is not valid JSON: it ends before the JSON value is complete."))
	case errors.As(err, &typeErr):
		if typeErr.Field == "" {
			return invalid(item("body", "type", fmt.Sprintf("The request body must be a JSON object, not a JSON %s.", typeErr.Value)))
		}
		return invalid(item(typeErr.Field, "type",
			fmt.Sprintf("%s must be %s, not a JSON %s.", typeErr.Field, describeType(typeErr.Field, typeErr.Type), typeErr.Value)))
	default:
		return invalid(item("body", "json", fmt.Sprintf("The request body is not valid JSON: %v.", err)))
	}
}

func bodyTooLarge() *apiError {
	return invalid(item("body", "maxLength", fmt.Sprintf("The request body is larger than %d KiB. Send a smaller body.", MaxBodyBytes>>10)))
}

// describeType names the JSON type a field expects, for type errors. encoding/json reports
// a wrongly typed array element under the array's field name, with the element's type.
func describeType(field string, t reflect.Type) string {
	switch t.Kind() {
	case reflect.String:
		if field == "eventTypes" || field == "companyTags" {
			return "an array of strings"
		}
		return "a string"
	case reflect.Slice:
		if t.Elem().Kind() == reflect.String {
			return "an array of strings"
		}
		return "an array"
	case reflect.Bool:
		return "a boolean or null"
	default:
		return "of another JSON type"
	}
}

func item(field, validator, message string) validationItem {
	return validationItem{ItemID: field, Message: message, ValidatorName: validator}
}

// decodePrototype decodes and validates the body of a create request. Each field is
// decoded on its own, so that one response lists every invalid field, a wrongly typed one
// included. Field names match exactly; unknown fields are ignored.
func decodePrototype(body []byte) (consumerInput, *apiError) {
	var raw map[string]json.RawMessage
	if apiErr := decodeJSONBody(body, &raw); apiErr != nil {
		if apiErr.validation[0].ValidatorName == "required" {
			return consumerInput{}, invalid(item("body", "required",
				`The request body is missing. Send a JSON object such as {"url": "https://example.com/webhook", "eventTypes": ["company.created"]}.`))
		}
		return consumerInput{}, apiErr
	}

	var (
		p        consumerPrototype
		errs     []validationItem
		badField = map[string]bool{}
	)
	for _, f := range []struct {
		name string
		dest any
		want string
	}{
		{"url", &p.URL, "a string"},
		{"eventTypes", &p.EventTypes, "an array of strings"},
		{"companyTags", &p.CompanyTags, "an array of strings or null"},
		{"disabled", &p.Disabled, "a boolean or null"},
	} {
		value, ok := raw[f.name]
		if !ok {
			continue
		}
		if err := json.Unmarshal(value, f.dest); err != nil {
			errs = append(errs, item(f.name, "type", fmt.Sprintf("%s must be %s, not %s.", f.name, f.want, describeJSON(value))))
			badField[f.name] = true
		}
	}

	in, apiErr := p.validate()
	if apiErr != nil {
		for _, it := range apiErr.validation {
			field, _, _ := strings.Cut(it.ItemID, "[")
			if !badField[field] {
				errs = append(errs, it)
			}
		}
	}
	if len(errs) > 0 {
		return consumerInput{}, invalid(errs...)
	}
	return in, nil
}

// describeJSON names the kind of a JSON value for type errors, such as "a JSON number".
func describeJSON(value json.RawMessage) string {
	v := bytes.TrimLeft(value, jsonWhitespace)
	if len(v) == 0 {
		return "empty"
	}
	switch v[0] {
	case '{':
		return "a JSON object"
	case '[':
		return "an array with an element of another type"
	case '"':
		return "a JSON string"
	case 't', 'f':
		return "a JSON boolean"
	case 'n':
		return "null"
	default:
		return "a JSON number"
	}
}

// validate checks every field of p and returns the normalized input, or a 400 *apiError
// that lists every invalid field.
func (p consumerPrototype) validate() (consumerInput, *apiError) {
	var (
		in   consumerInput
		errs []validationItem
	)

	if p.URL == nil {
		errs = append(errs, item("url", "required", "url is missing. Set it to the absolute http or https URL that should receive the webhooks."))
	} else if msg := validateURL(*p.URL); msg != "" {
		errs = append(errs, item("url", "url", msg))
	} else {
		in.URL = *p.URL
	}

	eventTypes, eventErrs := validateEventTypes(p.EventTypes)
	errs = append(errs, eventErrs...)
	in.EventTypes = eventTypes

	tags, tagErrs := validateCompanyTags(p.CompanyTags)
	errs = append(errs, tagErrs...)
	in.CompanyTags = tags

	in.Disabled = p.Disabled != nil && *p.Disabled

	if len(errs) > 0 {
		return consumerInput{}, invalid(errs...)
	}
	return in, nil
}

// validateURL returns what is wrong with a consumer URL, or "" when it is valid: an
// absolute http or https URL with a host, no user information and at most MaxURLLength
// bytes.
func validateURL(raw string) string {
	if raw == "" {
		return "url is empty. Set it to the absolute http or https URL that should receive the webhooks."
	}
	if len(raw) > MaxURLLength {
		return fmt.Sprintf("url is %d bytes long; the maximum is %d.", len(raw), MaxURLLength)
	}
	if strings.TrimSpace(raw) != raw {
		return "url must not start or end with white space."
	}

	u, err := url.Parse(raw)
	if err != nil {
		return fmt.Sprintf("url %q is not a valid URL: %v.", raw, errors.Unwrap(err))
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return fmt.Sprintf("url %q must be an absolute URL starting with http:// or https://.", raw)
	}
	if u.Opaque != "" || u.Hostname() == "" {
		return fmt.Sprintf("url %q has no host. Use the form https://host/path.", raw)
	}
	if u.User != nil {
		return "url must not contain a user name or password. Remove the part before the @ and authenticate the webhooks by their signature."
	}
	return ""
}

// validateEventTypes checks the event types and removes duplicates, keeping the first
// occurrence of each.
func validateEventTypes(types []string) ([]string, []validationItem) {
	if types == nil {
		return nil, []validationItem{item("eventTypes", "required",
			`eventTypes is missing. List the event types this consumer subscribes to, such as ["company.created"].`)}
	}
	if len(types) == 0 {
		return nil, []validationItem{item("eventTypes", "minItems",
			`eventTypes is empty. List at least one event type, such as ["company.created"].`)}
	}

	var (
		errs   []validationItem
		unique = make([]string, 0, len(types))
		seen   = make(map[string]bool, len(types))
	)
	for i, t := range types {
		field := fmt.Sprintf("eventTypes[%d]", i)
		switch {
		case strings.TrimSpace(t) == "":
			errs = append(errs, item(field, "minLength", fmt.Sprintf("%s is empty. Give the name of an event type, such as company.created.", field)))
		case utf8.RuneCountInString(t) > MaxEventTypeLen:
			errs = append(errs, item(field, "maxLength", fmt.Sprintf("%s is %d characters long; the maximum is %d.", field, utf8.RuneCountInString(t), MaxEventTypeLen)))
		case hasControl(t):
			errs = append(errs, item(field, "pattern", fmt.Sprintf("%s contains a control character. Remove it.", field)))
		case !seen[t]:
			seen[t] = true
			unique = append(unique, t)
		}
	}
	return unique, errs
}

// validateCompanyTags checks the tags and removes duplicates, keeping the first occurrence
// of each. nil (the field missing or null) stays nil: the consumer takes every company.
func validateCompanyTags(tags []string) ([]string, []validationItem) {
	if tags == nil {
		return nil, nil
	}
	if len(tags) > MaxCompanyTags {
		return nil, []validationItem{item("companyTags", "maxItems",
			fmt.Sprintf("companyTags has %d tags; the maximum is %d. Remove %d of them.", len(tags), MaxCompanyTags, len(tags)-MaxCompanyTags))}
	}

	var (
		errs   []validationItem
		unique = make([]string, 0, len(tags))
		seen   = make(map[string]bool, len(tags))
	)
	for i, tag := range tags {
		field := fmt.Sprintf("companyTags[%d]", i)
		if validator, msg := validateCompanyTag(tag); msg != "" {
			errs = append(errs, item(field, validator, field+" "+msg))
			continue
		}
		if !seen[tag] {
			seen[tag] = true
			unique = append(unique, tag)
		}
	}
	return unique, errs
}

// validateCompanyTag returns the rule one tag breaks and what is wrong with it, or "" when
// it has the form key:value with a non-blank key and value, at most MaxCompanyTagLen
// characters and no control characters.
func validateCompanyTag(tag string) (validator, message string) {
	if n := utf8.RuneCountInString(tag); n > MaxCompanyTagLen {
		return "maxLength", fmt.Sprintf("is %d characters long; the maximum is %d.", n, MaxCompanyTagLen)
	}
	key, value, ok := strings.Cut(tag, ":")
	if !ok || strings.TrimSpace(key) == "" || strings.TrimSpace(value) == "" {
		return "pattern", fmt.Sprintf("%q must have the form key:value, such as region:uk.", tag)
	}
	if hasControl(tag) {
		return "pattern", "contains a control character. Remove it."
	}
	return "", ""
}

func hasControl(s string) bool {
	return strings.ContainsFunc(s, unicode.IsControl)
}
