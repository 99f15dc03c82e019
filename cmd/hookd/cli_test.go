//go:build unix

package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
)

// correlationLine matches the correlation id line of an API error on stderr.
var correlationLine = regexp.MustCompile(`(?m)^correlation id: \S+$`)

// cliServer is a hookd server with the environment that points the API commands at it.
type cliServer struct {
	*hookdProcess
	key  string
	auth string
	env  []string
}

// startCLIServer starts hookd serve on a new data folder, allowing deliveries to loopback,
// with the extra flags.
func startCLIServer(ctx context.Context, t *testing.T, extra ...string) *cliServer {
	t.Helper()
	p := startServe(ctx, t, t.TempDir(), slices.Concat(loopbackFlags, extra)...)
	key := firstKey(ctx, t, p)
	return &cliServer{
		hookdProcess: p,
		key:          key,
		auth:         authHeader(key),
		env:          hookdEnv("HOOKD_URL="+p.url, "HOOKD_API_KEY="+key),
	}
}

// runCLI runs hookd with args, env and stdin to its end and returns its output and exit
// code.
func runCLI(ctx context.Context, t *testing.T, env []string, stdin string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	cmd := exec.CommandContext(ctx, hookdPath, args...)
	cmd.Dir = t.TempDir()
	cmd.Env = env
	cmd.Stdin = strings.NewReader(stdin)
	cmd.WaitDelay = time.Second
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut

	err := cmd.Run()
	var exitErr *exec.ExitError
	if err != nil && !errors.As(err, &exitErr) {
		t.Fatalf("run hookd %s: %v", strings.Join(args, " "), err)
	}
	return out.String(), errOut.String(), cmd.ProcessState.ExitCode()
}

// run runs an API command against the server that must succeed, and returns its stdout.
func (s *cliServer) run(ctx context.Context, t *testing.T, stdin string, args ...string) string {
	t.Helper()
	stdout, stderr, code := runCLI(ctx, t, s.env, stdin, args...)
	if code != 0 {
		t.Fatalf("hookd %s: exit code %d, want 0; stderr:\n%s", strings.Join(args, " "), code, stderr)
	}
	return stdout
}

// runJSON runs an API command with --output json that must succeed, decodes its stdout
// into v and returns the stdout.
func (s *cliServer) runJSON(ctx context.Context, t *testing.T, v any, stdin string, args ...string) string {
	t.Helper()
	stdout := s.run(ctx, t, stdin, append(args, "--output", "json")...)
	if err := json.Unmarshal([]byte(stdout), v); err != nil {
		t.Fatalf("hookd %s --output json: decode stdout: %v\n%s", strings.Join(args, " "), err, stdout)
	}
	return stdout
}

// apiBody returns the body of a GET request to the server, which must respond with 200.
func (s *cliServer) apiBody(ctx context.Context, t *testing.T, path string) string {
	t.Helper()
	status, body := send(ctx, t, newHTTPClient(t), http.MethodGet, s.url+path, s.auth, "")
	if status != http.StatusOK {
		t.Fatalf("GET %s: status %d, want 200; body %s", path, status, body)
	}
	return body
}

// checkSameJSON fails the test unless the command's JSON output and the API's response
// body decode to the same value.
func checkSameJSON(t *testing.T, what, got, apiBody string) {
	t.Helper()
	var gotValue, wantValue any
	if err := json.Unmarshal([]byte(got), &gotValue); err != nil {
		t.Fatalf("%s: decode output %s: %v", what, got, err)
	}
	if err := json.Unmarshal([]byte(apiBody), &wantValue); err != nil {
		t.Fatalf("%s: decode API body %s: %v", what, apiBody, err)
	}
	if !reflect.DeepEqual(gotValue, wantValue) {
		t.Errorf("%s --output json:\n%s\nwant the API's object:\n%s", what, got, apiBody)
	}
}

// field returns the value of the "Name:" line of a command's field list, or "" without one.
func field(out, name string) string {
	m := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(name) + `:\s+(.*?)\s*$`).FindStringSubmatch(out)
	if m == nil {
		return ""
	}
	return m[1]
}

