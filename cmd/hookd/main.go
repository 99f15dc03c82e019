// Command hookd runs the hookd webhook service and manages its clients and API keys.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	if err := newRootCommand().ExecuteContext(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "hookd:", err)
		stop()
		os.Exit(1)
	}
}

func newRootCommand() *cobra.Command {
	root := &cobra.Command{
		Use:           "hookd",
		Short:         "A self-hosted webhook service, wire-compatible with Codat's webhook-consumer API",
		Version:       version,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.AddCommand(newServeCommand(), newKeysCommand(), newClientsCommand(), newReceiveCommand(),
		newConsumersCommand(), newEventsCommand(), newMessagesCommand(), newBenchCommand())
	return root
}

// envDefault returns the environment variable's value, or fallback when it is unset or empty.
func envDefault(name, fallback string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return fallback
}
