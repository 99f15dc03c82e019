package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/spf13/cobra"

	"github.com/hookd/hookd/signature"
)

// receiveMaxBody is the largest request body hookd receive accepts.
const receiveMaxBody = 1 << 20

func newReceiveCommand() *cobra.Command {
	var (
		addr    string
		secrets []string
		status  int
	)
	cmd := &cobra.Command{
		Use:   "receive --secret whsec_...",
		Short: "Run a local webhook receiver that verifies and prints every request",
		Long: `Run a webhook receiver for trying hookd out: it listens on --addr, checks each
request's Standard Webhooks signature against --secret, prints the verdict, the webhook
headers and the body on standard output, and answers --status (200 by default).
Requests whose signature does not verify get 401.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(secrets) == 0 {
				return errors.New("--secret is required: pass the consumer's secret from GET /webhooks/{webhookId}/secret")
			}
			if status < 200 || status > 599 {
				return fmt.Errorf("invalid --status %d: use an HTTP status from 200 to 599", status)
			}
			parsed := make([]signature.Secret, 0, len(secrets))
			for _, s := range secrets {
				secret, err := signature.ParseSecret(s)
				if err != nil {
					return fmt.Errorf("invalid --secret: %w; pass the whsec_... value that GET /webhooks/{webhookId}/secret returns", err)
				}
				parsed = append(parsed, secret)
			}
			verifier, err := signature.NewVerifier(parsed, signature.WithMaxBodyBytes(receiveMaxBody))
			if err != nil {
				return err
			}
			return runReceive(cmd.Context(), cmd.OutOrStdout(), addr, verifier, status)
		},
	}
	cmd.Flags().StringVar(&addr, "addr", "127.0.0.1:9000", "address to listen on, host:port")
	cmd.Flags().StringArrayVar(&secrets, "secret", nil, "the consumer's signing secret, whsec_...; repeat it to accept several")
	cmd.Flags().IntVar(&status, "status", http.StatusOK, "HTTP status to answer verified requests with, for trying out retries")
	return cmd
}

func runReceive(ctx context.Context, out io.Writer, addr string, verifier *signature.Verifier, status int) error {
	ln, err := listen(addr)
	if err != nil {
		return err
	}

	var mu sync.Mutex // keeps the lines of one request together
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(io.LimitReader(r.Body, receiveMaxBody+1))
		verdict := "verified"
		code := status
		switch {
		case err != nil:
			verdict, code = "unreadable body: "+err.Error(), http.StatusBadRequest
		case len(body) > receiveMaxBody:
			verdict, code = "body over 1 MiB", http.StatusRequestEntityTooLarge
		default:
			if err := verifier.Verify(r.Header, body); err != nil {
				verdict, code = "NOT VERIFIED: "+err.Error(), http.StatusUnauthorized
			}
		}

		mu.Lock()
		fmt.Fprintf(out, "%s %s %s -> %d (%s)\n", time.Now().Format(time.TimeOnly), r.Method, r.URL.Path, code, verdict)
		for _, h := range []string{"webhook-id", "webhook-timestamp", "webhook-signature", "user-agent"} {
			fmt.Fprintf(out, "  %s: %s\n", h, r.Header.Get(h))
		}
		fmt.Fprintf(out, "  body: %s\n\n", strings.TrimSpace(string(body)))
		mu.Unlock()
		w.WriteHeader(code)
	})

	srv := &http.Server{Handler: handler, ReadHeaderTimeout: 10 * time.Second}
	fmt.Fprintf(out, "Receiving webhooks on http://%s/ (Ctrl-C stops).\n\n", ln.Addr())
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()

	select {
	case err := <-served:
		return err
	case <-ctx.Done():
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return srv.Shutdown(shutdownCtx)
}