// tableRow returns the cells of the table row whose first cell is first, or nil. Cells are
// separated by two or more spaces, as the tables pad them.
func tableRow(out, first string) []string {
	for line := range strings.Lines(out) {
		cells := regexp.MustCompile(`\s{2,}`).Split(strings.TrimSpace(line), -1)
		if cells[0] == first {
			return cells
		}
	}
	return nil
}

// apiConsumer is a webhook consumer as the JSON output shows it.
type apiConsumer struct {
	ID             string   `json:"id"`
	URL            string   `json:"url"`
	Disabled       *bool    `json:"disabled"`
	EventTypes     []string `json:"eventTypes"`
	CompanyTags    []string `json:"companyTags"`
	DisabledReason string   `json:"disabledReason"`
}

func TestCLIConsumers(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	s := startCLIServer(ctx, t)

	out := s.run(ctx, t, "", "consumers", "create", "--endpoint", "https://receiver.example/a",
		"--event-type", "DataSyncCompleted", "--event-type", "Dataset data changed")
	firstID := field(out, "ID")
	for name, want := range map[string]string{
		"URL":          "https://receiver.example/a",
		"Enabled":      "yes",
		"Event types":  "DataSyncCompleted, Dataset data changed",
		"Company tags": "-",
	} {
		if got := field(out, name); got != want {
			t.Errorf("consumers create: %s = %q, want %q; stdout:\n%s", name, got, want, out)
		}
	}
	if firstID == "" {
		t.Fatalf("consumers create: no ID line; stdout:\n%s", out)
	}

	var second apiConsumer
	out = s.runJSON(ctx, t, &second, "", "consumers", "create", "--endpoint", "https://receiver.example/b",
		"--event-type", "company.created", "--company-tag", "region:uk", "--disabled")
	if second.ID == "" || second.URL != "https://receiver.example/b" || second.Disabled == nil || !*second.Disabled ||
		!slices.Equal(second.EventTypes, []string{"company.created"}) || !slices.Equal(second.CompanyTags, []string{"region:uk"}) {
		t.Errorf("consumers create --output json = %+v, want the disabled consumer with its url, event type and tag", second)
	}
	checkSameJSON(t, "consumers create", out, s.apiBody(ctx, t, "/webhooks/"+second.ID))

	out = s.run(ctx, t, "", "consumers", "list")
	if row := tableRow(out, "ID"); !slices.Equal(row, []string{"ID", "ENABLED", "URL", "EVENT TYPES", "COMPANY TAGS"}) {
		t.Errorf("consumers list header = %q, want ID, ENABLED, URL, EVENT TYPES, COMPANY TAGS; stdout:\n%s", row, out)
	}
	wantRows := [][]string{
		{firstID, "yes", "https://receiver.example/a", "DataSyncCompleted, Dataset data changed", "-"},
		{second.ID, "no", "https://receiver.example/b", "company.created", "region:uk"},
	}
	for _, want := range wantRows {
		if got := tableRow(out, want[0]); !slices.Equal(got, want) {
			t.Errorf("consumers list row = %q, want %q; stdout:\n%s", got, want, out)
		}
	}
	var list struct {
		Results []apiConsumer `json:"results"`
	}
	out = s.runJSON(ctx, t, &list, "", "consumers", "list")
	checkSameJSON(t, "consumers list", out, s.apiBody(ctx, t, "/webhooks"))
	if len(list.Results) != 2 {
		t.Errorf("consumers list --output json has %d consumers, want 2:\n%s", len(list.Results), out)
	}

	out = s.run(ctx, t, "", "consumers", "get", second.ID)
	if got := field(out, "Enabled"); got != "no" {
		t.Errorf("consumers get: Enabled = %q, want no; stdout:\n%s", got, out)
	}
	var got apiConsumer
	out = s.runJSON(ctx, t, &got, "", "consumers", "get", firstID)
	checkSameJSON(t, "consumers get", out, s.apiBody(ctx, t, "/webhooks/"+firstID))

	out = s.run(ctx, t, "", "consumers", "update", second.ID, "--endpoint", "https://receiver.example/c",
		"--event-type", "invoice.paid", "--clear-company-tags", "--enable")
	for name, want := range map[string]string{
		"ID":           second.ID,
		"URL":          "https://receiver.example/c",
		"Enabled":      "yes",
		"Event types":  "invoice.paid",
		"Company tags": "-",
	} {
		if got := field(out, name); got != want {
			t.Errorf("consumers update: %s = %q, want %q; stdout:\n%s", name, got, want, out)
		}
	}
	var updated apiConsumer
	out = s.runJSON(ctx, t, &updated, "", "consumers", "update", firstID, "--disable", "--company-tag", "segment:retail")
	if updated.Disabled == nil || !*updated.Disabled || !slices.Equal(updated.CompanyTags, []string{"segment:retail"}) ||
		updated.URL != "https://receiver.example/a" || len(updated.EventTypes) != 2 {
		t.Errorf("consumers update --disable --company-tag --output json = %+v, want it disabled with the new tag and the rest unchanged", updated)
	}
	checkSameJSON(t, "consumers update", out, s.apiBody(ctx, t, "/webhooks/"+firstID))

	out = s.run(ctx, t, "", "consumers", "secret", firstID)
	key := field(out, "Key")
	if !strings.HasPrefix(key, "whsec_") {
		t.Errorf("consumers secret: Key = %q, want whsec_...; stdout:\n%s", key, out)
	}
	if strings.Contains(out, "Previous key") {
		t.Errorf("consumers secret before a rotation shows a previous key:\n%s", out)
	}
	var secret struct {
		Key                  string `json:"key"`
		PreviousKeyExpiresAt string `json:"previousKeyExpiresAt"`
	}
	out = s.runJSON(ctx, t, &secret, "", "consumers", "secret", firstID)
	checkSameJSON(t, "consumers secret", out, s.apiBody(ctx, t, "/webhooks/"+firstID+"/secret"))

	s.runJSON(ctx, t, &secret, "", "consumers", "rotate-secret", firstID)
	if secret.Key == key || !strings.HasPrefix(secret.Key, "whsec_") {
		t.Errorf("consumers rotate-secret: key = %q, want a new whsec_ key other than %q", secret.Key, key)
	}
	if _, err := time.Parse(time.RFC3339, secret.PreviousKeyExpiresAt); err != nil {
		t.Errorf("consumers rotate-secret: previousKeyExpiresAt = %q, want an RFC 3339 time: %v", secret.PreviousKeyExpiresAt, err)
	}
	out = s.run(ctx, t, "", "consumers", "rotate-secret", firstID)
	if got := field(out, "Key"); got == secret.Key || !strings.HasPrefix(got, "whsec_") {
		t.Errorf("consumers rotate-secret: Key = %q, want a new whsec_ key; stdout:\n%s", got, out)
	}
	if _, err := time.Parse(time.RFC3339, field(out, "Previous key signs until")); err != nil {
		t.Errorf("consumers rotate-secret: no RFC 3339 time on the Previous key signs until line: %v; stdout:\n%s", err, out)
	}

	out = s.run(ctx, t, "", "consumers", "delete", firstID)
	if want := "Deleted consumer " + firstID + ".\n"; out != want {
		t.Errorf("consumers delete stdout = %q, want %q", out, want)
	}
	if out := s.run(ctx, t, "", "consumers", "delete", second.ID, "--output", "json"); out != "" {
		t.Errorf("consumers delete --output json stdout = %q, want nothing", out)
	}
	out = s.runJSON(ctx, t, &list, "", "consumers", "list")
	if len(list.Results) != 0 {
		t.Errorf("consumers list after deleting both = %s, want no consumers", out)
	}
	_, stderr, code := runCLI(ctx, t, s.env, "", "consumers", "get", firstID)
	if code != 1 || !strings.Contains(stderr, "404 Not Found") {
		t.Errorf("consumers get of a deleted consumer: exit code %d, stderr %q; want 1 and 404 Not Found", code, stderr)
	}
}

