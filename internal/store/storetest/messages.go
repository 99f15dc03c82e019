package storetest

import (
	"bytes"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/hookd/hookd/internal/store"
	"github.com/hookd/hookd/signature"
)

// testLease is the lease of the claims in this file. Tests move ClaimRequest.Now past it
// instead of waiting for it.
const testLease = time.Minute

// Event types that test consumers subscribe to.
const (
	syncEvent  = "DataSyncCompleted"
	readsEvent = "ReadsCompleted"
)

// messageTests are the subtests of the MessageStore part of store.Store and of the consumer
// methods that the delivery engine depends on. Run runs them with the others.
var messageTests = []storeTest{
	{"ConsumerMatches", testConsumerMatches},
	{"PublishFanOut", testPublishFanOut},
	{"PublishDuplicateID", testPublishDuplicateID},
	{"PublishSameIDOtherClient", testPublishSameIDOtherClient},
	{"PublishIdempotencyKey", testPublishIdempotencyKey},
	{"PublishBatch", testPublishBatch},
	{"PublishDueAtOnce", testPublishDueAtOnce},
	{"PublishBodyExact", testPublishBodyExact},
	{"ClaimLimit", testClaimLimit},
	{"ClaimSlots", testClaimSlots},
	{"ClaimNoHeadOfLineBlocking", testClaimNoHeadOfLineBlocking},
	{"ClaimLease", testClaimLease},
	{"ClaimDisabledConsumer", testClaimDisabledConsumer},
	{"ClaimJobContents", testClaimJobContents},
	{"RecordSuccess", testRecordSuccess},
	{"RecordRetry", testRecordRetry},
	{"RecordFailure", testRecordFailure},
	{"RecordDisableConsumer", testRecordDisableConsumer},
	{"RecordDisableFailingFor", testRecordDisableFailingFor},
	{"RecordSuccessResetsFailing", testRecordSuccessResetsFailing},
	{"RecordFailingCheckOff", testRecordFailingCheckOff},
	{"RecordReleased", testRecordReleased},
	{"RecordStaleLease", testRecordStaleLease},
	{"RecordDeletedConsumer", testRecordDeletedConsumer},
	{"ListAttempts", testListAttempts},
	{"UpdateConsumerFields", testUpdateConsumerFields},
	{"UpdateConsumerReenable", testUpdateConsumerReenable},
	{"UpdateConsumerNotFound", testUpdateConsumerNotFound},
	{"RotateSecret", testRotateSecret},
	{"GetConsumerIsolation", testGetConsumerIsolation},
	{"DeleteConsumerPending", testDeleteConsumerPending},
	{"GetMessage", testGetMessage},
	{"ListConsumerMessages", testListConsumerMessages},
	{"ResendMessage", testResendMessage},
	{"RecoverMessages", testRecoverMessages},
	{"DeleteExpired", testDeleteExpired},
	{"DeleteExpiredLimit", testDeleteExpiredLimit},
	{"QueueDepth", testQueueDepth},
}

func testConsumerMatches(t *testing.T, s store.Store) {
	tests := []struct {
		name        string
		eventTypes  []string
		companyTags []string
		disabled    bool
		eventType   string
		tags        map[string]string
		want        bool
	}{
		{name: "event-type-untagged-event", eventTypes: []string{syncEvent}, eventType: syncEvent, want: true},
		{name: "second-event-type", eventTypes: []string{"ConnectionCreated", syncEvent}, eventType: syncEvent, want: true},
		{name: "other-event-type", eventTypes: []string{syncEvent}, eventType: readsEvent},
		{name: "event-type-case", eventTypes: []string{syncEvent}, eventType: "datasynccompleted"},
		{name: "event-type-prefix", eventTypes: []string{"DataSync"}, eventType: syncEvent},
		{name: "disabled", eventTypes: []string{syncEvent}, disabled: true, eventType: syncEvent},
		{
			name: "nil-tags-tagged-event", eventTypes: []string{syncEvent}, eventType: syncEvent,
			tags: map[string]string{"region": "eu"}, want: true,
		},
		{
			name: "empty-tags", eventTypes: []string{syncEvent}, companyTags: []string{}, eventType: syncEvent,
			tags: map[string]string{"region": "eu"}, want: true,
		},
		{
			name: "disabled-nil-tags", eventTypes: []string{syncEvent}, disabled: true, eventType: syncEvent,
			tags: map[string]string{"region": "eu"},
		},
		{
			name: "tag-match", eventTypes: []string{syncEvent}, companyTags: []string{"region:eu"}, eventType: syncEvent,
			tags: map[string]string{"region": "eu", "tier": "gold"}, want: true,
		},
		{
			name: "tag-any-of", eventTypes: []string{syncEvent}, companyTags: []string{"region:us", "tier:gold"},
			eventType: syncEvent, tags: map[string]string{"region": "eu", "tier": "gold"}, want: true,
		},
		{
			name: "tag-match-other-event-type", eventTypes: []string{syncEvent}, companyTags: []string{"region:eu"},
			eventType: readsEvent, tags: map[string]string{"region": "eu"},
		},
		{
			name: "tag-other-value", eventTypes: []string{syncEvent}, companyTags: []string{"region:eu"},
			eventType: syncEvent, tags: map[string]string{"region": "us"},
		},
		{
			name: "tag-value-case", eventTypes: []string{syncEvent}, companyTags: []string{"region:eu"},
			eventType: syncEvent, tags: map[string]string{"region": "EU"},
		},
		{
			name: "tag-swapped", eventTypes: []string{syncEvent}, companyTags: []string{"region:eu"},
			eventType: syncEvent, tags: map[string]string{"eu": "region"},
		},
		{name: "tag-untagged-event", eventTypes: []string{syncEvent}, companyTags: []string{"region:eu"}, eventType: syncEvent},
		{
			name: "tag-empty-event-tags", eventTypes: []string{syncEvent}, companyTags: []string{"region:eu"},
			eventType: syncEvent, tags: map[string]string{},
		},
		{
			name: "tag-colon-value", eventTypes: []string{syncEvent}, companyTags: []string{"k:a:b"},
			eventType: syncEvent, tags: map[string]string{"k": "a:b"}, want: true,
		},
		{
			name: "tag-colon-key", eventTypes: []string{syncEvent}, companyTags: []string{"k:a:b"},
			eventType: syncEvent, tags: map[string]string{"k:a": "b"},
		},
		{
			name: "tag-colon-value-prefix", eventTypes: []string{syncEvent}, companyTags: []string{"k:a:b"},
			eventType: syncEvent, tags: map[string]string{"k": "a"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := newSignedConsumer(t, "", tc.eventTypes...)
			c.CompanyTags = tc.companyTags
			c.Disabled = tc.disabled
			if got := c.Matches(tc.eventType, tc.tags); got != tc.want {
				t.Errorf("Matches(%q, %v) = %v, want %v", tc.eventType, tc.tags, got, tc.want)
			}

			// The store must queue a delivery exactly when Matches is true.
			client := mustClient(t, s, tc.name)
			c.ClientID = client.ID
			mustCreateConsumer(t, s, c)
			msg := newMessage(client.ID, tc.eventType, baseTime, tc.tags)
			res := mustPublish(t, s, msg)[0]

			want := 0
			if tc.want {
				want = 1
			}
			if res.Consumers != want {
				t.Errorf("PublishMessages: Consumers = %d, want %d", res.Consumers, want)
			}
			detail := mustGetMessage(t, s, client.ID, msg.ID)
			if len(detail.Deliveries) != want {
				t.Errorf("GetMessage: %d deliveries, want %d", len(detail.Deliveries), want)
			}
		})
	}
}

func testPublishFanOut(t *testing.T, s store.Store) {
	ctx := t.Context()
	acme := mustClient(t, s, "acme")
	globex := mustClient(t, s, "globex")

	all := mustCreateConsumer(t, s, newSignedConsumer(t, acme.ID, syncEvent))
	tagged := newSignedConsumer(t, acme.ID, readsEvent, syncEvent)
	tagged.CompanyTags = []string{"region:eu"}
	tagged = mustCreateConsumer(t, s, tagged)
	otherTag := newSignedConsumer(t, acme.ID, syncEvent)
	otherTag.CompanyTags = []string{"region:us"}
	otherTag = mustCreateConsumer(t, s, otherTag)
	otherType := mustCreateConsumer(t, s, newSignedConsumer(t, acme.ID, readsEvent))
	disabled := newSignedConsumer(t, acme.ID, syncEvent)
	disabled.Disabled = true
	disabled = mustCreateConsumer(t, s, disabled)
	foreign := mustCreateConsumer(t, s, newSignedConsumer(t, globex.ID, syncEvent))

	msg := newMessage(acme.ID, syncEvent, baseTime, map[string]string{"region": "eu"})
	res := mustPublish(t, s, msg)[0]
	if res.Duplicate {
		t.Errorf("PublishMessages: Duplicate = true, want false")
	}
	if res.Consumers != 2 {
		t.Errorf("PublishMessages: Consumers = %d, want 2", res.Consumers)
	}
	checkMessage(t, "PublishMessages result", res.Message, msg.Message)

	// A consumer created after the publish must not receive the message.
	late := mustCreateConsumer(t, s, newSignedConsumer(t, acme.ID, syncEvent))

	detail := mustGetMessage(t, s, acme.ID, msg.ID)
	checkMessage(t, "GetMessage", detail.Message, msg.Message)
	want := sortedIDs(all.ID, tagged.ID)
	if got := deliveryConsumers(detail.Deliveries); !slices.Equal(got, want) {
		t.Errorf("GetMessage: deliveries to %q, want %q", got, want)
	}

	jobs := claimAll(t, s, baseTime)
	if got := jobKeys(jobs); !slices.Equal(got, sortedIDs(jobKey(all.ID, msg.ID), jobKey(tagged.ID, msg.ID))) {
		t.Errorf("ClaimDeliveries returned jobs %q, want one for each of the consumers %q", got, want)
	}

	for _, c := range []store.Consumer{otherTag, otherType, disabled, late} {
		listed, err := s.ListConsumerMessages(ctx, acme.ID, store.MessageFilter{ConsumerID: c.ID, Limit: 10})
		if err != nil {
			t.Fatalf("ListConsumerMessages of consumer %s: %v", c.ID, err)
		}
		if len(listed) != 0 {
			t.Errorf("ListConsumerMessages of consumer %s returned %d messages, want none", c.ID, len(listed))
		}
	}
	listed, err := s.ListConsumerMessages(ctx, globex.ID, store.MessageFilter{ConsumerID: foreign.ID, Limit: 10})
	if err != nil {
		t.Fatalf("ListConsumerMessages of the other client's consumer: %v", err)
	}
	if len(listed) != 0 {
		t.Errorf("ListConsumerMessages of the other client's consumer returned %d messages, want none", len(listed))
	}
	_, err = s.GetMessage(ctx, globex.ID, msg.ID)
	checkErrorIs(t, "GetMessage by the other client", err, store.ErrNotFound)
}

func testPublishDuplicateID(t *testing.T, s store.Store) {
	client := mustClient(t, s, "acme")
	first := mustCreateConsumer(t, s, newSignedConsumer(t, client.ID, syncEvent, readsEvent))

	msg := newMessage(client.ID, syncEvent, baseTime, nil)
	mustPublish(t, s, msg)

	// The second consumer subscribes after the first publish, so the duplicate must not
	// queue anything for it either.
	second := mustCreateConsumer(t, s, newSignedConsumer(t, client.ID, syncEvent, readsEvent))
	again := newMessage(client.ID, readsEvent, baseTime.Add(time.Minute), nil)
	again.ID = msg.ID

	res := mustPublish(t, s, again)[0]
	if !res.Duplicate {
		t.Errorf("PublishMessages of a repeated ID: Duplicate = false, want true")
	}
	if res.Consumers != 0 {
		t.Errorf("PublishMessages of a repeated ID: Consumers = %d, want 0", res.Consumers)
	}
	checkMessage(t, "PublishMessages of a repeated ID", res.Message, msg.Message)

	detail := mustGetMessage(t, s, client.ID, msg.ID)
	checkMessage(t, "GetMessage", detail.Message, msg.Message)
	if got := deliveryConsumers(detail.Deliveries); !slices.Equal(got, []string{first.ID}) {
		t.Errorf("GetMessage: deliveries to %q, want only %q", got, first.ID)
	}
	jobs := claimAll(t, s, baseTime.Add(time.Hour))
	if got, want := jobKeys(jobs), []string{jobKey(first.ID, msg.ID)}; !slices.Equal(got, want) {
		t.Errorf("ClaimDeliveries returned jobs %q, want %q (nothing for consumer %s)", got, want, second.ID)
	}
}

