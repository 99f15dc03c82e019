package signature

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"
)

const (
	// knownSecret, knownMsgID, knownTimestamp, knownBody and knownSignature are a
	// signature that the standardwebhooks npm package 1.1.1 computed by
	// test/signature-oracle/oracle.mjs.
	knownSecret    = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	knownMsgID     = "msg_p5jXN8AQM9LWM0D4loKWxJek"
	knownTimestamp = 1614265330
	knownBody      = `{"test": 2432232314}`
	knownSignature = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="

	// oracleDir holds the node script and the standardwebhooks npm package.
	oracleDir = "../test/signature-oracle"

	// oracleVersion is the standardwebhooks version that oracleDir/package.json pins.
	oracleVersion = "1.1.1"

	// oracleTimeout bounds one node run, which handles a few cases and needs well under a
	// second, so the limit only stops a run that hangs.
	oracleTimeout = 30 * time.Second

	// requireNodeEnv set to 1 turns a missing node or npm package into a failure instead
	// of a skip, so that scripts/test cannot pass without running the oracle.
	requireNodeEnv = "HOOKD_REQUIRE_NODE"

	oracleInstallHint = "run `npm ci --prefix test/signature-oracle` from the repository root"
)

// testNow is the fixed clock of the tests that do not involve a reference library.
var testNow = time.Unix(1700000000, 0)

func mustParseSecret(t testing.TB, s string) Secret {
	t.Helper()
	secret, err := ParseSecret(s)
	if err != nil {
		t.Fatalf("ParseSecret: %v", err)
	}
	return secret
}

func mustNewSecret(t testing.TB) Secret {
	t.Helper()
	secret, err := NewSecret()
	if err != nil {
		t.Fatalf("NewSecret: %v", err)
	}
	return secret
}

func mustNewVerifier(t testing.TB, secrets []Secret, opts ...VerifierOption) *Verifier {
	t.Helper()
	v, err := NewVerifier(secrets, opts...)
	if err != nil {
		t.Fatalf("NewVerifier: %v", err)
	}
	return v
}

// fixedClock returns a WithClock option that always reports now.
func fixedClock(now time.Time) VerifierOption {
	return WithClock(func() time.Time { return now })
}

// webhookHeader returns a header with only the webhook-* family set.
func webhookHeader(msgID, timestamp, signature string) http.Header {
	h := http.Header{}
	h.Set(HeaderWebhookID, msgID)
	h.Set(HeaderWebhookTimestamp, timestamp)
	h.Set(HeaderWebhookSignature, signature)
	return h
}

// svixHeader returns a header with only the svix-* family set.
func svixHeader(msgID, timestamp, signature string) http.Header {
	h := http.Header{}
	h.Set(HeaderSvixID, msgID)
	h.Set(HeaderSvixTimestamp, timestamp)
	h.Set(HeaderSvixSignature, signature)
	return h
}

func TestSignKnownSignature(t *testing.T) {
	secret := mustParseSecret(t, knownSecret)

	got := Sign(knownMsgID, time.Unix(knownTimestamp, 0), []byte(knownBody), secret)
	if got != knownSignature {
		t.Errorf("Sign = %q, want %q", got, knownSignature)
	}
}

func TestSignDropsFractionalSeconds(t *testing.T) {
	secret := mustParseSecret(t, knownSecret)

	got := Sign(knownMsgID, time.Unix(knownTimestamp, 999_999_999), []byte(knownBody), secret)
	if got != knownSignature {
		t.Errorf("Sign at %d.999999999 = %q, want the signature for %d: %q", knownTimestamp, got, knownTimestamp, knownSignature)
	}
}

func TestSignSeveralSecrets(t *testing.T) {
	first := mustParseSecret(t, knownSecret)
	second := mustNewSecret(t)
	timestamp := time.Unix(knownTimestamp, 0)
	body := []byte(knownBody)

	got := Sign(knownMsgID, timestamp, body, first, second)

	want := knownSignature + " " + Sign(knownMsgID, timestamp, body, second)
	if got != want {
		t.Errorf("Sign with two secrets = %q, want %q", got, want)
	}
	entries := strings.Split(got, " ")
	if len(entries) != 2 {
		t.Fatalf("Sign with two secrets has %d entries, want 2: %q", len(entries), got)
	}
	for i, entry := range entries {
		encoded, ok := strings.CutPrefix(entry, "v1,")
		if !ok {
			t.Errorf("entry %d = %q, want prefix v1,", i, entry)
			continue
		}
		digest, err := base64.StdEncoding.DecodeString(encoded)
		if err != nil {
			t.Errorf("entry %d: decode base64: %v", i, err)
		}
		if len(digest) != 32 {
			t.Errorf("entry %d: digest is %d bytes, want 32", i, len(digest))
		}
	}
}

func TestSignPanics(t *testing.T) {
	tests := []struct {
		name    string
		secrets []Secret
	}{
		{"no secrets", nil},
		{"zero secret", []Secret{{}}},
		{"zero second secret", []Secret{mustParseSecret(t, knownSecret), {}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			defer func() {
				if recover() == nil {
					t.Errorf("Sign did not panic")
				}
			}()
			Sign(knownMsgID, testNow, []byte(knownBody), tt.secrets...)
		})
	}
}

