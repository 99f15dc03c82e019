package sdk

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"runtime"
	"strings"
	"time"
)

// DefaultServerURL is the server that a Client calls when no WithServerURL option is
// given: hookd serve's default listen address.
const DefaultServerURL = "http://127.0.0.1:8080"

// DefaultTimeout bounds one attempt of the default HTTP client, from sending the request
// to reading the whole response. An attempt that times out counts as a connection error.
const DefaultTimeout = 60 * time.Second

// version is the SDK version sent in the User-Agent header.
const version = "0.1.0"

// idempotencyKeyHeader is the request header that lets hookd recognise a repeated create
// or publish request.
const idempotencyKeyHeader = "Idempotency-Key"

// Client calls one hookd server. Create it with New. Its resources group the operations
// by path prefix, as the package documentation describes.
type Client struct {
	// Webhooks calls the operations on webhook consumers, under /webhooks.
	Webhooks *Webhooks

	// Events publishes events, under /events.
	Events *Events

	// Messages inspects and resends published messages, under /messages.
	Messages *Messages

	baseURL    *url.URL
	baseURLErr error
	authHeader string
	httpClient *http.Client
	retry      RetryConfig
	userAgent  string
}

// Option configures a Client in New.
type Option func(*Client)

// WithServerURL sets the base URL of the hookd server, DefaultServerURL by default. The
// URL may carry a path prefix, such as "https://example.com/hookd/", and operation paths
// are appended to it with a single slash between. An invalid URL makes every operation
// fail with an error that names it.
func WithServerURL(serverURL string) Option {
	return func(c *Client) {
		c.baseURL, c.baseURLErr = parseServerURL(serverURL)
	}
}

// WithSecurity sets the Authorization header value that every request sends, unchanged,
// such as "Basic " followed by the base64 encoding of an API key. WithAPIKey builds that
// value from the raw key. The last of WithSecurity and WithAPIKey wins, and an empty value
// sends no Authorization header.
func WithSecurity(authHeader string) Option {
	return func(c *Client) { c.authHeader = authHeader }
}

// WithAPIKey sets the Authorization header to "Basic " followed by the standard base64
// encoding of the raw API key, the form that hookd and Codat expect. An empty key sends
// no Authorization header, so that the server reports the key as missing.
func WithAPIKey(rawKey string) Option {
	if rawKey == "" {
		return WithSecurity("")
	}
	return WithSecurity("Basic " + base64.StdEncoding.EncodeToString([]byte(rawKey)))
}

// WithHTTPClient sets the HTTP client that sends the requests. By default a client with
// DefaultTimeout per attempt and Go's default transport sends them. Nil keeps the default.
func WithHTTPClient(client *http.Client) Option {
	return func(c *Client) {
		if client != nil {
			c.httpClient = client
		}
	}
}

// WithRetryConfig sets the retry rules of every operation of the client. WithRetries
// overrides them for one call. Without this option the client uses DefaultRetryConfig.
func WithRetryConfig(config RetryConfig) Option {
	return func(c *Client) { c.retry = config }
}

// New returns a Client configured by opts.
func New(opts ...Option) *Client {
	c := &Client{
		httpClient: &http.Client{Timeout: DefaultTimeout},
		retry:      DefaultRetryConfig(),
		userAgent:  fmt.Sprintf("hookd-sdk-go/%s %s %s/%s", version, runtime.Version(), runtime.GOOS, runtime.GOARCH),
	}
	c.baseURL, c.baseURLErr = parseServerURL(DefaultServerURL)
	for _, opt := range opts {
		opt(c)
	}

	c.Webhooks = &Webhooks{client: c}
	c.Events = &Events{client: c}
	c.Messages = &Messages{client: c}
	return c
}

// CallOption configures one call of an operation.
type CallOption func(*callConfig)

type callConfig struct {
	retry          *RetryConfig
	idempotencyKey string
}

// WithRetries sets the retry rules of one call, in place of the client's.
func WithRetries(config RetryConfig) CallOption {
	return func(cc *callConfig) { cc.retry = &config }
}

// WithIdempotencyKey sets the Idempotency-Key header of a create or publish call:
// Webhooks.CreateConsumer, Events.PublishEvent and Events.PublishEvents. Without it, each
// of these calls sends a new random UUID. Pass your own key, at most 255 bytes, when a
// later call may repeat the request, for example after a restart. The server then returns
// the first result to the repeat. Other operations ignore the key.
func WithIdempotencyKey(key string) CallOption {
	return func(cc *callConfig) { cc.idempotencyKey = key }
}

// operation describes one API call.
type operation struct {
	// name names the operation in error messages, such as "create webhook consumer".
	name   string
	method string

	// path is the escaped path after the server URL, starting with a slash.
	path  string
	query url.Values

	// body is the encoded JSON request body, or nil for a request without a body. It is
	// sent again unchanged on every retry.
	body []byte

	// success is the status of a successful response, and resultType names the schema
	// of its body for ResponseValidationError. errorStatuses are the error statuses whose
	// JSON body is an ErrorMessage.
	success       int
	resultType    string
	errorStatuses []int

	// idempotencyKey makes every attempt send the same Idempotency-Key header.
	idempotencyKey bool

	// noDefaultRetry turns retries off unless the call passes WithRetries.
	noDefaultRetry bool
}

// call sends op, retrying as configured, and decodes the successful response into out,
// unless out is nil.
func (c *Client) call(ctx context.Context, op operation, out any, opts []CallOption) error {
	var cc callConfig
	for _, opt := range opts {
		opt(&cc)
	}
	retry := c.retry
	switch {
	case cc.retry != nil:
		retry = *cc.retry
	case op.noDefaultRetry:
		retry = RetryConfig{Strategy: StrategyNone}
	}
	if err := retry.validate(); err != nil {
		return fmt.Errorf("hookd: %s: %w", op.name, err)
	}

	req, err := c.newRequest(ctx, op)
	if err != nil {
		return fmt.Errorf("hookd: %s: %w", op.name, err)
	}
	if op.idempotencyKey {
		key := cc.idempotencyKey
		if key == "" {
			key = newIdempotencyKey()
		}
		req.Header.Set(idempotencyKeyHeader, key)
	}

	resp, err := c.sendWithRetries(ctx, req, op.body, retry)
	if err != nil {
		return fmt.Errorf("hookd: %s: %w", op.name, err)
	}
	return decodeResponse(resp, op, out)
}

// newRequest builds op's request without a body. Each attempt attaches a fresh reader.
func (c *Client) newRequest(ctx context.Context, op operation) (*http.Request, error) {
	if c.baseURLErr != nil {
		return nil, c.baseURLErr
	}
	u := joinURL(c.baseURL, op.path)
	if len(op.query) > 0 {
		u.RawQuery = op.query.Encode()
	}

	req, err := http.NewRequestWithContext(ctx, op.method, u.String(), nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", c.userAgent)
	if c.authHeader != "" {
		req.Header.Set("Authorization", c.authHeader)
	}
	if op.body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	return req, nil
}

// response is a response whose body has been read completely.
type response struct {
	status int
	header http.Header
	body   []byte

	// raw is the response, with a Body that reads body again.
	raw *http.Response
}

// sendOnce sends one attempt of req with a fresh copy of body.
func (c *Client) sendOnce(req *http.Request, body []byte) (*response, error) {
	attempt := req.Clone(req.Context())
	if body != nil {
		attempt.Body = io.NopCloser(bytes.NewReader(body))
		attempt.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(body)), nil }
		attempt.ContentLength = int64(len(body))
	}

	resp, err := c.httpClient.Do(attempt)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()

	// A body cut short is a connection error, so the attempt may be retried.
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("read response body of %s %s: %w", req.Method, req.URL.Redacted(), err)
	}
	resp.Body = io.NopCloser(bytes.NewReader(data))
	return &response{status: resp.StatusCode, header: resp.Header, body: data, raw: resp}, nil
}

// parseServerURL checks that serverURL is an absolute http or https URL.
func parseServerURL(serverURL string) (*url.URL, error) {
	u, err := url.Parse(serverURL)
	if err != nil {
		// The parse error is not wrapped: it describes the text, not a failed connection.
		return nil, fmt.Errorf("invalid server URL %q: use an absolute http or https URL such as %s (%v)",
			serverURL, DefaultServerURL, errors.Unwrap(err))
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("invalid server URL %q: use an absolute http or https URL such as %s", serverURL, DefaultServerURL)
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return nil, fmt.Errorf("invalid server URL %q: remove the query and the fragment", serverURL)
	}
	return u, nil
}

// joinURL appends the escaped path to base's path with exactly one slash between them.
func joinURL(base *url.URL, escapedPath string) *url.URL {
	u := *base
	joined := strings.TrimRight(base.EscapedPath(), "/") + "/" + strings.TrimLeft(escapedPath, "/")
	u.RawPath = joined
	u.Path, _ = url.PathUnescape(joined)
	return &u
}

// encodeBody encodes a request body as JSON.
func encodeBody(name string, v any) ([]byte, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("hookd: %s: encode request body: %w", name, err)
	}
	return b, nil
}

// pathSegment escapes one path segment, so that a "/" in an id stays inside the segment.
func pathSegment(s string) string {
	return url.PathEscape(s)
}
