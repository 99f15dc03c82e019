//go:build unix

// The tests in this file run the hookd binary as a separate process and send it signals,
// so they build only on Unix systems.

package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime/debug"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// testTimeout bounds each test, including every hookd process it starts.
const testTimeout = 20 * time.Second

// consumerBody is a valid POST /webhooks body. The .example domain never resolves, and
// hookd only stores the URL.
const consumerBody = `{"url":"https://receiver.example/webhook","eventTypes":["company.created"]}`

// hookdPath is the binary that TestMain builds.
var hookdPath string

var (
	// keyPattern matches a raw API key and captures its key id.
	keyPattern = regexp.MustCompile(`^hk_([0-9a-f]{16})_[0-9a-f]{64}$`)

	// The lines of the banner that serve prints on its first start.
	bannerURLLine    = regexp.MustCompile(`(?m)^\s*Base URL:\s+(\S+)\s*$`)
	bannerKeyLine    = regexp.MustCompile(`(?m)^\s*API key:\s+(\S+)\s*$`)
	bannerHeaderLine = regexp.MustCompile(`(?m)^\s*Authorization header:\s+(.+?)\s*$`)
)

func TestMain(m *testing.M) {
	os.Exit(runTests(m))
}

func runTests(m *testing.M) int {
	dir, err := os.MkdirTemp("", "hookd-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)

	hookdPath = filepath.Join(dir, "hookd")
	if err := buildHookd(hookdPath); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return m.Run()
}

// buildHookd builds this package into path. It runs the go command of the running test:
// since Go 1.19, go test puts its GOROOT/bin first in the test binary's PATH. The binary
// gets the race detector when the test binary has it.
func buildHookd(path string) error {
	goCmd, err := exec.LookPath("go")
	if err != nil {
		return fmt.Errorf("find the go command: %w", err)
	}
	args := []string{"build", "-o", path}
	if raceEnabled() {
		args = append(args, "-race")
	}
	args = append(args, ".")

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, goCmd, args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s %s: %w\n%s", goCmd, strings.Join(args, " "), err, out)
	}
	return nil
}

// raceEnabled reports whether the test binary was built with -race.
func raceEnabled() bool {
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return false
	}
	for _, s := range info.Settings {
		if s.Key == "-race" {
			return s.Value == "true"
		}
	}
	return false
}

func TestServeFirstStart(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	dir := t.TempDir()

	p := startServe(ctx, t, dir)
	banner := p.waitOutput(ctx, t, p.stdout, "the key banner", func(s string) bool {
		return bannerURLLine.MatchString(s) && bannerKeyLine.MatchString(s) && bannerHeaderLine.MatchString(s)
	})
	if got := bannerURLLine.FindStringSubmatch(banner)[1]; got != p.url {
		t.Errorf("banner base URL = %q, want %q from the log", got, p.url)
	}
	key := bannerKeyLine.FindStringSubmatch(banner)[1]
	if !keyPattern.MatchString(key) {
		t.Errorf("banner API key = %q, want the form hk_<16 hex>_<64 hex>", key)
	}
	header := bannerHeaderLine.FindStringSubmatch(banner)[1]
	if want := authHeader(key); header != want {
		t.Errorf("banner Authorization header = %q, want %q", header, want)
	}

	client := newHTTPClient(t)
	status, body := send(ctx, t, client, http.MethodGet, p.url+"/webhooks", header, "")
	if status != http.StatusOK {
		t.Errorf("GET /webhooks with the banner header: status %d, want 200; body %s", status, body)
	}
	if got, want := strings.TrimSpace(body), `{"results":[]}`; got != want {
		t.Errorf("GET /webhooks body = %s, want %s", got, want)
	}
	stopServe(t, p)

	second := startServe(ctx, t, dir)
	stopServe(t, second)
	if out := second.stdout.String(); out != "" {
		t.Errorf("second start printed on stdout:\n%s\nwant nothing", out)
	}
	if status, body := send(ctx, t, client, http.MethodGet, second.url+"/webhooks", header, ""); status != 0 {
		t.Errorf("GET /webhooks after the server stopped: status %d, body %s; want a connection error", status, body)
	}

	third := startServe(ctx, t, dir)
	if status, body := send(ctx, t, client, http.MethodGet, third.url+"/webhooks", header, ""); status != http.StatusOK {
		t.Errorf("GET /webhooks with the first key after a restart: status %d, want 200; body %s", status, body)
	}
}

