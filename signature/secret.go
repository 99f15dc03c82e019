package signature

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"strings"
)

const (
	// SecretPrefix starts the serialized form of a secret.
	SecretPrefix = "whsec_"

	// MinSecretBytes and MaxSecretBytes bound the length of a secret's key. They are the
	// limits that the Standard Webhooks specification 1.0.0 sets for HMAC-SHA256 secrets:
	// at least 192 bits and at most 512 bits.
	MinSecretBytes = 24
	MaxSecretBytes = 64

	// NewSecretBytes is the key length of secrets made by NewSecret.
	NewSecretBytes = 32

	// redactedSecret replaces the key wherever fmt or log/slog formats a Secret.
	redactedSecret = SecretPrefix + "REDACTED"
)

// ErrInvalidSecret is wrapped by the errors of ParseSecret.
var ErrInvalidSecret = errors.New("invalid webhook secret")

// Secret is an HMAC-SHA256 signing key. The zero Secret has no key, and Sign, Headers and
// NewVerifier reject it. A Secret is immutable and safe to copy and to share between
// goroutines. The == operator compares the identity of two Secrets, not their keys, so
// compare String values instead.
//
// String returns the serialized "whsec_..." form. All fmt verbs and log/slog print
// "whsec_REDACTED" instead, so that a Secret passed to a log call does not leak its key.
type Secret struct {
	// key is a pointer because fmt cannot call Format on a Secret in an unexported struct
	// field and prints the field's contents instead, which for a pointer is its address.
	// Nothing writes to the string after construction, so copies can share it.
	key *string
}

// NewSecret returns a secret with a key of NewSecretBytes random bytes from crypto/rand.
func NewSecret() (Secret, error) {
	key := make([]byte, NewSecretBytes)
	if _, err := rand.Read(key); err != nil {
		return Secret{}, fmt.Errorf("generate webhook secret: %w", err)
	}
	return newSecret(key), nil
}

// ParseSecret decodes a secret serialized as "whsec_" followed by the key in standard
// base64 with padding (RFC 4648, section 4). It also accepts the key without the prefix,
// as the Standard Webhooks reference libraries for Go (v1.3.0) and JavaScript (1.1.1) do.
// It rejects line breaks in the base64 text, which the JavaScript library rejects too,
// although encoding/base64 and the Go library skip them.
//
// The key must be MinSecretBytes to MaxSecretBytes long. The reference libraries accept
// any non-empty key, so a secret that they accept can still fail here. Secrets made by
// Svix are 24 bytes long and pass.
//
// Errors wrap ErrInvalidSecret and never contain the input.
func ParseSecret(s string) (Secret, error) {
	encoded := strings.TrimPrefix(s, SecretPrefix)
	if encoded == "" {
		return Secret{}, fmt.Errorf("%w: the key after %q is empty", ErrInvalidSecret, SecretPrefix)
	}

	if strings.ContainsAny(encoded, "\r\n") {
		return Secret{}, fmt.Errorf("%w: the key contains a line break", ErrInvalidSecret)
	}
	key, err := base64.StdEncoding.DecodeString(encoded)
	if err != nil {
		// The error of encoding/base64 quotes no input, only the offset of the bad byte.
		return Secret{}, fmt.Errorf("%w: the key is not standard base64 with padding: %v", ErrInvalidSecret, err)
	}
	if len(key) < MinSecretBytes || len(key) > MaxSecretBytes {
		return Secret{}, fmt.Errorf("%w: the key is %d bytes long, want %d to %d bytes",
			ErrInvalidSecret, len(key), MinSecretBytes, MaxSecretBytes)
	}
	return newSecret(key), nil
}

func newSecret(key []byte) Secret {
	stored := string(key)
	return Secret{key: &stored}
}

// String returns the serialized form "whsec_<base64 key>", which ParseSecret accepts. It
// returns "" for the zero Secret.
func (s Secret) String() string {
	if s.IsZero() {
		return ""
	}
	return SecretPrefix + base64.StdEncoding.EncodeToString([]byte(*s.key))
}

// IsZero reports whether s is the zero Secret, which has no key.
func (s Secret) IsZero() bool {
	return s.key == nil
}

// Format prints "whsec_REDACTED" for every verb, so that fmt.Printf("%v", s) and similar
// calls never print the key. Call String for the serialized secret.
func (s Secret) Format(f fmt.State, verb rune) {
	_, _ = f.Write([]byte(redactedSecret))
}

// LogValue returns "whsec_REDACTED", so that log/slog never records the key.
func (s Secret) LogValue() slog.Value {
	return slog.StringValue(redactedSecret)
}
