package main

import (
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"

	"github.com/hookd/hookd/sdk"
)

func newConsumersCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "consumers",
		Short: "Manage the webhook consumers of a running server",
		Long: `Manage webhook consumers through the API of a running hookd server.

The commands call the server at --url (env HOOKD_URL) with the API key from --api-key
(env HOOKD_API_KEY), and act on the consumers of that key's client.`,
		RunE: rejectMissingSubcommand,
	}
	f := addAPIFlags(cmd)
	cmd.AddCommand(
		newConsumersListCommand(f),
		newConsumersCreateCommand(f),
		newConsumersGetCommand(f),
		newConsumersUpdateCommand(f),
		newConsumersDeleteCommand(f),
		newConsumersRecoverCommand(f),
		newConsumersSecretCommand(f),
		newConsumersRotateSecretCommand(f),
	)
	return cmd
}

func newConsumersListCommand(f *apiFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "list",
		Short: "List the consumers, oldest first",
		Args:  requireArgs(),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := f.newClient(cmd)
			if err != nil {
				return err
			}
			res, err := c.Webhooks.ListConsumers(cmd.Context())
			if err != nil {
				return c.fail(err)
			}
			return c.print(res, func(w io.Writer) { printConsumerTable(w, res.Results) })
		},
	}
}

// consumerFlags are the flags that set a consumer's fields in create and update.
type consumerFlags struct {
	endpoint    string
	eventTypes  []string
	companyTags []string
}

func (cf *consumerFlags) add(cmd *cobra.Command) {
	cmd.Flags().StringVar(&cf.endpoint, "endpoint", "", "URL that receives the events, such as https://example.com/webhooks")
	cmd.Flags().StringArrayVar(&cf.eventTypes, "event-type", nil, "event type to receive, such as company.created; repeat it for several")
	cmd.Flags().StringArrayVar(&cf.companyTags, "company-tag", nil, "key:value tag of the companies whose events to receive; repeat it for several")
}

func newConsumersCreateCommand(f *apiFlags) *cobra.Command {
	var (
		cf       consumerFlags
		disabled bool
	)
	cmd := &cobra.Command{
		Use:   "create --endpoint URL --event-type TYPE...",
		Short: "Create a consumer",
		Args:  requireArgs(),
		RunE: func(cmd *cobra.Command, args []string) error {
			switch {
			case cf.endpoint == "":
				return fmt.Errorf("--endpoint is required: set the URL that receives the events, such as https://example.com/webhooks")
			case len(cf.eventTypes) == 0:
				return fmt.Errorf("--event-type is required: repeat it for each event type to receive, such as --event-type company.created")
			}
			prototype := sdk.WebhookConsumerPrototype{URL: cf.endpoint, EventTypes: cf.eventTypes, CompanyTags: cf.companyTags}
			if disabled {
				prototype.Disabled = sdk.Bool(true)
			}

			c, err := f.newClient(cmd)
			if err != nil {
				return err
			}
			created, err := c.Webhooks.CreateConsumer(cmd.Context(), prototype)
			if err != nil {
				return c.fail(err)
			}
			return c.print(created, func(w io.Writer) { printConsumer(w, created) })
		},
	}
	cf.add(cmd)
	cmd.Flags().BoolVar(&disabled, "disabled", false, "create the consumer disabled, so that it receives nothing until it is enabled")
	return cmd
}

func newConsumersGetCommand(f *apiFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "get CONSUMER_ID",
		Short: "Show a consumer",
		Args:  requireArgs("CONSUMER_ID"),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := f.newClient(cmd)
			if err != nil {
				return err
			}
			consumer, err := c.Webhooks.GetConsumer(cmd.Context(), args[0])
			if err != nil {
				return c.fail(err)
			}
			return c.print(consumer, func(w io.Writer) { printConsumer(w, consumer) })
		},
	}
}

