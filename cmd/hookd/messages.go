package main

import (
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"

	"github.com/hookd/hookd/sdk"
)

func newMessagesCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "messages",
		Short: "Inspect published messages and send them again",
		Long: `Inspect the messages of a running hookd server, their delivery attempts, and send
them again.

The commands call the server at --url (env HOOKD_URL) with the API key from --api-key
(env HOOKD_API_KEY).`,
		RunE: rejectMissingSubcommand,
	}
	f := addAPIFlags(cmd)
	cmd.AddCommand(
		newMessagesListCommand(f),
		newMessagesGetCommand(f),
		newMessagesAttemptsCommand(f),
		newMessagesResendCommand(f),
	)
	return cmd
}

// messageListFlags are the flags of messages list.
type messageListFlags struct {
	status string
	since  string
	until  string
	limit  int
	cursor string
}

func newMessagesListCommand(f *apiFlags) *cobra.Command {
	var lf messageListFlags
	cmd := &cobra.Command{
		Use:   "list CONSUMER_ID [flags]",
		Short: "List the messages queued for a consumer, newest first",
		Long: `List one page of the messages queued for a consumer, newest first, with their
delivery state. When more messages follow, the table output ends with the --cursor of
the next page on standard error, and the JSON output has it in "next".

TIME is an RFC 3339 time such as 2026-01-02T15:04:05Z, or a duration before now such as
24h.`,
		Args: requireArgs("CONSUMER_ID"),
		RunE: func(cmd *cobra.Command, args []string) error {
			filter, err := lf.filter(time.Now())
			if err != nil {
				return err
			}

			c, err := f.newClient(cmd)
			if err != nil {
				return err
			}
			page, err := c.Webhooks.ListMessages(cmd.Context(), args[0], filter)
			if err != nil {
				return c.fail(err)
			}
			if err := c.print(messagePage(page), func(w io.Writer) { printConsumerMessages(w, page.Results) }); err != nil {
				return err
			}
			if page.Next != "" && !c.json {
				fmt.Fprintf(cmd.ErrOrStderr(), "More messages follow: add --cursor %s for the next page.\n", page.Next)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&lf.status, "status", "", "list only messages in this status: sending, attempting, success or failure")
	cmd.Flags().StringVar(&lf.since, "since", "", "list only messages created at or after TIME")
	cmd.Flags().StringVar(&lf.until, "until", "", "list only messages created before TIME")
	cmd.Flags().IntVar(&lf.limit, "limit", 0, "maximum number of messages, from 1 to 250; the server's default is 50")
	cmd.Flags().StringVar(&lf.cursor, "cursor", "", "cursor of the next page, from the previous page")
	return cmd
}

// filter returns the SDK filter that the flags describe.
func (lf messageListFlags) filter(now time.Time) (sdk.MessageFilter, error) {
	filter := sdk.MessageFilter{Status: sdk.MessageStatus(lf.status), Limit: lf.limit, Cursor: lf.cursor}
	var err error
	if lf.since != "" {
		if filter.Since, err = parseTimeFlag("since", lf.since, now); err != nil {
			return filter, err
		}
	}
	if lf.until != "" {
		if filter.Until, err = parseTimeFlag("until", lf.until, now); err != nil {
			return filter, err
		}
	}
	return filter, nil
}

// messagePage returns a page in the API's form, whose next field is null on the last page.
func messagePage(page *sdk.ConsumerMessages) any {
	out := struct {
		Results []sdk.ConsumerMessage `json:"results"`
		Next    *string               `json:"next"`
	}{Results: page.Results}
	if page.Next != "" {
		out.Next = &page.Next
	}
	return out
}

func newMessagesGetCommand(f *apiFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "get MESSAGE_ID",
		Short: "Show a message with its payload and its state for each consumer",
		Args:  requireArgs("MESSAGE_ID"),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := f.newClient(cmd)
			if err != nil {
				return err
			}
			detail, err := c.Messages.GetMessage(cmd.Context(), args[0])
			if err != nil {
				return c.fail(err)
			}
			return c.print(detail, func(w io.Writer) { printMessageDetail(w, detail) })
		},
	}
}

