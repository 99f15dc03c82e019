package api

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"
)

// FuzzDecodeConsumerPrototype feeds arbitrary request bodies through the create path's
// decoding and validation. An accepted body must yield a consumer that satisfies every
// documented limit, and a rejected one must yield a 400 that names the invalid field.
func FuzzDecodeConsumerPrototype(f *testing.F) {
	seeds := []string{
		`{"url":"https://example.com/webhook","eventTypes":["company.created"]}`,
		`{"url":"http://127.0.0.1:8080/hook","eventTypes":["a","b","a"],"companyTags":["region:uk","tier:gold"],"disabled":true}`,
		`{"url":"https://example.com","eventTypes":["x"],"companyTags":[],"disabled":null,"id":"ignored","extra":{"a":[1,2]}}`,
		`{"URL":"https://example.com","EVENTTYPES":["x"]}`,
		`{"url":"https://example.com","eventTypes":["x"],"url":"ftp://example.com"}`,
		`{"url":"https://example.com","eventTypes":["\u00e9\u65e5\ud83d\ude00"]}` + "\n",
		``,
		" \t\r\n",
		"\u00a0",
		`null`,
		`[]`,
		`"text"`,
		`42`,
		`{`,
		`{"url":`,
		`{} {}`,
		`{}x`,
		`{"url":1,"eventTypes":"a"}`,
		`{"url":"https://example.com","eventTypes":[1]}`,
		`{"url":"https://example.com","eventTypes":["a",null]}`,
		`{"url":"https://example.com","eventTypes":["a"],"companyTags":"k:v"}`,
		`{"url":"https://example.com","eventTypes":["a"],"disabled":"true"}`,
		`{"url":"/relative","eventTypes":[]}`,
		`{"url":"https://user:pass@example.com","eventTypes":[""," "]}`,
		`{"url":"https:///nohost","eventTypes":["a\u0000b"]}`,
		`{"url":"https://example.com","eventTypes":["a"],"companyTags":[":v","k:"," : ","k:v\u0007"]}`,
		`{"url":"https://example.com","eventTypes":["a"],"companyTags":["a:1","a:2","a:3","a:4","a:5","a:6","a:7","a:8","a:9","a:10","a:11"]}`,
		`{"url":"https://example.com","eventTypes":["` + strings.Repeat("\u00e9", MaxEventTypeLen+1) + `"]}`,
		`{"url":"https://example.com/` + strings.Repeat("a", MaxURLLength) + `","eventTypes":["a"]}`,
		"{\"url\":\"https://example.com\",\"eventTypes\":[\"\xff\xfe\"]}",
	}
	for _, s := range seeds {
		f.Add([]byte(s))
	}

	f.Fuzz(func(t *testing.T, body []byte) {
		in, apiErr := decodePrototype(body)
		if apiErr != nil {
			checkValidationError(t, apiErr)
			return
		}

		checkConsumerInput(t, in)
		checkInputMatchesBody(t, body, in)
	})
}

// checkValidationError checks that apiErr is a 400 whose validation items name a field
// and a rule, and that its ErrorMessage body encodes as JSON.
func checkValidationError(t *testing.T, apiErr *apiError) {
	t.Helper()

	if apiErr.status != http.StatusBadRequest {
		t.Fatalf("status = %d, want %d (error %q)", apiErr.status, http.StatusBadRequest, apiErr.message)
	}
	if len(apiErr.validation) == 0 {
		t.Fatalf("error %q has no validation items", apiErr.message)
	}
	for i, it := range apiErr.validation {
		if it.ItemID == "" {
			t.Errorf("validation[%d] = %+v: ItemID is empty", i, it)
		}
		if it.ValidatorName == "" {
			t.Errorf("validation[%d] = %+v: ValidatorName is empty", i, it)
		}
		if it.Message == "" {
			t.Errorf("validation[%d] = %+v: Message is empty", i, it)
		}
	}

	rec := httptest.NewRecorder()
	writeError(rec, "0123456789abcdef0123456789abcdef", apiErr)
	var got errorMessage
	if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil {
		t.Fatalf("error body %q is not valid JSON: %v", rec.Body.Bytes(), err)
	}
	if got.StatusCode != http.StatusBadRequest {
		t.Errorf("body statusCode = %d, want %d", got.StatusCode, http.StatusBadRequest)
	}
	if got.Validation == nil || len(got.Validation.Errors) != len(apiErr.validation) {
		t.Errorf("body validation = %+v, want %d errors", got.Validation, len(apiErr.validation))
	}
}