func testPublishSameIDOtherClient(t *testing.T, s store.Store) {
	acme := mustClient(t, s, "acme")
	globex := mustClient(t, s, "globex")
	acmeConsumer := mustCreateConsumer(t, s, newSignedConsumer(t, acme.ID, syncEvent))
	globexConsumer := mustCreateConsumer(t, s, newSignedConsumer(t, globex.ID, syncEvent))

	acmeMsg := newMessage(acme.ID, syncEvent, baseTime, nil)
	globexMsg := newMessage(globex.ID, syncEvent, baseTime.Add(time.Second), nil)
	globexMsg.ID = acmeMsg.ID
	globexMsg.Body = []byte(`{"client":"globex"}`)

	mustPublish(t, s, acmeMsg)
	res := mustPublish(t, s, globexMsg)[0]
	if res.Duplicate {
		t.Errorf("PublishMessages of another client's ID: Duplicate = true, want false")
	}
	if res.Consumers != 1 {
		t.Errorf("PublishMessages of another client's ID: Consumers = %d, want 1", res.Consumers)
	}
	checkMessage(t, "PublishMessages of another client's ID", res.Message, globexMsg.Message)

	for _, tc := range []struct {
		msg      store.NewMessage
		consumer string
	}{
		{acmeMsg, acmeConsumer.ID},
		{globexMsg, globexConsumer.ID},
	} {
		detail := mustGetMessage(t, s, tc.msg.ClientID, tc.msg.ID)
		checkMessage(t, "GetMessage of client "+tc.msg.ClientID, detail.Message, tc.msg.Message)
		if got := deliveryConsumers(detail.Deliveries); !slices.Equal(got, []string{tc.consumer}) {
			t.Errorf("GetMessage of client %s: deliveries to %q, want only %q", tc.msg.ClientID, got, tc.consumer)
		}
	}
}

func testPublishIdempotencyKey(t *testing.T, s store.Store) {
	ctx := t.Context()
	acme := mustClient(t, s, "acme")
	globex := mustClient(t, s, "globex")
	consumer := mustCreateConsumer(t, s, newSignedConsumer(t, acme.ID, syncEvent))
	mustCreateConsumer(t, s, newSignedConsumer(t, globex.ID, syncEvent))

	// These times are relative to the clock, because the window may be counted from the
	// current time or from the new message's creation time. Both readings agree here.
	now := time.Now().UTC().Truncate(time.Millisecond)
	recent := newMessage(acme.ID, syncEvent, now.Add(-23*time.Hour), nil)
	recent.IdempotencyKey = "order-1"
	expired := newMessage(acme.ID, syncEvent, now.Add(-25*time.Hour), nil)
	expired.IdempotencyKey = "order-2"
	mustPublish(t, s, recent, expired)

	retry := newMessage(acme.ID, syncEvent, now, nil)
	retry.IdempotencyKey = "order-1"
	otherClient := newMessage(globex.ID, syncEvent, now, nil)
	otherClient.IdempotencyKey = "order-1"
	afterWindow := newMessage(acme.ID, syncEvent, now, nil)
	afterWindow.IdempotencyKey = "order-2"
	results := mustPublish(t, s, retry, otherClient, afterWindow)

	if !results[0].Duplicate {
		t.Errorf("publish with a key used 23 hours ago: Duplicate = false, want true")
	}
	if results[0].Consumers != 0 {
		t.Errorf("publish with a key used 23 hours ago: Consumers = %d, want 0", results[0].Consumers)
	}
	checkMessage(t, "publish with a key used 23 hours ago", results[0].Message, recent.Message)
	_, err := s.GetMessage(ctx, acme.ID, retry.ID)
	checkErrorIs(t, "GetMessage of the repeated publish's ID", err, store.ErrNotFound)

	if results[1].Duplicate {
		t.Errorf("publish with another client's key: Duplicate = true, want false")
	}
	checkMessage(t, "publish with another client's key", results[1].Message, otherClient.Message)

	if results[2].Duplicate {
		t.Errorf("publish with a key used 25 hours ago: Duplicate = true, want false")
	}
	if results[2].Consumers != 1 {
		t.Errorf("publish with a key used 25 hours ago: Consumers = %d, want 1", results[2].Consumers)
	}
	checkMessage(t, "publish with a key used 25 hours ago", results[2].Message, afterWindow.Message)

	listed, err := s.ListConsumerMessages(ctx, acme.ID, store.MessageFilter{ConsumerID: consumer.ID, Limit: 10})
	if err != nil {
		t.Fatalf("ListConsumerMessages: %v", err)
	}
	want := sortedIDs(recent.ID, expired.ID, afterWindow.ID)
	if got := listedMessageIDs(listed); !slices.Equal(sortedIDs(got...), want) {
		t.Errorf("ListConsumerMessages returned messages %q, want %q", got, want)
	}
}

func testPublishBatch(t *testing.T, s store.Store) {
	acme := mustClient(t, s, "acme")
	globex := mustClient(t, s, "globex")
	acmeConsumers := []store.Consumer{
		mustCreateConsumer(t, s, newSignedConsumer(t, acme.ID, syncEvent)),
		mustCreateConsumer(t, s, newSignedConsumer(t, acme.ID, syncEvent, readsEvent)),
	}
	globexConsumer := mustCreateConsumer(t, s, newSignedConsumer(t, globex.ID, readsEvent))

	// The messages are created now, because a backend may count the idempotency window
	// back from the current time.
	now := time.Now().UTC().Truncate(time.Millisecond)
	a1 := newMessage(acme.ID, syncEvent, now, nil)
	g1 := newMessage(globex.ID, readsEvent, now, nil)
	a1Again := newMessage(acme.ID, readsEvent, now.Add(time.Millisecond), nil)
	a1Again.ID = a1.ID
	a2 := newMessage(acme.ID, readsEvent, now.Add(time.Millisecond), nil)
	a2.IdempotencyKey = "batch-key"
	a3 := newMessage(acme.ID, syncEvent, now.Add(2*time.Millisecond), nil)
	a3.IdempotencyKey = "batch-key"
	g2 := newMessage(globex.ID, syncEvent, now.Add(2*time.Millisecond), nil)
	g1Again := newMessage(globex.ID, readsEvent, now.Add(3*time.Millisecond), nil)
	g1Again.ID = g1.ID

	results := mustPublish(t, s, a1, g1, a1Again, a2, a3, g2, g1Again)
	want := []struct {
		msg       store.Message
		duplicate bool
		consumers int
	}{
		{a1.Message, false, 2},
		{g1.Message, false, 1},
		{a1.Message, true, 0},
		{a2.Message, false, 1},
		{a2.Message, true, 0},
		{g2.Message, false, 0},
		{g1.Message, true, 0},
	}
	for i, w := range want {
		label := fmt.Sprintf("PublishMessages result %d", i)
		if results[i].Duplicate != w.duplicate {
			t.Errorf("%s: Duplicate = %v, want %v", label, results[i].Duplicate, w.duplicate)
		}
		if results[i].Consumers != w.consumers {
			t.Errorf("%s: Consumers = %d, want %d", label, results[i].Consumers, w.consumers)
		}
		checkMessage(t, label, results[i].Message, w.msg)
	}

	wantJobs := sortedIDs(
		jobKey(acmeConsumers[0].ID, a1.ID),
		jobKey(acmeConsumers[1].ID, a1.ID),
		jobKey(acmeConsumers[1].ID, a2.ID),
		jobKey(globexConsumer.ID, g1.ID),
	)
	if got := jobKeys(claimAll(t, s, now.Add(time.Hour))); !slices.Equal(got, wantJobs) {
		t.Errorf("ClaimDeliveries returned jobs %q, want %q", got, wantJobs)
	}
	if detail := mustGetMessage(t, s, globex.ID, g2.ID); len(detail.Deliveries) != 0 {
		t.Errorf("GetMessage of a message without subscribers: %d deliveries, want none", len(detail.Deliveries))
	}
}

func testPublishDueAtOnce(t *testing.T, s store.Store) {
	client := mustClient(t, s, "acme")
	consumers := []store.Consumer{
		mustCreateConsumer(t, s, newSignedConsumer(t, client.ID, syncEvent)),
		mustCreateConsumer(t, s, newSignedConsumer(t, client.ID, syncEvent)),
	}
	msg := newMessage(client.ID, syncEvent, baseTime, nil)
	mustPublish(t, s, msg)

	checkNextDue(t, s, "after publishing", &baseTime)
	for _, d := range mustGetMessage(t, s, client.ID, msg.ID).Deliveries {
		label := "delivery to consumer " + d.ConsumerID
		checkDelivery(t, label, d, store.StatusSending, 0, &baseTime, nil)
	}

	if jobs := claimAll(t, s, baseTime.Add(-time.Millisecond)); len(jobs) != 0 {
		t.Errorf("ClaimDeliveries before the creation time returned %q, want none", jobKeys(jobs))
	}
	want := sortedIDs(jobKey(consumers[0].ID, msg.ID), jobKey(consumers[1].ID, msg.ID))
	if got := jobKeys(claimAll(t, s, baseTime)); !slices.Equal(got, want) {
		t.Errorf("ClaimDeliveries at the creation time returned %q, want %q", got, want)
	}
}

func testPublishBodyExact(t *testing.T, s store.Store) {
	ctx := t.Context()
	client := mustClient(t, s, "acme")
	consumer := mustCreateConsumer(t, s, newSignedConsumer(t, client.ID, syncEvent))

	// A JSON column type would reorder the keys, drop the whitespace, merge the duplicate
	// key, decode the escape or round the number.
	body := []byte("{ \"z\": 1,\n\t\"a\" : [ ],  \"dup\": 1, \"dup\": 2, \"esc\": \"\\u00e9\\n\", \"text\": \"caf\u00e9 \u2603\"," +
		" \"big\": 12345678901234567890.000 }\r\n")
	msg := newMessage(client.ID, syncEvent, baseTime, nil)
	msg.Body = bytes.Clone(body)

	res := mustPublish(t, s, msg)[0]
	checkBody(t, "PublishMessages result", res.Message.Body, body)

	again := newMessage(client.ID, syncEvent, baseTime, nil)
	again.ID = msg.ID
	checkBody(t, "PublishMessages of the repeated ID", mustPublish(t, s, again)[0].Message.Body, body)

	checkBody(t, "GetMessage", mustGetMessage(t, s, client.ID, msg.ID).Message.Body, body)

	listed, err := s.ListConsumerMessages(ctx, client.ID, store.MessageFilter{ConsumerID: consumer.ID, Limit: 10})
	if err != nil {
		t.Fatalf("ListConsumerMessages: %v", err)
	}
	if len(listed) != 1 {
		t.Fatalf("ListConsumerMessages returned %d messages, want 1", len(listed))
	}
	checkBody(t, "ListConsumerMessages", listed[0].Message.Body, body)

	jobs := claimAll(t, s, baseTime)
	if len(jobs) != 1 {
		t.Fatalf("ClaimDeliveries returned %d jobs, want 1", len(jobs))
	}
	checkBody(t, "ClaimDeliveries job", jobs[0].Message.Body, body)
}

func testClaimLimit(t *testing.T, s store.Store) {
	client := mustClient(t, s, "acme")
	mustCreateConsumer(t, s, newSignedConsumer(t, client.ID, syncEvent))
	publishMany(t, s, client.ID, syncEvent, 5)

	first := mustClaim(t, s, store.ClaimRequest{Now: baseTime, Limit: 3, DefaultSlots: 10, Lease: testLease})
	if len(first) != 3 {
		t.Errorf("ClaimDeliveries with Limit 3 returned %d jobs, want 3", len(first))
	}
	second := mustClaim(t, s, store.ClaimRequest{Now: baseTime, Limit: 10, DefaultSlots: 10, Lease: testLease})
	if len(second) != 2 {
		t.Errorf("second ClaimDeliveries returned %d jobs, want the 2 left", len(second))
	}

	ids := map[int64]bool{}
	for _, job := range append(first, second...) {
		if ids[job.DeliveryID] {
			t.Errorf("delivery %d was claimed twice", job.DeliveryID)
		}
		ids[job.DeliveryID] = true
	}
}

func testClaimSlots(t *testing.T, s store.Store) {
	client := mustClient(t, s, "acme")
	full := mustCreateConsumer(t, s, newSignedConsumer(t, client.ID, syncEvent))
	busy := mustCreateConsumer(t, s, newSignedConsumer(t, client.ID, syncEvent))
	idle := mustCreateConsumer(t, s, newSignedConsumer(t, client.ID, syncEvent))
	publishMany(t, s, client.ID, syncEvent, 4)

	jobs := mustClaim(t, s, store.ClaimRequest{
		Now:          baseTime,
		Limit:        100,
		Slots:        map[string]int{full.ID: 0, busy.ID: 1},
		DefaultSlots: 3,
		Lease:        testLease,
	})
	got := jobsPerConsumer(jobs)
	want := map[string]int{busy.ID: 1, idle.ID: 3}
	for _, c := range []store.Consumer{full, busy, idle} {
		if got[c.ID] != want[c.ID] {
			t.Errorf("ClaimDeliveries gave consumer %s %d jobs, want %d", c.ID, got[c.ID], want[c.ID])
		}
	}

	// Without slots taken, the consumer with none free before takes up to DefaultSlots.
	jobs = mustClaim(t, s, store.ClaimRequest{Now: baseTime, Limit: 100, DefaultSlots: 3, Lease: testLease})
	got = jobsPerConsumer(jobs)
	want = map[string]int{full.ID: 3, busy.ID: 3, idle.ID: 1}
	for _, c := range []store.Consumer{full, busy, idle} {
		if got[c.ID] != want[c.ID] {
			t.Errorf("second ClaimDeliveries gave consumer %s %d jobs, want %d", c.ID, got[c.ID], want[c.ID])
		}
	}
}

