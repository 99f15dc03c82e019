// Package api serves hookd's HTTP API: the webhook-consumer operations of Codat's Platform
// API (wire-compatible, so that Codat's SDKs work against hookd), health endpoints and the
// OpenAPI document.
package api

import (
	"context"
	_ "embed"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sort"
	"strings"
	"sync/atomic"
	"time"

	"github.com/hookd/hookd/internal/metrics"
	"github.com/hookd/hookd/internal/store"
)

// Timeouts of the HTTP server, so that a slow or stalled client cannot hold a connection
// forever.
const (
	ReadHeaderTimeout = 10 * time.Second
	ReadTimeout       = 30 * time.Second
	WriteTimeout      = 30 * time.Second
	IdleTimeout       = 2 * time.Minute
	MaxHeaderBytes    = 64 << 10
)

// OpenAPI is the OpenAPI 3 document of the API, served at GET /openapi.yaml.
//
//go:embed openapi.yaml
var OpenAPI []byte

// Config configures a Server. Only Store is required.
type Config struct {
	Store store.Store

	// Logger receives one line per request and every unexpected error. Nil discards logs.
	Logger *slog.Logger

	// RateLimit is each client's sustained request rate, in requests per second. Zero means
	// DefaultRateLimit, and a negative value disables rate limiting.
	RateLimit float64

	// RateBurst is how many requests a client may make at once. Zero means DefaultRateBurst
	// when RateLimit is zero, and RateLimit rounded up otherwise.
	RateBurst int

	// Publisher stores published events. Nil publishes through Store, one transaction
	// per request.
	Publisher Publisher

	// Wake, when not nil, is called after a change that may make deliveries due at once:
	// a consumer enabled, a message resent, messages recovered.
	Wake func()

	// CheckURL, when not nil, rejects consumer URLs that delivery may not connect to. Its
	// error is shown to the client.
	CheckURL func(rawURL string) error

	// SecretOverlap is how long a rotated-out secret keeps signing deliveries. Zero means
	// DefaultSecretOverlap.
	SecretOverlap time.Duration

	// Metrics records request durations and is served at GET /metrics. Nil records
	// nothing, and GET /metrics returns 404.
	Metrics *metrics.Metrics
}

// Server is hookd's HTTP API server.
type Server struct {
	store         store.Store
	logger        *slog.Logger
	limiter       *rateLimiter
	publisher     Publisher
	wake          func()
	checkURL      func(string) error
	secretOverlap time.Duration
	metrics       *metrics.Metrics
	handler       http.Handler
	http          *http.Server
	draining      atomic.Bool
	inFlight      atomic.Int64
}

// Route is one operation of the API.
type Route struct {
	Method string
	Path   string

	access access
	handle handlerFunc
}

// access is what a route requires of the caller's key.
type access int

const (
	public access = iota // no key
	readKey
	writeKey // a key that is not read-only
)

// handlerFunc handles a request. A returned *apiError is sent as it is; any other error is
// logged and sent as a 500 ErrorMessage.
type handlerFunc func(w http.ResponseWriter, r *http.Request) error

// New returns a Server for cfg.
func New(cfg Config) *Server {
	logger := cfg.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	burst := cfg.RateBurst
	if burst == 0 && cfg.RateLimit == 0 {
		burst = DefaultRateBurst
	}

	s := &Server{
		store:         cfg.Store,
		logger:        logger,
		limiter:       newRateLimiter(cfg.RateLimit, burst),
		publisher:     cfg.Publisher,
		wake:          cfg.Wake,
		checkURL:      cfg.CheckURL,
		secretOverlap: cfg.SecretOverlap,
		metrics:       cfg.Metrics,
	}
	if s.publisher == nil {
		s.publisher = storePublisher{store: cfg.Store}
	}
	if s.wake == nil {
		s.wake = func() {}
	}
	if s.secretOverlap <= 0 {
		s.secretOverlap = DefaultSecretOverlap
	}
	s.handler = s.routes()
	s.http = &http.Server{
		Handler:           s.handler,
		ReadHeaderTimeout: ReadHeaderTimeout,
		ReadTimeout:       ReadTimeout,
		WriteTimeout:      WriteTimeout,
		IdleTimeout:       IdleTimeout,
		MaxHeaderBytes:    MaxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}
	return s
}

