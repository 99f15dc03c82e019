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

	// Extension marks the operations that are not part of Codat's Platform API.
	Extension bool `yaml:"x-hookd-extension"`
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

// TestOpenAPIStatuses checks that each operation declares exactly the expected statuses.
// The three /webhooks operations of Codat's Platform API declare the error statuses that
// Codat declares, because Codat's SDKs parse only declared statuses as ErrorMessage. The
// hookd extensions declare the statuses their handlers and the middleware can return.
func TestOpenAPIStatuses(t *testing.T) {
	type statusCase struct {
		method    string
		path      string
		extension bool
		want      []string
	}
	tests := []statusCase{
		// Codat's Platform API.
		{"get", "/webhooks", false, []string{"200", "400", "401", "402", "403", "429", "500", "503"}},
		{"post", "/webhooks", false, []string{"201", "400", "401", "402", "403", "429", "500", "503"}},
		{"delete", "/webhooks/{webhookId}", false, []string{"204", "401", "402", "403", "404", "429", "500", "503"}},

		// hookd extensions.
		{"get", "/webhooks/{webhookId}", true, []string{"200", "401", "402", "404", "429", "500", "503"}},
		{"patch", "/webhooks/{webhookId}", true, []string{"200", "400", "401", "402", "403", "404", "429", "500", "503"}},
		{"get", "/webhooks/{webhookId}/messages", true, []string{"200", "400", "401", "402", "404", "429", "500", "503"}},
		{"post", "/webhooks/{webhookId}/recover", true, []string{"202", "400", "401", "402", "403", "404", "429", "500", "503"}},
		{"get", "/webhooks/{webhookId}/secret", true, []string{"200", "401", "402", "403", "404", "429", "500", "503"}},
		{"post", "/webhooks/{webhookId}/secret/rotate", true, []string{"200", "401", "402", "403", "404", "429", "500", "503"}},
		{"post", "/events", true, []string{"202", "400", "401", "402", "403", "429", "500", "503"}},
		{"post", "/events/batch", true, []string{"202", "400", "401", "402", "403", "429", "500", "503"}},
		{"get", "/messages/{messageId}", true, []string{"200", "401", "402", "404", "429", "500", "503"}},
		{"get", "/messages/{messageId}/attempts", true, []string{"200", "401", "402", "404", "429", "500", "503"}},
		{"post", "/messages/{messageId}/resend", true, []string{"202", "400", "401", "402", "403", "404", "429", "500", "503"}},

		// Operations without a key. Every path returns 503 once a shutdown has begun.
		{"get", "/healthz", false, []string{"200", "503"}},
		{"get", "/readyz", false, []string{"200", "503"}},
		{"get", "/openapi.yaml", false, []string{"200", "503"}},
		{"get", "/metrics", false, []string{"200", "404", "503"}},
	}

	doc := parseOpenAPI(t)

	// Every documented operation needs a case here.
	for op := range documentedOperations(t, doc) {
		method, path, _ := strings.Cut(op, " ")
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
			if op.Extension != tt.extension {
				t.Errorf("x-hookd-extension = %v, want %v", op.Extension, tt.extension)
			}
		})
	}
}