func TestHeadersSetsBothFamilies(t *testing.T) {
	secret := mustParseSecret(t, knownSecret)

	h := Headers(knownMsgID, time.Unix(knownTimestamp, 0), []byte(knownBody), secret)

	want := map[string]string{
		HeaderWebhookID:        knownMsgID,
		HeaderWebhookTimestamp: strconv.Itoa(knownTimestamp),
		HeaderWebhookSignature: knownSignature,
		HeaderSvixID:           knownMsgID,
		HeaderSvixTimestamp:    strconv.Itoa(knownTimestamp),
		HeaderSvixSignature:    knownSignature,
	}
	for name, value := range want {
		if got := h.Values(name); len(got) != 1 || got[0] != value {
			t.Errorf("header %s = %q, want [%q]", name, got, value)
		}
	}
	if len(h) != len(want) {
		t.Errorf("Headers set %d headers, want %d: %v", len(h), len(want), h)
	}
}

func TestParseSecretValid(t *testing.T) {
	key24 := bytes.Repeat([]byte{0xa5}, 24)
	key64 := bytes.Repeat([]byte{0x5a}, 64)
	knownKey, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(knownSecret, SecretPrefix))
	if err != nil {
		t.Fatalf("decode known secret: %v", err)
	}

	tests := []struct {
		name       string
		input      string
		wantKey    []byte
		wantString string
	}{
		{"prefixed", knownSecret, knownKey, knownSecret},
		{"bare base64", strings.TrimPrefix(knownSecret, SecretPrefix), knownKey, knownSecret},
		{"24 bytes", SecretPrefix + base64.StdEncoding.EncodeToString(key24), key24, SecretPrefix + base64.StdEncoding.EncodeToString(key24)},
		{"64 bytes", SecretPrefix + base64.StdEncoding.EncodeToString(key64), key64, SecretPrefix + base64.StdEncoding.EncodeToString(key64)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			secret, err := ParseSecret(tt.input)
			if err != nil {
				t.Fatalf("ParseSecret: %v", err)
			}
			if got := []byte(*secret.key); !bytes.Equal(got, tt.wantKey) {
				t.Errorf("key = %x, want %x", got, tt.wantKey)
			}
			if got := secret.String(); got != tt.wantString {
				t.Errorf("String() = %q, want %q", got, tt.wantString)
			}
		})
	}
}

func TestParseSecretInvalid(t *testing.T) {
	tests := []struct {
		name     string
		input    string
		wantText string
	}{
		{"empty", "", "empty"},
		{"prefix only", "whsec_", "empty"},
		{"not base64", "whsec_not*base64*at*all*here*!!!!", "not standard base64"},
		{"inner space", "whsec_MfKQ9r8GKYqrTwjU PD8ILPZIo2LaLaSw", "not standard base64"},
		{"inner line break", "whsec_MfKQ9r8GKYqrTwjU\nPD8ILPZIo2LaLaSw", "line break"},
		{"trailing line break", knownSecret + "\r\n", "line break"},
		{"URL alphabet", "whsec_" + base64.URLEncoding.EncodeToString(bytes.Repeat([]byte{0xfb, 0xff}, 12)), "not standard base64"},
		{"missing padding", "whsec_" + base64.RawStdEncoding.EncodeToString(bytes.Repeat([]byte{1}, 25)), "not standard base64"},
		{"16 bytes", "whsec_" + base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{1}, 16)), "16 bytes long"},
		{"23 bytes", "whsec_" + base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{1}, 23)), "23 bytes long"},
		{"65 bytes", "whsec_" + base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{1}, 65)), "65 bytes long"},
		{"other prefix", "whsk_" + base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{1}, 32)), "not standard base64"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			secret, err := ParseSecret(tt.input)
			if err == nil {
				t.Fatalf("ParseSecret(%q) = %q, want an error", tt.input, secret.String())
			}
			if !errors.Is(err, ErrInvalidSecret) {
				t.Errorf("error %q does not wrap ErrInvalidSecret", err)
			}
			if !strings.Contains(err.Error(), tt.wantText) {
				t.Errorf("error %q does not contain %q", err, tt.wantText)
			}
			encoded := strings.TrimPrefix(tt.input, SecretPrefix)
			if encoded != "" && strings.Contains(err.Error(), encoded) {
				t.Errorf("error %q contains the input", err)
			}
			if !secret.IsZero() {
				t.Errorf("ParseSecret returned a non-zero Secret with an error")
			}
		})
	}
}

func TestNewSecretRoundTrip(t *testing.T) {
	first := mustNewSecret(t)
	second := mustNewSecret(t)

	if len(*first.key) != NewSecretBytes {
		t.Errorf("key is %d bytes, want %d", len(*first.key), NewSecretBytes)
	}
	if first.String() == second.String() {
		t.Errorf("two NewSecret calls returned the same key")
	}
	if !strings.HasPrefix(first.String(), SecretPrefix) {
		t.Errorf("String() = %q, want prefix %q", first.String(), SecretPrefix)
	}
	parsed := mustParseSecret(t, first.String())
	if parsed.String() != first.String() {
		t.Errorf("ParseSecret(String()) returned another key")
	}
}

