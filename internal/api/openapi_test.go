package api_test

import (
	"maps"
	"slices"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/hookd/hookd/internal/api"
)

// openAPIDocument is the part of an OpenAPI 3 document that these tests read. Each path
// item maps a lowercase method, or another path item field, to its value.
type openAPIDocument struct {
	Paths map[string]map[string]yaml.Node `yaml:"paths"`
}

type openAPIOperation struct {
	Responses map[string]yaml.Node `yaml:"responses"`
}

// OpenAPI 3.0 path item fields: the operations, and the fields that are not operations.
var (
	operationFields = []string{"get", "put", "post", "delete", "options", "head", "patch", "trace"}
	pathItemFields  = []string{"$ref", "summary", "description", "servers", "parameters"}
)

func parseOpenAPI(t *testing.T) openAPIDocument {
	t.Helper()

	var doc openAPIDocument
	if err := yaml.Unmarshal(api.OpenAPI, &doc); err != nil {
		t.Fatalf("parse api.OpenAPI: %v", err)
	}
	if len(doc.Paths) == 0 {
		t.Fatal("api.OpenAPI has no paths")
	}
	return doc
}

// documentedOperations returns "method path" for every operation in doc, with the method
// in lowercase as OpenAPI spells it.
func documentedOperations(t *testing.T, doc openAPIDocument) map[string]bool {
	t.Helper()

	ops := map[string]bool{}
	for path, item := range doc.Paths {
		for field := range item {
			switch {
			case slices.Contains(operationFields, field):
				ops[field+" "+path] = true
			case slices.Contains(pathItemFields, field), strings.HasPrefix(field, "x-"):
			default:
				t.Errorf("paths[%q] has field %q, which is neither an operation nor a path item field", path, field)
			}
		}
	}
	return ops
}

func TestOpenAPIRoutes(t *testing.T) {
	documented := documentedOperations(t, parseOpenAPI(t))

	// Routes needs no store, because it only lists the operations.
	served := map[string]bool{}
	for _, rt := range api.New(api.Config{}).Routes() {
		served[strings.ToLower(rt.Method)+" "+rt.Path] = true
	}

	var undocumented, unserved []string
	for op := range served {
		if !documented[op] {
			undocumented = append(undocumented, op)
		}
	}
	for op := range documented {
		if !served[op] {
			unserved = append(unserved, op)
		}
	}
	if len(undocumented) > 0 || len(unserved) > 0 {
		slices.Sort(undocumented)
		slices.Sort(unserved)
		t.Errorf("routes and openapi.yaml differ\n"+
			"served but not documented: %q\n"+
			"documented but not served: %q\n"+
			"served:     %q\n"+
			"documented: %q",
			undocumented, unserved,
			slices.Sorted(maps.Keys(served)), slices.Sorted(maps.Keys(documented)))
	}
}

// TestOpenAPIWebhookStatuses checks that each /webhooks operation declares its success
// status and exactly the error statuses that Codat's Platform API declares for it.
// Codat's SDKs parse only declared statuses as ErrorMessage.
func TestOpenAPIWebhookStatuses(t *testing.T) {
	type statusCase struct {
		method string
		path   string
		want   []string
	}
	tests := []statusCase{
		{"get", "/webhooks", []string{"200", "400", "401", "402", "403", "429", "500", "503"}},
		{"post", "/webhooks", []string{"201", "400", "401", "402", "403", "429", "500", "503"}},
		{"delete", "/webhooks/{webhookId}", []string{"204", "401", "402", "403", "404", "429", "500", "503"}},
	}

	doc := parseOpenAPI(t)

	// Every /webhooks operation needs a case here.
	for op := range documentedOperations(t, doc) {
		method, path, _ := strings.Cut(op, " ")
		if !strings.HasPrefix(path, "/webhooks") {
			continue
		}
		covered := slices.ContainsFunc(tests, func(tt statusCase) bool {
			return tt.method == method && tt.path == path
		})
		if !covered {
			t.Errorf("operation %s has no expected statuses in this test", op)
		}
	}

	for _, tt := range tests {
		t.Run(tt.method+" "+tt.path, func(t *testing.T) {
			node, ok := doc.Paths[tt.path][tt.method]
			if !ok {
				t.Fatalf("openapi.yaml has no operation %s %s", tt.method, tt.path)
			}
			var op openAPIOperation
			if err := node.Decode(&op); err != nil {
				t.Fatalf("decode operation: %v", err)
			}
			got := slices.Sorted(maps.Keys(op.Responses))
			if !slices.Equal(got, tt.want) {
				t.Errorf("response statuses = %q, want %q", got, tt.want)
			}
		})
	}
}
