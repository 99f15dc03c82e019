//go:build unix

package bench

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// writeScript writes an executable shell script that replaces the hookd binary in a test.
func writeScript(t *testing.T, body string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "fake-hookd")
	if err := os.WriteFile(path, []byte("#!/bin/sh\n"+body), 0o755); err != nil {
		t.Fatal(err)
	}
	return path
}

// serveScript prints what hookd serve prints on its first start and runs until SIGTERM,
// for at most 30 seconds.
const serveScript = `
trap 'kill $child 2>/dev/null; exit 0' TERM
echo "hookd created the client \"default\" and an API key for it."
echo "  API key:              hk_0123456789abcdef_0123"
echo '{"time":"2026-01-01T00:00:00Z","level":"INFO","msg":"request","url":"http://wrong"}' >&2
echo '{"time":"2026-01-01T00:00:00Z","level":"INFO","msg":"hookd started","url":"http://127.0.0.1:4567"}' >&2
sleep 30 </dev/null >/dev/null 2>&1 & child=$!
wait $child
`

func TestStartHookdReady(t *testing.T) {
	exe := writeScript(t, serveScript)
	p, err := startHookd(t.Context(), exe, t.TempDir(), true, "--addr", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("startHookd: %v", err)
	}
	defer p.kill()
	if p.url != "http://127.0.0.1:4567" {
		t.Errorf("url = %q, want the one of the hookd started line", p.url)
	}
	if p.key != "hk_0123456789abcdef_0123" {
		t.Errorf("key = %q, want the banner's", p.key)
	}
	if err := p.running(); err != nil {
		t.Errorf("running = %v, want nil", err)
	}
	if err := p.stop(); err != nil {
		t.Errorf("stop = %v, want a clean exit after SIGTERM", err)
	}
	if err := p.running(); err == nil {
		t.Errorf("running after stop = nil, want an error")
	}
}

func TestStartHookdExitsEarly(t *testing.T) {
	exe := writeScript(t, `echo "hookd: invalid --workers 0: use 1 or more" >&2; exit 1`)
	_, err := startHookd(t.Context(), exe, t.TempDir(), true)
	if err == nil || !strings.Contains(err.Error(), "invalid --workers 0") {
		t.Errorf("startHookd = %v, want an error with the server's message", err)
	}
}

func TestStartHookdPassesArgs(t *testing.T) {
	// The script logs its arguments as the URL, so that the test can compare them.
	exe := writeScript(t, `echo "{\"msg\":\"hookd started\",\"url\":\"$*\"}" >&2; exec sleep 30`)
	p, err := startHookd(t.Context(), exe, t.TempDir(), false, "--data", "d", "--rate-limit", "0")
	if err != nil {
		t.Fatalf("startHookd: %v", err)
	}
	defer p.kill()
	if want := "serve --data d --rate-limit 0"; p.url != want {
		t.Errorf("arguments = %q, want %q", p.url, want)
	}
}

func TestServeHasFlag(t *testing.T) {
	help := `printf 'Usage:\n  hookd serve [flags]\n\nFlags:\n      --data string        folder\n      --database-pool int  pool\n  -h, --help               help\n'`
	exe := writeScript(t, help)
	tests := []struct {
		flag string
		want bool
	}{
		{"--data", true},
		{"--help", true},
		{"--database", false}, // only --database-pool is listed
		{"--workers", false},
	}
	for _, tt := range tests {
		got, err := serveHasFlag(t.Context(), exe, tt.flag)
		if err != nil || got != tt.want {
			t.Errorf("serveHasFlag(%s) = %v, %v; want %v", tt.flag, got, err, tt.want)
		}
	}
}

func TestTailWriter(t *testing.T) {
	w := newTailWriter(5)
	w.Write([]byte("abc"))
	w.Write([]byte("defg"))
	if got := w.String(); got != "cdefg" {
		t.Errorf("tail = %q, want %q", got, "cdefg")
	}
}

func TestRunPostgresUnavailable(t *testing.T) {
	// A serve without --database, like hookd before its PostgreSQL backend.
	exe := writeScript(t, `printf 'Flags:\n      --data string   folder\n'`)
	tests := []struct {
		name string
		cfg  Config
	}{
		{"postgres scenario", Config{Hookd: exe, Scenario: ScenarioPostgres, Database: "postgres://127.0.0.1/hookd"}},
		{"database flag", Config{Hookd: exe, Scenario: ScenarioSteady, Database: "postgres://127.0.0.1/hookd"}},
		{"postgres without database", Config{Hookd: exe, Scenario: ScenarioPostgres}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Run(t.Context(), tt.cfg)
			if !errors.Is(err, ErrPostgresUnavailable) {
				t.Errorf("Run = %v, want ErrPostgresUnavailable", err)
			}
		})
	}
}
