package main

// This file holds what the API commands (consumers, events and messages) share: their
// flags, the SDK client built from them, the table and JSON output, and the error text.

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/hookd/hookd/sdk"
)

// Environment variables of the API commands.
const (
	envURL        = "HOOKD_URL"
	envAPIKey     = "HOOKD_API_KEY"
	envAuthHeader = "HOOKD_AUTH_HEADER"
)

// defaultRetryFor is how long an API command retries a request by default. It is much
// shorter than the SDK's hour, so that a command against a stopped server fails quickly.
const defaultRetryFor = 10 * time.Second

// Values of --output.
const (
	outputTable = "table"
	outputJSON  = "json"
)

// apiFlags are the flags that every API command takes.
type apiFlags struct {
	url        string
	apiKey     string
	authHeader string
	output     string
	retryFor   time.Duration
}

// addAPIFlags adds the API flags to cmd as persistent flags, so that each of its
// subcommands takes them.
func addAPIFlags(cmd *cobra.Command) *apiFlags {
	f := &apiFlags{}
	flags := cmd.PersistentFlags()
	flags.StringVar(&f.url, "url", envDefault(envURL, sdk.DefaultServerURL),
		"base URL of the hookd server (env "+envURL+")")
	// The key flags show no default, so that help output never prints a key taken from
	// the environment.
	flags.StringVar(&f.apiKey, "api-key", "",
		"raw API key, hk_..., as hookd keys create prints it (env "+envAPIKey+")")
	flags.StringVar(&f.authHeader, "auth-header", "",
		`whole Authorization header value, "Basic ...", in place of --api-key (env `+envAuthHeader+")")
	flags.StringVarP(&f.output, "output", "o", outputTable,
		"output format: table for people, json for scripts (the API's JSON objects)")
	flags.DurationVar(&f.retryFor, "retry-for", defaultRetryFor,
		"how long to retry after a 408, 429 or 5XX response or a connection error; 0 sends each request once")
	return f
}

// apiClient is an SDK client with the output settings of one command run.
type apiClient struct {
	*sdk.Client

	serverURL string
	out       io.Writer
	json      bool
}

// newClient checks the API flags and returns the client that they configure.
func (f *apiFlags) newClient(cmd *cobra.Command) (*apiClient, error) {
	if f.output != outputTable && f.output != outputJSON {
		return nil, fmt.Errorf("invalid --output %q: use table or json", f.output)
	}
	if f.retryFor < 0 {
		return nil, fmt.Errorf("invalid --retry-for %s: use a duration of 0 or more, such as 30s", f.retryFor)
	}
	auth, err := f.authorization(cmd)
	if err != nil {
		return nil, err
	}

	client := sdk.New(
		sdk.WithServerURL(f.url),
		sdk.WithSecurity(auth),
		sdk.WithRetryConfig(retryConfig(f.retryFor)),
	)
	return &apiClient{Client: client, serverURL: f.url, out: cmd.OutOrStdout(), json: f.output == outputJSON}, nil
}

// authorization returns the Authorization header value. The flags take precedence over
// the environment, and a raw key over a header value.
func (f *apiFlags) authorization(cmd *cobra.Command) (string, error) {
	flags := cmd.Flags()
	keyFlag, headerFlag := flags.Changed("api-key"), flags.Changed("auth-header")
	switch {
	case keyFlag && headerFlag:
		return "", errors.New("--api-key and --auth-header both set the Authorization header: pass only one")
	case keyFlag:
		return headerFromKey("--api-key", f.apiKey)
	case headerFlag:
		return headerValue("--auth-header", f.authHeader)
	}

	if key := os.Getenv(envAPIKey); key != "" {
		return headerFromKey(envAPIKey, key)
	}
	if header := os.Getenv(envAuthHeader); header != "" {
		return headerValue(envAuthHeader, header)
	}
	return "", fmt.Errorf("missing API key: set %s to the raw key that hookd keys create prints (hk_...), or pass --api-key", envAPIKey)
}

// headerFromKey returns the Authorization header value of a raw API key from source.
func headerFromKey(source, key string) (string, error) {
	key = strings.TrimSpace(key)
	switch {
	case key == "":
		return "", fmt.Errorf("%s is empty: set it to the raw key that hookd keys create prints (hk_...)", source)
	case strings.HasPrefix(key, "Basic "):
		return "", fmt.Errorf("%s contains an Authorization header value: set it to the raw key (hk_...), or pass the header value with --auth-header or %s", source, envAuthHeader)
	}
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(key)), nil
}

// headerValue checks a whole Authorization header value from source.
func headerValue(source, header string) (string, error) {
	header = strings.TrimSpace(header)
	if header == "" {
		return "", fmt.Errorf("%s is empty: set it to \"Basic \" followed by the base64 encoding of the API key", source)
	}
	return header, nil
}

// retryConfig returns the SDK's retry rules, limited to retryFor in total.
func retryConfig(retryFor time.Duration) sdk.RetryConfig {
	if retryFor == 0 {
		return sdk.RetryConfig{Strategy: sdk.StrategyNone}
	}
	config := sdk.DefaultRetryConfig()
	config.Backoff.MaxElapsedTime = retryFor
	return config
}

// print writes v as indented JSON with --output json, and otherwise calls table with a
// writer that aligns tab-separated columns.
func (c *apiClient) print(v any, table func(w io.Writer)) error {
	if c.json {
		enc := json.NewEncoder(c.out)
		enc.SetIndent("", "  ")
		enc.SetEscapeHTML(false)
		return enc.Encode(v)
	}
	tw := tabwriter.NewWriter(c.out, 0, 4, 2, ' ', 0)
	table(tw)
	return tw.Flush()
}