func TestKeysCommands(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	dir := t.TempDir()
	p := startServe(ctx, t, dir)
	client := newHTTPClient(t)

	out := runOK(ctx, t, "keys", "create", "--client", "alice", "--data", dir)
	key := lastLine(out)
	match := keyPattern.FindStringSubmatch(key)
	if match == nil {
		t.Fatalf("keys create: last stdout line = %q, want the raw key alone; stdout:\n%s", key, out)
	}
	keyID := match[1]
	if !strings.Contains(out, "Authorization header: "+authHeader(key)+"\n") {
		t.Errorf("keys create stdout has no line %q:\n%s", "Authorization header: "+authHeader(key), out)
	}
	if status, body := send(ctx, t, client, http.MethodPost, p.url+"/webhooks", authHeader(key), consumerBody); status != http.StatusCreated {
		t.Errorf("POST /webhooks with the new key: status %d, want 201; body %s", status, body)
	}

	out = runOK(ctx, t, "keys", "create", "--client", "alice", "--read-only", "--data", dir)
	readKey := lastLine(out)
	match = keyPattern.FindStringSubmatch(readKey)
	if match == nil {
		t.Fatalf("keys create --read-only: last stdout line = %q, want the raw key alone; stdout:\n%s", readKey, out)
	}
	readKeyID := match[1]
	if status, body := send(ctx, t, client, http.MethodPost, p.url+"/webhooks", authHeader(readKey), consumerBody); status != http.StatusForbidden {
		t.Errorf("POST /webhooks with the read-only key: status %d, want 403; body %s", status, body)
	}
	if status, body := send(ctx, t, client, http.MethodGet, p.url+"/webhooks", authHeader(readKey), ""); status != http.StatusOK {
		t.Errorf("GET /webhooks with the read-only key: status %d, want 200; body %s", status, body)
	}

	list := runOK(ctx, t, "keys", "list", "--data", dir)
	for _, want := range []struct{ id, access string }{{keyID, "read-write"}, {readKeyID, "read-only"}} {
		row := keyRow(list, want.id)
		if row == nil {
			t.Errorf("keys list has no row for key %s:\n%s", want.id, list)
			continue
		}
		if got := row[1]; got != "alice" {
			t.Errorf("keys list: client of key %s = %q, want alice", want.id, got)
		}
		if got := row[2]; got != want.access {
			t.Errorf("keys list: access of key %s = %q, want %s", want.id, got, want.access)
		}
		if got := row[4]; got != "-" {
			t.Errorf("keys list: key %s revoked at %q, want -", want.id, got)
		}
	}

	runOK(ctx, t, "keys", "revoke", keyID, "--data", dir)
	if status, body := send(ctx, t, client, http.MethodGet, p.url+"/webhooks", authHeader(key), ""); status != http.StatusUnauthorized {
		t.Errorf("GET /webhooks with the revoked key: status %d, want 401; body %s", status, body)
	}
	if status, body := send(ctx, t, client, http.MethodGet, p.url+"/webhooks", authHeader(readKey), ""); status != http.StatusOK {
		t.Errorf("GET /webhooks with the other key of the client: status %d, want 200; body %s", status, body)
	}
	list = runOK(ctx, t, "keys", "list", "--data", dir)
	if row := keyRow(list, keyID); row == nil || row[4] == "-" {
		t.Errorf("keys list after revoke shows key %s as %q, want a revocation time:\n%s", keyID, row, list)
	}

	const unknownID = "0123456789abcdef"
	stdout, stderr, code := runHookd(ctx, t, hookdEnv(), "keys", "revoke", unknownID, "--data", dir)
	if code == 0 {
		t.Errorf("keys revoke %s exited with 0, want an error; stdout:\n%s", unknownID, stdout)
	}
	if want := fmt.Sprintf("no key with id %q exists", unknownID); !strings.Contains(stderr, want) {
		t.Errorf("keys revoke %s stderr = %q, want it to contain %q", unknownID, stderr, want)
	}
}

func TestClientsSuspendResume(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	dir := t.TempDir()
	p := startServe(ctx, t, dir)
	defaultAuth := authHeader(firstKey(ctx, t, p))
	client := newHTTPClient(t)

	aliceAuth := authHeader(lastLine(runOK(ctx, t, "keys", "create", "--client", "alice", "--data", dir)))
	if status, body := send(ctx, t, client, http.MethodGet, p.url+"/webhooks", aliceAuth, ""); status != http.StatusOK {
		t.Fatalf("GET /webhooks as alice: status %d, want 200; body %s", status, body)
	}

	runOK(ctx, t, "clients", "suspend", "alice", "--data", dir)
	if status, body := send(ctx, t, client, http.MethodGet, p.url+"/webhooks", aliceAuth, ""); status != http.StatusPaymentRequired {
		t.Errorf("GET /webhooks as suspended alice: status %d, want 402; body %s", status, body)
	}
	if status, body := send(ctx, t, client, http.MethodPost, p.url+"/webhooks", aliceAuth, consumerBody); status != http.StatusPaymentRequired {
		t.Errorf("POST /webhooks as suspended alice: status %d, want 402; body %s", status, body)
	}
	if status, body := send(ctx, t, client, http.MethodGet, p.url+"/webhooks", defaultAuth, ""); status != http.StatusOK {
		t.Errorf("GET /webhooks as default while alice is suspended: status %d, want 200; body %s", status, body)
	}

	runOK(ctx, t, "clients", "resume", "alice", "--data", dir)
	if status, body := send(ctx, t, client, http.MethodGet, p.url+"/webhooks", aliceAuth, ""); status != http.StatusOK {
		t.Errorf("GET /webhooks as resumed alice: status %d, want 200; body %s", status, body)
	}

	stdout, stderr, code := runHookd(ctx, t, hookdEnv(), "clients", "suspend", "bob", "--data", dir)
	if code == 0 {
		t.Errorf("clients suspend bob exited with 0, want an error; stdout:\n%s", stdout)
	}
	if want := `no client named "bob" exists`; !strings.Contains(stderr, want) {
		t.Errorf("clients suspend bob stderr = %q, want it to contain %q", stderr, want)
	}
}

func TestServeRestartKeepsConsumers(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	dir := t.TempDir()
	client := newHTTPClient(t)

	p := startServe(ctx, t, dir)
	auth := authHeader(firstKey(ctx, t, p))
	status, body := send(ctx, t, client, http.MethodPost, p.url+"/webhooks", auth, consumerBody)
	if status != http.StatusCreated {
		t.Fatalf("POST /webhooks: status %d, want 201; body %s", status, body)
	}
	created := decodeConsumer(t, body)
	stopServe(t, p)

	p = startServe(ctx, t, dir)
	got := listConsumers(ctx, t, client, p.url, auth)
	if len(got) != 1 || got[0] != created {
		t.Errorf("GET /webhooks after a restart = %+v, want [%+v]", got, created)
	}
}

func TestServeStopsOnSignal(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		signal os.Signal
	}{
		{"SIGTERM", syscall.SIGTERM},
		{"SIGINT", syscall.SIGINT},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ctx := testContext(t)
			p := startServe(ctx, t, t.TempDir())

			if code := p.stop(t, tt.signal); code != 0 {
				t.Errorf("exit code after %s = %d, want 0", tt.name, code)
			}
			if _, ok := logRecord(p.stderr.String(), "hookd stopped"); !ok {
				t.Errorf("no %q log line after %s; stderr:\n%s", "hookd stopped", tt.name, p.stderr.String())
			}
		})
	}
}

