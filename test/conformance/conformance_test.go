// Package conformance checks hookd's wire compatibility with Codat's Platform API by running
// conformance.mjs, which calls hookd servers through Codat's published TypeScript SDK
// (@codat/platform), against servers that the test starts on loopback.
//
// The test needs Node.js and the SDK installed by "npm ci --prefix test/conformance". It
// never downloads anything. Without them it skips, or fails when HOOKD_REQUIRE_NODE=1.
package conformance

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/hookd/hookd/internal/api"
	"github.com/hookd/hookd/internal/apikey"
	"github.com/hookd/hookd/internal/store"
	"github.com/hookd/hookd/internal/store/sqlite"
)

const (
	// sdkVersion is the @codat/platform version that package.json pins and that
	// conformance.mjs was written against.
	sdkVersion = "6.2.1"

	// runTimeout bounds the whole node run. The script makes about 20 requests on loopback,
	// so the limit only stops a run that hangs.
	runTimeout = 60 * time.Second

	// shutdownTimeout bounds each server's shutdown at the end of the test.
	shutdownTimeout = 5 * time.Second

	// requireNodeEnv set to 1 turns a missing node or SDK into a failure instead of a skip,
	// so that scripts/test cannot pass without running the SDK.
	requireNodeEnv = "HOOKD_REQUIRE_NODE"

	installHint = "run `npm ci --prefix test/conformance` from the repository root"
)

// summaryPattern matches the last line that conformance.mjs prints.
var summaryPattern = regexp.MustCompile(`(?m)^(\d+) passed, (\d+) failed$`)

// rawKeys are the API keys that conformance.mjs receives.
type rawKeys struct {
	readWrite string
	readOnly  string
	suspended string
}

func TestCodatSDK(t *testing.T) {
	nodePath := requireNode(t)
	requireSDK(t)

	ctx := t.Context()
	st, err := sqlite.Open(ctx, t.TempDir(), sqlite.Options{})
	if err != nil {
		t.Fatalf("open store: %v", err)
	}
	// Cleanups run in reverse order, so the store closes after both servers shut down.
	t.Cleanup(func() {
		if err := st.Close(); err != nil {
			t.Errorf("close store: %v", err)
		}
	})
	keys := seedClients(t, st)

	// Both servers share the store, but each keeps its own rate-limit buckets, so the
	// strict limit of the second server does not affect requests to the first.
	baseURL := startServer(t, api.Config{Store: st, Logger: testLogger(t)})
	rateLimitedURL := startServer(t, api.Config{Store: st, Logger: testLogger(t), RateLimit: 0.001, RateBurst: 1})

	output, runErr := runScript(t, nodePath, []string{
		"HOOKD_URL=" + baseURL,
		"HOOKD_RATE_LIMITED_URL=" + rateLimitedURL,
		"HOOKD_KEY=" + keys.readWrite,
		"HOOKD_READONLY_KEY=" + keys.readOnly,
		"HOOKD_SUSPENDED_KEY=" + keys.suspended,
	})

	var exitErr *exec.ExitError
	switch {
	case errors.Is(runErr, context.DeadlineExceeded):
		t.Fatalf("node conformance.mjs did not finish within %s and was killed", runTimeout)
	case errors.As(runErr, &exitErr):
		t.Fatalf("node conformance.mjs exited with status %d: 1 means a check failed and 2 an invalid setup. Failed checks:\n%s",
			exitErr.ExitCode(), failedChecks(output))
	case runErr != nil:
		t.Fatalf("run node conformance.mjs: %v", runErr)
	}

	// A zero exit status alone does not prove that the checks ran.
	summary := summaryPattern.FindStringSubmatch(output)
	switch {
	case summary == nil:
		t.Errorf("output has no %q summary line", "N passed, N failed")
	case summary[1] == "0":
		t.Errorf("summary %q: want at least one passed check", summary[0])
	case summary[2] != "0":
		t.Errorf("summary %q: want 0 failed", summary[0])
	}
}

// requireNode returns the path of the node binary, or skips or fails the test without it.
func requireNode(t *testing.T) string {
	t.Helper()
	path, err := exec.LookPath("node")
	if err != nil {
		missingPrerequisite(t, "node is not installed (%v). Install Node.js, for example Debian's nodejs and npm packages, then %s", err, installHint)
	}
	return path
}