func testClaimNoHeadOfLineBlocking(t *testing.T, s store.Store) {
	client := mustClient(t, s, "acme")
	backlog := mustCreateConsumer(t, s, newSignedConsumer(t, client.ID, syncEvent))
	small := mustCreateConsumer(t, s, newSignedConsumer(t, client.ID, readsEvent))
	publishMany(t, s, client.ID, syncEvent, 200)
	smallMsgs := publishMany(t, s, client.ID, readsEvent, 2)

	jobs := mustClaim(t, s, store.ClaimRequest{Now: baseTime.Add(time.Hour), Limit: 10, DefaultSlots: 5, Lease: testLease})
	got := jobsPerConsumer(jobs)
	if got[small.ID] != 2 {
		t.Errorf("ClaimDeliveries gave the consumer with 2 due deliveries %d jobs, want 2", got[small.ID])
	}
	if got[backlog.ID] != 5 {
		t.Errorf("ClaimDeliveries gave the consumer with 200 due deliveries %d jobs, want DefaultSlots (5)", got[backlog.ID])
	}
	for _, msg := range smallMsgs {
		if !slices.Contains(jobKeys(jobs), jobKey(small.ID, msg.ID)) {
			t.Errorf("ClaimDeliveries did not return message %s of the consumer with 2 due deliveries", msg.ID)
		}
	}
}

func testClaimLease(t *testing.T, s store.Store) {
	client := mustClient(t, s, "acme")
	consumer := mustCreateConsumer(t, s, newSignedConsumer(t, client.ID, syncEvent))
	msgs := publishMany(t, s, client.ID, syncEvent, 2)

	first := claimAll(t, s, baseTime)
	if len(first) != 2 {
		t.Fatalf("first ClaimDeliveries returned %d jobs, want 2", len(first))
	}
	for _, job := range first {
		if job.LeaseToken == "" {
			t.Errorf("first ClaimDeliveries: job of delivery %d has an empty LeaseToken", job.DeliveryID)
		}
	}
	expiry := baseTime.Add(testLease)
	checkNextDue(t, s, "during the lease", &expiry)

	if jobs := claimAll(t, s, baseTime); len(jobs) != 0 {
		t.Errorf("ClaimDeliveries at the same time returned %q, want none", jobKeys(jobs))
	}
	if jobs := claimAll(t, s, expiry.Add(-time.Millisecond)); len(jobs) != 0 {
		t.Errorf("ClaimDeliveries just before the lease expiry returned %q, want none", jobKeys(jobs))
	}

	second := claimAll(t, s, expiry)
	want := sortedIDs(jobKey(consumer.ID, msgs[0].ID), jobKey(consumer.ID, msgs[1].ID))
	if got := jobKeys(second); !slices.Equal(got, want) {
		t.Fatalf("ClaimDeliveries at the lease expiry returned %q, want %q", got, want)
	}
	firstByDelivery := map[int64]store.Job{}
	for _, job := range first {
		firstByDelivery[job.DeliveryID] = job
	}
	for _, job := range second {
		prev, ok := firstByDelivery[job.DeliveryID]
		if !ok {
			t.Errorf("ClaimDeliveries at the lease expiry returned delivery %d, which the first claim did not", job.DeliveryID)
			continue
		}
		if job.LeaseToken == "" || job.LeaseToken == prev.LeaseToken {
			t.Errorf("delivery %d claimed again: LeaseToken = %q, want a new token (the first was %q)",
				job.DeliveryID, job.LeaseToken, prev.LeaseToken)
		}
		if job.FailedAttempts != 0 {
			t.Errorf("delivery %d claimed again: FailedAttempts = %d, want 0", job.DeliveryID, job.FailedAttempts)
		}
	}
	secondExpiry := expiry.Add(testLease)
	checkNextDue(t, s, "during the second lease", &secondExpiry)
}

func testClaimDisabledConsumer(t *testing.T, s store.Store) {
	ctx := t.Context()
	checkNextDue(t, s, "on an empty store", nil)

	client := mustClient(t, s, "acme")
	paused := mustCreateConsumer(t, s, newSignedConsumer(t, client.ID, syncEvent))
	active := mustCreateConsumer(t, s, newSignedConsumer(t, client.ID, readsEvent))
	early := newMessage(client.ID, syncEvent, baseTime, nil)
	later := newMessage(client.ID, readsEvent, baseTime.Add(10*time.Second), nil)
	mustPublish(t, s, early, later)
	checkNextDue(t, s, "with both consumers enabled", &baseTime)

	if _, err := s.UpdateConsumer(ctx, client.ID, paused.ID, store.ConsumerUpdate{Disabled: new(true)}); err != nil {
		t.Fatalf("UpdateConsumer to disable: %v", err)
	}
	laterDue := later.CreatedAt
	checkNextDue(t, s, "with the early consumer disabled", &laterDue)
	if jobs := claimAll(t, s, baseTime.Add(5*time.Second)); len(jobs) != 0 {
		t.Errorf("ClaimDeliveries with only a disabled consumer's delivery due returned %q, want none", jobKeys(jobs))
	}
	want := []string{jobKey(active.ID, later.ID)}
	if got := jobKeys(claimAll(t, s, baseTime.Add(time.Hour))); !slices.Equal(got, want) {
		t.Errorf("ClaimDeliveries with a disabled consumer returned %q, want %q", got, want)
	}

	if _, err := s.UpdateConsumer(ctx, client.ID, paused.ID, store.ConsumerUpdate{Disabled: new(false)}); err != nil {
		t.Fatalf("UpdateConsumer to enable: %v", err)
	}
	checkNextDue(t, s, "after enabling the consumer", &baseTime)
	want = []string{jobKey(paused.ID, early.ID)}
	if got := jobKeys(claimAll(t, s, baseTime.Add(time.Hour))); !slices.Equal(got, want) {
		t.Errorf("ClaimDeliveries after enabling the consumer returned %q, want %q", got, want)
	}
}

func testClaimJobContents(t *testing.T, s store.Store) {
	client := mustClient(t, s, "acme")
	c := newSignedConsumer(t, client.ID, readsEvent, syncEvent)
	c.URL = "https://hooks.example.com/jobs?token=a%20b"
	c.CompanyTags = []string{"region:eu"}
	consumer := mustCreateConsumer(t, s, c)

	msg := newMessage(client.ID, syncEvent, baseTime, map[string]string{"region": "eu"})
	mustPublish(t, s, msg)
	delivery := mustGetMessage(t, s, client.ID, msg.ID).Deliveries[0]

	jobs := claimAll(t, s, baseTime)
	if len(jobs) != 1 {
		t.Fatalf("ClaimDeliveries returned %d jobs, want 1", len(jobs))
	}
	job := jobs[0]
	if job.DeliveryID != delivery.ID {
		t.Errorf("job: DeliveryID = %d, want %d, the ID GetMessage shows", job.DeliveryID, delivery.ID)
	}
	if job.LeaseToken == "" {
		t.Errorf("job: LeaseToken is empty")
	}
	if job.FailedAttempts != 0 {
		t.Errorf("job: FailedAttempts = %d, want 0", job.FailedAttempts)
	}
	checkMessage(t, "job message", job.Message, msg.Message)
	checkConsumerState(t, "job consumer", job.Consumer, consumer)
}

func testRecordSuccess(t *testing.T, s store.Store) {
	client := mustClient(t, s, "acme")
	consumer := mustCreateConsumer(t, s, newSignedConsumer(t, client.ID, syncEvent))
	msg := newMessage(client.ID, syncEvent, baseTime, nil)
	mustPublish(t, s, msg)
	job := claimOne(t, s, baseTime)

	attemptedAt := baseTime.Add(time.Second)
	mustRecord(t, s, success(job, attemptedAt))

	d := mustDelivery(t, s, client.ID, msg.ID, consumer.ID)
	checkDelivery(t, "delivery after a success", d, store.StatusSuccess, 0, nil, &attemptedAt)
	checkNextDue(t, s, "after a success", nil)
	if jobs := claimAll(t, s, baseTime.Add(24*time.Hour)); len(jobs) != 0 {
		t.Errorf("ClaimDeliveries after a success returned %q, want none", jobKeys(jobs))
	}
	checkFailingSince(t, s, client.ID, consumer.ID, nil)

	attempts := mustListAttempts(t, s, client.ID, msg.ID)
	if len(attempts) != 1 || !attempts[0].Success {
		t.Errorf("ListAttempts returned %+v, want one successful attempt", attempts)
	}
}

func testRecordRetry(t *testing.T, s store.Store) {
	client := mustClient(t, s, "acme")
	consumer := mustCreateConsumer(t, s, newSignedConsumer(t, client.ID, syncEvent))
	msg := newMessage(client.ID, syncEvent, baseTime, nil)
	mustPublish(t, s, msg)
	job := claimOne(t, s, baseTime)

	firstAt := baseTime.Add(time.Second)
	retryAt := baseTime.Add(time.Minute)
	mustRecord(t, s, failure(job, firstAt, &retryAt))

	d := mustDelivery(t, s, client.ID, msg.ID, consumer.ID)
	checkDelivery(t, "delivery after a failure with a retry", d, store.StatusAttempting, 1, &retryAt, &firstAt)
	checkFailingSince(t, s, client.ID, consumer.ID, &firstAt)
	checkNextDue(t, s, "after a failure with a retry", &retryAt)
	if jobs := claimAll(t, s, retryAt.Add(-time.Millisecond)); len(jobs) != 0 {
		t.Errorf("ClaimDeliveries before the retry time returned %q, want none", jobKeys(jobs))
	}

	job = claimOne(t, s, retryAt)
	if job.FailedAttempts != 1 {
		t.Errorf("job of the retry: FailedAttempts = %d, want 1", job.FailedAttempts)
	}
	secondAt := retryAt.Add(time.Second)
	secondRetry := retryAt.Add(5 * time.Minute)
	mustRecord(t, s, failure(job, secondAt, &secondRetry))

	d = mustDelivery(t, s, client.ID, msg.ID, consumer.ID)
	checkDelivery(t, "delivery after a second failure", d, store.StatusAttempting, 2, &secondRetry, &secondAt)
	checkFailingSince(t, s, client.ID, consumer.ID, &firstAt)
}

func testRecordFailure(t *testing.T, s store.Store) {
	client := mustClient(t, s, "acme")
	consumer := mustCreateConsumer(t, s, newSignedConsumer(t, client.ID, syncEvent))
	msg := newMessage(client.ID, syncEvent, baseTime, nil)
	mustPublish(t, s, msg)
	job := claimOne(t, s, baseTime)

	attemptedAt := baseTime.Add(time.Second)
	mustRecord(t, s, failure(job, attemptedAt, nil))

	d := mustDelivery(t, s, client.ID, msg.ID, consumer.ID)
	checkDelivery(t, "delivery after a final failure", d, store.StatusFailure, 1, nil, &attemptedAt)
	checkNextDue(t, s, "after a final failure", nil)
	if jobs := claimAll(t, s, baseTime.Add(24*time.Hour)); len(jobs) != 0 {
		t.Errorf("ClaimDeliveries after a final failure returned %q, want none", jobKeys(jobs))
	}
	got := mustGetConsumer(t, s, client.ID, consumer.ID)
	if got.Disabled {
		t.Errorf("consumer after a final failure: Disabled = true, want false")
	}
}

func testRecordDisableConsumer(t *testing.T, s store.Store) {
	client := mustClient(t, s, "acme")
	consumer := mustCreateConsumer(t, s, newSignedConsumer(t, client.ID, syncEvent))
	bystander := mustCreateConsumer(t, s, newSignedConsumer(t, client.ID, syncEvent))
	msgs := publishMany(t, s, client.ID, syncEvent, 2)

	jobs := claimAll(t, s, baseTime)
	job, ok := findJob(jobs, consumer.ID, msgs[0].ID)
	if !ok {
		t.Fatalf("ClaimDeliveries returned %q, want a job for message %s", jobKeys(jobs), msgs[0].ID)
	}
	const reason = "the consumer answered 410 Gone"
	attemptedAt := baseTime.Add(time.Second)
	result := failure(job, attemptedAt, nil)
	result.StatusCode = 410
	result.DisableConsumer = reason
	mustRecord(t, s, result)

	got := mustGetConsumer(t, s, client.ID, consumer.ID)
	if !got.Disabled {
		t.Errorf("consumer after DisableConsumer: Disabled = false, want true")
	}
	if got.DisabledReason != reason {
		t.Errorf("consumer after DisableConsumer: DisabledReason = %q, want %q", got.DisabledReason, reason)
	}
	d := mustDelivery(t, s, client.ID, msgs[0].ID, consumer.ID)
	checkDelivery(t, "delivery that disabled its consumer", d, store.StatusFailure, 1, nil, &attemptedAt)

	if got := mustGetConsumer(t, s, client.ID, bystander.ID); got.Disabled {
		t.Errorf("other consumer after DisableConsumer: Disabled = true, want false")
	}

	// The consumer's other delivery stays queued but is not claimed again.
	later := claimAll(t, s, baseTime.Add(time.Hour))
	for _, job := range later {
		if job.Consumer.ID == consumer.ID {
			t.Errorf("ClaimDeliveries returned a job of the disabled consumer: delivery %d", job.DeliveryID)
		}
	}
}