func TestServeShutdownFinishesRequest(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	dir := t.TempDir()
	p := startServe(ctx, t, dir)
	auth := authHeader(firstKey(ctx, t, p))

	// With "Expect: 100-continue" the server sends 100 Continue when the handler first reads
	// the body, so Got100Continue means that the request is in flight.
	inFlight := make(chan struct{})
	trace := &httptrace.ClientTrace{Got100Continue: func() { close(inFlight) }}
	body, bodyWriter := io.Pipe()
	req, err := http.NewRequestWithContext(httptrace.WithClientTrace(ctx, trace), http.MethodPost, p.url+"/webhooks", body)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", auth)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Expect", "100-continue")

	transport := &http.Transport{ExpectContinueTimeout: testTimeout}
	t.Cleanup(transport.CloseIdleConnections)
	type result struct {
		status int
		body   string
		err    error
	}
	done := make(chan result, 1)
	go func() {
		resp, err := transport.RoundTrip(req)
		if err != nil {
			done <- result{err: err}
			return
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		done <- result{status: resp.StatusCode, body: string(b), err: err}
	}()

	select {
	case <-inFlight:
	case r := <-done:
		t.Fatalf("POST /webhooks ended before the server read its body: status %d, body %s, error %v", r.status, r.body, r.err)
	case <-ctx.Done():
		t.Fatalf("wait for 100 Continue: %v", ctx.Err())
	}
	half := len(consumerBody) / 2
	if _, err := bodyWriter.Write([]byte(consumerBody[:half])); err != nil {
		t.Fatalf("write the first half of the body: %v", err)
	}

	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatalf("send SIGTERM: %v", err)
	}
	rec := p.waitLog(ctx, t, "hookd shutting down")
	if got := rec["in_flight"]; got != float64(1) {
		t.Errorf("shutdown log in_flight = %v, want 1", got)
	}
	waitRefused(ctx, t, strings.TrimPrefix(p.url, "http://"))

	if _, err := bodyWriter.Write([]byte(consumerBody[half:])); err != nil {
		t.Fatalf("write the second half of the body: %v", err)
	}
	bodyWriter.Close()

	var r result
	select {
	case r = <-done:
	case <-ctx.Done():
		t.Fatalf("wait for the response: %v", ctx.Err())
	}
	if r.err != nil {
		t.Fatalf("POST /webhooks during shutdown: %v", r.err)
	}
	if r.status != http.StatusCreated {
		t.Fatalf("POST /webhooks during shutdown: status %d, want 201; body %s", r.status, r.body)
	}
	created := decodeConsumer(t, r.body)

	<-p.exited
	if code := p.cmd.ProcessState.ExitCode(); code != 0 {
		t.Errorf("exit code after SIGTERM = %d, want 0", code)
	}
	if _, ok := logRecord(p.stderr.String(), "hookd stopped"); !ok {
		t.Errorf("no %q log line; stderr:\n%s", "hookd stopped", p.stderr.String())
	}

	p = startServe(ctx, t, dir)
	got := listConsumers(ctx, t, newHTTPClient(t), p.url, auth)
	if len(got) != 1 || got[0] != created {
		t.Errorf("GET /webhooks after a restart = %+v, want [%+v]", got, created)
	}
}

func TestBadFlags(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		args []string
		want string // text the error message must contain
	}{
		{"log format xml", []string{"serve", "--log-format", "xml"}, "--log-format"},
		{"log level", []string{"serve", "--log-level", "loud"}, "--log-level"},
		{"negative rate limit", []string{"serve", "--rate-limit", "-1"}, "--rate-limit"},
		{"rate limit not a number", []string{"serve", "--rate-limit", "fast"}, "--rate-limit"},
		{"negative rate burst", []string{"serve", "--rate-burst", "-1"}, "--rate-burst"},
		{"unknown flag", []string{"serve", "--port", "80"}, "--port"},
		{"keys create without client", []string{"keys", "create"}, "--client"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ctx := testContext(t)

			args := slices.Concat(tt.args, []string{"--data", t.TempDir()})
			if tt.args[0] == "serve" {
				args = append(args, "--addr", "127.0.0.1:0")
			}
			stdout, stderr, code := runHookd(ctx, t, hookdEnv(), args...)
			if code == 0 {
				t.Errorf("hookd %s exited with 0, want an error; stdout:\n%s", strings.Join(tt.args, " "), stdout)
			}
			if !strings.Contains(stderr, tt.want) {
				t.Errorf("hookd %s stderr = %q, want it to name %s", strings.Join(tt.args, " "), stderr, tt.want)
			}
		})
	}
}

func TestAddrWithoutPort(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)

	for _, args := range [][]string{
		{"serve", "--data", t.TempDir(), "--addr", "9001"},
		{"receive", "--secret", "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "--addr", "9001"},
	} {
		_, stderr, code := runHookd(ctx, t, hookdEnv(), args...)
		if code == 0 {
			t.Errorf("%s --addr 9001 exited with 0, want an error", args[0])
		}
		if want := `invalid --addr "9001": use HOST:PORT`; !strings.Contains(stderr, want) {
			t.Errorf("%s --addr 9001 stderr = %q, want it to contain %q", args[0], stderr, want)
		}
	}
}

