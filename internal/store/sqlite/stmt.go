package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"sync"
)

// Parsing a statement costs SQLite more than running most of hookd's statements, so the
// statements of the delivery path are parsed once and reused.
//
// Statements used in write transactions are prepared on the writer pool when the store
// opens, because the writer has only one connection: preparing on the pool later, while a
// transaction holds that connection, would wait for the transaction itself. Statements on
// the read pool are prepared on first use, and database/sql prepares them again on each
// read connection as needed.

// writeQueries are the statements of the write transactions on the delivery path.
var writeQueries = []string{
	queryMessageByID, queryMessageByIdempotencyKey, queryEnabledConsumers, queryInsertMessage, queryInsertDelivery,
	queryDueConsumers, queryPickDeliveries, queryLeaseDeliveries,
	queryReleaseDelivery, queryFinishDelivery, queryDeliveryExists, queryInsertAttempt,
	queryConsumerRecovered, queryConsumerFailing, queryConsumerFailingSince, queryDisableConsumer,
}

// statements holds the prepared statements of a Store.
type statements struct {
	write map[string]*sql.Stmt // prepared at Open on the writer pool; read-only afterwards
	read  sync.Map             // query string → *sql.Stmt on the read pool
}

// prepareWrites prepares writeQueries on the writer pool. It runs before anything else
// uses the writer.
func (s *Store) prepareWrites(ctx context.Context) error {
	s.stmts.write = make(map[string]*sql.Stmt, len(writeQueries))
	for _, q := range writeQueries {
		st, err := s.writer.PrepareContext(ctx, q)
		if err != nil {
			return fmt.Errorf("prepare statement %q: %w", q, err)
		}
		s.stmts.write[q] = st
	}
	return nil
}

// txStmt returns query as a statement of tx, reusing its prepared form.
func (s *Store) txStmt(ctx context.Context, tx *sql.Tx, query string) (*sql.Stmt, error) {
	st, ok := s.stmts.write[query]
	if !ok {
		return tx.PrepareContext(ctx, query)
	}
	return tx.StmtContext(ctx, st), nil
}

// readStmt returns query prepared on the read pool, preparing it on first use.
func (s *Store) readStmt(ctx context.Context, query string) (*sql.Stmt, error) {
	if st, ok := s.stmts.read.Load(query); ok {
		return st.(*sql.Stmt), nil
	}
	st, err := s.reader.PrepareContext(ctx, query)
	if err != nil {
		return nil, err
	}
	if prev, loaded := s.stmts.read.LoadOrStore(query, st); loaded {
		st.Close()
		return prev.(*sql.Stmt), nil
	}
	return st, nil
}

// closeStatements closes every prepared statement.
func (s *Store) closeStatements() {
	for _, st := range s.stmts.write {
		st.Close()
	}
	s.stmts.read.Range(func(_, st any) bool {
		st.(*sql.Stmt).Close()
		return true
	})
}

// txStmts runs statements in one write transaction, each prepared once per transaction
// from its reusable form.
type txStmts struct {
	s     *Store
	ctx   context.Context
	tx    *sql.Tx
	stmts map[string]*sql.Stmt
}

func newTxStmts(s *Store, ctx context.Context, tx *sql.Tx) *txStmts {
	return &txStmts{s: s, ctx: ctx, tx: tx}
}

func (t *txStmts) stmt(query string) (*sql.Stmt, error) {
	if st, ok := t.stmts[query]; ok {
		return st, nil
	}
	st, err := t.s.txStmt(t.ctx, t.tx, query)
	if err != nil {
		return nil, err
	}
	if t.stmts == nil {
		t.stmts = map[string]*sql.Stmt{}
	}
	t.stmts[query] = st
	return st, nil
}

func (t *txStmts) exec(query string, args ...any) (sql.Result, error) {
	st, err := t.stmt(query)
	if err != nil {
		return nil, err
	}
	return st.ExecContext(t.ctx, args...)
}

func (t *txStmts) query(query string, args ...any) (*sql.Rows, error) {
	st, err := t.stmt(query)
	if err != nil {
		return nil, err
	}
	return st.QueryContext(t.ctx, args...)
}

func (t *txStmts) queryRow(query string, args ...any) (*sql.Row, error) {
	st, err := t.stmt(query)
	if err != nil {
		return nil, err
	}
	return st.QueryRowContext(t.ctx, args...), nil
}
