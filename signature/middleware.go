package signature

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
)

// Middleware returns a handler that verifies each request before it calls next. It reads
// the whole body, up to the Verifier's maximum body size, and checks it with Verify.
//
// A verified request reaches next as a shallow copy of r whose Body is a reader over the
// same bytes and whose ContentLength is their number, so next reads the body as if it were
// the original. Other requests get a short text/plain response and never reach next:
//   - 413 Request Entity Too Large for a body above the maximum body size,
//   - 400 Bad Request when reading the body fails,
//   - 401 Unauthorized when Verify returns an error, with the error text as the body.
//
// The method value v.Middleware has the type func(http.Handler) http.Handler that most
// routers take for middleware.
func (v *Verifier) Middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.ContentLength > v.maxBodyBytes {
			bodyTooLarge(w, v.maxBodyBytes)
			return
		}

		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, v.maxBodyBytes))
		var tooLarge *http.MaxBytesError
		switch {
		case errors.As(err, &tooLarge):
			bodyTooLarge(w, v.maxBodyBytes)
			return
		case err != nil:
			http.Error(w, "read webhook body: "+err.Error(), http.StatusBadRequest)
			return
		}

		if err := v.Verify(r.Header, body); err != nil {
			http.Error(w, err.Error(), http.StatusUnauthorized)
			return
		}

		// The net/http documentation tells handlers not to modify the provided request,
		// so next gets a shallow copy.
		verified := r.WithContext(r.Context())
		verified.Body = io.NopCloser(bytes.NewReader(body))
		verified.ContentLength = int64(len(body))
		next.ServeHTTP(w, verified)
	})
}

func bodyTooLarge(w http.ResponseWriter, maxBodyBytes int64) {
	http.Error(w, fmt.Sprintf("webhook body larger than %d bytes", maxBodyBytes), http.StatusRequestEntityTooLarge)
}