func TestSecretZeroString(t *testing.T) {
	var zero Secret
	if !zero.IsZero() {
		t.Errorf("IsZero() = false for the zero Secret")
	}
	if got := zero.String(); got != "" {
		t.Errorf("String() = %q, want empty", got)
	}
}

func TestSecretFormatRedacts(t *testing.T) {
	secret := mustParseSecret(t, knownSecret)
	key := strings.TrimPrefix(knownSecret, SecretPrefix)
	rawKey := *secret.key

	// fmt cannot call Format on unexported fields and prints their contents instead.
	hidden := map[string]string{
		"%v unexported field":  fmt.Sprintf("%v", struct{ s Secret }{secret}),
		"%+v unexported field": fmt.Sprintf("%+v", struct{ s Secret }{secret}),
		"%#v unexported field": fmt.Sprintf("%#v", struct{ s Secret }{secret}),
	}
	for name, got := range hidden {
		if strings.Contains(got, rawKey) || strings.Contains(got, key) {
			t.Errorf("%s printed the key: %q", name, got)
		}
	}

	printed := map[string]string{
		"Sprint":   fmt.Sprint(secret),
		"%v":       fmt.Sprintf("%v", secret),
		"%+v":      fmt.Sprintf("%+v", secret),
		"%#v":      fmt.Sprintf("%#v", secret),
		"%s":       fmt.Sprintf("%s", secret),
		"%q":       fmt.Sprintf("%q", secret),
		"%x":       fmt.Sprintf("%x", secret),
		"%v field": fmt.Sprintf("%v", struct{ S Secret }{secret}),
		"%v slice": fmt.Sprintf("%v", []Secret{secret}),
	}
	for name, got := range printed {
		if strings.Contains(got, key) || strings.Contains(got, rawKey) {
			t.Errorf("%s printed the key: %q", name, got)
		}
		if !strings.Contains(got, "whsec_REDACTED") {
			t.Errorf("%s = %q, want whsec_REDACTED in it", name, got)
		}
	}

	var logged bytes.Buffer
	slog.New(slog.NewTextHandler(&logged, nil)).Info("text", "secret", secret)
	slog.New(slog.NewJSONHandler(&logged, nil)).Info("json", "secret", secret)
	if strings.Contains(logged.String(), key) || strings.Contains(logged.String(), rawKey) {
		t.Errorf("log/slog recorded the key: %q", logged.String())
	}
	if got := strings.Count(logged.String(), "whsec_REDACTED"); got != 2 {
		t.Errorf("log output has whsec_REDACTED %d times, want 2: %q", got, logged.String())
	}
}

func TestNewVerifierInvalid(t *testing.T) {
	valid := []Secret{mustParseSecret(t, knownSecret)}
	tests := []struct {
		name     string
		secrets  []Secret
		opts     []VerifierOption
		wantText string
	}{
		{"no secrets", nil, nil, "no secrets"},
		{"zero secret", []Secret{valid[0], {}}, nil, "zero Secret at index 1"},
		{"negative tolerance", valid, []VerifierOption{WithTolerance(-time.Second)}, "negative"},
		{"zero body limit", valid, []VerifierOption{WithMaxBodyBytes(0)}, "below 1"},
		{"nil clock", valid, []VerifierOption{WithClock(nil)}, "nil function"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v, err := NewVerifier(tt.secrets, tt.opts...)
			if err == nil {
				t.Fatalf("NewVerifier = %v, want an error", v)
			}
			if !strings.Contains(err.Error(), tt.wantText) {
				t.Errorf("error %q does not contain %q", err, tt.wantText)
			}
		})
	}
}

func TestNewVerifierCopiesSecrets(t *testing.T) {
	secrets := []Secret{mustParseSecret(t, knownSecret)}
	v := mustNewVerifier(t, secrets, fixedClock(time.Unix(knownTimestamp, 0)))
	secrets[0] = mustNewSecret(t)

	header := webhookHeader(knownMsgID, strconv.Itoa(knownTimestamp), knownSignature)
	if err := v.Verify(header, []byte(knownBody)); err != nil {
		t.Errorf("Verify after the caller changed its slice: %v", err)
	}
}

