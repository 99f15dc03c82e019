package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/hookd/hookd/sdk"
)

func newEventsCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "events",
		Short: "Publish events to a running server",
		Long: `Publish events through the API of a running hookd server, which delivers them to the
matching consumers of the key's client.

The commands call the server at --url (env HOOKD_URL) with the API key from --api-key
(env HOOKD_API_KEY).`,
		RunE: rejectMissingSubcommand,
	}
	f := addAPIFlags(cmd)
	cmd.AddCommand(newEventsPublishCommand(f))
	return cmd
}

// publishFlags are the flags of events publish.
type publishFlags struct {
	file      string
	eventType string
	payload   string
	id        string
}

func newEventsPublishCommand(f *apiFlags) *cobra.Command {
	var pf publishFlags
	cmd := &cobra.Command{
		Use:   "publish (--file FILE | --type TYPE [--payload JSON] [--id ID])",
		Short: "Publish one event or a batch of events",
		Long: `Publish one event or a batch of up to 500 events, and show the stored events.

--file reads a JSON file, or standard input when FILE is -. The file contains either one
event object:

  {"id": "...", "eventType": "company.created", "generatedDate": "2026-01-02T15:04:05Z", "payload": {...}}

where id and generatedDate are optional, or a batch: a JSON array of such objects, or
{"events": [...]}. The server stores every event of a batch or, when one is invalid,
none of them. Without --file, the flags describe one event.

Publishing an id again returns the stored event and delivers it only once.`,
		Args: requireArgs(),
		RunE: func(cmd *cobra.Command, args []string) error {
			events, batch, err := pf.events(cmd)
			if err != nil {
				return err
			}

			c, err := f.newClient(cmd)
			if err != nil {
				return err
			}
			if batch {
				return publishBatch(cmd, c, events)
			}
			envelope, err := c.Events.PublishEvent(cmd.Context(), events[0])
			if err != nil {
				return c.fail(err)
			}
			return c.print(envelope, func(w io.Writer) { printEnvelopes(w, []sdk.EventEnvelope{*envelope}) })
		},
	}
	cmd.Flags().StringVarP(&pf.file, "file", "f", "", "JSON file with one event or a batch; - reads standard input")
	cmd.Flags().StringVar(&pf.eventType, "type", "", "event type of the event, such as company.created")
	cmd.Flags().StringVar(&pf.payload, "payload", "{}", "payload of the event, a JSON object")
	cmd.Flags().StringVar(&pf.id, "id", "", "id of the event; hookd chooses a UUID when it is empty")
	return cmd
}

// publishBatch publishes events in one request and prints them as the API's batch result.
func publishBatch(cmd *cobra.Command, c *apiClient, events []sdk.Event) error {
	envelopes, err := c.Events.PublishEvents(cmd.Context(), events)
	if err != nil {
		return c.fail(err)
	}
	result := struct {
		Results []sdk.EventEnvelope `json:"results"`
	}{envelopes}
	return c.print(result, func(w io.Writer) { printEnvelopes(w, envelopes) })
}

// events returns the events that the flags describe, and whether they form a batch.
func (pf publishFlags) events(cmd *cobra.Command) ([]sdk.Event, bool, error) {
	flags := cmd.Flags()
	eventFlags := flags.Changed("type") || flags.Changed("payload") || flags.Changed("id")
	switch {
	case pf.file != "" && eventFlags:
		return nil, false, errors.New("--file cannot be combined with --type, --payload or --id: pass either the file or the event's flags")
	case pf.file != "":
		data, err := readInput(cmd, pf.file)
		if err != nil {
			return nil, false, err
		}
		return parseEventFile(pf.file, data)
	case pf.eventType == "":
		return nil, false, errors.New("nothing to publish: pass --file FILE, --file - for standard input, or --type TYPE with --payload JSON")
	}

	if !json.Valid([]byte(pf.payload)) {
		return nil, false, fmt.Errorf("invalid --payload %q: use a JSON object such as '{\"name\": \"Toft stores\"}'", pf.payload)
	}
	event := sdk.Event{ID: pf.id, EventType: pf.eventType, Payload: json.RawMessage(pf.payload)}
	return []sdk.Event{event}, false, nil
}

