package api

import (
	"bytes"
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"
	"testing/iotest"
)

const testURL = "https://example.com/webhook"

// prototypeJSON returns a create request body with the given fields. It panics when a
// value does not encode, which only a broken test case causes.
func prototypeJSON(fields map[string]any) string {
	b, err := json.Marshal(fields)
	if err != nil {
		panic(err)
	}
	return string(b)
}

// decodeAndValidate runs body through the create handler's decoding and validation.
func decodeAndValidate(body string) (consumerInput, *apiError) {
	return decodePrototype([]byte(body))
}

// failure is the part of a validation item that a client can match on.
type failure struct {
	itemID    string
	validator string
}

func failuresOf(apiErr *apiError) []failure {
	var got []failure
	for _, it := range apiErr.validation {
		got = append(got, failure{itemID: it.ItemID, validator: it.ValidatorName})
	}
	return got
}

// Strings of runes that take one to four bytes in UTF-8.
var (
	asciiRunes = strings.Repeat("a", MaxEventTypeLen)
	twoByte    = strings.Repeat("\u00e9", MaxEventTypeLen)
	threeByte  = strings.Repeat("\u65e5", MaxEventTypeLen)
	fourByte   = strings.Repeat("\U0001F600", MaxEventTypeLen)
)

func tags(n int) []string {
	list := make([]string, n)
	for i := range list {
		list[i] = "tag:" + strings.Repeat("v", i+1)
	}
	return list
}