// checkConsumerInput checks an accepted consumer against the limits of the
// WebhookConsumerPrototype schema, without calling the validators under test.
func checkConsumerInput(t *testing.T, in consumerInput) {
	t.Helper()

	if msg := validateURL(in.URL); msg != "" {
		t.Errorf("accepted url %q, but validateURL rejects it: %s", in.URL, msg)
	}
	checkAcceptedURL(t, in.URL)

	if len(in.EventTypes) == 0 {
		t.Errorf("accepted eventTypes is empty")
	}
	seen := map[string]bool{}
	for i, et := range in.EventTypes {
		if seen[et] {
			t.Errorf("eventTypes[%d] = %q is a duplicate", i, et)
		}
		seen[et] = true
		if isBlank(et) {
			t.Errorf("eventTypes[%d] = %q is blank", i, et)
		}
		if n := utf8.RuneCountInString(et); n > MaxEventTypeLen {
			t.Errorf("eventTypes[%d] has %d runes, want at most %d", i, n, MaxEventTypeLen)
		}
		if strings.ContainsFunc(et, unicode.IsControl) {
			t.Errorf("eventTypes[%d] = %q contains a control character", i, et)
		}
	}

	if len(in.CompanyTags) > MaxCompanyTags {
		t.Errorf("accepted %d companyTags, want at most %d", len(in.CompanyTags), MaxCompanyTags)
	}
	for i, tag := range in.CompanyTags {
		if _, msg := validateCompanyTag(tag); msg != "" {
			t.Errorf("accepted companyTags[%d] = %q, but validateCompanyTag rejects it: %s", i, tag, msg)
		}
		checkAcceptedTag(t, tag)
	}
}

// checkInputMatchesBody decodes body again and checks that in keeps the body's url and
// disabled flag, and its event types and tags in order without duplicates.
func checkInputMatchesBody(t *testing.T, body []byte, in consumerInput) {
	t.Helper()

	// Field names match exactly, as in decodePrototype; encoding/json alone would also
	// take "URL" for "url".
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(body, &raw); err != nil {
		t.Fatalf("accepted body does not unmarshal: %v", err)
	}
	var p consumerPrototype
	for name, dest := range map[string]any{"url": &p.URL, "eventTypes": &p.EventTypes, "companyTags": &p.CompanyTags, "disabled": &p.Disabled} {
		if value, ok := raw[name]; ok {
			if err := json.Unmarshal(value, dest); err != nil {
				t.Fatalf("accepted field %s does not unmarshal: %v", name, err)
			}
		}
	}
	if p.URL == nil || *p.URL != in.URL {
		t.Errorf("url = %q, want the body's %v", in.URL, p.URL)
	}
	if want := uniqueInOrder(p.EventTypes); !slices.Equal(in.EventTypes, want) {
		t.Errorf("eventTypes = %q, want %q", in.EventTypes, want)
	}
	if want := uniqueInOrder(p.CompanyTags); !slices.Equal(in.CompanyTags, want) || (in.CompanyTags == nil) != (want == nil) {
		t.Errorf("companyTags = %#v, want %#v", in.CompanyTags, want)
	}
	if want := p.Disabled != nil && *p.Disabled; in.Disabled != want {
		t.Errorf("disabled = %v, want %v", in.Disabled, want)
	}
}