func newConsumersUpdateCommand(f *apiFlags) *cobra.Command {
	var (
		cf                         consumerFlags
		clearTags, enable, disable bool
	)
	cmd := &cobra.Command{
		Use:   "update CONSUMER_ID [flags]",
		Short: "Change a consumer's URL, event types, company tags or state",
		Long: `Change the fields of a consumer that the flags set, and keep the others.

--event-type and --company-tag replace the whole list. Enabling a consumer resumes the
deliveries that were pending while it was disabled.`,
		Args: requireArgs("CONSUMER_ID"),
		RunE: func(cmd *cobra.Command, args []string) error {
			update, err := consumerUpdate(cmd, cf, clearTags, enable, disable)
			if err != nil {
				return err
			}

			c, err := f.newClient(cmd)
			if err != nil {
				return err
			}
			updated, err := c.Webhooks.UpdateConsumer(cmd.Context(), args[0], update)
			if err != nil {
				return c.fail(err)
			}
			return c.print(updated, func(w io.Writer) { printConsumer(w, updated) })
		},
	}
	cf.add(cmd)
	cmd.Flags().BoolVar(&clearTags, "clear-company-tags", false, "remove the company tags, so that the consumer receives events of every company")
	cmd.Flags().BoolVar(&enable, "enable", false, "enable the consumer")
	cmd.Flags().BoolVar(&disable, "disable", false, "disable the consumer, so that it receives nothing until it is enabled")
	return cmd
}

// consumerUpdate builds the update that the changed flags of update describe.
func consumerUpdate(cmd *cobra.Command, cf consumerFlags, clearTags, enable, disable bool) (sdk.WebhookConsumerUpdate, error) {
	var update sdk.WebhookConsumerUpdate
	flags := cmd.Flags()
	switch {
	case enable && disable:
		return update, fmt.Errorf("--enable and --disable cannot be combined: pass one of them")
	case clearTags && flags.Changed("company-tag"):
		return update, fmt.Errorf("--company-tag and --clear-company-tags cannot be combined: pass one of them")
	}

	if flags.Changed("endpoint") {
		update.URL = sdk.String(cf.endpoint)
	}
	if flags.Changed("event-type") {
		update.EventTypes = cf.eventTypes
	}
	if flags.Changed("company-tag") {
		update.CompanyTags = cf.companyTags
	}
	update.RemoveCompanyTags = clearTags
	if enable || disable {
		update.Disabled = sdk.Bool(disable)
	}

	if update.URL == nil && update.EventTypes == nil && update.CompanyTags == nil && !clearTags && update.Disabled == nil {
		return update, fmt.Errorf("nothing to update: pass at least one of --endpoint, --event-type, --company-tag, --clear-company-tags, --enable and --disable")
	}
	return update, nil
}

func newConsumersDeleteCommand(f *apiFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "delete CONSUMER_ID",
		Short: "Delete a consumer and its pending deliveries",
		Long: `Delete a consumer and its pending deliveries.

With --output json the command prints nothing on success, as the API returns no body.`,
		Args: requireArgs("CONSUMER_ID"),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := f.newClient(cmd)
			if err != nil {
				return err
			}
			err = c.Webhooks.DeleteConsumer(cmd.Context(), sdk.DeleteWebhookConsumerRequest{WebhookID: args[0]})
			if err != nil {
				return c.fail(err)
			}
			c.printText("Deleted consumer %s.", args[0])
			return nil
		},
	}
}

func newConsumersRecoverCommand(f *apiFlags) *cobra.Command {
	var since, until string
	cmd := &cobra.Command{
		Use:   "recover CONSUMER_ID --since TIME [--until TIME]",
		Short: "Send a consumer's failed messages of a time range again",
		Long: `Queue again every message of the consumer whose status is failure and that was
created at or after --since and before --until (the time of the request by default).

TIME is an RFC 3339 time such as 2026-01-02T15:04:05Z, or a duration before now such as
24h.`,
		Args: requireArgs("CONSUMER_ID"),
		RunE: func(cmd *cobra.Command, args []string) error {
			from, to, err := recoverRange(since, until, time.Now())
			if err != nil {
				return err
			}

			c, err := f.newClient(cmd)
			if err != nil {
				return err
			}
			n, err := c.Webhooks.RecoverMessages(cmd.Context(), args[0], from, to)
			if err != nil {
				return c.fail(err)
			}
			result := struct {
				Recovered int `json:"recovered"`
			}{n}
			return c.print(result, func(w io.Writer) {
				fmt.Fprintf(w, "Queued %s of consumer %s again.\n", plural(n, "failed message"), args[0])
			})
		},
	}
	cmd.Flags().StringVar(&since, "since", "", "start of the range: an RFC 3339 time, or a duration before now such as 24h (required)")
	cmd.Flags().StringVar(&until, "until", "", "end of the range, excluded, in the same forms; the time of the request by default")
	return cmd
}

