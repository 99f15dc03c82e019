package signature

import (
	"crypto/hmac"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

const (
	// DefaultTolerance is the maximum difference between a webhook's timestamp and the
	// receiver's clock that a Verifier accepts unless WithTolerance sets another. It is
	// the value that the Standard Webhooks reference libraries use.
	DefaultTolerance = 5 * time.Minute

	// DefaultMaxBodyBytes is the largest request body in bytes that Verifier.Middleware
	// reads unless WithMaxBodyBytes sets another limit.
	DefaultMaxBodyBytes = 1 << 20
)

// Errors of Verifier.Verify. Verify wraps exactly one of them, with details, so callers
// can test for each with errors.Is.
var (
	// ErrMissingHeaders means that neither the webhook-* nor the svix-* family of id,
	// timestamp and signature headers is complete.
	ErrMissingHeaders = errors.New("missing webhook headers")

	// ErrInvalidTimestamp means that the timestamp header is not a decimal number of Unix
	// seconds without sign or leading zeros, or that it is after the year 9999.
	ErrInvalidTimestamp = errors.New("invalid webhook timestamp")

	// ErrTimestampTooOld means that the timestamp is further in the past than the
	// tolerance. A replayed webhook usually fails with this error.
	ErrTimestampTooOld = errors.New("webhook timestamp too old")

	// ErrTimestampTooNew means that the timestamp is further in the future than the
	// tolerance.
	ErrTimestampTooNew = errors.New("webhook timestamp too new")

	// ErrNoMatchingSignature means that no v1 entry of the signature header matches the
	// body, id and timestamp under any of the Verifier's secrets.
	ErrNoMatchingSignature = errors.New("no matching webhook signature")
)

// Verifier checks the signatures of received webhooks against a fixed list of secrets.
// A Verifier is safe for concurrent use.
type Verifier struct {
	secrets      []Secret
	tolerance    time.Duration
	maxBodyBytes int64
	now          func() time.Time
}

// VerifierOption changes a setting of NewVerifier.
type VerifierOption func(*Verifier)

// WithTolerance sets the maximum difference between a webhook's timestamp and the clock,
// in either direction. The default is DefaultTolerance. NewVerifier rejects a negative
// tolerance.
func WithTolerance(tolerance time.Duration) VerifierOption {
	return func(v *Verifier) { v.tolerance = tolerance }
}

// WithClock sets the function that returns the current time, for tests. The default is
// time.Now.
func WithClock(now func() time.Time) VerifierOption {
	return func(v *Verifier) { v.now = now }
}

// WithMaxBodyBytes sets the largest request body in bytes that Middleware reads. A larger
// body gets 413 Request Entity Too Large. The default is DefaultMaxBodyBytes. NewVerifier
// rejects a limit below 1. Verify itself takes a body of any size.
func WithMaxBodyBytes(n int64) VerifierOption {
	return func(v *Verifier) { v.maxBodyBytes = n }
}

// NewVerifier returns a Verifier that accepts a webhook signed with any of secrets. Pass
// the old and the new secret while a secret is being rotated. NewVerifier copies secrets.
// It returns an error when secrets is empty or contains the zero Secret, or when an
// option sets an invalid value.
func NewVerifier(secrets []Secret, opts ...VerifierOption) (*Verifier, error) {
	if len(secrets) == 0 {
		return nil, errors.New("signature.NewVerifier: no secrets")
	}
	for i, s := range secrets {
		if s.IsZero() {
			return nil, fmt.Errorf("signature.NewVerifier: zero Secret at index %d", i)
		}
	}

	v := &Verifier{
		secrets:      append([]Secret(nil), secrets...),
		tolerance:    DefaultTolerance,
		maxBodyBytes: DefaultMaxBodyBytes,
		now:          time.Now,
	}
	for _, opt := range opts {
		opt(v)
	}

	if v.tolerance < 0 {
		return nil, fmt.Errorf("signature.NewVerifier: tolerance %s is negative", v.tolerance)
	}
	if v.maxBodyBytes < 1 {
		return nil, fmt.Errorf("signature.NewVerifier: maximum body size %d bytes is below 1", v.maxBodyBytes)
	}
	if v.now == nil {
		return nil, errors.New("signature.NewVerifier: WithClock got a nil function")
	}
	return v, nil
}

// Verify checks that body is the raw body of a webhook that one of the Verifier's secrets
// signed, and that its timestamp is within the tolerance of the clock. It returns nil on
// success, and otherwise an error that wraps ErrMissingHeaders, ErrInvalidTimestamp,
// ErrTimestampTooOld, ErrTimestampTooNew or ErrNoMatchingSignature. The error text
// contains no secret or signature, so it can go back to the sender.
//
// Verify reads webhook-id, webhook-timestamp and webhook-signature when all three are
// set, and otherwise svix-id, svix-timestamp and svix-signature. It never mixes the two
// families. Of a header sent more than once, only the first value counts. Header keys
// must be in canonical form, as net/http servers and http.Header.Set produce them.
//
// The signature header holds space-separated "<version>,<signature>" entries. Verify
// skips entries of versions other than v1, such as the asymmetric v1a, and accepts when
// any v1 entry equals the expected signature under any secret. It compares in constant
// time.
func (v *Verifier) Verify(header http.Header, body []byte) error {
	msgID, rawTimestamp, signatures, err := webhookHeaders(header)
	if err != nil {
		return err
	}

	unixSeconds, err := parseTimestamp(rawTimestamp)
	if err != nil {
		return err
	}
	if err := v.checkTimestamp(unixSeconds); err != nil {
		return err
	}

	expected := make([][]byte, len(v.secrets))
	for i, secret := range v.secrets {
		expected[i] = []byte(encodeDigest(newMAC(secret), msgID, unixSeconds, body))
	}

	entries := 0
	for _, entry := range strings.Fields(signatures) {
		version, encoded, found := strings.Cut(entry, ",")
		if !found || version != signatureVersion {
			continue
		}
		entries++
		for _, want := range expected {
			if hmac.Equal([]byte(encoded), want) {
				return nil
			}
		}
	}

	if entries == 0 {
		return fmt.Errorf("%w: the signature header has no v1 entry", ErrNoMatchingSignature)
	}
	return fmt.Errorf("%w: checked %d v1 entries against %d secrets", ErrNoMatchingSignature, entries, len(v.secrets))
}

// webhookHeaders returns the id, timestamp and signature headers of the first complete
// family, webhook-* before svix-*.
func webhookHeaders(header http.Header) (msgID, timestamp, signatures string, err error) {
	families := [2][3]string{
		{HeaderWebhookID, HeaderWebhookTimestamp, HeaderWebhookSignature},
		{HeaderSvixID, HeaderSvixTimestamp, HeaderSvixSignature},
	}

	var missing [2][]string
	for i, names := range families {
		values := [3]string{header.Get(names[0]), header.Get(names[1]), header.Get(names[2])}
		for j, value := range values {
			if value == "" {
				missing[i] = append(missing[i], names[j])
			}
		}
		if len(missing[i]) == 0 {
			return values[0], values[1], values[2], nil
		}
	}

	// Name the missing headers of the family that the sender set more of, so that a
	// webhook-* request with one header lost is not reported as missing all svix-* ones.
	report := missing[0]
	if len(missing[1]) < len(missing[0]) {
		report = missing[1]
	}
	return "", "", "", fmt.Errorf("%w: %s", ErrMissingHeaders, strings.Join(report, ", "))
}

// maxUnixSeconds is 9999-12-31T23:59:59Z. Later timestamps are invalid, which keeps
// the arithmetic of checkTimestamp far from the limits of time.Time and time.Duration.
const maxUnixSeconds = 253402300799

// parseTimestamp parses a timestamp header in canonical decimal form. The reference
// libraries sign the number, not the header text, so a header such as "+1700000000" or
// "01700000000" would pass there under a signature made for "1700000000". Rejecting those
// forms keeps the signed text identical to the header.
func parseTimestamp(raw string) (int64, error) {
	n, err := strconv.ParseInt(raw, 10, 64)
	if err != nil || n < 0 || n > maxUnixSeconds || strconv.FormatInt(n, 10) != raw {
		return 0, fmt.Errorf("%w: %s is not a decimal number of Unix seconds up to the year 9999",
			ErrInvalidTimestamp, quoteShort(raw))
	}
	return n, nil
}

// checkTimestamp compares a timestamp in Unix seconds with the Verifier's clock.
func (v *Verifier) checkTimestamp(unixSeconds int64) error {
	now := v.now()
	sent := time.Unix(unixSeconds, 0)

	// Compare times, not the Duration of now.Sub(sent): that saturates for gaps above
	// about 292 years, and negating the saturated minimum leaves it negative.
	switch {
	case sent.Before(now.Add(-v.tolerance)):
		return fmt.Errorf("%w: %d is %s before the receiver's clock, tolerance %s",
			ErrTimestampTooOld, unixSeconds, now.Sub(sent).Truncate(time.Second), v.tolerance)
	case sent.After(now.Add(v.tolerance)):
		return fmt.Errorf("%w: %d is %s after the receiver's clock, tolerance %s",
			ErrTimestampTooNew, unixSeconds, sent.Sub(now).Truncate(time.Second), v.tolerance)
	}
	return nil
}

// quoteShort quotes s for an error message, cut to 32 bytes because it comes from the
// sender.
func quoteShort(s string) string {
	const maxLen = 32
	if len(s) > maxLen {
		return strconv.Quote(s[:maxLen]) + "..."
	}
	return strconv.Quote(s)
}