func TestServeAddrInUse(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	dir := t.TempDir()

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	addr := ln.Addr().String()

	stdout, stderr, code := runHookd(ctx, t, hookdEnv(), "serve", "--data", dir, "--addr", addr, "--log-format", "json")
	if code == 0 {
		t.Errorf("serve --addr %s (in use) exited with 0, want an error", addr)
	}
	if want := "listen on " + addr; !strings.Contains(stderr, want) {
		t.Errorf("serve --addr %s (in use) stderr = %q, want it to contain %q", addr, stderr, want)
	}
	if !strings.Contains(stderr, "address already in use") {
		t.Errorf("serve --addr %s (in use) stderr = %q, want it to contain %q", addr, stderr, "address already in use")
	}
	if stdout != "" {
		t.Errorf("serve --addr %s (in use) printed on stdout:\n%s\nwant nothing", addr, stdout)
	}

	// The failed start printed no key, so the next start must print one.
	p := startServe(ctx, t, dir)
	firstKey(ctx, t, p)
}

func TestServeEnv(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	dir := t.TempDir()

	p := startHookd(ctx, t, hookdEnv("HOOKD_DATA="+dir, "HOOKD_ADDR=127.0.0.1:0"), "serve", "--log-format", "json")
	rec := p.waitLog(ctx, t, "hookd started")
	if got, want := rec["database"], filepath.Join(dir, "hookd.db"); got != want {
		t.Errorf("database with HOOKD_DATA=%s: %v, want %s", dir, got, want)
	}
	url, _ := rec["url"].(string)
	host, port, err := net.SplitHostPort(strings.TrimPrefix(url, "http://"))
	if err != nil || host != "127.0.0.1" || port == "0" || port == "8080" {
		t.Fatalf("url with HOOKD_ADDR=127.0.0.1:0: %q, want http://127.0.0.1 with a free port", url)
	}
	p.url = url

	auth := authHeader(firstKey(ctx, t, p))
	if status, body := send(ctx, t, newHTTPClient(t), http.MethodGet, p.url+"/webhooks", auth, ""); status != http.StatusOK {
		t.Errorf("GET /webhooks: status %d, want 200; body %s", status, body)
	}
	if _, err := os.Stat(filepath.Join(dir, "hookd.db")); err != nil {
		t.Errorf("database file: %v", err)
	}
}

// hookdProcess is a running hookd command.
type hookdProcess struct {
	cmd    *exec.Cmd
	stdout *outputBuffer
	stderr *outputBuffer
	exited chan struct{} // closed when cmd.Wait has returned and the output is complete

	// url is the base URL that serve logged in its "hookd started" line.
	url string
}