// Routes returns the API's operations, in the order they are registered.
func (s *Server) Routes() []Route {
	return []Route{
		{Method: http.MethodGet, Path: "/webhooks", access: readKey, handle: s.listConsumers},
		{Method: http.MethodPost, Path: "/webhooks", access: writeKey, handle: s.createConsumer},
		{Method: http.MethodDelete, Path: "/webhooks/{webhookId}", access: writeKey, handle: s.deleteConsumer},
		{Method: http.MethodGet, Path: "/webhooks/{webhookId}", access: readKey, handle: s.getConsumer},
		{Method: http.MethodPatch, Path: "/webhooks/{webhookId}", access: writeKey, handle: s.updateConsumer},
		{Method: http.MethodGet, Path: "/webhooks/{webhookId}/messages", access: readKey, handle: s.listConsumerMessages},
		{Method: http.MethodPost, Path: "/webhooks/{webhookId}/recover", access: writeKey, handle: s.recoverMessages},
		{Method: http.MethodGet, Path: "/webhooks/{webhookId}/secret", access: writeKey, handle: s.getSecret},
		{Method: http.MethodPost, Path: "/webhooks/{webhookId}/secret/rotate", access: writeKey, handle: s.rotateSecret},
		{Method: http.MethodPost, Path: "/events", access: writeKey, handle: s.publishEvent},
		{Method: http.MethodPost, Path: "/events/batch", access: writeKey, handle: s.publishBatch},
		{Method: http.MethodGet, Path: "/messages/{messageId}", access: readKey, handle: s.getMessage},
		{Method: http.MethodGet, Path: "/messages/{messageId}/attempts", access: readKey, handle: s.listAttempts},
		{Method: http.MethodPost, Path: "/messages/{messageId}/resend", access: writeKey, handle: s.resendMessage},
		{Method: http.MethodGet, Path: "/healthz", access: public, handle: s.healthz},
		{Method: http.MethodGet, Path: "/readyz", access: public, handle: s.readyz},
		{Method: http.MethodGet, Path: "/openapi.yaml", access: public, handle: serveOpenAPI},
		{Method: http.MethodGet, Path: "/metrics", access: public, handle: s.serveMetrics},
	}
}

// Handler returns the API as an http.Handler, for tests and for embedding.
func (s *Server) Handler() http.Handler { return s.handler }

// Serve accepts connections on ln until Shutdown is called. It returns nil after a
// shutdown and the listener's error otherwise.
func (s *Server) Serve(ln net.Listener) error {
	err := s.http.Serve(ln)
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

// Shutdown stops accepting connections, rejects requests that arrive on open connections
// with 503, waits for the requests in flight to finish and then returns. When ctx ends
// first, it closes the remaining connections and returns ctx's error.
func (s *Server) Shutdown(ctx context.Context) error {
	s.draining.Store(true)
	err := s.http.Shutdown(ctx)
	if err != nil {
		s.http.Close()
	}
	return err
}

// InFlight returns the number of requests being handled: those that arrived before
// Shutdown and will run to completion.
func (s *Server) InFlight() int64 { return s.inFlight.Load() }

// routes builds the handler: the operations, a 405 handler for each known path and a 404
// handler for everything else, inside the middleware that every request passes.
func (s *Server) routes() http.Handler {
	mux := http.NewServeMux()
	methods := map[string][]string{}
	for _, rt := range s.Routes() {
		mux.Handle(rt.Method+" "+rt.Path, s.endpoint(rt))
		methods[rt.Path] = append(methods[rt.Path], rt.Method)
	}

	for path, allowed := range methods {
		if contains(allowed, http.MethodGet) {
			allowed = append(allowed, http.MethodHead)
		}
		sort.Strings(allowed)
		allow := strings.Join(allowed, ", ")
		mux.Handle(path, s.endpoint(Route{Path: path, handle: func(w http.ResponseWriter, r *http.Request) error {
			return newError(http.StatusMethodNotAllowed, "The method %s is not allowed on %s. Use one of: %s.", r.Method, path, allow).
				withHeader("Allow", allow)
		}}))
	}

	mux.Handle("/", s.endpoint(Route{handle: func(w http.ResponseWriter, r *http.Request) error {
		return newError(http.StatusNotFound, "No resource exists at %s. See GET /openapi.yaml for the paths this server serves.", r.URL.Path)
	}}))

	return s.observe(mux)
}

func contains(list []string, v string) bool {
	for _, x := range list {
		if x == v {
			return true
		}
	}
	return false
}

func (s *Server) healthz(w http.ResponseWriter, r *http.Request) error {
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	return nil
}

func (s *Server) readyz(w http.ResponseWriter, r *http.Request) error {
	if err := s.store.Ping(r.Context()); err != nil {
		return fmt.Errorf("check store: %w", err)
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	return nil
}

func (s *Server) serveMetrics(w http.ResponseWriter, r *http.Request) error {
	if s.metrics == nil {
		return newError(http.StatusNotFound, "Metrics are not enabled on this server.")
	}
	s.metrics.Handler().ServeHTTP(w, r)
	return nil
}

func serveOpenAPI(w http.ResponseWriter, r *http.Request) error {
	w.Header().Set("Content-Type", "application/yaml")
	w.Write(OpenAPI)
	return nil
}