// printText writes a line for people. With --output json it writes nothing.
func (c *apiClient) printText(format string, args ...any) {
	if !c.json {
		fmt.Fprintf(c.out, format+"\n", args...)
	}
}

// fail turns an error of the SDK into the error that main prints: an ErrorMessage's
// status, text, validation items and correlation id on separate lines, or the SDK's text
// with a hint when the server did not respond.
func (c *apiClient) fail(err error) error {
	var em *sdk.ErrorMessage
	if errors.As(err, &em) {
		return errors.New(errorMessageText(em))
	}

	// A status the operation does not declare still carries an ErrorMessage from hookd,
	// for example a 404 for a --url with a wrong path.
	var sdkErr *sdk.SDKError
	if errors.As(err, &sdkErr) {
		var body sdk.ErrorMessage
		if json.Unmarshal(sdkErr.Body, &body) == nil && body.CorrelationID != "" {
			body.HTTPStatus = sdkErr.StatusCode
			return errors.New(errorMessageText(&body) + fmt.Sprintf("\nCheck --url or %s: %s", envURL, c.serverURL))
		}
	}

	text := strings.TrimPrefix(err.Error(), "hookd: ")
	var urlErr *url.Error
	if errors.As(err, &urlErr) && !errors.Is(err, context.Canceled) {
		text += fmt.Sprintf("\nIs hookd serve running at %s? Set --url or %s to the server's base URL.", c.serverURL, envURL)
	}
	return errors.New(text)
}

// errorMessageText formats an ErrorMessage: the status and message on the first line,
// then one line per validation item and one with the correlation id.
func errorMessageText(em *sdk.ErrorMessage) string {
	var b strings.Builder
	b.WriteString(statusLine(em.HTTPStatus))
	if em.Message != "" {
		b.WriteString(": " + em.Message)
	}
	if em.Validation != nil {
		for _, item := range em.Validation.Errors {
			fmt.Fprintf(&b, "\n  %s: %s", item.ItemID, item.Message)
		}
	}
	if em.CorrelationID != "" {
		fmt.Fprintf(&b, "\ncorrelation id: %s", em.CorrelationID)
	}
	return b.String()
}

// statusLine returns a status such as "404 Not Found".
func statusLine(status int) string {
	if text := http.StatusText(status); text != "" {
		return fmt.Sprintf("%d %s", status, text)
	}
	return fmt.Sprintf("status %d", status)
}

// rejectMissingSubcommand is the RunE of the command groups. Without it, cobra prints
// the help of a group called without a known subcommand and exits with 0.
func rejectMissingSubcommand(cmd *cobra.Command, args []string) error {
	if len(args) == 0 {
		return fmt.Errorf("missing command: %s --help lists the commands", cmd.CommandPath())
	}
	msg := fmt.Sprintf("unknown command %q for %s", args[0], cmd.CommandPath())
	if cmd.SuggestionsMinimumDistance <= 0 {
		cmd.SuggestionsMinimumDistance = 2 // the distance that cobra uses for the root command
	}
	if suggestions := cmd.SuggestionsFor(args[0]); len(suggestions) > 0 {
		return fmt.Errorf("%s: did you mean %s? %s --help lists the commands", msg, strings.Join(suggestions, " or "), cmd.CommandPath())
	}
	return fmt.Errorf("%s: %s --help lists the commands", msg, cmd.CommandPath())
}

// requireArgs returns a check that the command got exactly the named arguments, whose
// error names the first missing one.
func requireArgs(names ...string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		switch {
		case len(args) < len(names):
			return fmt.Errorf("missing %s: usage: %s", names[len(args)], cmd.UseLine())
		case len(args) > len(names):
			return fmt.Errorf("unexpected arguments %q: usage: %s", args[len(names):], cmd.UseLine())
		}
		return nil
	}
}

// parseTimeFlag parses the value of a time flag: an RFC 3339 time, or a positive duration
// before now such as 24h.
func parseTimeFlag(name, value string, now time.Time) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339Nano, value); err == nil {
		return t, nil
	}
	if d, err := time.ParseDuration(value); err == nil && d > 0 {
		return now.Add(-d), nil
	}
	return time.Time{}, fmt.Errorf("invalid --%s %q: use an RFC 3339 time such as 2026-01-02T15:04:05Z, or a duration before now such as 24h", name, value)
}

// formatTime formats t in RFC 3339 for a table cell.
func formatTime(t time.Time) string {
	return t.Format(time.RFC3339)
}

// formatOptionalTime formats t in RFC 3339, or returns "-" when t is nil.
func formatOptionalTime(t *time.Time) string {
	if t == nil {
		return "-"
	}
	return formatTime(*t)
}

// yesNo returns "yes" or "no" for a table cell.
func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

// joinOrDash joins values with commas for a table cell, or returns "-" when there are none.
func joinOrDash(values []string) string {
	if len(values) == 0 {
		return "-"
	}
	return strings.Join(values, ", ")
}

// oneLine replaces the line breaks and tabs of a server-provided text with spaces, so that
// it stays in its table cell.
func oneLine(s string) string {
	return strings.Map(func(r rune) rune {
		if r == '\n' || r == '\r' || r == '\t' {
			return ' '
		}
		return r
	}, s)
}

// plural returns "1 message" or "n messages".
func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}
