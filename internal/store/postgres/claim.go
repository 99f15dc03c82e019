package postgres

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	mathrand "math/rand/v2"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/hookd/hookd/internal/store"
)

// ClaimDeliveries implements store.Store. Consumers with due work are visited in random
// order, each contributing at most its free slots, so that one consumer's backlog cannot
// fill a claim. Due deliveries are locked with FOR UPDATE SKIP LOCKED, so a claim skips
// the deliveries that a concurrent claim or write has locked instead of waiting for them.
//
// The consumers are queried in chunks, in visiting order. A chunk takes consumers until
// their free slots cover the jobs still wanted. The next chunk is queried only when the
// consumers of the last one had fewer due deliveries than free slots. Deliveries that a
// chunk locks beyond what the walk takes stay unchanged, and their locks end with the
// transaction.
//
// The claim commits without waiting for its WAL to reach the disk (synchronous_commit off).
// A claim lost in a crash of the database server only makes its deliveries due again
// before their leases end.
func (s *Store) ClaimDeliveries(ctx context.Context, req store.ClaimRequest) ([]store.Job, error) {
	var jobs []store.Job
	err := s.write(ctx, "claim deliveries", func(tx pgx.Tx) error {
		jobs = nil
		if _, err := tx.Exec(ctx, "SET LOCAL synchronous_commit = off"); err != nil {
			return err
		}
		now := ts(req.Now)
		consumers, err := dueConsumers(ctx, tx, now)
		if err != nil {
			return err
		}
		mathrand.Shuffle(len(consumers), func(i, j int) { consumers[i], consumers[j] = consumers[j], consumers[i] })

		picked, consumerOf, err := pickDue(ctx, tx, req, consumers, now)
		if err != nil {
			return err
		}
		if len(picked) == 0 {
			return nil
		}

		token := newLeaseToken()
		leased, err := lease(ctx, tx, picked, ts(req.Now.Add(req.Lease)), token)
		if err != nil {
			return err
		}
		for _, id := range picked {
			job, ok := leased[id]
			if !ok {
				return fmt.Errorf("lease delivery %d: the locked delivery was not updated", id)
			}
			job.LeaseToken = token
			job.Consumer = consumers[consumerOf[id]]
			jobs = append(jobs, job)
		}
		return nil
	})
	return jobs, err
}

// pickDue locks the due deliveries that the claim takes, walking consumers in order, and
// returns their IDs with the index in consumers of each one's consumer.
func pickDue(ctx context.Context, tx pgx.Tx, req store.ClaimRequest, consumers []store.Consumer, now time.Time) ([]int64, map[int64]int, error) {
	var (
		picked     []int64
		consumerOf = map[int64]int{} // delivery ID to index in consumers
		remaining  = req.Limit
	)
	for next := 0; next < len(consumers) && remaining > 0; {
		var (
			chunkIDs     []string
			chunkFree    []int32
			chunkIndexes []int32
			covered      int
		)
		for ; next < len(consumers) && covered < remaining; next++ {
			free := slots(req, consumers[next].ID, remaining)
			if free <= 0 {
				continue
			}
			chunkIDs = append(chunkIDs, consumers[next].ID)
			chunkFree = append(chunkFree, int32(free))
			chunkIndexes = append(chunkIndexes, int32(next))
			covered += free
		}
		if len(chunkIDs) == 0 {
			break
		}

		due, err := lockDue(ctx, tx, chunkIDs, chunkFree, chunkIndexes, now)
		if err != nil {
			return nil, nil, err
		}
		for _, index := range chunkIndexes {
			ids := due[int(index)]
			take := min(max(slots(req, consumers[index].ID, remaining), 0), len(ids))
			for _, id := range ids[:take] {
				picked = append(picked, id)
				consumerOf[id] = int(index)
				remaining--
			}
		}
	}
	return picked, consumerOf, nil
}

// slots returns how many jobs the consumer may take when remaining jobs are still wanted.
func slots(req store.ClaimRequest, consumerID string, remaining int) int {
	free, ok := req.Slots[consumerID]
	if !ok {
		free = req.DefaultSlots
	}
	return min(free, remaining)
}

// dueConsumers returns the enabled consumers that have at least one due delivery, with
// one probe of deliveries_due per enabled consumer. The lateral subquery with LIMIT 1
// keeps that plan: written as EXISTS, PostgreSQL 15 chose a hash semi-join that read every
// queued delivery when the statistics estimated few consumers and deliveries.
func dueConsumers(ctx context.Context, tx pgx.Tx, now time.Time) ([]store.Consumer, error) {
	rows, err := tx.Query(ctx, "SELECT "+prefixed("c.", consumerColumns)+` FROM consumers c
CROSS JOIN LATERAL (
	SELECT FROM deliveries d
	WHERE d.consumer_id = c.id AND d.next_attempt_at IS NOT NULL AND d.next_attempt_at <= $1
	LIMIT 1) due
WHERE NOT c.disabled`, now)
	if err != nil {
		return nil, err
	}
	defer rows.Close()

	var consumers []store.Consumer
	for rows.Next() {
		c, err := scanConsumer(rows)
		if err != nil {
			return nil, err
		}
		consumers = append(consumers, c)
	}
	return consumers, rows.Err()
}