func TestCLIEventsPublish(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	s := startCLIServer(ctx, t)
	dir := t.TempDir()

	single := filepath.Join(dir, "event.json")
	writeFile(t, single, `{"id": "ev-file", "eventType": "company.created", "generatedDate": "2026-03-02T09:15:00.123Z",
		"payload": {"referenceCompany": {"id": "8a210b68-6988-11ed-a1eb-0242ac120002", "tags": {"region": "uk"}}}}`)
	batch := filepath.Join(dir, "batch.json")
	writeFile(t, batch, `{"events": [
		{"id": "ev-batch-1", "eventType": "invoice.paid", "payload": {"amount": 12}},
		{"id": "ev-batch-2", "eventType": "invoice.voided", "payload": {}}
	]}`)

	type envelope struct {
		ID            string          `json:"id"`
		EventType     string          `json:"eventType"`
		GeneratedDate string          `json:"generatedDate"`
		Payload       json.RawMessage `json:"payload"`
	}
	tests := []struct {
		name  string
		stdin string
		args  []string
		want  []envelope // the ids, event types and payloads; a generatedDate when not empty
	}{
		{
			name: "flags",
			args: []string{"--type", "company.created", "--payload", `{"n": 1}`, "--id", "ev-flags"},
			want: []envelope{{ID: "ev-flags", EventType: "company.created", Payload: json.RawMessage(`{"n":1}`)}},
		},
		{
			name: "flags default payload",
			args: []string{"--type", "company.deleted", "--id", "ev-flags-empty"},
			want: []envelope{{ID: "ev-flags-empty", EventType: "company.deleted", Payload: json.RawMessage(`{}`)}},
		},
		{
			name: "file",
			args: []string{"--file", single},
			want: []envelope{{ID: "ev-file", EventType: "company.created", GeneratedDate: "2026-03-02T09:15:00.123Z",
				Payload: json.RawMessage(`{"referenceCompany":{"id":"8a210b68-6988-11ed-a1eb-0242ac120002","tags":{"region":"uk"}}}`)}},
		},
		{
			name:  "stdin",
			stdin: `{"id": "ev-stdin", "eventType": "bill.created", "payload": {"b": [1, 2]}}`,
			args:  []string{"--file", "-"},
			want:  []envelope{{ID: "ev-stdin", EventType: "bill.created", Payload: json.RawMessage(`{"b":[1,2]}`)}},
		},
		{
			name: "batch file",
			args: []string{"--file", batch},
			want: []envelope{
				{ID: "ev-batch-1", EventType: "invoice.paid", Payload: json.RawMessage(`{"amount":12}`)},
				{ID: "ev-batch-2", EventType: "invoice.voided", Payload: json.RawMessage(`{}`)},
			},
		},
		{
			name:  "batch array on stdin",
			stdin: `[{"id": "ev-array-1", "eventType": "a", "payload": {}}, {"id": "ev-array-2", "eventType": "b", "payload": {"x": "y"}}]`,
			args:  []string{"-f", "-"},
			want: []envelope{
				{ID: "ev-array-1", EventType: "a", Payload: json.RawMessage(`{}`)},
				{ID: "ev-array-2", EventType: "b", Payload: json.RawMessage(`{"x":"y"}`)},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args := slices.Concat([]string{"events", "publish"}, tt.args)
			isBatch := len(tt.want) > 1

			// The table run publishes the events, and the JSON run publishes the same ids
			// again, which returns the stored events.
			out := s.run(ctx, t, tt.stdin, args...)
			if row := tableRow(out, "ID"); !slices.Equal(row, []string{"ID", "EVENT TYPE", "GENERATED"}) {
				t.Errorf("table header = %q, want ID, EVENT TYPE, GENERATED; stdout:\n%s", row, out)
			}
			for _, want := range tt.want {
				row := tableRow(out, want.ID)
				if len(row) != 3 || row[1] != want.EventType {
					t.Errorf("table row of %s = %q, want event type %s; stdout:\n%s", want.ID, row, want.EventType, out)
					continue
				}
				if _, err := time.Parse(time.RFC3339, row[2]); err != nil {
					t.Errorf("table row of %s: generated %q is not RFC 3339: %v", want.ID, row[2], err)
				}
			}

			var got []envelope
			if isBatch {
				var result struct {
					Results []envelope `json:"results"`
				}
				s.runJSON(ctx, t, &result, tt.stdin, args...)
				got = result.Results
			} else {
				var one envelope
				s.runJSON(ctx, t, &one, tt.stdin, args...)
				got = []envelope{one}
			}
			if len(got) != len(tt.want) {
				t.Fatalf("--output json has %d events, want %d: %+v", len(got), len(tt.want), got)
			}
			for i, want := range tt.want {
				g := got[i]
				var payload bytes.Buffer
				if err := json.Compact(&payload, g.Payload); err != nil {
					t.Errorf("event %d payload %s: %v", i, g.Payload, err)
				}
				if g.ID != want.ID || g.EventType != want.EventType || !bytes.Equal(payload.Bytes(), want.Payload) {
					t.Errorf("event %d = %s %s %s, want %s %s %s", i, g.ID, g.EventType, payload.Bytes(), want.ID, want.EventType, want.Payload)
				}
				if want.GeneratedDate != "" && g.GeneratedDate != want.GeneratedDate {
					t.Errorf("event %d generatedDate = %q, want %q", i, g.GeneratedDate, want.GeneratedDate)
				}
				// The stored message is the one that the command published.
				s.apiBody(ctx, t, "/messages/"+want.ID)
			}
		})
	}
}