// uniqueInOrder returns the first occurrence of each string in list, in order. A nil list
// stays nil.
func uniqueInOrder(list []string) []string {
	if list == nil {
		return nil
	}
	out := []string{}
	for _, s := range list {
		if !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	return out
}

func FuzzValidateURL(f *testing.F) {
	seeds := []string{
		"https://example.com/webhook",
		"http://127.0.0.1:8080/hook?x=1#frag",
		"http://[::1]:9000/",
		"HTTPS://EXAMPLE.COM/Path",
		"https://example.com/" + strings.Repeat("a", MaxURLLength-len("https://example.com/")),
		"https://example.com/" + strings.Repeat("a", MaxURLLength-len("https://example.com/")+1),
		"",
		" https://example.com",
		"https://example.com\n",
		"/relative/path",
		"example.com/hook",
		"ftp://example.com/file",
		"mailto:someone@example.com",
		"https:example.com",
		"https://",
		"https:///path",
		"http://:80/",
		"http://[]/",
		"https://user:secret@example.com/",
		"https://user@example.com/",
		"http://@example.com/",
		"https://exa mple.com/",
		"https://example.com/%zz",
		"http://h\u00e9st\u00e9.example/",
		"http://\x00/",
	}
	for _, s := range seeds {
		f.Add(s)
	}

	f.Fuzz(func(t *testing.T, raw string) {
		if validateURL(raw) != "" {
			return
		}
		checkAcceptedURL(t, raw)
	})
}

// checkAcceptedURL checks the properties every accepted consumer URL must have.
func checkAcceptedURL(t *testing.T, raw string) {
	t.Helper()

	if len(raw) > MaxURLLength {
		t.Errorf("accepted url of %d bytes, want at most %d", len(raw), MaxURLLength)
	}
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatalf("accepted url %q does not parse: %v", raw, err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		t.Errorf("accepted url %q has scheme %q, want http or https", raw, u.Scheme)
	}
	if u.Hostname() == "" {
		t.Errorf("accepted url %q has no host name", raw)
	}
	if u.User != nil {
		t.Errorf("accepted url %q has user information %q", raw, u.User)
	}
}

func FuzzValidateCompanyTag(f *testing.F) {
	seeds := []string{
		"region:uk",
		"a:b",
		"a::",
		"key:value:with:colons",
		"r\u00e9gion:\u65e5\u672c",
		"k:" + strings.Repeat("v", MaxCompanyTagLen-2),
		"k:" + strings.Repeat("\u00e9", MaxCompanyTagLen-1),
		"",
		":",
		"region",
		":uk",
		"region:",
		" :uk",
		"region:\t",
		"\u00a0:x",
		"k:v\x00",
		"k:v\n",
		"\xff:\xfe",
	}
	for _, s := range seeds {
		f.Add(s)
	}

	f.Fuzz(func(t *testing.T, tag string) {
		if _, msg := validateCompanyTag(tag); msg == "" {
			checkAcceptedTag(t, tag)
			return
		}

		// A rejected tag must break one of the rules: the key:value form, the length
		// limit or the ban on control characters.
		key, value, ok := strings.Cut(tag, ":")
		wellFormed := ok && !isBlank(key) && !isBlank(value) &&
			utf8.RuneCountInString(tag) <= MaxCompanyTagLen &&
			!strings.ContainsFunc(tag, unicode.IsControl)
		if wellFormed {
			t.Errorf("rejected tag %q, which has the form key:value, %d runes and no control characters",
				tag, utf8.RuneCountInString(tag))
		}
	})
}

// checkAcceptedTag checks the properties every accepted company tag must have.
func checkAcceptedTag(t *testing.T, tag string) {
	t.Helper()

	key, value, ok := strings.Cut(tag, ":")
	if !ok {
		t.Errorf("accepted tag %q has no colon", tag)
	}
	if isBlank(key) {
		t.Errorf("accepted tag %q has a blank key", tag)
	}
	if isBlank(value) {
		t.Errorf("accepted tag %q has a blank value", tag)
	}
	if n := utf8.RuneCountInString(tag); n > MaxCompanyTagLen {
		t.Errorf("accepted tag %q has %d runes, want at most %d", tag, n, MaxCompanyTagLen)
	}
	if strings.ContainsFunc(tag, unicode.IsControl) {
		t.Errorf("accepted tag %q contains a control character", tag)
	}
}

// isBlank reports whether s has no rune other than Unicode white space.
func isBlank(s string) bool {
	return !strings.ContainsFunc(s, func(r rune) bool { return !unicode.IsSpace(r) })
}