func TestVerify(t *testing.T) {
	secret := mustParseSecret(t, knownSecret)
	other := mustNewSecret(t)
	body := []byte(`{"id":"3f0c","eventType":"company.created"}`)
	msgID := "msg_2KWPBgLlAfxdpx2AI54pPJ85f4W"
	nowText := strconv.FormatInt(testNow.Unix(), 10)

	// signAt returns the single-secret signature for body at testNow plus offset.
	signAt := func(offset time.Duration, s Secret) (timestamp, signature string) {
		at := testNow.Add(offset)
		return strconv.FormatInt(at.Unix(), 10), Sign(msgID, at, body, s)
	}
	valid := Sign(msgID, testNow, body, secret)
	wrong := Sign(msgID, testNow, body, other)
	validDigest := strings.TrimPrefix(valid, "v1,")
	oldTime, oldSig := signAt(-DefaultTolerance-time.Second, secret)
	edgeOldTime, edgeOldSig := signAt(-DefaultTolerance, secret)
	newTime, newSig := signAt(DefaultTolerance+time.Second, secret)
	edgeNewTime, edgeNewSig := signAt(DefaultTolerance, secret)

	both := webhookHeader(msgID, nowText, valid)
	for name, values := range svixHeader(msgID, nowText, wrong) {
		both[name] = values
	}
	svixPreferredFails := webhookHeader(msgID, nowText, wrong)
	for name, values := range svixHeader(msgID, nowText, valid) {
		svixPreferredFails[name] = values
	}
	incompleteWebhook := svixHeader(msgID, nowText, valid)
	incompleteWebhook.Set(HeaderWebhookID, msgID)
	incompleteWebhook.Set(HeaderWebhookSignature, wrong)
	mixedFamilies := http.Header{}
	mixedFamilies.Set(HeaderWebhookID, msgID)
	mixedFamilies.Set(HeaderWebhookTimestamp, nowText)
	mixedFamilies.Set(HeaderSvixSignature, valid)

	tests := []struct {
		name    string
		header  http.Header
		body    []byte
		wantErr error
	}{
		{"valid", webhookHeader(msgID, nowText, valid), body, nil},
		{"tampered body", webhookHeader(msgID, nowText, valid), []byte(`{"id":"3f0c","eventType":"company.deleted"}`), ErrNoMatchingSignature},
		{"body with extra byte", webhookHeader(msgID, nowText, valid), append(append([]byte(nil), body...), '\n'), ErrNoMatchingSignature},
		{"empty body", webhookHeader(msgID, nowText, valid), nil, ErrNoMatchingSignature},
		{"other message id", webhookHeader("msg_other", nowText, valid), body, ErrNoMatchingSignature},
		{"wrong secret", webhookHeader(msgID, nowText, wrong), body, ErrNoMatchingSignature},
		{"expired", webhookHeader(msgID, oldTime, oldSig), body, ErrTimestampTooOld},
		{"oldest accepted", webhookHeader(msgID, edgeOldTime, edgeOldSig), body, nil},
		{"future", webhookHeader(msgID, newTime, newSig), body, ErrTimestampTooNew},
		{"newest accepted", webhookHeader(msgID, edgeNewTime, edgeNewSig), body, nil},
		{"other timestamp", webhookHeader(msgID, strconv.FormatInt(testNow.Unix()+1, 10), valid), body, ErrNoMatchingSignature},
		{"timestamp year 9999", webhookHeader(msgID, "253402300799", valid), body, ErrTimestampTooNew},
		{"timestamp after year 9999", webhookHeader(msgID, "253402300800", valid), body, ErrInvalidTimestamp},
		{"timestamp max int64", webhookHeader(msgID, "9223372036854775807", valid), body, ErrInvalidTimestamp},
		{"timestamp overflow", webhookHeader(msgID, "9223372036854775808", valid), body, ErrInvalidTimestamp},
		{"timestamp zero", webhookHeader(msgID, "0", valid), body, ErrTimestampTooOld},
		{"timestamp text", webhookHeader(msgID, "yesterday", valid), body, ErrInvalidTimestamp},
		{"timestamp plus sign", webhookHeader(msgID, "+"+nowText, valid), body, ErrInvalidTimestamp},
		{"timestamp leading zero", webhookHeader(msgID, "0"+nowText, valid), body, ErrInvalidTimestamp},
		{"timestamp negative", webhookHeader(msgID, "-"+nowText, valid), body, ErrInvalidTimestamp},
		{"timestamp fraction", webhookHeader(msgID, nowText+".5", valid), body, ErrInvalidTimestamp},
		{"timestamp milliseconds", webhookHeader(msgID, nowText+"000", valid), body, ErrInvalidTimestamp},
		{"no headers", http.Header{}, body, ErrMissingHeaders},
		{"missing id", webhookHeader("", nowText, valid), body, ErrMissingHeaders},
		{"missing timestamp", webhookHeader(msgID, "", valid), body, ErrMissingHeaders},
		{"missing signature", webhookHeader(msgID, nowText, ""), body, ErrMissingHeaders},
		{"mixed families", mixedFamilies, body, ErrMissingHeaders},
		{"second of two matches", webhookHeader(msgID, nowText, wrong+" "+valid), body, nil},
		{"first of two matches", webhookHeader(msgID, nowText, valid+" "+wrong), body, nil},
		{"extra spaces", webhookHeader(msgID, nowText, "  "+wrong+"   "+valid+" "), body, nil},
		{"svix headers only", svixHeader(msgID, nowText, valid), body, nil},
		{"svix headers wrong secret", svixHeader(msgID, nowText, wrong), body, ErrNoMatchingSignature},
		{"webhook headers preferred", both, body, nil},
		{"svix ignored when webhook complete", svixPreferredFails, body, ErrNoMatchingSignature},
		{"svix used when webhook incomplete", incompleteWebhook, body, nil},
		{"v1a entry ignored", webhookHeader(msgID, nowText, "v1a,"+validDigest), body, ErrNoMatchingSignature},
		{"v2 entry ignored", webhookHeader(msgID, nowText, "v2,"+validDigest), body, ErrNoMatchingSignature},
		{"non-v1 before v1", webhookHeader(msgID, nowText, "v1a,"+validDigest+" "+valid), body, nil},
		{"uppercase version", webhookHeader(msgID, nowText, "V1,"+validDigest), body, ErrNoMatchingSignature},
		{"entry without version", webhookHeader(msgID, nowText, validDigest), body, ErrNoMatchingSignature},
		{"digest with suffix", webhookHeader(msgID, nowText, valid+"AA"), body, ErrNoMatchingSignature},
		{"digest without padding", webhookHeader(msgID, nowText, strings.TrimSuffix(valid, "=")), body, ErrNoMatchingSignature},
		{"empty digest", webhookHeader(msgID, nowText, "v1,"), body, ErrNoMatchingSignature},
	}
	v := mustNewVerifier(t, []Secret{secret}, fixedClock(testNow))
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := v.Verify(tt.header, tt.body)
			if tt.wantErr == nil {
				if err != nil {
					t.Errorf("Verify = %v, want nil", err)
				}
				return
			}
			if !errors.Is(err, tt.wantErr) {
				t.Errorf("Verify = %v, want an error wrapping %q", err, tt.wantErr)
			}
			if err != nil && strings.Contains(err.Error(), validDigest) {
				t.Errorf("error %q contains the expected signature", err)
			}
		})
	}
}