func testRecordDisableFailingFor(t *testing.T, s store.Store) {
	client := mustClient(t, s, "acme")
	consumer := mustCreateConsumer(t, s, newSignedConsumer(t, client.ID, syncEvent))
	publishMany(t, s, client.ID, syncEvent, 3)
	jobs := claimAll(t, s, baseTime)
	if len(jobs) != 3 {
		t.Fatalf("ClaimDeliveries returned %d jobs, want 3", len(jobs))
	}

	const window = time.Hour
	retryAt := baseTime.Add(2 * window)
	steps := []struct {
		at       time.Time
		disabled bool
	}{
		{baseTime, false},
		{baseTime.Add(window - time.Millisecond), false},
		{baseTime.Add(window), true},
	}
	for i, step := range steps {
		result := failure(jobs[i], step.at, &retryAt)
		result.DisableFailingFor = window
		mustRecord(t, s, result)

		got := mustGetConsumer(t, s, client.ID, consumer.ID)
		label := fmt.Sprintf("consumer after a failure %v after the first", step.at.Sub(baseTime))
		if got.Disabled != step.disabled {
			t.Errorf("%s: Disabled = %v, want %v", label, got.Disabled, step.disabled)
		}
		if step.disabled && got.DisabledReason == "" {
			t.Errorf("%s: DisabledReason is empty, want a reason", label)
		}
		if !step.disabled && got.DisabledReason != "" {
			t.Errorf("%s: DisabledReason = %q, want empty", label, got.DisabledReason)
		}
		checkOptionalTime(t, label+": FailingSince", got.FailingSince, &baseTime)
	}

	if jobs := claimAll(t, s, retryAt); len(jobs) != 0 {
		t.Errorf("ClaimDeliveries after the consumer was disabled returned %q, want none", jobKeys(jobs))
	}
	checkNextDue(t, s, "after the consumer was disabled", nil)
}

func testRecordSuccessResetsFailing(t *testing.T, s store.Store) {
	client := mustClient(t, s, "acme")
	consumer := mustCreateConsumer(t, s, newSignedConsumer(t, client.ID, syncEvent))
	publishMany(t, s, client.ID, syncEvent, 3)
	jobs := claimAll(t, s, baseTime)
	if len(jobs) != 3 {
		t.Fatalf("ClaimDeliveries returned %d jobs, want 3", len(jobs))
	}

	const window = time.Hour
	retryAt := baseTime.Add(2 * window)
	first := failure(jobs[0], baseTime, &retryAt)
	first.DisableFailingFor = window
	mustRecord(t, s, first)
	checkFailingSince(t, s, client.ID, consumer.ID, &baseTime)

	mustRecord(t, s, success(jobs[1], baseTime.Add(window/2)))
	checkFailingSince(t, s, client.ID, consumer.ID, nil)

	lastAt := baseTime.Add(window)
	last := failure(jobs[2], lastAt, &retryAt)
	last.DisableFailingFor = window
	mustRecord(t, s, last)

	got := mustGetConsumer(t, s, client.ID, consumer.ID)
	if got.Disabled {
		t.Errorf("consumer failing for %v after a success: Disabled = true (%q), want false", window/2, got.DisabledReason)
	}
	checkOptionalTime(t, "consumer after the last failure: FailingSince", got.FailingSince, &lastAt)
}

func testRecordFailingCheckOff(t *testing.T, s store.Store) {
	client := mustClient(t, s, "acme")
	consumer := mustCreateConsumer(t, s, newSignedConsumer(t, client.ID, syncEvent))
	publishMany(t, s, client.ID, syncEvent, 2)
	jobs := claimAll(t, s, baseTime)
	if len(jobs) != 2 {
		t.Fatalf("ClaimDeliveries returned %d jobs, want 2", len(jobs))
	}

	retryAt := baseTime.Add(30 * 24 * time.Hour)
	mustRecord(t, s, failure(jobs[0], baseTime, &retryAt))
	mustRecord(t, s, failure(jobs[1], baseTime.Add(7*24*time.Hour), &retryAt))

	got := mustGetConsumer(t, s, client.ID, consumer.ID)
	if got.Disabled {
		t.Errorf("consumer failing for a week with DisableFailingFor 0: Disabled = true (%q), want false", got.DisabledReason)
	}
	checkOptionalTime(t, "consumer failing for a week: FailingSince", got.FailingSince, &baseTime)
}

func testRecordReleased(t *testing.T, s store.Store) {
	client := mustClient(t, s, "acme")
	consumer := mustCreateConsumer(t, s, newSignedConsumer(t, client.ID, syncEvent))
	msg := newMessage(client.ID, syncEvent, baseTime, nil)
	mustPublish(t, s, msg)

	failedAt := baseTime.Add(time.Second)
	retryAt := baseTime.Add(2 * time.Minute)
	mustRecord(t, s, failure(claimOne(t, s, baseTime), failedAt, &retryAt))

	job := claimOne(t, s, retryAt)
	releasedAt := retryAt.Add(time.Second)
	end := releasedAt.Add(3 * time.Second)
	mustRecord(t, s, store.AttemptResult{
		Job:         job,
		AttemptedAt: releasedAt,
		Duration:    end.Sub(releasedAt),
		Error:       "hookd is stopping",
		Released:    true,
	})

	d := mustDelivery(t, s, client.ID, msg.ID, consumer.ID)
	if d.Status != store.StatusAttempting {
		t.Errorf("released delivery: Status = %q, want %q", d.Status, store.StatusAttempting)
	}
	if d.Attempts != 1 {
		t.Errorf("released delivery: Attempts = %d, want 1", d.Attempts)
	}
	checkOptionalTime(t, "released delivery: LastAttemptAt", d.LastAttemptAt, &failedAt)
	if d.NextAttemptAt == nil || d.NextAttemptAt.Before(releasedAt) || d.NextAttemptAt.After(end) {
		t.Errorf("released delivery: NextAttemptAt = %v, want between %v and %v", d.NextAttemptAt, releasedAt, end)
	}
	checkFailingSince(t, s, client.ID, consumer.ID, &failedAt)
	if attempts := mustListAttempts(t, s, client.ID, msg.ID); len(attempts) != 1 {
		t.Errorf("ListAttempts after a release returned %d attempts, want only the 1 failure", len(attempts))
	}

	again := claimOne(t, s, end)
	if again.DeliveryID != job.DeliveryID {
		t.Errorf("ClaimDeliveries after the release returned delivery %d, want %d", again.DeliveryID, job.DeliveryID)
	}
	if again.FailedAttempts != 1 {
		t.Errorf("job after the release: FailedAttempts = %d, want 1", again.FailedAttempts)
	}
}

func testRecordStaleLease(t *testing.T, s store.Store) {
	client := mustClient(t, s, "acme")
	consumer := mustCreateConsumer(t, s, newSignedConsumer(t, client.ID, syncEvent))
	msg := newMessage(client.ID, syncEvent, baseTime, nil)
	mustPublish(t, s, msg)

	stale := claimOne(t, s, baseTime)
	current := claimOne(t, s, baseTime.Add(testLease))
	if current.DeliveryID != stale.DeliveryID {
		t.Fatalf("ClaimDeliveries after the lease expiry returned delivery %d, want %d", current.DeliveryID, stale.DeliveryID)
	}
	currentExpiry := baseTime.Add(2 * testLease)

	// The first worker reports after its lease expired. Its attempt was made, so it is
	// logged, but the delivery and the consumer belong to the second claim now.
	staleAt := baseTime.Add(testLease + time.Second)
	retryAt := baseTime.Add(time.Hour)
	result := failure(stale, staleAt, &retryAt)
	result.StatusCode = 410
	result.DisableConsumer = "the consumer answered 410 Gone"
	result.DisableFailingFor = time.Nanosecond
	mustRecord(t, s, result)

	attempts := mustListAttempts(t, s, client.ID, msg.ID)
	if len(attempts) != 1 || attempts[0].StatusCode != 410 {
		t.Errorf("ListAttempts after the stale result returned %+v, want its attempt with status 410", attempts)
	}
	d := mustDelivery(t, s, client.ID, msg.ID, consumer.ID)
	checkDelivery(t, "delivery after the stale result", d, store.StatusSending, 0, &currentExpiry, nil)
	got := mustGetConsumer(t, s, client.ID, consumer.ID)
	if got.Disabled {
		t.Errorf("consumer after the stale result: Disabled = true (%q), want false", got.DisabledReason)
	}
	checkOptionalTime(t, "consumer after the stale result: FailingSince", got.FailingSince, nil)

	currentAt := staleAt.Add(time.Second)
	mustRecord(t, s, success(current, currentAt))
	d = mustDelivery(t, s, client.ID, msg.ID, consumer.ID)
	checkDelivery(t, "delivery after the current result", d, store.StatusSuccess, 0, nil, &currentAt)

	// A stale result that arrives after the current one changes nothing either.
	mustRecord(t, s, failure(stale, currentAt.Add(time.Second), &retryAt))
	d = mustDelivery(t, s, client.ID, msg.ID, consumer.ID)
	checkDelivery(t, "delivery after a late stale result", d, store.StatusSuccess, 0, nil, &currentAt)
	if attempts := mustListAttempts(t, s, client.ID, msg.ID); len(attempts) != 3 {
		t.Errorf("ListAttempts returned %d attempts, want 3", len(attempts))
	}
}

func testRecordDeletedConsumer(t *testing.T, s store.Store) {
	ctx := t.Context()
	client := mustClient(t, s, "acme")
	deleted := mustCreateConsumer(t, s, newSignedConsumer(t, client.ID, syncEvent))
	kept := mustCreateConsumer(t, s, newSignedConsumer(t, client.ID, syncEvent))
	msg := newMessage(client.ID, syncEvent, baseTime, nil)
	mustPublish(t, s, msg)

	jobs := claimAll(t, s, baseTime)
	deletedJob, ok1 := findJob(jobs, deleted.ID, msg.ID)
	keptJob, ok2 := findJob(jobs, kept.ID, msg.ID)
	if !ok1 || !ok2 {
		t.Fatalf("ClaimDeliveries returned %q, want a job for each consumer", jobKeys(jobs))
	}
	if err := s.DeleteConsumer(ctx, client.ID, deleted.ID); err != nil {
		t.Fatalf("DeleteConsumer: %v", err)
	}

	attemptedAt := baseTime.Add(time.Second)
	if err := s.RecordAttempts(ctx, []store.AttemptResult{success(deletedJob, attemptedAt), success(keptJob, attemptedAt)}); err != nil {
		t.Fatalf("RecordAttempts with a result of a deleted consumer: %v", err)
	}

	d := mustDelivery(t, s, client.ID, msg.ID, kept.ID)
	checkDelivery(t, "delivery of the kept consumer", d, store.StatusSuccess, 0, nil, &attemptedAt)
	attempts := mustListAttempts(t, s, client.ID, msg.ID)
	if len(attempts) != 1 || attempts[0].ConsumerID != kept.ID {
		t.Errorf("ListAttempts returned %+v, want only the attempt of consumer %s", attempts, kept.ID)
	}
	_, err := s.GetConsumer(ctx, client.ID, deleted.ID)
	checkErrorIs(t, "GetConsumer of the deleted consumer", err, store.ErrNotFound)
}