// requireSDK checks that node_modules contains @codat/platform at sdkVersion, and skips or
// fails the test when it is missing.
func requireSDK(t *testing.T) {
	t.Helper()
	manifest := filepath.Join("node_modules", "@codat", "platform", "package.json")
	data, err := os.ReadFile(manifest)
	if errors.Is(err, fs.ErrNotExist) {
		missingPrerequisite(t, "@codat/platform is not installed in test/conformance/node_modules: %s", installHint)
	}
	if err != nil {
		t.Fatalf("read %s: %v", manifest, err)
	}

	var pkg struct {
		Version string `json:"version"`
	}
	if err := json.Unmarshal(data, &pkg); err != nil {
		t.Fatalf("parse %s: %v", manifest, err)
	}
	if pkg.Version != sdkVersion {
		t.Fatalf("installed @codat/platform is version %q, want %s: %s", pkg.Version, sdkVersion, installHint)
	}
}

// missingPrerequisite fails the test when HOOKD_REQUIRE_NODE is 1 and skips it otherwise.
func missingPrerequisite(t *testing.T, format string, args ...any) {
	t.Helper()
	if os.Getenv(requireNodeEnv) == "1" {
		t.Fatalf(format, args...)
	}
	t.Skipf(format, args...)
}

// seedClients creates the client "acme" with a read-write and a read-only key, and the
// suspended client "frozen" with one key.
func seedClients(t *testing.T, st store.Store) rawKeys {
	t.Helper()
	ctx := t.Context()

	acme, _, err := st.EnsureClient(ctx, "acme")
	if err != nil {
		t.Fatalf("create client acme: %v", err)
	}
	frozen, _, err := st.EnsureClient(ctx, "frozen")
	if err != nil {
		t.Fatalf("create client frozen: %v", err)
	}

	keys := rawKeys{
		readWrite: createKey(t, st, acme.ID, false),
		readOnly:  createKey(t, st, acme.ID, true),
		suspended: createKey(t, st, frozen.ID, false),
	}
	if _, err := st.SetClientSuspended(ctx, "frozen", true); err != nil {
		t.Fatalf("suspend client frozen: %v", err)
	}
	return keys
}

// createKey stores a new key for the client and returns the raw key.
func createKey(t *testing.T, st store.Store, clientID string, readOnly bool) string {
	t.Helper()
	key, err := apikey.New()
	if err != nil {
		t.Fatalf("generate key: %v", err)
	}
	err = st.CreateKey(t.Context(), store.APIKey{
		ID:       key.ID,
		ClientID: clientID,
		Hash:     apikey.Hash(key.Raw),
		ReadOnly: readOnly,
	})
	if err != nil {
		t.Fatalf("store key for client %s: %v", clientID, err)
	}
	return key.Raw
}

// startServer serves cfg on a loopback port until the test ends and returns its base URL.
func startServer(t *testing.T, cfg api.Config) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen on 127.0.0.1: %v", err)
	}

	srv := api.New(cfg)
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()

	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			t.Errorf("shut down server on %s: %v", ln.Addr(), err)
		}
		if err := <-served; err != nil {
			t.Errorf("serve on %s: %v", ln.Addr(), err)
		}
	})
	return "http://" + ln.Addr().String()
}

// testLogger writes the servers' warnings and errors to the test log. The request lines
// of successful and rejected requests are at info level and left out.
func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn}))
}

// runScript runs node conformance.mjs with env added to the test's environment. It streams
// the script's standard output and standard error to the test log as they arrive, and also
// returns them.
func runScript(t *testing.T, nodePath string, env []string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), runTimeout)
	defer cancel()

	var output bytes.Buffer
	w := io.MultiWriter(t.Output(), &output)

	cmd := exec.CommandContext(ctx, nodePath, "conformance.mjs")
	cmd.Env = append(os.Environ(), env...)
	// One writer for both streams keeps their lines in order, and exec.Cmd then writes
	// from a single goroutine.
	cmd.Stdout = w
	cmd.Stderr = w
	// Stop waiting for the output pipe shortly after a kill, even if a child of node
	// still holds it open.
	cmd.WaitDelay = 5 * time.Second

	err := cmd.Run()
	if ctx.Err() != nil {
		err = errors.Join(ctx.Err(), err)
	}
	return output.String(), err
}

// failedChecks returns the FAIL lines of the script's output, or a note when there are none.
func failedChecks(output string) string {
	var lines []string
	for line := range strings.Lines(output) {
		if strings.HasPrefix(line, "FAIL ") {
			lines = append(lines, strings.TrimRight(line, "\n"))
		}
	}
	if len(lines) == 0 {
		return "(no FAIL lines; see the output above)"
	}
	return strings.Join(lines, "\n")
}