func TestVerifyErrorsAreDistinct(t *testing.T) {
	sentinels := []error{ErrMissingHeaders, ErrInvalidTimestamp, ErrTimestampTooOld, ErrTimestampTooNew, ErrNoMatchingSignature}
	for i, a := range sentinels {
		for j, b := range sentinels {
			if i != j && errors.Is(a, b) {
				t.Errorf("errors.Is(%q, %q) = true, want false", a, b)
			}
		}
	}
}

func TestVerifyRotatedSecrets(t *testing.T) {
	oldSecret := mustParseSecret(t, knownSecret)
	newSecret := mustNewSecret(t)
	body := []byte(knownBody)
	timestamp := strconv.FormatInt(testNow.Unix(), 10)
	v := mustNewVerifier(t, []Secret{oldSecret, newSecret}, fixedClock(testNow))

	tests := []struct {
		name    string
		signers []Secret
	}{
		{"old secret", []Secret{oldSecret}},
		{"new secret", []Secret{newSecret}},
		{"both secrets", []Secret{newSecret, oldSecret}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			signature := Sign(knownMsgID, testNow, body, tt.signers...)
			if err := v.Verify(webhookHeader(knownMsgID, timestamp, signature), body); err != nil {
				t.Errorf("Verify = %v, want nil", err)
			}
		})
	}
}

func TestVerifyWithTolerance(t *testing.T) {
	secret := mustParseSecret(t, knownSecret)
	body := []byte(knownBody)
	sent := testNow.Add(-30 * time.Minute)
	header := Headers(knownMsgID, sent, body, secret)

	if err := mustNewVerifier(t, []Secret{secret}, fixedClock(testNow)).Verify(header, body); !errors.Is(err, ErrTimestampTooOld) {
		t.Errorf("default tolerance: Verify = %v, want ErrTimestampTooOld", err)
	}
	long := mustNewVerifier(t, []Secret{secret}, fixedClock(testNow), WithTolerance(time.Hour))
	if err := long.Verify(header, body); err != nil {
		t.Errorf("tolerance 1h: Verify = %v, want nil", err)
	}
	exact := mustNewVerifier(t, []Secret{secret}, fixedClock(testNow), WithTolerance(0))
	if err := exact.Verify(Headers(knownMsgID, testNow, body, secret), body); err != nil {
		t.Errorf("tolerance 0 at the same second: Verify = %v, want nil", err)
	}
}

func TestVerifyRealClock(t *testing.T) {
	secret := mustNewSecret(t)
	body := []byte(knownBody)
	v := mustNewVerifier(t, []Secret{secret})

	if err := v.Verify(Headers(knownMsgID, time.Now(), body, secret), body); err != nil {
		t.Errorf("Verify = %v, want nil", err)
	}
	if err := v.Verify(Headers(knownMsgID, time.Now().Add(-time.Hour), body, secret), body); !errors.Is(err, ErrTimestampTooOld) {
		t.Errorf("Verify of a webhook sent 1h ago = %v, want ErrTimestampTooOld", err)
	}
}

