package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Bounds of starting and stopping a hookd process.
const (
	startTimeout = 30 * time.Second
	stopTimeout  = 20 * time.Second
)

// bannerKeyLine matches the API key line that hookd serve prints on its first start.
var bannerKeyLine = regexp.MustCompile(`^\s*API key:\s+(\S+)\s*$`)

// hookdProcess is a hookd serve child process.
type hookdProcess struct {
	cmd    *exec.Cmd
	pid    int
	url    string // base URL from the "hookd started" log line
	key    string // raw API key from the first-start banner; empty on a later start
	exited chan struct{}
	stderr *tailWriter

	waitErr error // set before exited is closed
}

// startHookd runs `exe serve args...` in dir and waits until it logs its URL, and also,
// when wantKey is set, until it prints its first API key. The process gets SIGKILL when
// the calling process dies, where the platform supports it.
func startHookd(ctx context.Context, exe, dir string, wantKey bool, args ...string) (*hookdProcess, error) {
	urls := make(chan string, 1)
	keys := make(chan string, 1)
	p := &hookdProcess{exited: make(chan struct{}), stderr: newTailWriter(16 << 10)}

	cmd := exec.Command(exe, append([]string{"serve"}, args...)...)
	cmd.Dir = dir
	cmd.Env = environWithoutHookd()
	cmd.SysProcAttr = childProcAttr()
	cmd.Stdout = &lineWatcher{match: bannerKey, found: keys}
	cmd.Stderr = io.MultiWriter(p.stderr, &lineWatcher{match: startedURL, found: urls})
	// Output copying ends at the latest this long after the process exits, also when a
	// process it started still holds the pipes.
	cmd.WaitDelay = 2 * time.Second
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s serve: %w", exe, err)
	}
	p.cmd, p.pid = cmd, cmd.Process.Pid
	go func() {
		p.waitErr = cmd.Wait()
		close(p.exited)
	}()

	timer := time.NewTimer(startTimeout)
	defer timer.Stop()
	for p.url == "" || (wantKey && p.key == "") {
		select {
		case p.url = <-urls:
		case p.key = <-keys:
		case <-p.exited:
			return nil, fmt.Errorf("hookd serve exited before it was ready: %v\n%s", p.waitErr, p.stderr)
		case <-timer.C:
			p.kill()
			return nil, fmt.Errorf("hookd serve was not ready after %s\n%s", startTimeout, p.stderr)
		case <-ctx.Done():
			p.kill()
			return nil, ctx.Err()
		}
	}
	return p, nil
}

// startedURL returns the url of the "hookd started" JSON log line.
func startedURL(line []byte) (string, bool) {
	if !bytes.Contains(line, []byte(`"hookd started"`)) {
		return "", false
	}
	var rec struct {
		Msg string `json:"msg"`
		URL string `json:"url"`
	}
	if json.Unmarshal(line, &rec) != nil || rec.Msg != "hookd started" || rec.URL == "" {
		return "", false
	}
	return rec.URL, true
}

// bannerKey returns the raw key of the API key line of the first-start banner.
func bannerKey(line []byte) (string, bool) {
	m := bannerKeyLine.FindSubmatch(line)
	if m == nil {
		return "", false
	}
	return string(m[1]), true
}

// lineWatcher splits what is written to it into lines and sends the value of the first
// line that match accepts to found. After that it only discards, so that the request log
// of a busy server costs no parsing.
type lineWatcher struct {
	match func(line []byte) (string, bool)
	found chan<- string // buffered, with room for the one value
	done  bool
	line  []byte // the start of an incomplete line, at most maxWatchedLine bytes
}

// maxWatchedLine bounds the part of a line that lineWatcher keeps.
const maxWatchedLine = 64 << 10

func (w *lineWatcher) Write(p []byte) (int, error) {
	rest := p
	for !w.done && len(rest) > 0 {
		i := bytes.IndexByte(rest, '\n')
		if i < 0 {
			w.line = append(w.line, rest[:min(len(rest), maxWatchedLine-len(w.line))]...)
			break
		}
		w.line = append(w.line, rest[:min(i, maxWatchedLine-len(w.line))]...)
		rest = rest[i+1:]
		if v, ok := w.match(w.line); ok {
			w.found <- v
			w.done = true
		}
		w.line = w.line[:0]
	}
	return len(p), nil
}

// stop sends SIGTERM and waits for the process to exit, and kills it after stopTimeout.
func (p *hookdProcess) stop() error {
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil && !errors.Is(err, os.ErrProcessDone) {
		p.kill()
		return fmt.Errorf("send SIGTERM to hookd (pid %d): %w", p.pid, err)
	}
	select {
	case <-p.exited:
	case <-time.After(stopTimeout):
		p.kill()
		return fmt.Errorf("hookd (pid %d) did not exit within %s of SIGTERM and was killed\n%s", p.pid, stopTimeout, p.stderr)
	}
	if p.waitErr != nil {
		return fmt.Errorf("hookd (pid %d) exited after SIGTERM: %v\n%s", p.pid, p.waitErr, p.stderr)
	}
	return nil
}

// kill ends the process with SIGKILL, unless it has exited, and waits for it.
func (p *hookdProcess) kill() {
	select {
	case <-p.exited:
		return
	default:
	}
	p.cmd.Process.Kill()
	<-p.exited
}

// running reports an error when the process has exited.
func (p *hookdProcess) running() error {
	select {
	case <-p.exited:
		return fmt.Errorf("hookd (pid %d) exited during the run: %v\n%s", p.pid, p.waitErr, p.stderr)
	default:
		return nil
	}
}

// environWithoutHookd returns the environment without HOOKD_ variables, so that only the
// harness's flags configure the server.
func environWithoutHookd() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "HOOKD_") {
			env = append(env, kv)
		}
	}
	return env
}

// serveHasFlag reports whether `exe serve --help` lists the flag, such as "--database".
func serveHasFlag(ctx context.Context, exe, flag string) (bool, error) {
	ctx, cancel := context.WithTimeout(ctx, startTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, exe, "serve", "--help")
	cmd.Env = environWithoutHookd()
	out, err := cmd.Output()
	if err != nil {
		return false, fmt.Errorf("run %s serve --help: %w", exe, err)
	}
	re := regexp.MustCompile(`(?m)^\s+(-\w, )?` + regexp.QuoteMeta(flag) + `(\s|=|$)`)
	return re.Match(out), nil
}

// tailWriter keeps the last bytes written to it, for error messages.
type tailWriter struct {
	mu    sync.Mutex
	limit int
	buf   []byte
}

func newTailWriter(limit int) *tailWriter {
	return &tailWriter{limit: limit}
}

func (t *tailWriter) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf = append(t.buf, p...)
	if over := len(t.buf) - t.limit; over > 0 {
		t.buf = append(t.buf[:0], t.buf[over:]...)
	}
	return len(p), nil
}

func (t *tailWriter) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return string(t.buf)
}