func testListAttempts(t *testing.T, s store.Store) {
	ctx := t.Context()
	client := mustClient(t, s, "acme")
	other := mustClient(t, s, "globex")
	consumer := mustCreateConsumer(t, s, newSignedConsumer(t, client.ID, syncEvent))
	msg := newMessage(client.ID, syncEvent, baseTime, nil)
	quiet := newMessage(client.ID, readsEvent, baseTime, nil)
	mustPublish(t, s, msg, quiet)

	want := []store.Attempt{
		{
			AttemptedAt: baseTime.Add(time.Second), Duration: 1500 * time.Millisecond, StatusCode: 503,
			Error: "the consumer answered 503 Service Unavailable", ResponseBody: "busy, try later",
		},
		{
			AttemptedAt: baseTime.Add(time.Minute), Duration: 10*time.Second + 250*time.Microsecond,
			Error: "dial tcp 127.0.0.1:9: connect: connection refused",
		},
		{
			AttemptedAt: baseTime.Add(5 * time.Minute), Duration: 42 * time.Millisecond, StatusCode: 204,
			ResponseBody: "{\"ok\":true}\n", Success: true,
		},
	}
	due := baseTime
	for i, a := range want {
		job := claimOne(t, s, due)
		result := store.AttemptResult{
			Job: job, AttemptedAt: a.AttemptedAt, Duration: a.Duration, StatusCode: a.StatusCode,
			Error: a.Error, ResponseBody: a.ResponseBody, Success: a.Success,
		}
		if i+1 < len(want) {
			due = want[i+1].AttemptedAt
			result.NextAttemptAt = &due
		}
		mustRecord(t, s, result)
	}

	got := mustListAttempts(t, s, client.ID, msg.ID)
	if len(got) != len(want) {
		t.Fatalf("ListAttempts returned %d attempts, want %d", len(got), len(want))
	}
	for i, w := range want {
		label := fmt.Sprintf("ListAttempts[%d]", i)
		g := got[i]
		if g.MessageID != msg.ID {
			t.Errorf("%s: MessageID = %q, want %q", label, g.MessageID, msg.ID)
		}
		if g.ConsumerID != consumer.ID {
			t.Errorf("%s: ConsumerID = %q, want %q", label, g.ConsumerID, consumer.ID)
		}
		if !g.AttemptedAt.Equal(w.AttemptedAt) {
			t.Errorf("%s: AttemptedAt = %v, want %v", label, g.AttemptedAt, w.AttemptedAt)
		}
		if g.Duration != w.Duration {
			t.Errorf("%s: Duration = %v, want %v", label, g.Duration, w.Duration)
		}
		if g.StatusCode != w.StatusCode {
			t.Errorf("%s: StatusCode = %d, want %d", label, g.StatusCode, w.StatusCode)
		}
		if g.Error != w.Error {
			t.Errorf("%s: Error = %q, want %q", label, g.Error, w.Error)
		}
		if g.ResponseBody != w.ResponseBody {
			t.Errorf("%s: ResponseBody = %q, want %q", label, g.ResponseBody, w.ResponseBody)
		}
		if g.Success != w.Success {
			t.Errorf("%s: Success = %v, want %v", label, g.Success, w.Success)
		}
		if i > 0 && g.ID <= got[i-1].ID {
			t.Errorf("%s: ID = %d, want more than the previous attempt's %d", label, g.ID, got[i-1].ID)
		}
	}

	if attempts := mustListAttempts(t, s, client.ID, quiet.ID); len(attempts) != 0 {
		t.Errorf("ListAttempts of a message without deliveries returned %d attempts, want none", len(attempts))
	}
	_, err := s.ListAttempts(ctx, other.ID, msg.ID)
	checkErrorIs(t, "ListAttempts by another client", err, store.ErrNotFound)
	_, err = s.ListAttempts(ctx, client.ID, uuid.NewString())
	checkErrorIs(t, "ListAttempts of an unknown message", err, store.ErrNotFound)
}

func testUpdateConsumerFields(t *testing.T, s store.Store) {
	newURL := "https://hooks.example.com/moved?x=1"
	tests := []struct {
		name   string
		update store.ConsumerUpdate
		apply  func(c *store.Consumer)

		// publish, when set, returns a message to publish after the update. queued is the
		// number of deliveries that this message must queue. It is 1 when the updated
		// consumer takes a message that the original did not, and 0 when it stops taking one.
		publish func(clientID string) store.NewMessage
		queued  int
	}{
		{
			name:   "url",
			update: store.ConsumerUpdate{URL: &newURL},
			apply:  func(c *store.Consumer) { c.URL = newURL },
		},
		{
			name:   "event-types",
			update: store.ConsumerUpdate{EventTypes: []string{readsEvent, "ConnectionCreated"}},
			apply:  func(c *store.Consumer) { c.EventTypes = []string{readsEvent, "ConnectionCreated"} },
			publish: func(clientID string) store.NewMessage {
				return newMessage(clientID, readsEvent, baseTime, map[string]string{"region": "eu"})
			},
			queued: 1,
		},
		{
			name:   "company-tags",
			update: store.ConsumerUpdate{SetCompanyTags: true, CompanyTags: []string{"tier:gold", "k:a:b"}},
			apply:  func(c *store.Consumer) { c.CompanyTags = []string{"tier:gold", "k:a:b"} },
			publish: func(clientID string) store.NewMessage {
				return newMessage(clientID, syncEvent, baseTime, map[string]string{"k": "a:b"})
			},
			queued: 1,
		},
		{
			name:   "company-tags-nil",
			update: store.ConsumerUpdate{SetCompanyTags: true},
			apply:  func(c *store.Consumer) { c.CompanyTags = nil },
			publish: func(clientID string) store.NewMessage {
				return newMessage(clientID, syncEvent, baseTime, nil)
			},
			queued: 1,
		},
		{
			name:   "company-tags-unset",
			update: store.ConsumerUpdate{CompanyTags: []string{"tier:gold"}},
			apply:  func(c *store.Consumer) {},
		},
		{
			name:   "disable",
			update: store.ConsumerUpdate{Disabled: new(true)},
			apply:  func(c *store.Consumer) { c.Disabled = true },
			publish: func(clientID string) store.NewMessage {
				return newMessage(clientID, syncEvent, baseTime, map[string]string{"region": "eu"})
			},
			queued: 0,
		},
		{
			name:   "nothing",
			update: store.ConsumerUpdate{},
			apply:  func(c *store.Consumer) {},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx := t.Context()
			client := mustClient(t, s, tc.name)
			c := newSignedConsumer(t, client.ID, syncEvent)
			c.CompanyTags = []string{"region:eu"}
			created := mustCreateConsumer(t, s, c)

			before := time.Now()
			got, err := s.UpdateConsumer(ctx, client.ID, created.ID, tc.update)
			after := time.Now()
			if err != nil {
				t.Fatalf("UpdateConsumer: %v", err)
			}
			want := created
			tc.apply(&want)
			checkConsumerState(t, "UpdateConsumer result", got, want)
			checkTimeBetween(t, "UpdateConsumer result: UpdatedAt", got.UpdatedAt, before, after)
			checkConsumerState(t, "GetConsumer after UpdateConsumer", mustGetConsumer(t, s, client.ID, created.ID), want)

			if tc.publish != nil {
				res := mustPublish(t, s, tc.publish(client.ID))[0]
				if res.Consumers != tc.queued {
					t.Errorf("PublishMessages after UpdateConsumer: Consumers = %d, want %d", res.Consumers, tc.queued)
				}
			}
		})
	}
}

func testUpdateConsumerReenable(t *testing.T, s store.Store) {
	ctx := t.Context()
	client := mustClient(t, s, "acme")
	consumer := mustCreateConsumer(t, s, newSignedConsumer(t, client.ID, syncEvent))
	msgs := publishMany(t, s, client.ID, syncEvent, 2)

	jobs := claimAll(t, s, baseTime)
	if len(jobs) != 2 {
		t.Fatalf("ClaimDeliveries returned %d jobs, want 2", len(jobs))
	}
	const reason = "the consumer answered 410 Gone"
	attemptedAt := baseTime.Add(time.Second)
	result := failure(jobs[0], attemptedAt, nil)
	result.DisableConsumer = reason
	mustRecord(t, s, result)

	disabled := mustGetConsumer(t, s, client.ID, consumer.ID)
	if !disabled.Disabled || disabled.DisabledReason != reason {
		t.Fatalf("consumer after DisableConsumer: Disabled = %v, DisabledReason = %q, want true, %q",
			disabled.Disabled, disabled.DisabledReason, reason)
	}
	checkOptionalTime(t, "consumer after DisableConsumer: FailingSince", disabled.FailingSince, &attemptedAt)

	got, err := s.UpdateConsumer(ctx, client.ID, consumer.ID, store.ConsumerUpdate{Disabled: new(false)})
	if err != nil {
		t.Fatalf("UpdateConsumer to enable: %v", err)
	}
	want := consumer
	checkConsumerState(t, "UpdateConsumer result", got, want)
	checkConsumerState(t, "GetConsumer after enabling", mustGetConsumer(t, s, client.ID, consumer.ID), want)

	// The delivery that was in flight when the consumer was disabled goes out again once
	// its lease expires.
	var pending string
	for _, msg := range msgs {
		if msg.ID != jobs[0].Message.ID {
			pending = msg.ID
		}
	}
	wantJobs := []string{jobKey(consumer.ID, pending)}
	if got := jobKeys(claimAll(t, s, baseTime.Add(testLease))); !slices.Equal(got, wantJobs) {
		t.Errorf("ClaimDeliveries after enabling returned %q, want %q", got, wantJobs)
	}
}

func testUpdateConsumerNotFound(t *testing.T, s store.Store) {
	ctx := t.Context()
	acme := mustClient(t, s, "acme")
	globex := mustClient(t, s, "globex")
	c := newSignedConsumer(t, acme.ID, syncEvent)
	c.CompanyTags = []string{"region:eu"}
	consumer := mustCreateConsumer(t, s, c)

	newURL := "https://attacker.example.com/"
	update := store.ConsumerUpdate{URL: &newURL, SetCompanyTags: true, Disabled: new(true)}
	_, err := s.UpdateConsumer(ctx, globex.ID, consumer.ID, update)
	checkErrorIs(t, "UpdateConsumer by another client", err, store.ErrNotFound)
	_, err = s.UpdateConsumer(ctx, acme.ID, uuid.NewString(), update)
	checkErrorIs(t, "UpdateConsumer of an unknown ID", err, store.ErrNotFound)

	checkConsumerState(t, "GetConsumer after the rejected updates", mustGetConsumer(t, s, acme.ID, consumer.ID), consumer)
}

func testRotateSecret(t *testing.T, s store.Store) {
	ctx := t.Context()
	acme := mustClient(t, s, "acme")
	globex := mustClient(t, s, "globex")
	consumer := mustCreateConsumer(t, s, newSignedConsumer(t, acme.ID, syncEvent))

	second := mustNewSecret(t)
	rotatedAt := baseTime.Add(time.Hour)
	got, err := s.RotateSecret(ctx, acme.ID, consumer.ID, second, rotatedAt, 24*time.Hour)
	if err != nil {
		t.Fatalf("RotateSecret: %v", err)
	}
	want := consumer
	want.Secret = second
	want.PreviousSecret = consumer.Secret
	expires := rotatedAt.Add(24 * time.Hour)
	want.PreviousSecretExpiresAt = &expires
	checkConsumerState(t, "RotateSecret result", got, want)
	checkConsumerState(t, "GetConsumer after RotateSecret", mustGetConsumer(t, s, acme.ID, consumer.ID), want)

	msg := newMessage(acme.ID, syncEvent, baseTime, nil)
	mustPublish(t, s, msg)
	checkConsumerState(t, "job consumer after RotateSecret", claimOne(t, s, rotatedAt).Consumer, want)

	_, err = s.RotateSecret(ctx, globex.ID, consumer.ID, mustNewSecret(t), rotatedAt, time.Hour)
	checkErrorIs(t, "RotateSecret by another client", err, store.ErrNotFound)
	_, err = s.RotateSecret(ctx, acme.ID, uuid.NewString(), mustNewSecret(t), rotatedAt, time.Hour)
	checkErrorIs(t, "RotateSecret of an unknown ID", err, store.ErrNotFound)
	checkConsumerState(t, "GetConsumer after the rejected rotations", mustGetConsumer(t, s, acme.ID, consumer.ID), want)

	// A second rotation replaces the previous secret and its expiry.
	third := mustNewSecret(t)
	secondRotation := rotatedAt.Add(time.Hour)
	got, err = s.RotateSecret(ctx, acme.ID, consumer.ID, third, secondRotation, 0)
	if err != nil {
		t.Fatalf("second RotateSecret: %v", err)
	}
	want.Secret = third
	want.PreviousSecret = second
	want.PreviousSecretExpiresAt = &secondRotation
	checkConsumerState(t, "second RotateSecret result", got, want)
	checkConsumerState(t, "GetConsumer after the second RotateSecret", mustGetConsumer(t, s, acme.ID, consumer.ID), want)
}

func testGetConsumerIsolation(t *testing.T, s store.Store) {
	ctx := t.Context()
	acme := mustClient(t, s, "acme")
	globex := mustClient(t, s, "globex")
	c := newSignedConsumer(t, acme.ID, syncEvent, readsEvent)
	c.CompanyTags = []string{"region:eu"}
	consumer := mustCreateConsumer(t, s, c)
	mustCreateConsumer(t, s, newSignedConsumer(t, globex.ID, syncEvent))

	checkConsumerState(t, "GetConsumer", mustGetConsumer(t, s, acme.ID, consumer.ID), consumer)
	_, err := s.GetConsumer(ctx, globex.ID, consumer.ID)
	checkErrorIs(t, "GetConsumer by another client", err, store.ErrNotFound)
	_, err = s.GetConsumer(ctx, acme.ID, uuid.NewString())
	checkErrorIs(t, "GetConsumer of an unknown ID", err, store.ErrNotFound)
}

func testDeleteConsumerPending(t *testing.T, s store.Store) {
	ctx := t.Context()
	client := mustClient(t, s, "acme")
	deleted := mustCreateConsumer(t, s, newSignedConsumer(t, client.ID, syncEvent))
	kept := mustCreateConsumer(t, s, newSignedConsumer(t, client.ID, syncEvent))
	msgs := publishMany(t, s, client.ID, syncEvent, 3)

	if err := s.DeleteConsumer(ctx, client.ID, deleted.ID); err != nil {
		t.Fatalf("DeleteConsumer: %v", err)
	}

	for _, msg := range msgs {
		detail := mustGetMessage(t, s, client.ID, msg.ID)
		if got := deliveryConsumers(detail.Deliveries); !slices.Equal(got, []string{kept.ID}) {
			t.Errorf("GetMessage %s after DeleteConsumer: deliveries to %q, want only %q", msg.ID, got, kept.ID)
		}
	}
	checkNextDue(t, s, "after DeleteConsumer", &baseTime)
	jobs := claimAll(t, s, baseTime.Add(time.Hour))
	for _, job := range jobs {
		if job.Consumer.ID != kept.ID {
			t.Errorf("ClaimDeliveries after DeleteConsumer returned a job of consumer %s", job.Consumer.ID)
		}
	}
	if len(jobs) != len(msgs) {
		t.Errorf("ClaimDeliveries after DeleteConsumer returned %d jobs, want %d", len(jobs), len(msgs))
	}

	_, err := s.ListConsumerMessages(ctx, client.ID, store.MessageFilter{ConsumerID: deleted.ID, Limit: 10})
	checkErrorIs(t, "ListConsumerMessages of the deleted consumer", err, store.ErrNotFound)
}