func TestReferenceGoSignsVerifierAccepts(t *testing.T) {
	secret := mustNewSecret(t)
	v := mustNewVerifier(t, []Secret{secret})

	// NewWebhook of v1.3.0 accepts the whsec_ form and the bare base64 form.
	for _, serialized := range []string{secret.String(), strings.TrimPrefix(secret.String(), SecretPrefix)} {
		reference, err := standardwebhooks.NewWebhook(serialized)
		if err != nil {
			t.Fatalf("standardwebhooks.NewWebhook: %v", err)
		}
		for _, body := range referenceBodies() {
			now := time.Now()
			signature, err := reference.Sign(knownMsgID, now, body)
			if err != nil {
				t.Fatalf("standardwebhooks Sign: %v", err)
			}
			header := webhookHeader(knownMsgID, strconv.FormatInt(now.Unix(), 10), signature)

			if err := v.Verify(header, body); err != nil {
				t.Errorf("Verify of body %q signed by standardwebhooks = %v, want nil", body, err)
			}
			if err := v.Verify(header, append([]byte("x"), body...)); !errors.Is(err, ErrNoMatchingSignature) {
				t.Errorf("Verify of tampered body %q = %v, want ErrNoMatchingSignature", body, err)
			}
		}
	}
}

func TestReferenceGoVerifiesSign(t *testing.T) {
	first := mustNewSecret(t)
	second := mustNewSecret(t)
	firstReference, err := standardwebhooks.NewWebhook(first.String())
	if err != nil {
		t.Fatalf("standardwebhooks.NewWebhook: %v", err)
	}
	secondReference, err := standardwebhooks.NewWebhook(second.String())
	if err != nil {
		t.Fatalf("standardwebhooks.NewWebhook: %v", err)
	}

	for _, body := range referenceBodies() {
		header := Headers(knownMsgID, time.Now(), body, first, second)

		if err := firstReference.Verify(body, header); err != nil {
			t.Errorf("standardwebhooks Verify with the first secret, body %q: %v", body, err)
		}
		if err := secondReference.Verify(body, header); err != nil {
			t.Errorf("standardwebhooks Verify with the second secret, body %q: %v", body, err)
		}
		if err := firstReference.Verify(append(bytes.Clone(body), 'x'), header); err == nil {
			t.Errorf("standardwebhooks Verify accepted tampered body %q", body)
		}
	}
}

// referenceBodies returns the bodies that the tests against reference libraries sign.
// They are valid UTF-8 because the npm package signs the UTF-8 text of the body.
func referenceBodies() [][]byte {
	return [][]byte{
		[]byte(knownBody),
		[]byte(`{"id":"9b2e","eventType":"company.created","generatedDate":"2024-05-01T10:00:00Z","payload":{"referenceCompany":{"id":"c1","name":"Ünïcødé Ltd ✓","tags":{"region":"eu"}}}}`),
		[]byte("not JSON.\nwith two lines and a . dot"),
		[]byte(""),
		bytes.Repeat([]byte("0123456789abcdef"), 4096),
	}
}

// oracleSignCase and the types below match the JSON of test/signature-oracle/oracle.mjs.
type oracleSignCase struct {
	Secret    string `json:"secret"`
	MsgID     string `json:"msgId"`
	Timestamp int64  `json:"timestamp"`
	Body      string `json:"body"`
}

type oracleSignResult struct {
	Signature string `json:"signature"`
	Error     string `json:"error"`
}

type oracleVerifyCase struct {
	Secret  string            `json:"secret"`
	Headers map[string]string `json:"headers"`
	Body    string            `json:"body"`
}

type oracleVerifyResult struct {
	OK    bool   `json:"ok"`
	Error string `json:"error"`
}

func TestReferenceNodeSignsVerifierAccepts(t *testing.T) {
	nodePath := requireOracle(t)
	secret := mustNewSecret(t)
	bodies := referenceBodies()

	var cases []oracleSignCase
	for i, body := range bodies {
		cases = append(cases, oracleSignCase{
			Secret:    secret.String(),
			MsgID:     "msg_" + strconv.Itoa(i),
			Timestamp: testNow.Unix(),
			Body:      string(body),
		})
	}
	// The bare base64 form must give the same signature as the whsec_ form.
	bare := cases[0]
	bare.Secret = strings.TrimPrefix(bare.Secret, SecretPrefix)
	cases = append(cases, bare)

	var results []oracleSignResult
	runOracle(t, nodePath, "sign", cases, &results)
	if len(results) != len(cases) {
		t.Fatalf("oracle returned %d results for %d cases", len(results), len(cases))
	}

	v := mustNewVerifier(t, []Secret{secret}, fixedClock(testNow))
	timestamp := strconv.FormatInt(testNow.Unix(), 10)
	for i, result := range results {
		c := cases[i]
		if result.Error != "" {
			t.Errorf("case %d: oracle sign failed: %s", i, result.Error)
			continue
		}
		if want := Sign(c.MsgID, testNow, []byte(c.Body), secret); result.Signature != want {
			t.Errorf("case %d: oracle signature %q, Sign = %q", i, result.Signature, want)
		}

		header := webhookHeader(c.MsgID, timestamp, result.Signature)
		if err := v.Verify(header, []byte(c.Body)); err != nil {
			t.Errorf("case %d: Verify of the oracle's signature = %v, want nil", i, err)
		}
		if err := v.Verify(header, []byte(c.Body+" ")); !errors.Is(err, ErrNoMatchingSignature) {
			t.Errorf("case %d: Verify of tampered body = %v, want ErrNoMatchingSignature", i, err)
		}
	}
}