func TestValidateRejects(t *testing.T) {
	longURL := testURL + "/" + strings.Repeat("a", MaxURLLength-len(testURL))

	tests := []struct {
		name string
		body string
		want []failure
	}{
		// The body as a whole.
		{"missing body", "", []failure{{"body", "required"}}},
		{"whitespace body", " \t\r\n ", []failure{{"body", "required"}}},
		{"malformed json", `{"url": "https://example.com",`, []failure{{"body", "json"}}},
		{"unquoted key", `{url: "https://example.com"}`, []failure{{"body", "json"}}},
		{"invalid token", `{"url": nope}`, []failure{{"body", "json"}}},
		{"trailing object", prototypeJSON(map[string]any{"url": testURL, "eventTypes": []string{"a"}}) + ` {}`, []failure{{"body", "json"}}},
		{"trailing text", prototypeJSON(map[string]any{"url": testURL, "eventTypes": []string{"a"}}) + `x`, []failure{{"body", "json"}}},
		{"array body", `[` + prototypeJSON(map[string]any{"url": testURL, "eventTypes": []string{"a"}}) + `]`, []failure{{"body", "type"}}},
		{"string body", `"https://example.com"`, []failure{{"body", "type"}}},
		{"number body", `42`, []failure{{"body", "type"}}},
		{"null body", `null`, []failure{{"url", "required"}, {"eventTypes", "required"}}},
		{"empty object", `{}`, []failure{{"url", "required"}, {"eventTypes", "required"}}},

		// Field types.
		{"url number", `{"url": 1, "eventTypes": ["a"]}`, []failure{{"url", "type"}}},
		{"url object", `{"url": {}, "eventTypes": ["a"]}`, []failure{{"url", "type"}}},
		{"eventTypes string", `{"url": "https://example.com", "eventTypes": "a"}`, []failure{{"eventTypes", "type"}}},
		{"eventTypes number item", `{"url": "https://example.com", "eventTypes": ["a", 1]}`, []failure{{"eventTypes", "type"}}},
		{"companyTags string", `{"url": "https://example.com", "eventTypes": ["a"], "companyTags": "k:v"}`, []failure{{"companyTags", "type"}}},
		{"companyTags bool item", `{"url": "https://example.com", "eventTypes": ["a"], "companyTags": [true]}`, []failure{{"companyTags", "type"}}},
		{"disabled string", `{"url": "https://example.com", "eventTypes": ["a"], "disabled": "true"}`, []failure{{"disabled", "type"}}},
		{"disabled number", `{"url": "https://example.com", "eventTypes": ["a"], "disabled": 1}`, []failure{{"disabled", "type"}}},

		// url.
		{"url missing", prototypeJSON(map[string]any{"eventTypes": []string{"a"}}), []failure{{"url", "required"}}},
		{"url null", prototypeJSON(map[string]any{"url": nil, "eventTypes": []string{"a"}}), []failure{{"url", "required"}}},
		{"url empty", prototypeJSON(map[string]any{"url": "", "eventTypes": []string{"a"}}), []failure{{"url", "url"}}},
		{"url relative", prototypeJSON(map[string]any{"url": "/webhook", "eventTypes": []string{"a"}}), []failure{{"url", "url"}}},
		{"url no scheme", prototypeJSON(map[string]any{"url": "example.com/webhook", "eventTypes": []string{"a"}}), []failure{{"url", "url"}}},
		{"url ftp", prototypeJSON(map[string]any{"url": "ftp://example.com/webhook", "eventTypes": []string{"a"}}), []failure{{"url", "url"}}},
		{"url user and password", prototypeJSON(map[string]any{"url": "https://user:secret@example.com/webhook", "eventTypes": []string{"a"}}), []failure{{"url", "url"}}},
		{"url user only", prototypeJSON(map[string]any{"url": "https://user@example.com/webhook", "eventTypes": []string{"a"}}), []failure{{"url", "url"}}},
		{"url empty user", prototypeJSON(map[string]any{"url": "https://@example.com/webhook", "eventTypes": []string{"a"}}), []failure{{"url", "url"}}},
		{"url over 2048 bytes", prototypeJSON(map[string]any{"url": longURL, "eventTypes": []string{"a"}}), []failure{{"url", "url"}}},
		{"url empty authority", prototypeJSON(map[string]any{"url": "https:///webhook", "eventTypes": []string{"a"}}), []failure{{"url", "url"}}},
		{"url scheme only", prototypeJSON(map[string]any{"url": "https://", "eventTypes": []string{"a"}}), []failure{{"url", "url"}}},
		{"url port only", prototypeJSON(map[string]any{"url": "http://:8080/webhook", "eventTypes": []string{"a"}}), []failure{{"url", "url"}}},
		{"url opaque", prototypeJSON(map[string]any{"url": "https:example.com", "eventTypes": []string{"a"}}), []failure{{"url", "url"}}},
		{"url leading space", prototypeJSON(map[string]any{"url": " " + testURL, "eventTypes": []string{"a"}}), []failure{{"url", "url"}}},
		{"url bad escape", prototypeJSON(map[string]any{"url": testURL + "/%zz", "eventTypes": []string{"a"}}), []failure{{"url", "url"}}},

		// eventTypes.
		{"eventTypes missing", prototypeJSON(map[string]any{"url": testURL}), []failure{{"eventTypes", "required"}}},
		{"eventTypes null", prototypeJSON(map[string]any{"url": testURL, "eventTypes": nil}), []failure{{"eventTypes", "required"}}},
		{"eventTypes empty", prototypeJSON(map[string]any{"url": testURL, "eventTypes": []string{}}), []failure{{"eventTypes", "minItems"}}},
		{"event type empty", prototypeJSON(map[string]any{"url": testURL, "eventTypes": []string{""}}), []failure{{"eventTypes[0]", "minLength"}}},
		{"event type blank", prototypeJSON(map[string]any{"url": testURL, "eventTypes": []string{"a", " \t\u00a0"}}), []failure{{"eventTypes[1]", "minLength"}}},
		{"event type null item", `{"url": "https://example.com", "eventTypes": ["a", null]}`, []failure{{"eventTypes[1]", "minLength"}}},
		{"event type 129 ascii", prototypeJSON(map[string]any{"url": testURL, "eventTypes": []string{asciiRunes + "a"}}), []failure{{"eventTypes[0]", "maxLength"}}},
		{"event type 129 two-byte", prototypeJSON(map[string]any{"url": testURL, "eventTypes": []string{twoByte + "\u00e9"}}), []failure{{"eventTypes[0]", "maxLength"}}},
		{"event type 129 three-byte", prototypeJSON(map[string]any{"url": testURL, "eventTypes": []string{threeByte + "\u65e5"}}), []failure{{"eventTypes[0]", "maxLength"}}},
		{"event type 129 four-byte", prototypeJSON(map[string]any{"url": testURL, "eventTypes": []string{"ok", fourByte + "\U0001F600"}}), []failure{{"eventTypes[1]", "maxLength"}}},
		{"event type control", prototypeJSON(map[string]any{"url": testURL, "eventTypes": []string{"company\ncreated"}}), []failure{{"eventTypes[0]", "pattern"}}},

		// companyTags.
		{"companyTags 11", prototypeJSON(map[string]any{"url": testURL, "eventTypes": []string{"a"}, "companyTags": tags(11)}), []failure{{"companyTags", "maxItems"}}},
		{"tag without colon", prototypeJSON(map[string]any{"url": testURL, "eventTypes": []string{"a"}, "companyTags": []string{"region"}}), []failure{{"companyTags[0]", "pattern"}}},
		{"tag empty", prototypeJSON(map[string]any{"url": testURL, "eventTypes": []string{"a"}, "companyTags": []string{""}}), []failure{{"companyTags[0]", "pattern"}}},
		{"tag empty key", prototypeJSON(map[string]any{"url": testURL, "eventTypes": []string{"a"}, "companyTags": []string{"region:uk", ":v"}}), []failure{{"companyTags[1]", "pattern"}}},
		{"tag empty value", prototypeJSON(map[string]any{"url": testURL, "eventTypes": []string{"a"}, "companyTags": []string{"k:"}}), []failure{{"companyTags[0]", "pattern"}}},
		{"tag blank key", prototypeJSON(map[string]any{"url": testURL, "eventTypes": []string{"a"}, "companyTags": []string{" \t:v"}}), []failure{{"companyTags[0]", "pattern"}}},
		{"tag blank value", prototypeJSON(map[string]any{"url": testURL, "eventTypes": []string{"a"}, "companyTags": []string{"k: "}}), []failure{{"companyTags[0]", "pattern"}}},
		{"tag colon only", prototypeJSON(map[string]any{"url": testURL, "eventTypes": []string{"a"}, "companyTags": []string{":"}}), []failure{{"companyTags[0]", "pattern"}}},
		{"tag 129 runes", prototypeJSON(map[string]any{"url": testURL, "eventTypes": []string{"a"}, "companyTags": []string{"k:" + twoByte[:2*(MaxCompanyTagLen-1)]}}), []failure{{"companyTags[0]", "maxLength"}}},
		{"tag control", prototypeJSON(map[string]any{"url": testURL, "eventTypes": []string{"a"}, "companyTags": []string{"k:v\x00"}}), []failure{{"companyTags[0]", "pattern"}}},

		// Every invalid field is listed, in field order.
		{"several fields", prototypeJSON(map[string]any{"url": "ftp://example.com", "eventTypes": []string{"ok", "", "ok"}, "companyTags": []string{"k:v", "bad"}}),
			[]failure{{"url", "url"}, {"eventTypes[1]", "minLength"}, {"companyTags[1]", "pattern"}}},
	}

	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in, apiErr := decodeAndValidate(tt.body)
			if apiErr == nil {
				t.Fatalf("accepted with url %.80q, want failures %v", in.URL, tt.want)
			}
			if apiErr.status != http.StatusBadRequest {
				t.Errorf("status = %d, want %d", apiErr.status, http.StatusBadRequest)
			}
			if got := failuresOf(apiErr); !slices.Equal(got, tt.want) {
				t.Errorf("failures = %v, want %v", got, tt.want)
			}
			for i, it := range apiErr.validation {
				if it.Message == "" {
					t.Errorf("validation[%d] %q has no message", i, it.ItemID)
				}
			}
			if apiErr.message == "" {
				t.Errorf("error message is empty")
			}
		})
	}
}

