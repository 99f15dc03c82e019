package main

import (
	"errors"
	"fmt"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/hookd/hookd/internal/apikey"
	"github.com/hookd/hookd/internal/store"
)

func newKeysCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "keys",
		Short: "Create, list and revoke API keys",
		RunE:  rejectMissingSubcommand,
	}
	cmd.AddCommand(newKeysCreateCommand(), newKeysListCommand(), newKeysRevokeCommand())
	return cmd
}

func newKeysCreateCommand() *cobra.Command {
	var (
		storeOpts storeFlags
		client    string
		readOnly  bool
	)
	cmd := &cobra.Command{
		Use:   "create --client NAME [--read-only]",
		Short: "Create an API key, and its client when the client does not exist",
		Long: `Create an API key for a client, creating the client when it does not exist.

The raw key is printed alone on the last line of standard output, and only once: hookd
stores a hash of it. A new key works at once, also while a server is running.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if client == "" {
				return errors.New("--client is required: name the client the key belongs to, for example --client default")
			}
			if len(client) > 128 {
				return fmt.Errorf("--client is %d bytes long; the maximum is 128", len(client))
			}

			st, err := openStore(cmd.Context(), &storeOpts)
			if err != nil {
				return err
			}
			defer st.Close()

			c, created, err := st.EnsureClient(cmd.Context(), client)
			if err != nil {
				return fmt.Errorf("create client %q: %w", client, err)
			}
			key, err := apikey.New()
			if err != nil {
				return err
			}
			err = st.CreateKey(cmd.Context(), store.APIKey{ID: key.ID, ClientID: c.ID, Hash: apikey.Hash(key.Raw), ReadOnly: readOnly})
			if err != nil {
				return fmt.Errorf("create key for client %q: %w", client, err)
			}

			out := cmd.OutOrStdout()
			if created {
				fmt.Fprintf(out, "Created client %q.\n", client)
			}
			fmt.Fprintf(out, "Created %s key %s for client %q in %s. It is shown only now.\n", accessName(readOnly), key.ID, client, st.location)
			fmt.Fprintf(out, "Authorization header: %s\n", apikey.Header(key.Raw))
			fmt.Fprintln(out, key.Raw)
			return nil
		},
	}
	addStoreFlags(cmd, &storeOpts)
	cmd.Flags().StringVar(&client, "client", "", "name of the client the key belongs to (required)")
	cmd.Flags().BoolVar(&readOnly, "read-only", false, "create a key that can list consumers but not create or delete them")
	return cmd
}

func newKeysListCommand() *cobra.Command {
	var storeOpts storeFlags
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List API keys with their clients",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			st, err := openExistingStore(cmd.Context(), &storeOpts)
			if err != nil {
				return err
			}
			defer st.Close()

			keys, err := st.ListKeys(cmd.Context())
			if err != nil {
				return err
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "KEY ID\tCLIENT\tACCESS\tCREATED\tREVOKED")
			for _, k := range keys {
				revoked := "-"
				if k.RevokedAt != nil {
					revoked = k.RevokedAt.Format(time.RFC3339)
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", k.ID, k.ClientName, accessName(k.ReadOnly), k.CreatedAt.Format(time.RFC3339), revoked)
			}
			return tw.Flush()
		},
	}
	addStoreFlags(cmd, &storeOpts)
	return cmd
}

func newKeysRevokeCommand() *cobra.Command {
	var storeOpts storeFlags
	cmd := &cobra.Command{
		Use:   "revoke KEY_ID",
		Short: "Revoke an API key; requests with it fail with 401 from then on",
		Args:  requireArgs("KEY_ID"),
		RunE: func(cmd *cobra.Command, args []string) error {
			st, err := openExistingStore(cmd.Context(), &storeOpts)
			if err != nil {
				return err
			}
			defer st.Close()

			keyID := args[0]
			if id, err := apikey.ParseKey(keyID); err == nil {
				// The whole raw key names its key too; its id is the part after hk_.
				keyID = id
			}
			key, err := st.RevokeKey(cmd.Context(), keyID)
			if errors.Is(err, store.ErrNotFound) {
				return fmt.Errorf("no key with id %q exists: hookd keys list shows the key ids, 16 hexadecimal digits", keyID)
			}
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "Revoked key %s at %s.\n", key.ID, key.RevokedAt.Format(time.RFC3339))
			return nil
		},
	}
	addStoreFlags(cmd, &storeOpts)
	return cmd
}

func accessName(readOnly bool) string {
	if readOnly {
		return "read-only"
	}
	return "read-write"
}
