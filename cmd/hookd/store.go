package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/hookd/hookd/internal/store/sqlite"
)

// defaultDataDir is the folder of the embedded database when neither --data nor HOOKD_DATA
// is set.
const defaultDataDir = "./hookd-data"

func addDataFlag(cmd *cobra.Command, dir *string) {
	cmd.Flags().StringVar(dir, "data", envDefault("HOOKD_DATA", defaultDataDir),
		"folder of the embedded SQLite database (env HOOKD_DATA)")
}

// openExistingStore opens the store of an operator command that only makes sense on an
// existing database, so that a mistyped --data is reported instead of creating a new,
// empty database there.
func openExistingStore(ctx context.Context, dir string) (*sqlite.Store, error) {
	path := filepath.Join(dir, sqlite.FileName)
	if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("no hookd database at %s: check --data (or HOOKD_DATA), or start hookd serve there first", path)
	}
	return openStore(ctx, dir)
}

// openStore opens the store of an operator command, creating it when needed. It works
// while a server runs on the same folder: SQLite's locks serialize the two processes'
// writes.
func openStore(ctx context.Context, dir string) (*sqlite.Store, error) {
	st, err := sqlite.Open(ctx, dir, sqlite.Options{MaxReaders: 1})
	if err != nil {
		return nil, fmt.Errorf("open store in %s: %w", dir, err)
	}
	return st, nil
}