func TestValidateAccepts(t *testing.T) {
	maxURL := testURL + "/" + strings.Repeat("a", MaxURLLength-len(testURL)-1)

	tests := []struct {
		name string
		body string
		want consumerInput
	}{
		{"minimal", prototypeJSON(map[string]any{"url": testURL, "eventTypes": []string{"company.created"}}),
			consumerInput{URL: testURL, EventTypes: []string{"company.created"}}},
		{"all fields", prototypeJSON(map[string]any{"url": "http://127.0.0.1:8080/hook", "eventTypes": []string{"a", "b"}, "companyTags": []string{"region:uk"}, "disabled": true}),
			consumerInput{URL: "http://127.0.0.1:8080/hook", EventTypes: []string{"a", "b"}, CompanyTags: []string{"region:uk"}, Disabled: true}},
		{"trailing whitespace", prototypeJSON(map[string]any{"url": testURL, "eventTypes": []string{"a"}}) + "\r\n\t ",
			consumerInput{URL: testURL, EventTypes: []string{"a"}}},

		// url.
		{"url 2048 bytes", prototypeJSON(map[string]any{"url": maxURL, "eventTypes": []string{"a"}}),
			consumerInput{URL: maxURL, EventTypes: []string{"a"}}},
		{"url ipv6 port query", prototypeJSON(map[string]any{"url": "http://[::1]:9000/hook?x=1#f", "eventTypes": []string{"a"}}),
			consumerInput{URL: "http://[::1]:9000/hook?x=1#f", EventTypes: []string{"a"}}},
		{"url uppercase scheme", prototypeJSON(map[string]any{"url": "HTTPS://EXAMPLE.COM/Hook", "eventTypes": []string{"a"}}),
			consumerInput{URL: "HTTPS://EXAMPLE.COM/Hook", EventTypes: []string{"a"}}},

		// eventTypes.
		{"event type 128 ascii", prototypeJSON(map[string]any{"url": testURL, "eventTypes": []string{asciiRunes}}),
			consumerInput{URL: testURL, EventTypes: []string{asciiRunes}}},
		{"event type 128 multi-byte", prototypeJSON(map[string]any{"url": testURL, "eventTypes": []string{twoByte, threeByte, fourByte}}),
			consumerInput{URL: testURL, EventTypes: []string{twoByte, threeByte, fourByte}}},
		{"event type with spaces", prototypeJSON(map[string]any{"url": testURL, "eventTypes": []string{" Dataset data changed "}}),
			consumerInput{URL: testURL, EventTypes: []string{" Dataset data changed "}}},
		{"duplicate event types", prototypeJSON(map[string]any{"url": testURL, "eventTypes": []string{"b", "a", "b", "c", "a", "A"}}),
			consumerInput{URL: testURL, EventTypes: []string{"b", "a", "c", "A"}}},

		// companyTags.
		{"companyTags missing", prototypeJSON(map[string]any{"url": testURL, "eventTypes": []string{"a"}}),
			consumerInput{URL: testURL, EventTypes: []string{"a"}, CompanyTags: nil}},
		{"companyTags null", prototypeJSON(map[string]any{"url": testURL, "eventTypes": []string{"a"}, "companyTags": nil}),
			consumerInput{URL: testURL, EventTypes: []string{"a"}, CompanyTags: nil}},
		{"companyTags empty", prototypeJSON(map[string]any{"url": testURL, "eventTypes": []string{"a"}, "companyTags": []string{}}),
			consumerInput{URL: testURL, EventTypes: []string{"a"}, CompanyTags: []string{}}},
		{"companyTags 10", prototypeJSON(map[string]any{"url": testURL, "eventTypes": []string{"a"}, "companyTags": tags(10)}),
			consumerInput{URL: testURL, EventTypes: []string{"a"}, CompanyTags: tags(10)}},
		{"duplicate tags", prototypeJSON(map[string]any{"url": testURL, "eventTypes": []string{"a"}, "companyTags": []string{"k:2", "k:1", "k:2"}}),
			consumerInput{URL: testURL, EventTypes: []string{"a"}, CompanyTags: []string{"k:2", "k:1"}}},
		{"tag colons in value", prototypeJSON(map[string]any{"url": testURL, "eventTypes": []string{"a"}, "companyTags": []string{"a::", "url:https://x"}}),
			consumerInput{URL: testURL, EventTypes: []string{"a"}, CompanyTags: []string{"a::", "url:https://x"}}},
		{"tag 128 runes", prototypeJSON(map[string]any{"url": testURL, "eventTypes": []string{"a"}, "companyTags": []string{"k:" + threeByte[:3*(MaxCompanyTagLen-2)]}}),
			consumerInput{URL: testURL, EventTypes: []string{"a"}, CompanyTags: []string{"k:" + threeByte[:3*(MaxCompanyTagLen-2)]}}},

		// disabled.
		{"disabled null", prototypeJSON(map[string]any{"url": testURL, "eventTypes": []string{"a"}, "disabled": nil}),
			consumerInput{URL: testURL, EventTypes: []string{"a"}, Disabled: false}},
		{"disabled false", prototypeJSON(map[string]any{"url": testURL, "eventTypes": []string{"a"}, "disabled": false}),
			consumerInput{URL: testURL, EventTypes: []string{"a"}, Disabled: false}},
		{"disabled true", prototypeJSON(map[string]any{"url": testURL, "eventTypes": []string{"a"}, "disabled": true}),
			consumerInput{URL: testURL, EventTypes: []string{"a"}, Disabled: true}},

		// Unknown fields.
		{"unknown fields", prototypeJSON(map[string]any{"url": testURL, "eventTypes": []string{"a"}, "id": "ignored", "extra": map[string]any{"nested": []any{1, "x", nil}}}),
			consumerInput{URL: testURL, EventTypes: []string{"a"}}},
	}

	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, apiErr := decodeAndValidate(tt.body)
			if apiErr != nil {
				t.Fatalf("rejected with failures %v: %s", failuresOf(apiErr), apiErr.message)
			}
			if got.URL != tt.want.URL {
				t.Errorf("URL = %q, want %q", got.URL, tt.want.URL)
			}
			if !slices.Equal(got.EventTypes, tt.want.EventTypes) {
				t.Errorf("EventTypes = %q, want %q", got.EventTypes, tt.want.EventTypes)
			}
			if !slices.Equal(got.CompanyTags, tt.want.CompanyTags) {
				t.Errorf("CompanyTags = %q, want %q", got.CompanyTags, tt.want.CompanyTags)
			}
			if (got.CompanyTags == nil) != (tt.want.CompanyTags == nil) {
				t.Errorf("CompanyTags = %#v, want %#v: null and [] differ", got.CompanyTags, tt.want.CompanyTags)
			}
			if got.Disabled != tt.want.Disabled {
				t.Errorf("Disabled = %v, want %v", got.Disabled, tt.want.Disabled)
			}
		})
	}
}

