package main

import (
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/hookd/hookd/internal/store"
)

func newClientsCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "clients",
		Short: "Suspend and resume clients",
		RunE:  rejectMissingSubcommand,
	}
	cmd.AddCommand(
		newClientStateCommand("suspend", "Suspend a client: its requests fail with 402 until it is resumed", true),
		newClientStateCommand("resume", "Resume a suspended client", false),
	)
	return cmd
}

func newClientStateCommand(verb, short string, suspend bool) *cobra.Command {
	var storeOpts storeFlags
	cmd := &cobra.Command{
		Use:   verb + " NAME",
		Short: short,
		Args:  requireArgs("NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			st, err := openExistingStore(cmd.Context(), &storeOpts)
			if err != nil {
				return err
			}
			defer st.Close()

			c, err := st.SetClientSuspended(cmd.Context(), args[0], suspend)
			if errors.Is(err, store.ErrNotFound) {
				return fmt.Errorf("no client named %q exists: hookd keys list shows the clients", args[0])
			}
			if err != nil {
				return err
			}
			state := "resumed"
			if c.Suspended {
				state = "suspended"
			}
			fmt.Fprintf(cmd.OutOrStdout(), "Client %q is %s.\n", c.Name, state)
			return nil
		},
	}
	addStoreFlags(cmd, &storeOpts)
	return cmd
}