func newMessagesAttemptsCommand(f *apiFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "attempts MESSAGE_ID",
		Short: "List every delivery attempt of a message, oldest first",
		Long: `List every recorded delivery attempt of a message, to all its consumers, oldest
first. The table leaves out the response bodies, and the JSON output has them.`,
		Args: requireArgs("MESSAGE_ID"),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := f.newClient(cmd)
			if err != nil {
				return err
			}
			attempts, err := c.Messages.ListAttempts(cmd.Context(), args[0])
			if err != nil {
				return c.fail(err)
			}
			result := struct {
				Results []sdk.Attempt `json:"results"`
			}{attempts}
			return c.print(result, func(w io.Writer) { printAttempts(w, attempts) })
		},
	}
}

func newMessagesResendCommand(f *apiFlags) *cobra.Command {
	var webhookID string
	cmd := &cobra.Command{
		Use:   "resend MESSAGE_ID --webhook CONSUMER_ID",
		Short: "Send a message again to one consumer",
		Long: `Queue a message again for a consumer that it was queued for before, whatever its
status. The delivery starts again with a full retry schedule.`,
		Args: requireArgs("MESSAGE_ID"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if webhookID == "" {
				return errors.New("--webhook is required: set the id of the consumer to send the message to again")
			}

			c, err := f.newClient(cmd)
			if err != nil {
				return err
			}
			result, err := c.Messages.ResendMessage(cmd.Context(), args[0], webhookID)
			if err != nil {
				return c.fail(err)
			}
			return c.print(result, func(w io.Writer) {
				fmt.Fprintf(w, "Queued message %s again for consumer %s, status %s.\n", result.ID, result.WebhookID, result.Status)
			})
		},
	}
	cmd.Flags().StringVar(&webhookID, "webhook", "", "id of the consumer to send the message to (required)")
	return cmd
}

// printConsumerMessages writes one row per message of a consumer.
func printConsumerMessages(w io.Writer, messages []sdk.ConsumerMessage) {
	fmt.Fprintln(w, "ID\tEVENT TYPE\tSTATUS\tFAILED ATTEMPTS\tCREATED\tLAST ATTEMPT\tNEXT ATTEMPT")
	for _, m := range messages {
		fmt.Fprintf(w, "%s\t%s\t%s\t%d\t%s\t%s\t%s\n", m.ID, m.EventType, m.Status, m.FailedAttempts,
			formatTime(m.CreatedAt), formatOptionalTime(m.LastAttemptAt), formatOptionalTime(m.NextAttemptAt))
	}
}

// printMessageDetail writes a message's fields, then one row per consumer it was queued
// for.
func printMessageDetail(w io.Writer, m *sdk.MessageDetail) {
	fmt.Fprintf(w, "ID:\t%s\n", m.ID)
	fmt.Fprintf(w, "Event type:\t%s\n", m.EventType)
	fmt.Fprintf(w, "Generated:\t%s\n", formatTime(m.GeneratedDate))
	fmt.Fprintf(w, "Created:\t%s\n", formatTime(m.CreatedAt))
	fmt.Fprintf(w, "Payload:\t%s\n", m.Payload)
	fmt.Fprintln(w)

	if len(m.Deliveries) == 0 {
		fmt.Fprintln(w, "No consumer matched the event when it was published.")
		return
	}
	fmt.Fprintln(w, "CONSUMER ID\tSTATUS\tFAILED ATTEMPTS\tLAST ATTEMPT\tNEXT ATTEMPT")
	for _, d := range m.Deliveries {
		fmt.Fprintf(w, "%s\t%s\t%d\t%s\t%s\n", d.WebhookID, d.Status, d.FailedAttempts,
			formatOptionalTime(d.LastAttemptAt), formatOptionalTime(d.NextAttemptAt))
	}
}

// printAttempts writes one row per delivery attempt.
func printAttempts(w io.Writer, attempts []sdk.Attempt) {
	fmt.Fprintln(w, "ID\tCONSUMER ID\tATTEMPTED AT\tDURATION\tSTATUS CODE\tSUCCESS\tERROR")
	for _, a := range attempts {
		status, errText := "-", "-"
		if a.StatusCode != 0 {
			status = fmt.Sprint(a.StatusCode)
		}
		if a.Error != "" {
			errText = oneLine(a.Error)
		}
		fmt.Fprintf(w, "%d\t%s\t%s\t%s\t%s\t%s\t%s\n", a.ID, a.WebhookID, formatTime(a.AttemptedAt),
			roundDuration(a.Duration()), status, yesNo(a.Success), errText)
	}
}

// roundDuration rounds d to milliseconds, or to microseconds below one millisecond.
func roundDuration(d time.Duration) time.Duration {
	if d < time.Millisecond {
		return d.Round(time.Microsecond)
	}
	return d.Round(time.Millisecond)
}