// lockDue locks up to free[i] due deliveries of each consumer ids[i], earliest due first,
// skipping the deliveries that other transactions hold. It returns their IDs in that
// order, keyed by indexes[i].
func lockDue(ctx context.Context, tx pgx.Tx, ids []string, free, indexes []int32, now time.Time) (map[int][]int64, error) {
	rows, err := tx.Query(ctx, `
SELECT c.idx, d.id
FROM unnest($1::text[], $2::int[], $3::int[]) AS c(consumer_id, free, idx)
CROSS JOIN LATERAL (
	SELECT d.id, d.next_attempt_at FROM deliveries d
	WHERE d.consumer_id = c.consumer_id AND d.next_attempt_at IS NOT NULL AND d.next_attempt_at <= $4
	ORDER BY d.next_attempt_at, d.id
	LIMIT c.free
	FOR UPDATE SKIP LOCKED
) d
ORDER BY c.idx, d.next_attempt_at, d.id`, ids, free, indexes, now)
	if err != nil {
		return nil, err
	}
	defer rows.Close()

	due := map[int][]int64{}
	for rows.Next() {
		var (
			index int32
			id    int64
		)
		if err := rows.Scan(&index, &id); err != nil {
			return nil, err
		}
		due[int(index)] = append(due[int(index)], id)
	}
	return due, rows.Err()
}

// lease moves the locked deliveries' due time to the lease expiry, sets their lease token
// and returns their jobs without the consumer, keyed by delivery ID.
func lease(ctx context.Context, tx pgx.Tx, ids []int64, until time.Time, token string) (map[int64]store.Job, error) {
	rows, err := tx.Query(ctx, `
UPDATE deliveries d SET next_attempt_at = $1, lease_token = $2
FROM messages m
WHERE d.id = ANY($3) AND m.seq = d.message_seq
RETURNING d.id, d.attempts, `+prefixed("m.", messageColumns), until, token, ids)
	if err != nil {
		return nil, err
	}
	defer rows.Close()

	jobs := map[int64]store.Job{}
	for rows.Next() {
		var job store.Job
		if err := rows.Scan(append([]any{&job.DeliveryID, &job.FailedAttempts}, messageDest(&job.Message)...)...); err != nil {
			return nil, err
		}
		jobs[job.DeliveryID] = job
	}
	return jobs, rows.Err()
}

// NextDue implements store.Store. It takes the earliest delivery of each enabled consumer
// from deliveries_due, one index probe per consumer. A join ordered by next_attempt_at
// is planned as a scan of every queued delivery and a sort when the table's statistics
// lag behind a fast-growing queue, which made each call read the whole backlog.
func (s *Store) NextDue(ctx context.Context) (time.Time, bool, error) {
	var next *time.Time
	err := s.pool.QueryRow(ctx, `
SELECT min((
	SELECT d.next_attempt_at FROM deliveries d
	WHERE d.consumer_id = c.id AND d.next_attempt_at IS NOT NULL
	ORDER BY d.next_attempt_at LIMIT 1))
FROM consumers c WHERE NOT c.disabled`).Scan(nullUTCTime{&next})
	if err != nil {
		return time.Time{}, false, wrap("next due delivery", err)
	}
	if next == nil {
		return time.Time{}, false, nil
	}
	return *next, true, nil
}

// QueueDepth implements store.Store.
func (s *Store) QueueDepth(ctx context.Context, now time.Time) (due, scheduled int, err error) {
	err = s.pool.QueryRow(ctx, `
SELECT count(*) FILTER (WHERE d.next_attempt_at <= $1), count(*) FILTER (WHERE d.next_attempt_at > $1)
FROM deliveries d JOIN consumers c ON c.id = d.consumer_id
WHERE d.next_attempt_at IS NOT NULL AND NOT c.disabled`, ts(now)).Scan(&due, &scheduled)
	return due, scheduled, wrap("queue depth", err)
}

// messageColumns are the columns messageDest reads, in its order.
const messageColumns = "id, client_id, event_type, generated_date, body, created_at"

// prefixed qualifies each column of a column list with a table alias.
func prefixed(alias, columns string) string {
	parts := strings.Split(columns, ",")
	for i, p := range parts {
		parts[i] = alias + strings.TrimSpace(p)
	}
	return strings.Join(parts, ", ")
}

// messageDest returns scan destinations for messageColumns.
func messageDest(m *store.Message) []any {
	return []any{&m.ID, &m.ClientID, &m.EventType, utcTime{&m.GeneratedDate}, &m.Body, utcTime{&m.CreatedAt}}
}

func newLeaseToken() string {
	var b [8]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