func TestCLIMessages(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	rcv := startReceiver(t, func(w http.ResponseWriter, r *http.Request, body []byte) {
		http.Error(w, "receiver down", http.StatusInternalServerError)
	})
	// Without retries, each delivery ends in failure after one attempt.
	s := startCLIServer(ctx, t, "--retry-schedule", "none")
	client := newHTTPClient(t)

	var webhook apiConsumer
	s.runJSON(ctx, t, &webhook, "", "consumers", "create", "--endpoint", rcv.url+"/hook", "--event-type", "company.created")
	s.run(ctx, t, `[{"id": "m-1", "eventType": "company.created", "payload": {}},
		{"id": "m-2", "eventType": "company.created", "payload": {}}]`, "events", "publish", "--file", "-")
	waitFailed := func(attempts int) {
		t.Helper()
		for _, id := range []string{"m-1", "m-2"} {
			waitAttempts(ctx, t, client, s.url, s.auth, id, func(list []attemptRecord) bool { return len(list) >= attempts })
		}
		if !poll(ctx, 10*time.Millisecond, func() bool { return !pendingMessages(ctx, t, client, s.url, s.auth, webhook.ID) }) {
			t.Fatalf("wait for the messages to fail: %v", ctx.Err())
		}
	}
	waitFailed(1)

	out := s.run(ctx, t, "", "messages", "list", webhook.ID)
	for _, id := range []string{"m-1", "m-2"} {
		row := tableRow(out, id)
		if len(row) != 7 || row[1] != "company.created" || row[2] != "failure" || row[3] != "1" || row[6] != "-" {
			t.Errorf("messages list row of %s = %q, want company.created, failure, 1 failed attempt, no next attempt; stdout:\n%s", id, row, out)
		}
	}
	type page struct {
		Results []struct {
			ID     string `json:"id"`
			Status string `json:"status"`
		} `json:"results"`
		Next *string `json:"next"`
	}
	var all page
	out = s.runJSON(ctx, t, &all, "", "messages", "list", webhook.ID)
	checkSameJSON(t, "messages list", out, s.apiBody(ctx, t, "/webhooks/"+webhook.ID+"/messages"))

	var first, second page
	s.runJSON(ctx, t, &first, "", "messages", "list", webhook.ID, "--limit", "1")
	if len(first.Results) != 1 || first.Results[0].ID != "m-2" || first.Next == nil {
		t.Fatalf("messages list --limit 1 = %+v, want m-2 and a next cursor", first)
	}
	s.runJSON(ctx, t, &second, "", "messages", "list", webhook.ID, "--limit", "1", "--cursor", *first.Next)
	if len(second.Results) != 1 || second.Results[0].ID != "m-1" || second.Next != nil {
		t.Errorf("messages list --cursor %s = %+v, want m-1 and no next cursor", *first.Next, second)
	}
	_, stderr, _ := runCLI(ctx, t, s.env, "", "messages", "list", webhook.ID, "--limit", "1")
	if want := "--cursor " + *first.Next; !strings.Contains(stderr, want) {
		t.Errorf("messages list --limit 1 stderr = %q, want it to name %q", stderr, want)
	}
	var none page
	s.runJSON(ctx, t, &none, "", "messages", "list", webhook.ID, "--status", "success", "--since", "1h")
	if len(none.Results) != 0 {
		t.Errorf("messages list --status success = %+v, want no messages", none)
	}

	out = s.run(ctx, t, "", "messages", "get", "m-1")
	if got := field(out, "Event type"); got != "company.created" {
		t.Errorf("messages get: Event type = %q, want company.created; stdout:\n%s", got, out)
	}
	if row := tableRow(out, webhook.ID); len(row) != 5 || row[1] != "failure" || row[2] != "1" {
		t.Errorf("messages get: delivery row = %q, want failure with 1 failed attempt; stdout:\n%s", row, out)
	}
	var detail map[string]any
	out = s.runJSON(ctx, t, &detail, "", "messages", "get", "m-1")
	checkSameJSON(t, "messages get", out, s.apiBody(ctx, t, "/messages/m-1"))

	out = s.run(ctx, t, "", "messages", "attempts", "m-1")
	rows := 0
	for line := range strings.Lines(out) {
		cells := regexp.MustCompile(`\s{2,}`).Split(strings.TrimSpace(line), -1)
		if len(cells) == 7 && cells[1] == webhook.ID {
			rows++
			if cells[4] != "500" || cells[5] != "no" {
				t.Errorf("messages attempts row = %q, want status code 500 and success no", cells)
			}
		}
	}
	if rows != 1 {
		t.Errorf("messages attempts has %d rows for consumer %s, want 1; stdout:\n%s", rows, webhook.ID, out)
	}
	var attempts struct {
		Results []attemptRecord `json:"results"`
	}
	out = s.runJSON(ctx, t, &attempts, "", "messages", "attempts", "m-1")
	checkSameJSON(t, "messages attempts", out, s.apiBody(ctx, t, "/messages/m-1/attempts"))
	if len(attempts.Results) != 1 || attempts.Results[0].StatusCode != 500 || !strings.Contains(attempts.Results[0].ResponseBody, "receiver down") {
		t.Errorf("messages attempts --output json = %+v, want one 500 attempt with the response body", attempts.Results)
	}

	var recovered struct {
		Recovered *int `json:"recovered"`
	}
	s.runJSON(ctx, t, &recovered, "", "consumers", "recover", webhook.ID, "--since", "1h")
	if recovered.Recovered == nil || *recovered.Recovered != 2 {
		t.Errorf("consumers recover --output json recovered = %v, want 2", recovered.Recovered)
	}
	waitFailed(2)
	out = s.run(ctx, t, "", "consumers", "recover", webhook.ID, "--since", time.Now().Add(-time.Hour).Format(time.RFC3339),
		"--until", time.Now().Add(time.Minute).Format(time.RFC3339))
	if want := "Queued 2 failed messages of consumer " + webhook.ID + " again.\n"; out != want {
		t.Errorf("consumers recover stdout = %q, want %q", out, want)
	}
	waitFailed(3)

	out = s.run(ctx, t, "", "messages", "resend", "m-1", "--webhook", webhook.ID)
	if want := "Queued message m-1 again for consumer " + webhook.ID + ", status sending.\n"; out != want {
		t.Errorf("messages resend stdout = %q, want %q", out, want)
	}
	var resent map[string]string
	s.runJSON(ctx, t, &resent, "", "messages", "resend", "m-2", "--webhook", webhook.ID)
	if want := map[string]string{"id": "m-2", "webhookId": webhook.ID, "status": "sending"}; !reflect.DeepEqual(resent, want) {
		t.Errorf("messages resend --output json = %v, want %v", resent, want)
	}
	waitFailed(4)
}