// startHookd starts the hookd binary with args and env in an empty working folder. The
// process is killed when ctx ends or when the test ends, whichever comes first.
func startHookd(ctx context.Context, t *testing.T, env []string, args ...string) *hookdProcess {
	t.Helper()
	cmd := exec.CommandContext(ctx, hookdPath, args...)
	cmd.Dir = t.TempDir()
	cmd.Env = env
	cmd.WaitDelay = time.Second
	p := &hookdProcess{cmd: cmd, stdout: newOutputBuffer(), stderr: newOutputBuffer(), exited: make(chan struct{})}
	cmd.Stdout = p.stdout
	cmd.Stderr = p.stderr
	if err := cmd.Start(); err != nil {
		t.Fatalf("start hookd %s: %v", strings.Join(args, " "), err)
	}
	go func() {
		cmd.Wait()
		close(p.exited)
	}()

	t.Cleanup(func() {
		select {
		case <-p.exited:
		default:
			cmd.Process.Kill()
			<-p.exited
		}
		if t.Failed() {
			t.Logf("hookd %s\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), p.stdout, p.stderr)
		}
	})
	return p
}

// startServe starts hookd serve on the data folder dir, on a free loopback port with JSON
// logs and the extra flags, and waits until it has logged its base URL.
func startServe(ctx context.Context, t *testing.T, dir string, extra ...string) *hookdProcess {
	t.Helper()
	args := slices.Concat([]string{"serve", "--data", dir, "--addr", "127.0.0.1:0", "--log-format", "json"}, extra)
	p := startHookd(ctx, t, hookdEnv(), args...)
	rec := p.waitLog(ctx, t, "hookd started")
	url, _ := rec["url"].(string)
	if !strings.HasPrefix(url, "http://127.0.0.1:") {
		t.Fatalf("hookd started log url = %q, want http://127.0.0.1:PORT", url)
	}
	p.url = url
	return p
}

// stopServe stops a server with SIGTERM and checks that it exits with 0.
func stopServe(t *testing.T, p *hookdProcess) {
	t.Helper()
	if code := p.stop(t, syscall.SIGTERM); code != 0 {
		t.Fatalf("exit code after SIGTERM = %d, want 0", code)
	}
}

// stop sends sig to the process and returns its exit code, or -1 when a signal killed it.
func (p *hookdProcess) stop(t *testing.T, sig os.Signal) int {
	t.Helper()
	if err := p.cmd.Process.Signal(sig); err != nil {
		t.Fatalf("send %v to hookd: %v", sig, err)
	}
	<-p.exited
	return p.cmd.ProcessState.ExitCode()
}

// runHookd runs a hookd command to its end and returns its output and exit code.
func runHookd(ctx context.Context, t *testing.T, env []string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	p := startHookd(ctx, t, env, args...)
	<-p.exited
	return p.stdout.String(), p.stderr.String(), p.cmd.ProcessState.ExitCode()
}

// runOK runs a hookd command that must succeed and returns its stdout.
func runOK(ctx context.Context, t *testing.T, args ...string) string {
	t.Helper()
	stdout, stderr, code := runHookd(ctx, t, hookdEnv(), args...)
	if code != 0 {
		t.Fatalf("hookd %s: exit code %d, want 0; stderr:\n%s", strings.Join(args, " "), code, stderr)
	}
	return stdout
}

// hookdEnv returns the test's environment without HOOKD_ variables, followed by extra.
// Unless GORACE sets atexit_sleep_ms itself, it turns off the race detector's sleep before
// a process exits, which is one second by default.
func hookdEnv(extra ...string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "HOOKD_") && !strings.HasPrefix(kv, "GORACE=") {
			env = append(env, kv)
		}
	}

	race := os.Getenv("GORACE")
	if !strings.Contains(race, "atexit_sleep_ms") {
		race = strings.TrimSpace(race + " atexit_sleep_ms=0")
	}
	env = append(env, "GORACE="+race)
	return append(env, extra...)
}

// waitOutput waits until match returns true for the whole output in b, and returns that
// output. It fails the test when the process exits or ctx ends first.
func (p *hookdProcess) waitOutput(ctx context.Context, t *testing.T, b *outputBuffer, what string, match func(string) bool) string {
	t.Helper()
	for {
		text, changed := b.snapshot()
		if match(text) {
			return text
		}
		select {
		case <-changed:
		case <-p.exited:
			if text := b.String(); match(text) {
				return text
			}
			t.Fatalf("hookd exited with code %d before %s; stdout:\n%s\nstderr:\n%s",
				p.cmd.ProcessState.ExitCode(), what, p.stdout, p.stderr)
		case <-ctx.Done():
			t.Fatalf("wait for %s: %v", what, ctx.Err())
		}
	}
}

// waitLog waits for the JSON log record with the message msg and returns it.
func (p *hookdProcess) waitLog(ctx context.Context, t *testing.T, msg string) map[string]any {
	t.Helper()
	text := p.waitOutput(ctx, t, p.stderr, fmt.Sprintf("the log line %q", msg), func(s string) bool {
		_, ok := logRecord(s, msg)
		return ok
	})
	rec, _ := logRecord(text, msg)
	return rec
}

// logRecord returns the first JSON log record in text with the message msg. Lines that
// are not JSON, such as race detector reports, are skipped.
func logRecord(text, msg string) (map[string]any, bool) {
	for line := range strings.Lines(text) {
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			continue
		}
		if rec["msg"] == msg {
			return rec, true
		}
	}
	return nil, false
}