func testGetMessage(t *testing.T, s store.Store) {
	ctx := t.Context()
	acme := mustClient(t, s, "acme")
	globex := mustClient(t, s, "globex")
	first := mustCreateConsumer(t, s, newSignedConsumer(t, acme.ID, syncEvent))
	second := mustCreateConsumer(t, s, newSignedConsumer(t, acme.ID, syncEvent))
	msg := newMessage(acme.ID, syncEvent, baseTime, nil)
	mustPublish(t, s, msg)

	attemptedAt := baseTime.Add(time.Second)
	job, ok := findJob(claimAll(t, s, baseTime), first.ID, msg.ID)
	if !ok {
		t.Fatalf("ClaimDeliveries returned no job for consumer %s", first.ID)
	}
	mustRecord(t, s, success(job, attemptedAt))

	detail := mustGetMessage(t, s, acme.ID, msg.ID)
	checkMessage(t, "GetMessage", detail.Message, msg.Message)
	if len(detail.Deliveries) != 2 {
		t.Fatalf("GetMessage: %d deliveries, want 2", len(detail.Deliveries))
	}
	byConsumer := map[string]store.Delivery{}
	for _, d := range detail.Deliveries {
		if d.MessageID != msg.ID {
			t.Errorf("GetMessage: delivery %d has MessageID %q, want %q", d.ID, d.MessageID, msg.ID)
		}
		byConsumer[d.ConsumerID] = d
	}
	checkDelivery(t, "delivery to the first consumer", byConsumer[first.ID], store.StatusSuccess, 0, nil, &attemptedAt)
	if byConsumer[first.ID].ID != job.DeliveryID {
		t.Errorf("delivery to the first consumer: ID = %d, want the job's %d", byConsumer[first.ID].ID, job.DeliveryID)
	}
	leaseExpiry := baseTime.Add(testLease)
	checkDelivery(t, "delivery to the second consumer", byConsumer[second.ID], store.StatusSending, 0, &leaseExpiry, nil)

	_, err := s.GetMessage(ctx, globex.ID, msg.ID)
	checkErrorIs(t, "GetMessage by another client", err, store.ErrNotFound)
	_, err = s.GetMessage(ctx, acme.ID, uuid.NewString())
	checkErrorIs(t, "GetMessage of an unknown ID", err, store.ErrNotFound)
}

func testListConsumerMessages(t *testing.T, s store.Store) {
	ctx := t.Context()
	acme := mustClient(t, s, "acme")
	globex := mustClient(t, s, "globex")
	consumer := mustCreateConsumer(t, s, newSignedConsumer(t, acme.ID, syncEvent))
	neighbour := mustCreateConsumer(t, s, newSignedConsumer(t, acme.ID, syncEvent))

	// Six messages a minute apart, published oldest first. The attempts below leave the
	// consumer's deliveries in the states of statuses.
	var msgs []store.NewMessage
	ids := []string{}
	for i := range 6 {
		msgs = append(msgs, newMessage(acme.ID, syncEvent, baseTime.Add(time.Duration(i)*time.Minute), nil))
		ids = append(ids, msgs[i].ID)
	}
	mustPublish(t, s, msgs...)
	retryAt := baseTime.Add(time.Hour)
	attemptedAt := baseTime.Add(10 * time.Minute)
	jobs := claimAll(t, s, attemptedAt)
	outcomes := map[string]func(store.Job) store.AttemptResult{
		ids[0]: func(j store.Job) store.AttemptResult { return success(j, attemptedAt) },
		ids[1]: func(j store.Job) store.AttemptResult { return failure(j, attemptedAt, nil) },
		ids[2]: func(j store.Job) store.AttemptResult { return success(j, attemptedAt) },
		ids[3]: func(j store.Job) store.AttemptResult { return failure(j, attemptedAt, &retryAt) },
		ids[4]: func(j store.Job) store.AttemptResult { return success(j, attemptedAt) },
	}
	for _, job := range jobs {
		if outcome, ok := outcomes[job.Message.ID]; ok && job.Consumer.ID == consumer.ID {
			mustRecord(t, s, outcome(job))
		}
	}
	statuses := []store.DeliveryStatus{
		store.StatusSuccess, store.StatusFailure, store.StatusSuccess,
		store.StatusAttempting, store.StatusSuccess, store.StatusSending,
	}

	minute := func(n float64) time.Time { return baseTime.Add(time.Duration(n * float64(time.Minute))) }
	tests := []struct {
		name   string
		filter store.MessageFilter
		want   []int
	}{
		{"all", store.MessageFilter{}, []int{5, 4, 3, 2, 1, 0}},
		{"success", store.MessageFilter{Status: store.StatusSuccess}, []int{4, 2, 0}},
		{"failure", store.MessageFilter{Status: store.StatusFailure}, []int{1}},
		{"attempting", store.MessageFilter{Status: store.StatusAttempting}, []int{3}},
		{"sending", store.MessageFilter{Status: store.StatusSending}, []int{5}},
		{"since", store.MessageFilter{Since: minute(3.5)}, []int{5, 4}},
		{"until", store.MessageFilter{Until: minute(1.5)}, []int{1, 0}},
		{"since-until", store.MessageFilter{Since: minute(1.5), Until: minute(4.5)}, []int{4, 3, 2}},
		{"status-since", store.MessageFilter{Status: store.StatusSuccess, Since: minute(1.5)}, []int{4, 2}},
		{"empty-window", store.MessageFilter{Since: minute(2.2), Until: minute(2.8)}, nil},
		{"limit", store.MessageFilter{Limit: 2}, []int{5, 4}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := tc.filter
			f.ConsumerID = consumer.ID
			if f.Limit == 0 {
				f.Limit = 100
			}
			got, err := s.ListConsumerMessages(ctx, acme.ID, f)
			if err != nil {
				t.Fatalf("ListConsumerMessages: %v", err)
			}
			checkListed(t, "ListConsumerMessages", got, pick(ids, tc.want))
			for _, cm := range got {
				i := slices.Index(ids, cm.Message.ID)
				if i < 0 {
					continue
				}
				if cm.Delivery.ConsumerID != consumer.ID {
					t.Errorf("message %d: Delivery.ConsumerID = %q, want %q", i, cm.Delivery.ConsumerID, consumer.ID)
				}
				if cm.Delivery.MessageID != ids[i] {
					t.Errorf("message %d: Delivery.MessageID = %q, want %q", i, cm.Delivery.MessageID, ids[i])
				}
				if cm.Delivery.Status != statuses[i] {
					t.Errorf("message %d: Delivery.Status = %q, want %q", i, cm.Delivery.Status, statuses[i])
				}
				checkMessage(t, fmt.Sprintf("message %d", i), cm.Message, msgs[i].Message)
			}
		})
	}

	t.Run("pages", func(t *testing.T) {
		checkPages(t, s, acme.ID, store.MessageFilter{ConsumerID: consumer.ID, Limit: 2},
			[][]string{pick(ids, []int{5, 4}), pick(ids, []int{3, 2}), pick(ids, []int{1, 0}), nil})
	})
	t.Run("pages-by-status", func(t *testing.T) {
		checkPages(t, s, acme.ID, store.MessageFilter{ConsumerID: consumer.ID, Status: store.StatusSuccess, Limit: 2},
			[][]string{pick(ids, []int{4, 2}), pick(ids, []int{0})})
	})

	// The neighbour received the same messages, all still in flight.
	neighbourList, err := s.ListConsumerMessages(ctx, acme.ID, store.MessageFilter{ConsumerID: neighbour.ID, Status: store.StatusSuccess, Limit: 100})
	if err != nil {
		t.Fatalf("ListConsumerMessages of the neighbour: %v", err)
	}
	if len(neighbourList) != 0 {
		t.Errorf("ListConsumerMessages of the neighbour with status success returned %q, want none", listedMessageIDs(neighbourList))
	}

	_, err = s.ListConsumerMessages(ctx, globex.ID, store.MessageFilter{ConsumerID: consumer.ID, Limit: 100})
	checkErrorIs(t, "ListConsumerMessages by another client", err, store.ErrNotFound)
	_, err = s.ListConsumerMessages(ctx, acme.ID, store.MessageFilter{ConsumerID: uuid.NewString(), Limit: 100})
	checkErrorIs(t, "ListConsumerMessages of an unknown consumer", err, store.ErrNotFound)
}

func testResendMessage(t *testing.T, s store.Store) {
	ctx := t.Context()
	acme := mustClient(t, s, "acme")
	globex := mustClient(t, s, "globex")
	consumer := mustCreateConsumer(t, s, newSignedConsumer(t, acme.ID, syncEvent))
	unsubscribed := mustCreateConsumer(t, s, newSignedConsumer(t, acme.ID, readsEvent))
	msg := newMessage(acme.ID, syncEvent, baseTime, nil)
	mustPublish(t, s, msg)

	retryAt := baseTime.Add(time.Minute)
	mustRecord(t, s, failure(claimOne(t, s, baseTime), baseTime.Add(time.Second), &retryAt))
	succeededAt := retryAt.Add(time.Second)
	mustRecord(t, s, success(claimOne(t, s, retryAt), succeededAt))
	d := mustDelivery(t, s, acme.ID, msg.ID, consumer.ID)
	checkDelivery(t, "delivery before the resend", d, store.StatusSuccess, 1, nil, &succeededAt)

	resendAt := baseTime.Add(time.Hour)
	if err := s.ResendMessage(ctx, acme.ID, msg.ID, consumer.ID, resendAt); err != nil {
		t.Fatalf("ResendMessage: %v", err)
	}
	d = mustDelivery(t, s, acme.ID, msg.ID, consumer.ID)
	checkDelivery(t, "delivery after the resend", d, store.StatusSending, 0, &resendAt, &succeededAt)
	checkNextDue(t, s, "after the resend", &resendAt)
	if attempts := mustListAttempts(t, s, acme.ID, msg.ID); len(attempts) != 2 {
		t.Errorf("ListAttempts after the resend returned %d attempts, want the 2 made before", len(attempts))
	}
	if jobs := claimAll(t, s, resendAt.Add(-time.Millisecond)); len(jobs) != 0 {
		t.Errorf("ClaimDeliveries before the resend time returned %q, want none", jobKeys(jobs))
	}
	job := claimOne(t, s, resendAt)
	if job.Message.ID != msg.ID || job.Consumer.ID != consumer.ID {
		t.Errorf("ClaimDeliveries after the resend returned %s, want %s", jobKey(job.Consumer.ID, job.Message.ID), jobKey(consumer.ID, msg.ID))
	}
	if job.FailedAttempts != 0 {
		t.Errorf("job after the resend: FailedAttempts = %d, want 0", job.FailedAttempts)
	}

	err := s.ResendMessage(ctx, acme.ID, msg.ID, unsubscribed.ID, resendAt)
	checkErrorIs(t, "ResendMessage to a consumer the message was never queued for", err, store.ErrNotFound)
	if got := deliveryConsumers(mustGetMessage(t, s, acme.ID, msg.ID).Deliveries); !slices.Equal(got, []string{consumer.ID}) {
		t.Errorf("GetMessage after the rejected resend: deliveries to %q, want only %q", got, consumer.ID)
	}
	err = s.ResendMessage(ctx, globex.ID, msg.ID, consumer.ID, resendAt)
	checkErrorIs(t, "ResendMessage by another client", err, store.ErrNotFound)
	err = s.ResendMessage(ctx, acme.ID, uuid.NewString(), consumer.ID, resendAt)
	checkErrorIs(t, "ResendMessage of an unknown message", err, store.ErrNotFound)
}

