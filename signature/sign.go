package signature

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"hash"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Names of the headers that carry a webhook's id, timestamp and signature. The webhook-*
// names are those of the Standard Webhooks specification and the svix-* names are those
// that Svix sends. Both families carry the same values.
const (
	HeaderWebhookID        = "webhook-id"
	HeaderWebhookTimestamp = "webhook-timestamp"
	HeaderWebhookSignature = "webhook-signature"

	HeaderSvixID        = "svix-id"
	HeaderSvixTimestamp = "svix-timestamp"
	HeaderSvixSignature = "svix-signature"
)

// signatureVersion prefixes each HMAC-SHA256 entry in a signature header.
const signatureVersion = "v1"

// Sign returns the webhook-signature header value for a webhook with the given id,
// timestamp and raw body. The value has one entry "v1,<base64 HMAC-SHA256>" per secret,
// in the order of secrets, separated by single spaces. Each digest covers the bytes
// "{msgID}.{Unix seconds}.{body}". Only the whole seconds of timestamp count.
//
// The specification recommends that senders keep '.' out of msgID. Sign does not check msgID,
// because the receiver checks the signature over whatever id it receives.
//
// Sign panics when secrets is empty or contains the zero Secret, because a webhook
// signed with no key would be sent without a usable signature.
func Sign(msgID string, timestamp time.Time, body []byte, secrets ...Secret) string {
	if len(secrets) == 0 {
		panic("signature.Sign: no secrets")
	}

	unixSeconds := timestamp.Unix()
	var b strings.Builder
	for i, secret := range secrets {
		if secret.IsZero() {
			panic("signature.Sign: zero Secret at index " + strconv.Itoa(i))
		}
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(signatureVersion)
		b.WriteByte(',')
		b.WriteString(encodeDigest(newMAC(secret), msgID, unixSeconds, body))
	}
	return b.String()
}

// Headers returns the headers that a signed webhook request carries: webhook-id,
// webhook-timestamp (decimal Unix seconds) and webhook-signature with the value of Sign,
// and the same three values under svix-id, svix-timestamp and svix-signature. It panics
// in the same cases as Sign.
func Headers(msgID string, timestamp time.Time, body []byte, secrets ...Secret) http.Header {
	signature := Sign(msgID, timestamp, body, secrets...)
	unixSeconds := strconv.FormatInt(timestamp.Unix(), 10)

	h := make(http.Header, 6)
	h.Set(HeaderWebhookID, msgID)
	h.Set(HeaderWebhookTimestamp, unixSeconds)
	h.Set(HeaderWebhookSignature, signature)
	h.Set(HeaderSvixID, msgID)
	h.Set(HeaderSvixTimestamp, unixSeconds)
	h.Set(HeaderSvixSignature, signature)
	return h
}

func newMAC(secret Secret) hash.Hash {
	return hmac.New(sha256.New, []byte(*secret.key))
}

// encodeDigest returns the base64 HMAC of "{msgID}.{unixSeconds}.{body}". It writes the
// three parts to mac in turn so that the body is never copied.
func encodeDigest(mac hash.Hash, msgID string, unixSeconds int64, body []byte) string {
	var prefix [64]byte
	signed := append(prefix[:0], msgID...)
	signed = append(signed, '.')
	signed = strconv.AppendInt(signed, unixSeconds, 10)
	signed = append(signed, '.')

	mac.Write(signed)
	mac.Write(body)
	var digest [sha256.Size]byte
	return base64.StdEncoding.EncodeToString(mac.Sum(digest[:0]))
}