// firstKey waits for the key banner of a server's first start and returns the raw key.
func firstKey(ctx context.Context, t *testing.T, p *hookdProcess) string {
	t.Helper()
	banner := p.waitOutput(ctx, t, p.stdout, "the key banner", bannerKeyLine.MatchString)
	return bannerKeyLine.FindStringSubmatch(banner)[1]
}

// outputBuffer collects a process's output and signals each write.
type outputBuffer struct {
	mu      sync.Mutex
	buf     bytes.Buffer
	changed chan struct{} // closed and replaced on every write
}

func newOutputBuffer() *outputBuffer {
	return &outputBuffer{changed: make(chan struct{})}
}

func (b *outputBuffer) Write(data []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.buf.Write(data)
	close(b.changed)
	b.changed = make(chan struct{})
	return len(data), nil
}

func (b *outputBuffer) String() string {
	text, _ := b.snapshot()
	return text
}

// snapshot returns the output so far and a channel that is closed on the next write.
func (b *outputBuffer) snapshot() (string, <-chan struct{}) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String(), b.changed
}

// waitRefused waits until connections to addr are refused.
func waitRefused(ctx context.Context, t *testing.T, addr string) {
	t.Helper()
	var dialer net.Dialer
	for {
		conn, err := dialer.DialContext(ctx, "tcp", addr)
		if errors.Is(err, syscall.ECONNREFUSED) {
			return
		}
		if err != nil {
			t.Fatalf("dial %s: %v, want connection refused", addr, err)
		}
		conn.Close()

		select {
		case <-ctx.Done():
			t.Fatalf("wait until %s refuses connections: %v", addr, ctx.Err())
		case <-time.After(5 * time.Millisecond):
		}
	}
}

// testContext returns a context that ends after testTimeout or with the test.
func testContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), testTimeout)
	t.Cleanup(cancel)
	return ctx
}

// newHTTPClient returns a client with its own connection pool, closed when the test ends.
func newHTTPClient(t *testing.T) *http.Client {
	transport := &http.Transport{}
	t.Cleanup(transport.CloseIdleConnections)
	return &http.Client{Transport: transport, Timeout: 10 * time.Second}
}

// send sends a request and returns the response status and body. When the request fails
// without a response, the status is 0 and the body is the error message.
func send(ctx context.Context, t *testing.T, client *http.Client, method, url, auth, body string) (int, string) {
	t.Helper()
	var reader io.Reader
	if body != "" {
		reader = strings.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, url, reader)
	if err != nil {
		t.Fatal(err)
	}
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}

	resp, err := client.Do(req)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: read body: %v", method, url, err)
	}
	return resp.StatusCode, string(b)
}

// authHeader returns the Authorization header value for a raw key.
func authHeader(key string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(key))
}

// consumer is the part of a webhook consumer that the tests compare.
type consumer struct {
	ID  string `json:"id"`
	URL string `json:"url"`
}

func decodeConsumer(t *testing.T, body string) consumer {
	t.Helper()
	var c consumer
	if err := json.Unmarshal([]byte(body), &c); err != nil || c.ID == "" {
		t.Fatalf("decode consumer %s: %v, id %q", body, err, c.ID)
	}
	return c
}

// listConsumers returns the consumers from GET /webhooks.
func listConsumers(ctx context.Context, t *testing.T, client *http.Client, baseURL, auth string) []consumer {
	t.Helper()
	status, body := send(ctx, t, client, http.MethodGet, baseURL+"/webhooks", auth, "")
	if status != http.StatusOK {
		t.Fatalf("GET /webhooks: status %d, want 200; body %s", status, body)
	}
	var list struct {
		Results []consumer `json:"results"`
	}
	if err := json.Unmarshal([]byte(body), &list); err != nil {
		t.Fatalf("decode GET /webhooks body %s: %v", body, err)
	}
	return list.Results
}

// lastLine returns the last line of out, without its line break.
func lastLine(out string) string {
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	return lines[len(lines)-1]
}

// keyRow returns the fields of the keys list row for the key id, or nil.
func keyRow(list, id string) []string {
	for line := range strings.Lines(list) {
		fields := strings.Fields(line)
		if len(fields) == 5 && fields[0] == id {
			return fields
		}
	}
	return nil
}