func TestReferenceNodeVerifiesSign(t *testing.T) {
	nodePath := requireOracle(t)
	first := mustNewSecret(t)
	second := mustNewSecret(t)

	type expectation struct {
		name   string
		wantOK bool
	}
	var cases []oracleVerifyCase
	var want []expectation
	add := func(name string, secret Secret, header http.Header, body string, wantOK bool) {
		cases = append(cases, oracleVerifyCase{
			Secret: secret.String(),
			Headers: map[string]string{
				HeaderWebhookID:        header.Get(HeaderWebhookID),
				HeaderWebhookTimestamp: header.Get(HeaderWebhookTimestamp),
				HeaderWebhookSignature: header.Get(HeaderWebhookSignature),
			},
			Body: body,
		})
		want = append(want, expectation{name, wantOK})
	}

	// The npm package checks the timestamp against the real clock.
	now := time.Now()
	for i, body := range referenceBodies() {
		header := Headers("msg_"+strconv.Itoa(i), now, body, first, second)
		add(fmt.Sprintf("body %d, first secret", i), first, header, string(body), true)
		add(fmt.Sprintf("body %d, second secret", i), second, header, string(body), true)
		add(fmt.Sprintf("body %d, tampered", i), first, header, string(body)+"x", false)
	}
	other := mustNewSecret(t)
	add("unknown secret", other, Headers("msg_other", now, []byte(knownBody), first), knownBody, false)

	var results []oracleVerifyResult
	runOracle(t, nodePath, "verify", cases, &results)
	if len(results) != len(cases) {
		t.Fatalf("oracle returned %d results for %d cases", len(results), len(cases))
	}
	for i, result := range results {
		if result.OK != want[i].wantOK {
			t.Errorf("%s: oracle verify ok = %t (%s), want %t", want[i].name, result.OK, result.Error, want[i].wantOK)
		}
	}
}

// requireOracle returns the path of node after checking that the standardwebhooks npm
// package is installed at oracleVersion. Without node or the package it skips the test,
// or fails it when HOOKD_REQUIRE_NODE is 1.
func requireOracle(t *testing.T) string {
	t.Helper()
	nodePath, err := exec.LookPath("node")
	if err != nil {
		missingPrerequisite(t, "node is not installed (%v). Install Node.js, then %s", err, oracleInstallHint)
	}

	manifest := filepath.Join(oracleDir, "node_modules", "standardwebhooks", "package.json")
	data, err := os.ReadFile(manifest)
	if errors.Is(err, fs.ErrNotExist) {
		missingPrerequisite(t, "standardwebhooks is not installed in test/signature-oracle/node_modules: %s", oracleInstallHint)
	}
	if err != nil {
		t.Fatalf("read %s: %v", manifest, err)
	}

	var pkg struct {
		Version string `json:"version"`
	}
	if err := json.Unmarshal(data, &pkg); err != nil {
		t.Fatalf("parse %s: %v", manifest, err)
	}
	if pkg.Version != oracleVersion {
		t.Fatalf("installed standardwebhooks is version %q, want %s: %s", pkg.Version, oracleVersion, oracleInstallHint)
	}
	return nodePath
}

// missingPrerequisite fails the test when HOOKD_REQUIRE_NODE is 1 and skips it otherwise.
func missingPrerequisite(t *testing.T, format string, args ...any) {
	t.Helper()
	if os.Getenv(requireNodeEnv) == "1" {
		t.Fatalf(format, args...)
	}
	t.Skipf(format, args...)
}

// runOracle runs "node oracle.mjs mode" with cases as JSON on standard input and decodes
// its standard output into results.
func runOracle(t *testing.T, nodePath, mode string, cases, results any) {
	t.Helper()
	input, err := json.Marshal(cases)
	if err != nil {
		t.Fatalf("encode oracle cases: %v", err)
	}

	ctx, cancel := context.WithTimeout(t.Context(), oracleTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, nodePath, "oracle.mjs", mode)
	cmd.Dir = oracleDir
	cmd.Stdin = bytes.NewReader(input)
	var stdout, stderr bytes.Buffer
	cmd.Stdout = &stdout
	cmd.Stderr = &stderr

	if err := cmd.Run(); err != nil {
		if ctx.Err() != nil {
			t.Fatalf("node oracle.mjs %s did not finish within %s and was killed", mode, oracleTimeout)
		}
		t.Fatalf("node oracle.mjs %s: %v\nstderr:\n%s", mode, err, stderr.String())
	}
	if err := json.Unmarshal(stdout.Bytes(), results); err != nil {
		t.Fatalf("decode output of node oracle.mjs %s: %v\nstdout:\n%s", mode, err, stdout.String())
	}
}