// readInput reads the whole file, or standard input when name is "-".
func readInput(cmd *cobra.Command, name string) ([]byte, error) {
	if name == "-" {
		data, err := io.ReadAll(cmd.InOrStdin())
		if err != nil {
			return nil, fmt.Errorf("read standard input: %w", err)
		}
		return data, nil
	}
	data, err := os.ReadFile(name)
	if err != nil {
		return nil, fmt.Errorf("read --file: %w", err)
	}
	return data, nil
}

// eventInput is an event as a --file contains it: the fields of the API's event object.
type eventInput struct {
	ID            *string         `json:"id"`
	EventType     string          `json:"eventType"`
	GeneratedDate *string         `json:"generatedDate"`
	Payload       json.RawMessage `json:"payload"`
}

// parseEventFile decodes the events of a --file, and reports whether they form a batch:
// a JSON array, or an object with an events field.
func parseEventFile(name string, data []byte) ([]sdk.Event, bool, error) {
	source := name
	if name == "-" {
		source = "standard input"
	}
	data = bytes.TrimSpace(data)
	if len(data) == 0 {
		return nil, false, fmt.Errorf("%s is empty: it must contain a JSON event object, an array of events or {\"events\": [...]}", source)
	}

	var raws []json.RawMessage
	switch {
	case data[0] == '[':
		if err := decodeStrict(data, &raws); err != nil {
			return nil, false, fmt.Errorf("%s is not a JSON array of events: %w", source, err)
		}
	case isBatchObject(data):
		var batch struct {
			Events []json.RawMessage `json:"events"`
		}
		if err := decodeStrict(data, &batch); err != nil {
			return nil, false, fmt.Errorf(`%s is not a valid {"events": [...]} batch: %w`, source, err)
		}
		raws = batch.Events
	default:
		event, err := decodeEventInput(data, "the event")
		if err != nil {
			return nil, false, fmt.Errorf("%s: %w", source, err)
		}
		return []sdk.Event{event}, false, nil
	}

	if len(raws) == 0 {
		return nil, false, fmt.Errorf("%s contains a batch without events: add at least one event", source)
	}
	events := make([]sdk.Event, len(raws))
	for i, raw := range raws {
		event, err := decodeEventInput(raw, fmt.Sprintf("events[%d]", i))
		if err != nil {
			return nil, false, fmt.Errorf("%s: %w", source, err)
		}
		events[i] = event
	}
	return events, true, nil
}

// isBatchObject reports whether data is a JSON object with an events field.
func isBatchObject(data []byte) bool {
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(data, &fields); err != nil {
		return false
	}
	_, ok := fields["events"]
	return ok
}

// decodeEventInput decodes one event object, named label in errors.
func decodeEventInput(raw []byte, label string) (sdk.Event, error) {
	var in eventInput
	if !json.Valid(raw) {
		return sdk.Event{}, fmt.Errorf("%s is not valid JSON: check its quotes, commas and brackets", label)
	}
	if err := decodeStrict(raw, &in); err != nil {
		return sdk.Event{}, fmt.Errorf("%s is not a valid event object, which has eventType and payload and may have id and generatedDate: %w", label, err)
	}

	event := sdk.Event{EventType: in.EventType, Payload: in.Payload}
	if in.ID != nil {
		if *in.ID == "" {
			return sdk.Event{}, fmt.Errorf("%s.id is empty: leave it out to let hookd choose an id, or set your own", label)
		}
		event.ID = *in.ID
	}
	if in.GeneratedDate != nil {
		t, err := time.Parse(time.RFC3339Nano, *in.GeneratedDate)
		if err != nil {
			return sdk.Event{}, fmt.Errorf("%s.generatedDate %q is not an RFC 3339 time such as 2026-01-02T15:04:05Z", label, *in.GeneratedDate)
		}
		event.GeneratedDate = t
	}
	return event, nil
}

// decodeStrict decodes one JSON value into v, rejecting unknown object fields and
// anything after the value.
func decodeStrict(data []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return errors.New("unexpected data after the JSON value")
	}
	return nil
}

// printEnvelopes writes one row per published event.
func printEnvelopes(w io.Writer, envelopes []sdk.EventEnvelope) {
	fmt.Fprintln(w, "ID\tEVENT TYPE\tGENERATED")
	for _, e := range envelopes {
		fmt.Fprintf(w, "%s\t%s\t%s\n", e.ID, e.EventType, formatTime(e.GeneratedDate))
	}
}