func TestCLIErrors(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	s := startCLIServer(ctx, t)
	webhook := createConsumer(ctx, t, newHTTPClient(t), s.url, s.auth, "https://receiver.example/hook")

	// A port without a server: the listener closes before the command runs.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closedURL := "http://" + ln.Addr().String()
	ln.Close()

	const unknownKey = "hk_0123456789abcdef_0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	tests := []struct {
		name  string
		env   []string
		stdin string
		args  []string
		want  []string // texts that stderr must contain
		api   bool     // stderr must show a correlation id
	}{
		{
			name: "missing key",
			env:  hookdEnv("HOOKD_URL=" + s.url),
			args: []string{"consumers", "list"},
			want: []string{"missing API key", "HOOKD_API_KEY"},
		},
		{
			name: "unknown key",
			env:  hookdEnv("HOOKD_URL="+s.url, "HOOKD_API_KEY="+unknownKey),
			args: []string{"consumers", "list"},
			want: []string{"401 Unauthorized: "},
			api:  true,
		},
		{
			name: "header value as key",
			env:  hookdEnv("HOOKD_URL="+s.url, "HOOKD_API_KEY="+s.auth),
			args: []string{"consumers", "list"},
			want: []string{"HOOKD_API_KEY contains an Authorization header value", "HOOKD_AUTH_HEADER"},
		},
		{
			name: "both key flags",
			args: []string{"consumers", "list", "--api-key", s.key, "--auth-header", s.auth},
			want: []string{"--api-key and --auth-header"},
		},
		{
			name: "invalid URL",
			args: []string{"consumers", "create", "--endpoint", "ftp://receiver.example/hook", "--event-type", "a"},
			want: []string{"400 Bad Request: ", "\n  url: "},
			api:  true,
		},
		{
			name: "two invalid fields",
			args: []string{"consumers", "create", "--endpoint", "ftp://receiver.example/hook", "--event-type", "a", "--event-type", ""},
			want: []string{"400 Bad Request: ", "\n  url: ", "\n  eventTypes[1]: "},
			api:  true,
		},
		{
			name: "create without endpoint",
			args: []string{"consumers", "create", "--event-type", "a"},
			want: []string{"--endpoint is required"},
		},
		{
			name: "create without event type",
			args: []string{"consumers", "create", "--endpoint", "https://receiver.example/hook"},
			want: []string{"--event-type is required"},
		},
		{
			name: "unknown consumer",
			args: []string{"consumers", "get", "00000000-0000-0000-0000-000000000000"},
			want: []string{"404 Not Found: ", "00000000-0000-0000-0000-000000000000"},
			api:  true,
		},
		{
			name: "delete unknown consumer",
			args: []string{"consumers", "delete", "8a210b68-6988-11ed-a1eb-0242ac120002"},
			want: []string{"404 Not Found: "},
			api:  true,
		},
		{
			name: "missing consumer id",
			args: []string{"consumers", "get"},
			want: []string{"missing CONSUMER_ID", "hookd consumers get CONSUMER_ID"},
		},
		{
			name: "update without changes",
			args: []string{"consumers", "update", webhook.ID},
			want: []string{"nothing to update"},
		},
		{
			name: "update enable and disable",
			args: []string{"consumers", "update", webhook.ID, "--enable", "--disable"},
			want: []string{"--enable and --disable"},
		},
		{
			name: "recover without since",
			args: []string{"consumers", "recover", webhook.ID},
			want: []string{"--since is required"},
		},
		{
			name: "recover bad since",
			args: []string{"consumers", "recover", webhook.ID, "--since", "yesterday"},
			want: []string{`invalid --since "yesterday"`, "RFC 3339"},
		},
		{
			name: "recover future since",
			args: []string{"consumers", "recover", webhook.ID, "--since", time.Now().Add(time.Hour).Format(time.RFC3339)},
			want: []string{"400 Bad Request: ", "\n  since: "},
			api:  true,
		},
		{
			name: "messages list bad since",
			args: []string{"messages", "list", webhook.ID, "--since", "-5m"},
			want: []string{`invalid --since "-5m"`},
		},
		{
			name: "messages list bad status",
			args: []string{"messages", "list", webhook.ID, "--status", "done"},
			want: []string{"400 Bad Request: ", "\n  status: "},
			api:  true,
		},
		{
			name: "unknown message",
			args: []string{"messages", "get", "no-such-message"},
			want: []string{"404 Not Found: ", "no-such-message"},
			api:  true,
		},
		{
			name: "resend without webhook",
			args: []string{"messages", "resend", "no-such-message"},
			want: []string{"--webhook is required"},
		},
		{
			name: "missing subcommand",
			args: []string{"consumers"},
			want: []string{"missing command", "hookd consumers --help"},
		},
		{
			name: "unknown subcommand",
			args: []string{"messages", "lst"},
			want: []string{`unknown command "lst" for hookd messages`, "did you mean list"},
		},
		{
			name: "bad output",
			args: []string{"consumers", "list", "--output", "yaml"},
			want: []string{`invalid --output "yaml"`},
		},
		{
			name: "server down",
			args: []string{"consumers", "list", "--url", closedURL, "--retry-for", "0"},
			want: []string{"connection refused", "Is hookd serve running at " + closedURL},
		},
		{
			name: "publish nothing",
			args: []string{"events", "publish"},
			want: []string{"nothing to publish"},
		},
		{
			name: "publish file and flags",
			args: []string{"events", "publish", "--file", "-", "--type", "a"},
			want: []string{"--file cannot be combined"},
		},
		{
			name: "publish bad payload",
			args: []string{"events", "publish", "--type", "a", "--payload", "{"},
			want: []string{"invalid --payload"},
		},
		{
			name:  "publish bad JSON",
			stdin: `{"eventType": "a",`,
			args:  []string{"events", "publish", "--file", "-"},
			want:  []string{"standard input"},
		},
		{
			name:  "publish unknown field",
			stdin: `{"event_type": "a", "payload": {}}`,
			args:  []string{"events", "publish", "--file", "-"},
			want:  []string{`unknown field "event_type"`},
		},
		{
			name:  "publish empty batch",
			stdin: `{"events": []}`,
			args:  []string{"events", "publish", "--file", "-"},
			want:  []string{"batch without events"},
		},
		{
			name:  "publish invalid event in batch",
			stdin: `[{"eventType": "a", "payload": {}}, {"eventType": "", "payload": {}}]`,
			args:  []string{"events", "publish", "--file", "-"},
			want:  []string{"400 Bad Request: ", "\n  events[1].eventType: "},
			api:   true,
		},
		{
			name: "publish missing file",
			args: []string{"events", "publish", "--file", filepath.Join(t.TempDir(), "missing.json")},
			want: []string{"read --file", "no such file"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := tt.env
			if env == nil {
				env = s.env
			}
			stdout, stderr, code := runCLI(ctx, t, env, tt.stdin, tt.args...)
			if code != 1 {
				t.Errorf("hookd %s: exit code %d, want 1", strings.Join(tt.args, " "), code)
			}
			if stdout != "" {
				t.Errorf("hookd %s printed on stdout:\n%s\nwant nothing", strings.Join(tt.args, " "), stdout)
			}
			for _, want := range tt.want {
				if !strings.Contains(stderr, want) {
					t.Errorf("hookd %s stderr = %q, want it to contain %q", strings.Join(tt.args, " "), stderr, want)
				}
			}
			if tt.api && !correlationLine.MatchString(stderr) {
				t.Errorf("hookd %s stderr = %q, want a line %q", strings.Join(tt.args, " "), stderr, "correlation id: ID")
			}
		})
	}
}

