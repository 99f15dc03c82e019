// Package signature signs and verifies webhooks with the symmetric scheme of the Standard
// Webhooks specification, version 1.0.0 (https://www.standardwebhooks.com).
//
// A sender computes HMAC-SHA256 over the bytes "{id}.{timestamp}.{body}", where id is the
// webhook-id header, timestamp is the webhook-timestamp header in decimal Unix seconds and
// body is the raw request body. It sends the base64 digest as "v1,<digest>" in the
// webhook-signature header, one space-separated entry per secret, so that receivers keep
// working while a secret is rotated. The same values also go out in the svix-id,
// svix-timestamp and svix-signature headers for receivers written against Svix.
//
// hookd's delivery engine signs with [Sign] or [Headers]. A receiver checks requests with a
// [Verifier], either by calling [Verifier.Verify] or by wrapping its handler with
// [Verifier.Middleware].
//
// Secrets are serialized as "whsec_" followed by the standard base64 encoding of the key,
// as the specification recommends. See [ParseSecret] for the accepted forms.
package signature
