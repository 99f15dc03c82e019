package sdk

import (
	"slices"
	"strconv"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/hookd/hookd/internal/api"
)

// TestErrorStatusesMatchOpenAPI checks that each operation parses as ErrorMessage exactly
// the error statuses that hookd's OpenAPI document declares for it, and that the SDK
// covers every operation that needs an API key.
func TestErrorStatusesMatchOpenAPI(t *testing.T) {
	var doc struct {
		Paths map[string]map[string]struct {
			Security  *[]map[string][]string `yaml:"security"`
			Responses map[string]any         `yaml:"responses"`
		} `yaml:"paths"`
	}
	if err := yaml.Unmarshal(api.OpenAPI, &doc); err != nil {
		t.Fatalf("parse OpenAPI document: %v", err)
	}

	sdkStatuses := map[string][]int{
		"get /webhooks":                            listConsumersErrors,
		"post /webhooks":                           createConsumerErrors,
		"delete /webhooks/{webhookId}":             deleteConsumerErrors,
		"get /webhooks/{webhookId}":                getConsumerErrors,
		"patch /webhooks/{webhookId}":              updateConsumerErrors,
		"get /webhooks/{webhookId}/messages":       listMessagesErrors,
		"post /webhooks/{webhookId}/recover":       recoverMessagesErrors,
		"get /webhooks/{webhookId}/secret":         getSecretErrors,
		"post /webhooks/{webhookId}/secret/rotate": rotateSecretErrors,
		"post /events":                             publishEventErrors,
		"post /events/batch":                       publishEventsErrors,
		"get /messages/{messageId}":                getMessageErrors,
		"get /messages/{messageId}/attempts":       listAttemptsErrors,
		"post /messages/{messageId}/resend":        resendMessageErrors,
	}

	seen := map[string]bool{}
	for path, ops := range doc.Paths {
		for method, op := range ops {
			if op.Security != nil && len(*op.Security) == 0 {
				continue // a public endpoint, such as /healthz
			}
			key := method + " " + path
			seen[key] = true
			var declared []int
			for code := range op.Responses {
				status, err := strconv.Atoi(code)
				if err != nil {
					t.Fatalf("%s: response %q is not a status", key, code)
				}
				if status >= 400 {
					declared = append(declared, status)
				}
			}
			slices.Sort(declared)

			got, ok := sdkStatuses[key]
			if !ok {
				t.Errorf("%s has no operation in the SDK", key)
				continue
			}
			if !slices.Equal(got, declared) {
				t.Errorf("%s: SDK error statuses %v, OpenAPI declares %v", key, got, declared)
			}
		}
	}
	for key := range sdkStatuses {
		if !seen[key] {
			t.Errorf("the SDK calls %s, which the OpenAPI document does not declare", key)
		}
	}
}
