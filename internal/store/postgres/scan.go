package postgres

import (
	"errors"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5/pgtype"
)

// ts converts t to the value stored in a timestamptz column: UTC, truncated to whole
// milliseconds as the SQLite backend stores it.
func ts(t time.Time) time.Time { return t.UTC().Truncate(time.Millisecond) }

// nullTS converts an optional time to a nullable timestamptz parameter.
func nullTS(t *time.Time) *time.Time {
	if t == nil {
		return nil
	}
	v := ts(*t)
	return &v
}

// rowScanner is the Scan method that pgx.Row and pgx.Rows share.
type rowScanner interface {
	Scan(dest ...any) error
}

// utcTime scans a timestamptz column into a time.Time in UTC.
type utcTime struct{ dest *time.Time }

func (u utcTime) ScanTimestamptz(v pgtype.Timestamptz) error {
	if !v.Valid {
		return errors.New("scan time: got NULL, want a timestamptz")
	}
	*u.dest = v.Time.UTC()
	return nil
}

// nullUTCTime scans a nullable timestamptz column into a *time.Time in UTC, which stays
// nil for NULL.
type nullUTCTime struct{ dest **time.Time }

func (n nullUTCTime) ScanTimestamptz(v pgtype.Timestamptz) error {
	if !v.Valid {
		*n.dest = nil
		return nil
	}
	t := v.Time.UTC()
	*n.dest = &t
	return nil
}

// nullString converts "" to SQL NULL.
func nullString(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

// storableText returns s as PostgreSQL text accepts it. Text columns reject the NUL
// character and invalid UTF-8, which an attempt's error message or response body may
// contain. Both become U+FFFD.
//
// NOTE: the SQLite backend stores such text unchanged, so the two backends differ here.
func storableText(s string) string {
	if utf8.ValidString(s) && !strings.Contains(s, "\x00") {
		return s
	}
	s = strings.ToValidUTF8(s, "\uFFFD")
	return strings.ReplaceAll(s, "\x00", "\uFFFD")
}