func testRecoverMessages(t *testing.T, s store.Store) {
	ctx := t.Context()
	acme := mustClient(t, s, "acme")
	globex := mustClient(t, s, "globex")
	consumer := mustCreateConsumer(t, s, newSignedConsumer(t, acme.ID, syncEvent))
	neighbour := mustCreateConsumer(t, s, newSignedConsumer(t, acme.ID, syncEvent))

	offsets := []time.Duration{0, time.Minute, 2 * time.Minute, 150 * time.Second, 3 * time.Minute}
	var msgs []store.NewMessage
	for _, offset := range offsets {
		msgs = append(msgs, newMessage(acme.ID, syncEvent, baseTime.Add(offset), nil))
	}
	mustPublish(t, s, msgs...)

	// Every delivery fails except the consumer's delivery of message 2.
	attemptedAt := baseTime.Add(10 * time.Minute)
	for _, job := range claimAll(t, s, attemptedAt) {
		if job.Consumer.ID == consumer.ID && job.Message.ID == msgs[2].ID {
			mustRecord(t, s, success(job, attemptedAt))
		} else {
			mustRecord(t, s, failure(job, attemptedAt, nil))
		}
	}

	// The window [1m, 3m) contains messages 1 to 3, and message 2 succeeded.
	recoverAt := baseTime.Add(time.Hour)
	n, err := s.RecoverMessages(ctx, acme.ID, consumer.ID, baseTime.Add(time.Minute), baseTime.Add(3*time.Minute), recoverAt)
	if err != nil {
		t.Fatalf("RecoverMessages: %v", err)
	}
	if n != 2 {
		t.Errorf("RecoverMessages returned %d, want 2", n)
	}
	want := []struct {
		status   store.DeliveryStatus
		attempts int
		next     *time.Time
	}{
		{store.StatusFailure, 1, nil},
		{store.StatusSending, 0, &recoverAt},
		{store.StatusSuccess, 0, nil},
		{store.StatusSending, 0, &recoverAt},
		{store.StatusFailure, 1, nil},
	}
	for i, w := range want {
		d := mustDelivery(t, s, acme.ID, msgs[i].ID, consumer.ID)
		checkDelivery(t, fmt.Sprintf("delivery of message %d after RecoverMessages", i), d, w.status, w.attempts, w.next, &attemptedAt)
		d = mustDelivery(t, s, acme.ID, msgs[i].ID, neighbour.ID)
		checkDelivery(t, fmt.Sprintf("neighbour's delivery of message %d", i), d, store.StatusFailure, 1, nil, &attemptedAt)
	}
	wantJobs := sortedIDs(jobKey(consumer.ID, msgs[1].ID), jobKey(consumer.ID, msgs[3].ID))
	if got := jobKeys(claimAll(t, s, recoverAt)); !slices.Equal(got, wantJobs) {
		t.Errorf("ClaimDeliveries after RecoverMessages returned %q, want %q", got, wantJobs)
	}

	// A zero until means now. At 2m, the neighbour's messages 0 and 1 are in the window.
	n, err = s.RecoverMessages(ctx, acme.ID, neighbour.ID, baseTime, time.Time{}, baseTime.Add(2*time.Minute))
	if err != nil {
		t.Fatalf("RecoverMessages with a zero until: %v", err)
	}
	if n != 2 {
		t.Errorf("RecoverMessages with a zero until returned %d, want 2", n)
	}
	for i := range msgs {
		d := mustDelivery(t, s, acme.ID, msgs[i].ID, neighbour.ID)
		wantStatus := store.StatusFailure
		if i < 2 {
			wantStatus = store.StatusSending
		}
		if d.Status != wantStatus {
			t.Errorf("neighbour's delivery of message %d after RecoverMessages: Status = %q, want %q", i, d.Status, wantStatus)
		}
	}

	n, err = s.RecoverMessages(ctx, acme.ID, consumer.ID, baseTime, recoverAt, recoverAt)
	if err != nil {
		t.Fatalf("RecoverMessages of the whole range: %v", err)
	}
	if n != 2 {
		t.Errorf("RecoverMessages of the whole range returned %d, want 2 (messages 0 and 4)", n)
	}

	_, err = s.RecoverMessages(ctx, globex.ID, consumer.ID, baseTime, recoverAt, recoverAt)
	checkErrorIs(t, "RecoverMessages by another client", err, store.ErrNotFound)
	_, err = s.RecoverMessages(ctx, acme.ID, uuid.NewString(), baseTime, recoverAt, recoverAt)
	checkErrorIs(t, "RecoverMessages of an unknown consumer", err, store.ErrNotFound)
}

func testDeleteExpired(t *testing.T, s store.Store) {
	ctx := t.Context()
	client := mustClient(t, s, "acme")
	consumer := mustCreateConsumer(t, s, newSignedConsumer(t, client.ID, syncEvent))
	cutoff := baseTime.Add(time.Hour)

	succeeded := newMessage(client.ID, syncEvent, baseTime, nil)
	failed := newMessage(client.ID, syncEvent, baseTime.Add(time.Minute), nil)
	unmatched := newMessage(client.ID, readsEvent, baseTime.Add(2*time.Minute), nil)
	retrying := newMessage(client.ID, syncEvent, baseTime.Add(4*time.Minute), nil)
	mustPublish(t, s, succeeded, failed, unmatched, retrying)

	firstRetry := cutoff.Add(time.Minute)
	for _, job := range claimAll(t, s, baseTime.Add(5*time.Minute)) {
		at := job.Message.CreatedAt.Add(time.Second)
		switch job.Message.ID {
		case succeeded.ID:
			mustRecord(t, s, success(job, at))
		case failed.ID:
			mustRecord(t, s, failure(job, at, nil))
		case retrying.ID:
			mustRecord(t, s, failure(job, at, &firstRetry))
		}
	}
	secondRetry := cutoff.Add(30 * time.Minute)
	recentAttempt := firstRetry.Add(time.Second)
	mustRecord(t, s, failure(claimOne(t, s, firstRetry), recentAttempt, &secondRetry))

	recent := newMessage(client.ID, syncEvent, cutoff.Add(5*time.Minute), nil)
	mustPublish(t, s, recent)
	mustRecord(t, s, success(claimOne(t, s, recent.CreatedAt), recent.CreatedAt.Add(time.Second)))

	// Published last, created before the cutoff and never attempted.
	pending := newMessage(client.ID, syncEvent, baseTime.Add(10*time.Minute), nil)
	mustPublish(t, s, pending)

	// Three messages and the retrying message's first attempt are expired. A backend may
	// count the deliveries and attempts it deletes with the messages too.
	n, err := s.DeleteExpired(ctx, cutoff, 100)
	if err != nil {
		t.Fatalf("DeleteExpired: %v", err)
	}
	if n < 4 {
		t.Errorf("DeleteExpired returned %d, want at least 4", n)
	}
	n, err = s.DeleteExpired(ctx, cutoff, 100)
	if err != nil {
		t.Fatalf("second DeleteExpired: %v", err)
	}
	if n != 0 {
		t.Errorf("second DeleteExpired returned %d, want 0", n)
	}

	for _, msg := range []store.NewMessage{succeeded, failed, unmatched} {
		_, err := s.GetMessage(ctx, client.ID, msg.ID)
		checkErrorIs(t, "GetMessage of expired message "+msg.ID, err, store.ErrNotFound)
		_, err = s.ListAttempts(ctx, client.ID, msg.ID)
		checkErrorIs(t, "ListAttempts of expired message "+msg.ID, err, store.ErrNotFound)
	}

	d := mustDelivery(t, s, client.ID, retrying.ID, consumer.ID)
	checkDelivery(t, "delivery of the retrying message", d, store.StatusAttempting, 2, &secondRetry, &recentAttempt)
	attempts := mustListAttempts(t, s, client.ID, retrying.ID)
	if len(attempts) != 1 || !attempts[0].AttemptedAt.Equal(recentAttempt) {
		t.Errorf("ListAttempts of the retrying message returned %+v, want only the attempt at %v", attempts, recentAttempt)
	}
	d = mustDelivery(t, s, client.ID, pending.ID, consumer.ID)
	checkDelivery(t, "delivery of the pending message", d, store.StatusSending, 0, &pending.CreatedAt, nil)
	if attempts := mustListAttempts(t, s, client.ID, recent.ID); len(attempts) != 1 {
		t.Errorf("ListAttempts of the recent message returned %d attempts, want 1", len(attempts))
	}

	listed, err := s.ListConsumerMessages(ctx, client.ID, store.MessageFilter{ConsumerID: consumer.ID, Limit: 100})
	if err != nil {
		t.Fatalf("ListConsumerMessages: %v", err)
	}
	want := sortedIDs(retrying.ID, recent.ID, pending.ID)
	if got := sortedIDs(listedMessageIDs(listed)...); !slices.Equal(got, want) {
		t.Errorf("ListConsumerMessages after DeleteExpired returned %q, want %q", got, want)
	}
}

func testDeleteExpiredLimit(t *testing.T, s store.Store) {
	ctx := t.Context()
	client := mustClient(t, s, "acme")
	cutoff := baseTime.Add(time.Hour)

	// Nothing subscribes to these messages, so they have no deliveries and no attempts,
	// and every backend counts one row per message.
	var old []store.NewMessage
	for i := range 3 {
		old = append(old, newMessage(client.ID, syncEvent, baseTime.Add(time.Duration(i)*time.Minute), nil))
	}
	recent := newMessage(client.ID, syncEvent, cutoff, nil)
	mustPublish(t, s, append(old, recent)...)

	calls := []struct{ deleted, left int }{{2, 1}, {1, 0}, {0, 0}}
	for i, want := range calls {
		n, err := s.DeleteExpired(ctx, cutoff, 2)
		if err != nil {
			t.Fatalf("DeleteExpired call %d: %v", i+1, err)
		}
		if n != want.deleted {
			t.Errorf("DeleteExpired call %d with limit 2 returned %d, want %d", i+1, n, want.deleted)
		}

		left := 0
		for _, msg := range old {
			if _, err := s.GetMessage(ctx, client.ID, msg.ID); err == nil {
				left++
			}
		}
		if left != want.left {
			t.Errorf("after DeleteExpired call %d, %d expired messages are left, want %d", i+1, left, want.left)
		}
	}
	mustGetMessage(t, s, client.ID, recent.ID)
}

// testClosedMessageStoreUnavailable checks the methods of this file on a closed store, as
// testClosedStoreUnavailable does for the others.
func testClosedMessageStoreUnavailable(t *testing.T, s store.Store) {
	ctx := t.Context()
	client := mustClient(t, s, "acme")
	consumer := mustCreateConsumer(t, s, newSignedConsumer(t, client.ID, syncEvent))
	msg := newMessage(client.ID, syncEvent, baseTime, nil)
	mustPublish(t, s, msg)
	job := claimOne(t, s, baseTime)

	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}

	url := "https://hooks.example.com/closed"
	calls := []struct {
		name string
		call func() error
	}{
		{"GetConsumer", func() error { _, err := s.GetConsumer(ctx, client.ID, consumer.ID); return err }},
		{"UpdateConsumer", func() error {
			_, err := s.UpdateConsumer(ctx, client.ID, consumer.ID, store.ConsumerUpdate{URL: &url})
			return err
		}},
		{"RotateSecret", func() error {
			_, err := s.RotateSecret(ctx, client.ID, consumer.ID, mustNewSecret(t), baseTime, time.Hour)
			return err
		}},
		{"PublishMessages", func() error {
			_, err := s.PublishMessages(ctx, []store.NewMessage{newMessage(client.ID, syncEvent, baseTime, nil)})
			return err
		}},
		{"ClaimDeliveries", func() error {
			_, err := s.ClaimDeliveries(ctx, store.ClaimRequest{Now: baseTime, Limit: 10, DefaultSlots: 10, Lease: testLease})
			return err
		}},
		{"RecordAttempts", func() error {
			return s.RecordAttempts(ctx, []store.AttemptResult{success(job, baseTime.Add(time.Second))})
		}},
		{"NextDue", func() error { _, _, err := s.NextDue(ctx); return err }},
		{"ListConsumerMessages", func() error {
			_, err := s.ListConsumerMessages(ctx, client.ID, store.MessageFilter{ConsumerID: consumer.ID, Limit: 10})
			return err
		}},
		{"GetMessage", func() error { _, err := s.GetMessage(ctx, client.ID, msg.ID); return err }},
		{"ListAttempts", func() error { _, err := s.ListAttempts(ctx, client.ID, msg.ID); return err }},
		{"ResendMessage", func() error { return s.ResendMessage(ctx, client.ID, msg.ID, consumer.ID, baseTime) }},
		{"RecoverMessages", func() error {
			_, err := s.RecoverMessages(ctx, client.ID, consumer.ID, baseTime, time.Time{}, baseTime.Add(time.Hour))
			return err
		}},
		{"DeleteExpired", func() error { _, err := s.DeleteExpired(ctx, baseTime, 10); return err }},
	}
	for _, c := range calls {
		checkErrorIs(t, c.name+" after Close", c.call(), store.ErrUnavailable)
	}
}

// newSignedConsumer returns a consumer of the client with a new secret, subscribed to
// eventTypes, or to syncEvent when none are given.
func newSignedConsumer(t *testing.T, clientID string, eventTypes ...string) store.Consumer {
	t.Helper()
	c := newConsumer(clientID)
	if len(eventTypes) > 0 {
		c.EventTypes = eventTypes
	}
	c.Secret = mustNewSecret(t)
	return c
}

func mustNewSecret(t *testing.T) signature.Secret {
	t.Helper()
	secret, err := signature.NewSecret()
	if err != nil {
		t.Fatalf("NewSecret: %v", err)
	}
	return secret
}

// newMessage returns a message of the client with a new ID and a JSON body that names it.
func newMessage(clientID, eventType string, createdAt time.Time, tags map[string]string) store.NewMessage {
	id := uuid.NewString()
	generated := createdAt.Add(-time.Second)
	body := fmt.Sprintf(`{"id":%q,"eventType":%q,"generatedDate":%q,"payload":{"referenceCompany":{"tags":{}}}}`,
		id, eventType, generated.Format(time.RFC3339Nano))
	return store.NewMessage{
		Message: store.Message{
			ID:            id,
			ClientID:      clientID,
			EventType:     eventType,
			GeneratedDate: generated,
			Body:          []byte(body),
			CreatedAt:     createdAt,
		},
		Tags: tags,
	}
}

// publishMany publishes n messages of one event type, all created at baseTime, and
// returns them in publishing order.
func publishMany(t *testing.T, s store.Store, clientID, eventType string, n int) []store.NewMessage {
	t.Helper()
	msgs := make([]store.NewMessage, n)
	for i := range msgs {
		msgs[i] = newMessage(clientID, eventType, baseTime, nil)
	}
	mustPublish(t, s, msgs...)
	return msgs
}

func mustPublish(t *testing.T, s store.Store, msgs ...store.NewMessage) []store.PublishResult {
	t.Helper()
	results, err := s.PublishMessages(t.Context(), msgs)
	if err != nil {
		t.Fatalf("PublishMessages: %v", err)
	}
	if len(results) != len(msgs) {
		t.Fatalf("PublishMessages returned %d results for %d messages", len(results), len(msgs))
	}
	return results
}

func mustClaim(t *testing.T, s store.Store, req store.ClaimRequest) []store.Job {
	t.Helper()
	jobs, err := s.ClaimDeliveries(t.Context(), req)
	if err != nil {
		t.Fatalf("ClaimDeliveries: %v", err)
	}
	if len(jobs) > req.Limit {
		t.Errorf("ClaimDeliveries returned %d jobs, more than Limit %d", len(jobs), req.Limit)
	}
	return jobs
}

// claimAll claims every delivery due at now, with a lease of testLease.
func claimAll(t *testing.T, s store.Store, now time.Time) []store.Job {
	t.Helper()
	return mustClaim(t, s, store.ClaimRequest{Now: now, Limit: 1000, DefaultSlots: 1000, Lease: testLease})
}

// claimOne claims every delivery due at now and requires exactly one.
func claimOne(t *testing.T, s store.Store, now time.Time) store.Job {
	t.Helper()
	jobs := claimAll(t, s, now)
	if len(jobs) != 1 {
		t.Fatalf("ClaimDeliveries at %v returned %d jobs %q, want 1", now, len(jobs), jobKeys(jobs))
	}
	return jobs[0]
}

func mustRecord(t *testing.T, s store.Store, results ...store.AttemptResult) {
	t.Helper()
	if err := s.RecordAttempts(t.Context(), results); err != nil {
		t.Fatalf("RecordAttempts: %v", err)
	}
}

func success(job store.Job, at time.Time) store.AttemptResult {
	return store.AttemptResult{
		Job: job, AttemptedAt: at, Duration: 120 * time.Millisecond, StatusCode: 200, ResponseBody: "ok", Success: true,
	}
}

// failure returns a failed attempt that is retried at next, or is final when next is nil.
func failure(job store.Job, at time.Time, next *time.Time) store.AttemptResult {
	return store.AttemptResult{
		Job: job, AttemptedAt: at, Duration: 250 * time.Millisecond, StatusCode: 500,
		Error: "the consumer answered 500 Internal Server Error", ResponseBody: "internal error", NextAttemptAt: next,
	}
}

func mustGetMessage(t *testing.T, s store.Store, clientID, messageID string) store.MessageDetail {
	t.Helper()
	detail, err := s.GetMessage(t.Context(), clientID, messageID)
	if err != nil {
		t.Fatalf("GetMessage(%s): %v", messageID, err)
	}
	return detail
}

// mustDelivery returns the delivery of the message to the consumer, from GetMessage.
func mustDelivery(t *testing.T, s store.Store, clientID, messageID, consumerID string) store.Delivery {
	t.Helper()
	for _, d := range mustGetMessage(t, s, clientID, messageID).Deliveries {
		if d.ConsumerID == consumerID {
			return d
		}
	}
	t.Fatalf("GetMessage(%s) shows no delivery to consumer %s", messageID, consumerID)
	return store.Delivery{}
}

func mustListAttempts(t *testing.T, s store.Store, clientID, messageID string) []store.Attempt {
	t.Helper()
	attempts, err := s.ListAttempts(t.Context(), clientID, messageID)
	if err != nil {
		t.Fatalf("ListAttempts(%s): %v", messageID, err)
	}
	return attempts
}

func mustGetConsumer(t *testing.T, s store.Store, clientID, consumerID string) store.Consumer {
	t.Helper()
	c, err := s.GetConsumer(t.Context(), clientID, consumerID)
	if err != nil {
		t.Fatalf("GetConsumer(%s): %v", consumerID, err)
	}
	return c
}

func jobKey(consumerID, messageID string) string {
	return consumerID + "/" + messageID
}

// jobKeys returns the consumer/message pairs of jobs, sorted, because claims return jobs
// in no particular order.
func jobKeys(jobs []store.Job) []string {
	keys := []string{}
	for _, job := range jobs {
		keys = append(keys, jobKey(job.Consumer.ID, job.Message.ID))
	}
	slices.Sort(keys)
	return keys
}

func findJob(jobs []store.Job, consumerID, messageID string) (store.Job, bool) {
	for _, job := range jobs {
		if job.Consumer.ID == consumerID && job.Message.ID == messageID {
			return job, true
		}
	}
	return store.Job{}, false
}

func jobsPerConsumer(jobs []store.Job) map[string]int {
	counts := map[string]int{}
	for _, job := range jobs {
		counts[job.Consumer.ID]++
	}
	return counts
}

func deliveryConsumers(deliveries []store.Delivery) []string {
	ids := []string{}
	for _, d := range deliveries {
		ids = append(ids, d.ConsumerID)
	}
	slices.Sort(ids)
	return ids
}

func listedMessageIDs(listed []store.ConsumerMessage) []string {
	ids := []string{}
	for _, cm := range listed {
		ids = append(ids, cm.Message.ID)
	}
	return ids
}

func sortedIDs(ids ...string) []string {
	sorted := append([]string{}, ids...)
	slices.Sort(sorted)
	return sorted
}

// pick returns ids[i] for each index, in the order of indexes.
func pick(ids []string, indexes []int) []string {
	picked := []string{}
	for _, i := range indexes {
		picked = append(picked, ids[i])
	}
	return picked
}

// checkPages lists with filter page by page, each page starting before the last delivery
// of the one before, and compares the message IDs of each page with want.
func checkPages(t *testing.T, s store.Store, clientID string, filter store.MessageFilter, want [][]string) {
	t.Helper()
	for i, page := range want {
		got, err := s.ListConsumerMessages(t.Context(), clientID, filter)
		if err != nil {
			t.Fatalf("ListConsumerMessages page %d: %v", i+1, err)
		}
		checkListed(t, fmt.Sprintf("ListConsumerMessages page %d", i+1), got, page)
		if len(got) == 0 {
			return
		}
		filter.Before = got[len(got)-1].Delivery.ID
	}
}

func checkListed(t *testing.T, label string, got []store.ConsumerMessage, want []string) {
	t.Helper()
	if want == nil {
		want = []string{}
	}
	if ids := listedMessageIDs(got); !slices.Equal(ids, want) {
		t.Errorf("%s returned messages %q, want %q", label, ids, want)
	}
}

func checkMessage(t *testing.T, label string, got, want store.Message) {
	t.Helper()
	if got.ID != want.ID {
		t.Errorf("%s: ID = %q, want %q", label, got.ID, want.ID)
	}
	if got.ClientID != want.ClientID {
		t.Errorf("%s: ClientID = %q, want %q", label, got.ClientID, want.ClientID)
	}
	if got.EventType != want.EventType {
		t.Errorf("%s: EventType = %q, want %q", label, got.EventType, want.EventType)
	}
	if !got.GeneratedDate.Equal(want.GeneratedDate) {
		t.Errorf("%s: GeneratedDate = %v, want %v", label, got.GeneratedDate, want.GeneratedDate)
	}
	if !got.CreatedAt.Equal(want.CreatedAt) {
		t.Errorf("%s: CreatedAt = %v, want %v", label, got.CreatedAt, want.CreatedAt)
	}
	checkBody(t, label, got.Body, want.Body)
}

func checkBody(t *testing.T, label string, got, want []byte) {
	t.Helper()
	if !bytes.Equal(got, want) {
		t.Errorf("%s: Body = %q, want %q", label, got, want)
	}
}

func checkDelivery(t *testing.T, label string, got store.Delivery, status store.DeliveryStatus, attempts int, next, last *time.Time) {
	t.Helper()
	if got.Status != status {
		t.Errorf("%s: Status = %q, want %q", label, got.Status, status)
	}
	if got.Attempts != attempts {
		t.Errorf("%s: Attempts = %d, want %d", label, got.Attempts, attempts)
	}
	checkOptionalTime(t, label+": NextAttemptAt", got.NextAttemptAt, next)
	checkOptionalTime(t, label+": LastAttemptAt", got.LastAttemptAt, last)
}

// checkConsumerState compares what checkConsumer compares and the fields that the
// delivery engine maintains. It ignores UpdatedAt.
func checkConsumerState(t *testing.T, label string, got, want store.Consumer) {
	t.Helper()
	checkConsumer(t, label, got, want)
	if got.DisabledReason != want.DisabledReason {
		t.Errorf("%s: DisabledReason = %q, want %q", label, got.DisabledReason, want.DisabledReason)
	}
	// Secret's == compares identity, not keys, so compare the serialized forms.
	if got.Secret.String() != want.Secret.String() {
		t.Errorf("%s: Secret differs from the one stored", label)
	}
	if got.PreviousSecret.String() != want.PreviousSecret.String() {
		t.Errorf("%s: PreviousSecret differs (got zero: %v, want zero: %v)", label, got.PreviousSecret.IsZero(), want.PreviousSecret.IsZero())
	}
	checkOptionalTime(t, label+": PreviousSecretExpiresAt", got.PreviousSecretExpiresAt, want.PreviousSecretExpiresAt)
	checkOptionalTime(t, label+": FailingSince", got.FailingSince, want.FailingSince)
}

func checkFailingSince(t *testing.T, s store.Store, clientID, consumerID string, want *time.Time) {
	t.Helper()
	checkOptionalTime(t, "consumer FailingSince", mustGetConsumer(t, s, clientID, consumerID).FailingSince, want)
}

func checkNextDue(t *testing.T, s store.Store, label string, want *time.Time) {
	t.Helper()
	next, ok, err := s.NextDue(t.Context())
	if err != nil {
		t.Fatalf("NextDue %s: %v", label, err)
	}
	switch {
	case want == nil && ok:
		t.Errorf("NextDue %s = %v, want none", label, next)
	case want != nil && !ok:
		t.Errorf("NextDue %s: none, want %v", label, *want)
	case want != nil && !next.Equal(*want):
		t.Errorf("NextDue %s = %v, want %v", label, next, *want)
	}
}

func checkOptionalTime(t *testing.T, label string, got, want *time.Time) {
	t.Helper()
	switch {
	case got == nil && want == nil:
	case got == nil:
		t.Errorf("%s = nil, want %v", label, *want)
	case want == nil:
		t.Errorf("%s = %v, want nil", label, *got)
	case !got.Equal(*want):
		t.Errorf("%s = %v, want %v", label, *got, *want)
	}
}

func testQueueDepth(t *testing.T, s store.Store) {
	ctx := t.Context()
	check := func(when string, now time.Time, wantDue, wantScheduled int) {
		t.Helper()
		due, scheduled, err := s.QueueDepth(ctx, now)
		if err != nil {
			t.Fatalf("QueueDepth %s: %v", when, err)
		}
		if due != wantDue || scheduled != wantScheduled {
			t.Errorf("QueueDepth %s = %d due, %d scheduled; want %d, %d", when, due, scheduled, wantDue, wantScheduled)
		}
	}
	check("on an empty store", baseTime, 0, 0)

	client := mustClient(t, s, "acme")
	active := mustCreateConsumer(t, s, newSignedConsumer(t, client.ID, syncEvent))
	paused := mustCreateConsumer(t, s, newSignedConsumer(t, client.ID, readsEvent))
	publishMany(t, s, client.ID, syncEvent, 3)
	publishMany(t, s, client.ID, readsEvent, 2)
	check("after publishing", baseTime, 5, 0)

	if _, err := s.UpdateConsumer(ctx, client.ID, paused.ID, store.ConsumerUpdate{Disabled: new(true)}); err != nil {
		t.Fatalf("UpdateConsumer to disable: %v", err)
	}
	check("with one consumer disabled", baseTime, 3, 0)

	// Claimed deliveries wait for their lease to expire, so they count as scheduled.
	jobs, err := s.ClaimDeliveries(ctx, store.ClaimRequest{Now: baseTime, Limit: 1, DefaultSlots: 1, Lease: testLease})
	if err != nil || len(jobs) != 1 || jobs[0].Consumer.ID != active.ID {
		t.Fatalf("ClaimDeliveries = %d jobs, %v; want one job of the active consumer", len(jobs), err)
	}
	check("with one delivery claimed", baseTime, 2, 1)
	check("after the lease expired", baseTime.Add(testLease), 3, 0)
}
