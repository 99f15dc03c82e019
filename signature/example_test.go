package signature_test

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"time"

	"github.com/hookd/hookd/signature"
)

// This example verifies a received webhook. A receiver stores the consumer's "whsec_..."
// secret and checks every request with Verify before it trusts the body.
func ExampleVerifier_Verify() {
	secret, err := signature.ParseSecret("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
	if err != nil {
		log.Fatal(err)
	}
	verifier, err := signature.NewVerifier([]signature.Secret{secret})
	if err != nil {
		log.Fatal(err)
	}

	// hookd sends a request like this one.
	body := []byte(`{"id":"3f0c","eventType":"company.created"}`)
	received := httptest.NewRequest(http.MethodPost, "/webhooks/codat", bytes.NewReader(body))
	for name, values := range signature.Headers("msg_2KWPBgLlAfxdpx2AI54pPJ85f4W", time.Now(), body, secret) {
		received.Header[name] = values
	}

	// Verify the raw bytes, before any JSON decoding, because a re-encoded body would no
	// longer match the signature.
	raw, err := io.ReadAll(http.MaxBytesReader(nil, received.Body, signature.DefaultMaxBodyBytes))
	if err != nil {
		log.Fatal(err)
	}
	if err := verifier.Verify(received.Header, raw); err != nil {
		fmt.Println("rejected:", err)
		return
	}
	fmt.Println("verified webhook", received.Header.Get(signature.HeaderWebhookID))

	// A changed body fails with ErrNoMatchingSignature.
	err = verifier.Verify(received.Header, []byte(`{"id":"3f0c","eventType":"company.deleted"}`))
	fmt.Println(errors.Is(err, signature.ErrNoMatchingSignature))
	// Output:
	// verified webhook msg_2KWPBgLlAfxdpx2AI54pPJ85f4W
	// true
}

// This example protects a webhook endpoint with Middleware, which responds with 401 to requests
// without a valid signature, so the handler receives only verified bodies.
func ExampleVerifier_Middleware() {
	secret, err := signature.NewSecret()
	if err != nil {
		log.Fatal(err)
	}
	verifier, err := signature.NewVerifier([]signature.Secret{secret})
	if err != nil {
		log.Fatal(err)
	}

	mux := http.NewServeMux()
	mux.Handle("POST /webhooks/codat", verifier.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		fmt.Printf("handler got %s\n", body)
		w.WriteHeader(http.StatusNoContent)
	})))

	body := []byte(`{"eventType":"company.created"}`)
	signed := httptest.NewRequest(http.MethodPost, "/webhooks/codat", bytes.NewReader(body))
	for name, values := range signature.Headers("msg_1", time.Now(), body, secret) {
		signed.Header[name] = values
	}
	recorder := httptest.NewRecorder()
	mux.ServeHTTP(recorder, signed)
	fmt.Println(recorder.Code)

	unsigned := httptest.NewRequest(http.MethodPost, "/webhooks/codat", bytes.NewReader(body))
	recorder = httptest.NewRecorder()
	mux.ServeHTTP(recorder, unsigned)
	fmt.Print(recorder.Code, " ", recorder.Body.String())
	// Output:
	// handler got {"eventType":"company.created"}
	// 204
	// 401 missing webhook headers: webhook-id, webhook-timestamp, webhook-signature
}