// recoverRange parses the --since and --until flags of recover.
func recoverRange(since, until string, now time.Time) (from, to time.Time, err error) {
	if since == "" {
		return from, to, fmt.Errorf("--since is required: set the start of the range of failed messages, such as --since 24h")
	}
	if from, err = parseTimeFlag("since", since, now); err != nil {
		return from, to, err
	}
	if until != "" {
		if to, err = parseTimeFlag("until", until, now); err != nil {
			return from, to, err
		}
	}
	return from, to, nil
}

func newConsumersSecretCommand(f *apiFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "secret CONSUMER_ID",
		Short: "Show the secret that signs a consumer's deliveries",
		Args:  requireArgs("CONSUMER_ID"),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := f.newClient(cmd)
			if err != nil {
				return err
			}
			secret, err := c.Webhooks.GetSecret(cmd.Context(), args[0])
			if err != nil {
				return c.fail(err)
			}
			return c.print(secret, func(w io.Writer) { printSecret(w, secret) })
		},
	}
}

func newConsumersRotateSecretCommand(f *apiFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "rotate-secret CONSUMER_ID",
		Short: "Replace a consumer's signing secret; the old one keeps signing for an overlap",
		Long: `Replace a consumer's signing secret with a new random one and show it.

The replaced secret keeps signing deliveries, beside the new one, until the time shown
(24 hours later unless the server sets another --secret-overlap). Rotating again within
that time ends the overlap of the older secret at once. The command sends its request
once, whatever --retry-for says.`,
		Args: requireArgs("CONSUMER_ID"),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := f.newClient(cmd)
			if err != nil {
				return err
			}
			secret, err := c.Webhooks.RotateSecret(cmd.Context(), args[0])
			if err != nil {
				return c.fail(err)
			}
			return c.print(secret, func(w io.Writer) { printSecret(w, secret) })
		},
	}
}

// printConsumerTable writes one row per consumer.
func printConsumerTable(w io.Writer, consumers []sdk.WebhookConsumer) {
	fmt.Fprintln(w, "ID\tENABLED\tURL\tEVENT TYPES\tCOMPANY TAGS")
	for _, c := range consumers {
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\n", c.ID, yesNo(!isDisabled(c)), c.URL, joinOrDash(c.EventTypes), joinOrDash(c.CompanyTags))
	}
}

// printConsumer writes one consumer as a list of fields.
func printConsumer(w io.Writer, c *sdk.WebhookConsumer) {
	fmt.Fprintf(w, "ID:\t%s\n", c.ID)
	fmt.Fprintf(w, "URL:\t%s\n", c.URL)
	fmt.Fprintf(w, "Enabled:\t%s\n", yesNo(!isDisabled(*c)))
	if c.DisabledReason != "" {
		fmt.Fprintf(w, "Disabled because:\t%s\n", oneLine(c.DisabledReason))
	}
	fmt.Fprintf(w, "Event types:\t%s\n", joinOrDash(c.EventTypes))
	fmt.Fprintf(w, "Company tags:\t%s\n", joinOrDash(c.CompanyTags))
}

// isDisabled reports whether a consumer is disabled. The API may send null, which means
// enabled.
func isDisabled(c sdk.WebhookConsumer) bool {
	return c.Disabled != nil && *c.Disabled
}

// printSecret writes a signing secret and, during an overlap, when the previous one stops
// signing.
func printSecret(w io.Writer, s *sdk.WebhookSecret) {
	fmt.Fprintf(w, "Key:\t%s\n", s.Key)
	if s.PreviousKeyExpiresAt != nil {
		fmt.Fprintf(w, "Previous key signs until:\t%s\n", formatTime(*s.PreviousKeyExpiresAt))
	}
}