func TestMiddleware(t *testing.T) {
	secret := mustNewSecret(t)
	const maxBody = 64
	v := mustNewVerifier(t, []Secret{secret}, WithMaxBodyBytes(maxBody))

	type received struct {
		body          []byte
		contentLength int64
	}
	calls := make(chan received, 1)
	next := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			t.Errorf("next handler: read body: %v", err)
		}
		calls <- received{body: body, contentLength: r.ContentLength}
		w.WriteHeader(http.StatusNoContent)
	})
	server := httptest.NewServer(v.Middleware(next))
	t.Cleanup(server.Close)

	body := []byte(`{"eventType":"company.created"}`)
	fullBody := bytes.Repeat([]byte("a"), maxBody)
	largeBody := bytes.Repeat([]byte("a"), maxBody+1)

	tests := []struct {
		name       string
		header     http.Header
		body       []byte
		chunked    bool
		wantStatus int
		wantText   string
	}{
		{"valid", Headers(knownMsgID, time.Now(), body, secret), body, false, http.StatusNoContent, ""},
		{"valid chunked", Headers(knownMsgID, time.Now(), body, secret), body, true, http.StatusNoContent, ""},
		{"valid at body limit", Headers(knownMsgID, time.Now(), fullBody, secret), fullBody, false, http.StatusNoContent, ""},
		{"valid svix only", svixOnly(Headers(knownMsgID, time.Now(), body, secret)), body, false, http.StatusNoContent, ""},
		{"no headers", http.Header{}, body, false, http.StatusUnauthorized, "missing webhook headers"},
		{"tampered body", Headers(knownMsgID, time.Now(), body, secret), []byte(`{"eventType":"company.deleted"}`), false, http.StatusUnauthorized, "no matching webhook signature"},
		{"wrong secret", Headers(knownMsgID, time.Now(), body, mustNewSecret(t)), body, false, http.StatusUnauthorized, "no matching webhook signature"},
		{"expired", Headers(knownMsgID, time.Now().Add(-time.Hour), body, secret), body, false, http.StatusUnauthorized, "webhook timestamp too old"},
		{"body too large", Headers(knownMsgID, time.Now(), largeBody, secret), largeBody, false, http.StatusRequestEntityTooLarge, "larger than 64 bytes"},
		{"chunked body too large", Headers(knownMsgID, time.Now(), largeBody, secret), largeBody, true, http.StatusRequestEntityTooLarge, "larger than 64 bytes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var reader io.Reader = bytes.NewReader(tt.body)
			if tt.chunked {
				// A reader of unknown length makes the client send no Content-Length.
				reader = io.MultiReader(reader)
			}
			req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, server.URL, reader)
			if err != nil {
				t.Fatalf("new request: %v", err)
			}
			for name, values := range tt.header {
				req.Header[name] = values
			}

			resp, err := server.Client().Do(req)
			if err != nil {
				t.Fatalf("POST: %v", err)
			}
			respBody, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			if err != nil {
				t.Fatalf("read response: %v", err)
			}

			if resp.StatusCode != tt.wantStatus {
				t.Errorf("status = %d, want %d; body %q", resp.StatusCode, tt.wantStatus, respBody)
			}
			if tt.wantStatus != http.StatusNoContent {
				if !strings.Contains(string(respBody), tt.wantText) {
					t.Errorf("response body %q does not contain %q", respBody, tt.wantText)
				}
				if got := resp.Header.Get("Content-Type"); !strings.HasPrefix(got, "text/plain") {
					t.Errorf("Content-Type = %q, want text/plain", got)
				}
				select {
				case got := <-calls:
					t.Errorf("next handler ran for a rejected request with body %q", got.body)
				default:
				}
				return
			}

			select {
			case got := <-calls:
				if !bytes.Equal(got.body, tt.body) {
					t.Errorf("next handler read body %q, want %q", got.body, tt.body)
				}
				if got.contentLength != int64(len(tt.body)) {
					t.Errorf("next handler saw ContentLength %d, want %d", got.contentLength, len(tt.body))
				}
			default:
				t.Errorf("next handler did not run")
			}
		})
	}
}

// svixOnly returns a copy of h without the webhook-* headers.
func svixOnly(h http.Header) http.Header {
	h = h.Clone()
	h.Del(HeaderWebhookID)
	h.Del(HeaderWebhookTimestamp)
	h.Del(HeaderWebhookSignature)
	return h
}

func BenchmarkSign(b *testing.B) {
	secret := mustNewSecret(b)
	body := bytes.Repeat([]byte("x"), 1024)
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		Sign(knownMsgID, testNow, body, secret)
	}
}

func BenchmarkVerify(b *testing.B) {
	secret := mustNewSecret(b)
	body := bytes.Repeat([]byte("x"), 1024)
	header := Headers(knownMsgID, testNow, body, secret)
	v := mustNewVerifier(b, []Secret{secret}, fixedClock(testNow))
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		if err := v.Verify(header, body); err != nil {
			b.Fatal(err)
		}
	}
}
