// Package apikey generates hookd API keys and reads them from Authorization headers.
//
// A raw key has the form hk_<id>_<secret>: id is 16 hex digits that name the key in the
// store and in operator commands, and secret is 64 hex digits (256 random bits). The store
// keeps only the SHA-256 digest of the whole raw key.
package apikey

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
)

const (
	prefix    = "hk_"
	idLen     = 16
	secretLen = 64
)

// ErrMalformed is returned by ParseHeader and ParseKey for input that cannot be a hookd key.
var ErrMalformed = errors.New("malformed API key")

// Key is a newly generated API key.
type Key struct {
	ID  string
	Raw string
}

// New generates a random key.
func New() (Key, error) {
	id := make([]byte, idLen/2)
	secret := make([]byte, secretLen/2)
	if _, err := rand.Read(id); err != nil {
		return Key{}, fmt.Errorf("generate key id: %w", err)
	}
	if _, err := rand.Read(secret); err != nil {
		return Key{}, fmt.Errorf("generate key secret: %w", err)
	}

	k := Key{ID: hex.EncodeToString(id)}
	k.Raw = prefix + k.ID + "_" + hex.EncodeToString(secret)
	return k, nil
}

// Hash returns the digest of a raw key that the store keeps.
func Hash(raw string) []byte {
	sum := sha256.Sum256([]byte(raw))
	return sum[:]
}

// Matches reports whether raw hashes to stored, comparing in constant time.
func Matches(raw string, stored []byte) bool {
	return subtle.ConstantTimeCompare(Hash(raw), stored) == 1
}

// Header returns the Authorization header value for a raw key: "Basic " and the key in
// standard base64, as Codat's SDKs expect it.
func Header(raw string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(raw))
}

// ParseHeader extracts the raw key and its ID from an Authorization header value of the
// form "Basic base64(key)". A trailing colon inside the base64 text, which "curl -u KEY:"
// adds as an empty password, is accepted too.
func ParseHeader(header string) (raw, id string, err error) {
	scheme, encoded, ok := strings.Cut(strings.TrimSpace(header), " ")
	if !ok || !strings.EqualFold(scheme, "Basic") {
		return "", "", fmt.Errorf("%w: expected \"Basic\" followed by the base64-encoded key", ErrMalformed)
	}

	decoded, err := base64.StdEncoding.DecodeString(strings.TrimSpace(encoded))
	if err != nil {
		return "", "", fmt.Errorf("%w: the text after \"Basic\" is not valid base64", ErrMalformed)
	}
	raw = strings.TrimSuffix(string(decoded), ":")

	id, err = ParseKey(raw)
	if err != nil {
		return "", "", err
	}
	return raw, id, nil
}

// ParseKey checks the form of a raw key and returns its ID.
func ParseKey(raw string) (string, error) {
	rest, ok := strings.CutPrefix(raw, prefix)
	if !ok || len(rest) != idLen+1+secretLen || rest[idLen] != '_' {
		return "", fmt.Errorf("%w: expected hk_ followed by a key id and a secret", ErrMalformed)
	}
	id, secret := rest[:idLen], rest[idLen+1:]
	if !isLowerHex(id) || !isLowerHex(secret) {
		return "", fmt.Errorf("%w: expected hexadecimal key id and secret", ErrMalformed)
	}
	return id, nil
}

func isLowerHex(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}
