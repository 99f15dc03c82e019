package bench

import (
	"errors"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hookd/hookd/signature"
)

// tracker records the arrivals of one phase at every receiver. Message ids have the form
// "TAG.INDEX": TAG names the phase and INDEX is the event's number within it, which
// indexes the timelines.
type tracker struct {
	tag      string
	clock    clock
	capacity int         // events of the phase; indexes are 0 to capacity-1
	arrivals []*timeline // one per receiver, by receiver number
	counted  []bool      // receivers whose arrivals count towards expected

	received   atomic.Int64 // first arrivals at counted receivers
	duplicates atomic.Int64 // repeated arrivals of a message at the same receiver
	expected   atomic.Int64 // arrivals that complete the phase; -1 until known
	done       chan struct{}
	doneOnce   sync.Once
}

func newTracker(tag string, c clock, capacity int, counted []bool) *tracker {
	t := &tracker{tag: tag, clock: c, capacity: capacity, counted: counted, done: make(chan struct{})}
	t.arrivals = make([]*timeline, len(counted))
	for i := range t.arrivals {
		t.arrivals[i] = newTimeline(capacity)
	}
	t.expected.Store(-1)
	return t
}

// messageID returns the message id of the event index in this phase.
func (t *tracker) messageID(index int) string {
	return t.tag + "." + strconv.Itoa(index)
}

// record notes the arrival of message id at receiver number rcv at time at. It reports
// false when the id does not belong to this phase.
func (t *tracker) record(rcv int, id string, at int64) bool {
	tag, rest, ok := strings.Cut(id, ".")
	if !ok || tag != t.tag {
		return false
	}
	index, err := strconv.Atoi(rest)
	if err != nil || index < 0 || index >= t.capacity {
		return false
	}
	if !t.arrivals[rcv].setFirst(index, at) {
		t.duplicates.Add(1)
		return true
	}
	if t.counted[rcv] {
		t.received.Add(1)
		t.checkDone()
	}
	return true
}

// expect sets the number of arrivals at counted receivers that completes the phase.
func (t *tracker) expect(n int64) {
	t.expected.Store(n)
	t.checkDone()
}

func (t *tracker) checkDone() {
	if want := t.expected.Load(); want >= 0 && t.received.Load() >= want {
		t.doneOnce.Do(func() { close(t.done) })
	}
}

// receiver is a webhook endpoint on loopback that responds 204 at once and records when
// each message arrived. In hung mode it keeps every request waiting until it is released,
// like a consumer that accepts connections but never responds.
type receiver struct {
	number   int
	url      string
	server   *http.Server
	listener net.Listener

	current *atomic.Pointer[tracker] // shared by all receivers of a run
	clock   clock
	strays  atomic.Int64 // requests whose message id belongs to no current phase

	mu      sync.Mutex
	release chan struct{} // nil unless hung; closed to release the held requests
}

// startReceiver listens on a free port of 127.0.0.1 and serves until close.
func startReceiver(number int, current *atomic.Pointer[tracker], c clock) (*receiver, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	r := &receiver{
		number:   number,
		url:      "http://" + ln.Addr().String() + "/webhooks/" + strconv.Itoa(number),
		listener: ln,
		current:  current,
		clock:    c,
	}
	r.server = &http.Server{Handler: r, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		if err := r.server.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			// Serve returns another error only when accepting fails. Closing the listener
			// makes the phases that follow report their deliveries as missing.
			ln.Close()
		}
	}()
	return r, nil
}

func (r *receiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	r.mu.Lock()
	release := r.release
	r.mu.Unlock()
	if release != nil {
		select {
		case <-release:
		case <-req.Context().Done():
			return
		}
	}

	if _, err := io.Copy(io.Discard, req.Body); err != nil {
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	at := r.clock.now()
	id := req.Header.Get(signature.HeaderWebhookID)
	if t := r.current.Load(); t == nil || !t.record(r.number, id, at) {
		r.strays.Add(1)
	}
	w.WriteHeader(http.StatusNoContent)
}

// hang makes the receiver hold every request until resume.
func (r *receiver) hang() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.release == nil {
		r.release = make(chan struct{})
	}
}

// resume lets the waiting requests continue and ends hung mode.
func (r *receiver) resume() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.release != nil {
		close(r.release)
		r.release = nil
	}
}

// close releases held requests and stops the server, cutting open connections.
func (r *receiver) close() {
	r.resume()
	r.server.Close()
}
