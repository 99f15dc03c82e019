package api

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"runtime/debug"
	"time"

	"github.com/hookd/hookd/internal/apikey"
	"github.com/hookd/hookd/internal/store"
)

// retryAfterUnavailable is the Retry-After, in seconds, of 503 responses.
const retryAfterUnavailable = 5

// requestInfo is the data of the request log line, filled in as the request passes the
// middleware and the endpoint.
type requestInfo struct {
	correlationID string
	route         string
	clientID      string
	err           error
}

type requestInfoKey struct{}

type credentialKey struct{}

// credential returns the authenticated caller of r. It is set on every route that is not
// public.
func credential(r *http.Request) store.Credential {
	cred, _ := r.Context().Value(credentialKey{}).(store.Credential)
	return cred
}

// observe wraps every request: it assigns the correlation id, rejects requests that arrive
// while the server shuts down, turns a panic into a 500 and writes the request log line.
func (s *Server) observe(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		info := &requestInfo{correlationID: newCorrelationID(), route: "unmatched"}
		rec := &statusRecorder{ResponseWriter: w}
		rec.Header().Set("X-Correlation-Id", info.correlationID)
		r = r.WithContext(context.WithValue(r.Context(), requestInfoKey{}, info))

		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				info.err = fmt.Errorf("panic: %v\n%s", v, debug.Stack())
				if rec.status == 0 {
					writeError(rec, info.correlationID, info.err)
				}
			}
			elapsed := time.Since(start)
			s.logRequest(r, info, rec.status, elapsed)
			s.metrics.Request(info.route, r.Method, max(rec.status, http.StatusOK), elapsed)
		}()

		if s.draining.Load() {
			rec.Header().Set("Connection", "close")
			writeError(rec, info.correlationID,
				newError(http.StatusServiceUnavailable, "The server is shutting down. Retry the request.").withRetryAfter(retryAfterUnavailable))
			return
		}

		s.inFlight.Add(1)
		defer s.inFlight.Add(-1)
		next.ServeHTTP(rec, r)
	})
}

// endpoint adapts a route to http.Handler: it authorizes the caller, runs the handler and
// sends the error it returns.
func (s *Server) endpoint(rt Route) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		info, _ := r.Context().Value(requestInfoKey{}).(*requestInfo)
		if rt.Method != "" {
			info.route = rt.Method + " " + rt.Path
		} else if rt.Path != "" {
			info.route = rt.Path
		}

		err := s.authorize(w, &r, rt.access, info)
		if err == nil {
			err = rt.handle(w, r)
		}
		if err != nil {
			s.fail(w, r, info, err)
		}
	})
}

// authorize checks the caller's key for routes that need one, in the order Codat's API
// does: authentication (401), rate limit (429), suspension (402), permission (403). On
// success it stores the credential in *r's context.
func (s *Server) authorize(w http.ResponseWriter, r **http.Request, need access, info *requestInfo) error {
	if need == public {
		return nil
	}
	ctx := (*r).Context()

	header := (*r).Header.Get("Authorization")
	if header == "" {
		return newError(http.StatusUnauthorized,
			`The Authorization header is missing. Send "Authorization: Basic " followed by the base64 encoding of your API key.`)
	}
	raw, keyID, err := apikey.ParseHeader(header)
	if err != nil {
		return newError(http.StatusUnauthorized, "The Authorization header is invalid: %v.", err)
	}

	cred, err := s.store.Credential(ctx, keyID)
	if errors.Is(err, store.ErrNotFound) || (err == nil && !apikey.Matches(raw, cred.Key.Hash)) {
		return newError(http.StatusUnauthorized, "The API key is not valid. Check the key, or create one with hookd keys create.")
	}
	if err != nil {
		return fmt.Errorf("authenticate key %s: %w", keyID, err)
	}
	if cred.Key.RevokedAt != nil {
		return newError(http.StatusUnauthorized, "The API key %s was revoked. Use another key, or create one with hookd keys create.", keyID)
	}
	info.clientID = cred.Client.ID

	if err := s.limiter.allow(w.Header(), cred.Client.ID); err != nil {
		return err
	}
	if cred.Client.Suspended {
		return newError(http.StatusPaymentRequired,
			"The client %q is suspended. Ask the operator of this hookd server to resume it (hookd clients resume).", cred.Client.Name)
	}
	if need == writeKey && cred.Key.ReadOnly {
		return newError(http.StatusForbidden, "The API key %s is read-only: it cannot change consumers, publish events or read secrets. Use a key created without --read-only.", keyID)
	}

	*r = (*r).WithContext(context.WithValue(ctx, credentialKey{}, cred))
	return nil
}

// fail sends the response for an error a handler returned.
func (s *Server) fail(w http.ResponseWriter, r *http.Request, info *requestInfo, err error) {
	var apiErr *apiError
	switch {
	case errors.As(err, &apiErr):
	case errors.Is(err, store.ErrUnavailable):
		info.err = err
		err = newError(http.StatusServiceUnavailable, "The store is unavailable. Retry the request later.").
			withRetryAfter(retryAfterUnavailable)
	case r.Context().Err() != nil && errors.Is(err, r.Context().Err()):
		// The client went away, so no one reads this response.
		info.err = err
	default:
		info.err = err
	}
	writeError(w, info.correlationID, err)
}

// logRequest writes the request log line. Unexpected failures are logged at error level
// with their cause, store outages at warn level and everything else at info level.
func (s *Server) logRequest(r *http.Request, info *requestInfo, status int, elapsed time.Duration) {
	if status == 0 {
		status = http.StatusOK
	}
	attrs := []slog.Attr{
		slog.String("method", r.Method),
		slog.String("route", info.route),
		slog.String("path", r.URL.Path),
		slog.Int("status", status),
		slog.Float64("duration_ms", float64(elapsed.Microseconds())/1000),
		slog.String("correlation_id", info.correlationID),
		slog.String("remote_addr", r.RemoteAddr),
	}
	if info.clientID != "" {
		attrs = append(attrs, slog.String("client_id", info.clientID))
	}

	level := slog.LevelInfo
	if info.err != nil {
		attrs = append(attrs, slog.String("error", info.err.Error()))
		level = slog.LevelWarn
		if status >= 500 && status != http.StatusServiceUnavailable {
			level = slog.LevelError
		}
	}
	s.logger.LogAttrs(r.Context(), level, "request", attrs...)
}

// newCorrelationID returns 32 random hex digits, the form of Codat's correlation ids.
func newCorrelationID() string {
	var b [16]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// statusRecorder remembers the status a handler sends.
type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (r *statusRecorder) WriteHeader(status int) {
	if r.status == 0 {
		r.status = status
	}
	r.ResponseWriter.WriteHeader(status)
}

func (r *statusRecorder) Write(b []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	return r.ResponseWriter.Write(b)
}

func (r *statusRecorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }
