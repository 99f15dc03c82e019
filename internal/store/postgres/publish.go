package postgres

import (
	"context"
	"fmt"
	"hash/fnv"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/hookd/hookd/internal/store"
)

// PublishMessages implements store.Store. Once a connection has prepared the statements,
// it makes four round trips whatever the number of messages. They are BEGIN, one batch
// that takes the locks and reads the earlier messages and the consumers, one statement
// that inserts the messages with their deliveries, and COMMIT. The duplicate checks run in memory, message by message, with the outcome the
// SQLite backend has when it checks and inserts one message at a time.
func (s *Store) PublishMessages(ctx context.Context, msgs []store.NewMessage) ([]store.PublishResult, error) {
	now := time.Now()
	prepared := make([]store.NewMessage, len(msgs))
	for i, m := range msgs {
		m.GeneratedDate = ts(m.GeneratedDate)
		m.CreatedAt = ts(m.CreatedAt)
		if m.CreatedAt.IsZero() {
			m.CreatedAt = ts(now)
		}
		prepared[i] = m
	}

	var results []store.PublishResult
	err := s.write(ctx, "publish messages", func(tx pgx.Tx) error {
		p := publisher{msgs: prepared}
		if err := p.load(ctx, tx); err != nil {
			return err
		}
		p.plan()
		if err := p.insert(ctx, tx); err != nil {
			return err
		}
		results = p.results
		return nil
	})
	if err != nil {
		return nil, err
	}
	return results, nil
}

// messageKey identifies a message, or an Idempotency-Key, within its client.
type messageKey struct{ clientID, value string }

// publisher publishes the messages of one transaction.
type publisher struct {
	msgs []store.NewMessage

	// Loaded from the database.
	byID      map[messageKey]store.Message // earlier messages with an ID of the batch
	keyMatch  map[int]store.Message        // per message index: the latest earlier message with its key within the window
	consumers map[string][]store.Consumer  // enabled consumers per client, in creation order

	// Planned by plan.
	results    []store.PublishResult
	inserts    []store.Message
	insertKeys []*string
	deliveries []plannedDelivery
}

type plannedDelivery struct {
	clientID, messageID, consumerID string
	due                             time.Time
}

// lockKey returns the advisory lock key of a message ID or an Idempotency-Key of a client.
// Two values that hash alike only share a lock, which costs waiting, not correctness.
func lockKey(kind, clientID, value string) int64 {
	h := fnv.New64a()
	h.Write([]byte(kind))
	h.Write([]byte{0})
	h.Write([]byte(clientID))
	h.Write([]byte{0})
	h.Write([]byte(value))
	return int64(h.Sum64())
}

// load locks the batch's message IDs and Idempotency-Keys, then reads what the duplicate
// checks and the fan-out need, in one round trip. Every batch takes its advisory locks in
// ascending key order, so concurrent batches wait for each other instead of deadlocking.
// A concurrent publish of the same ID or key waits until this transaction ends.
func (p *publisher) load(ctx context.Context, tx pgx.Tx) error {
	var (
		lockKeys           []int64
		clientIDs, ids     []string
		keyIndexes         []int32
		keyClients, keys   []string
		keySince           []time.Time
		consumerClients    []string
		seenConsumerClient = map[string]bool{}
	)
	for i, m := range p.msgs {
		lockKeys = append(lockKeys, lockKey("id", m.ClientID, m.ID))
		clientIDs = append(clientIDs, m.ClientID)
		ids = append(ids, m.ID)
		if m.IdempotencyKey != "" {
			lockKeys = append(lockKeys, lockKey("key", m.ClientID, m.IdempotencyKey))
			keyIndexes = append(keyIndexes, int32(i))
			keyClients = append(keyClients, m.ClientID)
			keys = append(keys, m.IdempotencyKey)
			keySince = append(keySince, ts(m.CreatedAt.Add(-store.IdempotencyWindow)))
		}
		if !seenConsumerClient[m.ClientID] {
			seenConsumerClient[m.ClientID] = true
			consumerClients = append(consumerClients, m.ClientID)
		}
	}
	slices.Sort(lockKeys)
	lockKeys = slices.Compact(lockKeys)

	var batch pgx.Batch
	// unnest returns the keys in array order, and the locks are taken row by row.
	batch.Queue("SELECT pg_advisory_xact_lock(k) FROM unnest($1::bigint[]) AS k", lockKeys)
	batch.Queue(`
SELECT `+prefixed("m.", messageColumns)+`
FROM unnest($1::text[], $2::text[]) AS k(client_id, id)
JOIN messages m ON m.client_id = k.client_id AND m.id = k.id`, clientIDs, ids)
	batch.Queue(`
SELECT k.idx, `+prefixed("m.", messageColumns)+`
FROM unnest($1::int[], $2::text[], $3::text[], $4::timestamptz[]) AS k(idx, client_id, key, since)
CROSS JOIN LATERAL (
	SELECT * FROM messages m
	WHERE m.client_id = k.client_id AND m.idempotency_key = k.key AND m.created_at > k.since
	ORDER BY m.created_at DESC, m.seq DESC LIMIT 1
) m`, keyIndexes, keyClients, keys, keySince)
	// FOR KEY SHARE keeps these consumers from being deleted until the deliveries to them
	// are inserted, without blocking updates of the consumers.
	batch.Queue("SELECT "+consumerColumns+` FROM consumers
WHERE client_id = ANY($1) AND NOT disabled ORDER BY seq FOR KEY SHARE`, consumerClients)

	results := tx.SendBatch(ctx, &batch)
	defer results.Close()

	if _, err := results.Exec(); err != nil {
		return fmt.Errorf("lock message IDs and idempotency keys: %w", err)
	}

	p.byID = map[messageKey]store.Message{}
	rows, _ := results.Query()
	for rows.Next() {
		var m store.Message
		if err := rows.Scan(messageDest(&m)...); err != nil {
			rows.Close()
			return fmt.Errorf("read messages with the same IDs: %w", err)
		}
		p.byID[messageKey{m.ClientID, m.ID}] = m
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("read messages with the same IDs: %w", err)
	}

	p.keyMatch = map[int]store.Message{}
	rows, _ = results.Query()
	for rows.Next() {
		var (
			index int32
			m     store.Message
		)
		if err := rows.Scan(append([]any{&index}, messageDest(&m)...)...); err != nil {
			rows.Close()
			return fmt.Errorf("read messages with the same idempotency keys: %w", err)
		}
		p.keyMatch[int(index)] = m
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("read messages with the same idempotency keys: %w", err)
	}

	p.consumers = map[string][]store.Consumer{}
	rows, _ = results.Query()
	for rows.Next() {
		c, err := scanConsumer(rows)
		if err != nil {
			rows.Close()
			return fmt.Errorf("read consumers: %w", err)
		}
		p.consumers[c.ClientID] = append(p.consumers[c.ClientID], c)
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("read consumers: %w", err)
	}
	return results.Close()
}

// plan decides, message by message, which are duplicates and which deliveries to queue.
// A message is a duplicate of an earlier one with its ID, stored or earlier in the batch.
// Otherwise it is a duplicate of the latest message with its Idempotency-Key created
// within the window before it, and of two created at the same time, the later published.
func (p *publisher) plan() {
	batchKeys := map[messageKey][]store.Message{}

	p.results = make([]store.PublishResult, len(p.msgs))
	for i, m := range p.msgs {
		id := messageKey{m.ClientID, m.ID}
		if existing, ok := p.byID[id]; ok {
			p.results[i] = store.PublishResult{Message: existing, Duplicate: true}
			continue
		}

		if m.IdempotencyKey != "" {
			since := ts(m.CreatedAt.Add(-store.IdempotencyWindow))
			best, found := p.keyMatch[i]
			for _, candidate := range batchKeys[messageKey{m.ClientID, m.IdempotencyKey}] {
				if candidate.CreatedAt.After(since) && (!found || !candidate.CreatedAt.Before(best.CreatedAt)) {
					best, found = candidate, true
				}
			}
			if found {
				p.results[i] = store.PublishResult{Message: best, Duplicate: true}
				continue
			}
		}

		msg := m.Message
		p.byID[id] = msg
		if m.IdempotencyKey != "" {
			key := messageKey{m.ClientID, m.IdempotencyKey}
			batchKeys[key] = append(batchKeys[key], msg)
		}
		p.inserts = append(p.inserts, msg)
		p.insertKeys = append(p.insertKeys, nullString(m.IdempotencyKey))

		queued := 0
		for _, c := range p.consumers[m.ClientID] {
			if c.Matches(msg.EventType, m.Tags) {
				p.deliveries = append(p.deliveries, plannedDelivery{msg.ClientID, msg.ID, c.ID, msg.CreatedAt})
				queued++
			}
		}
		p.results[i] = store.PublishResult{Message: msg, Consumers: queued}
	}
}

// insert stores the planned messages and deliveries in one statement. The ORDER BY
// clauses make the identity columns follow batch order, which is publish order.
func (p *publisher) insert(ctx context.Context, tx pgx.Tx) error {
	if len(p.inserts) == 0 {
		return nil
	}
	n := len(p.inserts)
	var (
		ids, clientIDs, eventTypes = make([]string, n), make([]string, n), make([]string, n)
		generated, created         = make([]time.Time, n), make([]time.Time, n)
		bodies                     = make([][]byte, n)
	)
	for i, m := range p.inserts {
		ids[i], clientIDs[i], eventTypes[i] = m.ID, m.ClientID, m.EventType
		generated[i], created[i] = m.GeneratedDate, m.CreatedAt
		bodies[i] = m.Body
	}

	d := len(p.deliveries)
	var (
		dClients, dMessages, dConsumers = make([]string, d), make([]string, d), make([]string, d)
		dDue                            = make([]time.Time, d)
	)
	for i, pd := range p.deliveries {
		dClients[i], dMessages[i], dConsumers[i], dDue[i] = pd.clientID, pd.messageID, pd.consumerID, pd.due
	}

	_, err := tx.Exec(ctx, `
WITH inserted AS (
	INSERT INTO messages (id, client_id, event_type, generated_date, body, idempotency_key, created_at)
	SELECT id, client_id, event_type, generated_date, body, idempotency_key, created_at
	FROM unnest($1::text[], $2::text[], $3::text[], $4::timestamptz[], $5::bytea[], $6::text[], $7::timestamptz[])
		WITH ORDINALITY AS m(id, client_id, event_type, generated_date, body, idempotency_key, created_at, ord)
	ORDER BY ord
	RETURNING seq, client_id, id
)
INSERT INTO deliveries (message_seq, consumer_id, status, next_attempt_at, updated_at)
SELECT i.seq, d.consumer_id, $12, d.due, d.due
FROM unnest($8::text[], $9::text[], $10::text[], $11::timestamptz[])
	WITH ORDINALITY AS d(client_id, message_id, consumer_id, due, ord)
JOIN inserted i ON i.client_id = d.client_id AND i.id = d.message_id
ORDER BY d.ord`,
		ids, clientIDs, eventTypes, generated, bodies, p.insertKeys, created,
		dClients, dMessages, dConsumers, dDue, string(store.StatusSending))
	if err != nil {
		return fmt.Errorf("insert messages and deliveries: %w", err)
	}
	return nil
}