func TestReadBody(t *testing.T) {
	tests := []struct {
		name    string
		size    int
		wantErr bool
	}{
		{"empty", 0, false},
		{"64 KiB", MaxBodyBytes, false},
		{"64 KiB plus 1", MaxBodyBytes + 1, true},
		{"1 MiB", 1 << 20, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			body, apiErr := readBody(bytes.NewReader(bytes.Repeat([]byte{' '}, tt.size)))
			if !tt.wantErr {
				if apiErr != nil {
					t.Fatalf("error %v, want none", apiErr)
				}
				if len(body) != tt.size {
					t.Errorf("read %d bytes, want %d", len(body), tt.size)
				}
				return
			}
			if apiErr == nil {
				t.Fatalf("read %d bytes, want an error", len(body))
			}
			if apiErr.status != http.StatusBadRequest {
				t.Errorf("status = %d, want %d", apiErr.status, http.StatusBadRequest)
			}
			if got, want := failuresOf(apiErr), []failure{{"body", "maxLength"}}; !slices.Equal(got, want) {
				t.Errorf("failures = %v, want %v", got, want)
			}
		})
	}
}

func TestReadBodyReadError(t *testing.T) {
	_, apiErr := readBody(iotest.ErrReader(iotest.ErrTimeout))
	if apiErr == nil {
		t.Fatal("got no error, want one")
	}
	if apiErr.status != http.StatusBadRequest {
		t.Errorf("status = %d, want %d", apiErr.status, http.StatusBadRequest)
	}
	if got, want := failuresOf(apiErr), []failure{{"body", "read"}}; !slices.Equal(got, want) {
		t.Errorf("failures = %v, want %v", got, want)
	}
}