func TestCLIAuthSources(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	s := startCLIServer(ctx, t)

	tests := []struct {
		name string
		env  []string
		args []string
	}{
		{"key flag", hookdEnv("HOOKD_URL=" + s.url), []string{"--api-key", s.key}},
		{"header flag", hookdEnv("HOOKD_URL=" + s.url), []string{"--auth-header", s.auth}},
		{"header env", hookdEnv("HOOKD_URL="+s.url, "HOOKD_AUTH_HEADER="+s.auth), nil},
		{"url flag", hookdEnv("HOOKD_API_KEY=" + s.key), []string{"--url", s.url}},
		{"key flag over env", hookdEnv("HOOKD_URL="+s.url, "HOOKD_API_KEY=hk_wrong"), []string{"--api-key", s.key}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args := slices.Concat([]string{"consumers", "list", "--output", "json"}, tt.args)
			stdout, stderr, code := runCLI(ctx, t, tt.env, "", args...)
			if code != 0 {
				t.Fatalf("hookd %s: exit code %d, want 0; stderr:\n%s", strings.Join(args, " "), code, stderr)
			}
			if got, want := strings.Join(strings.Fields(stdout), ""), `{"results":[]}`; got != want {
				t.Errorf("hookd %s stdout = %s, want %s", strings.Join(args, " "), got, want)
			}
		})
	}
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}
