package embedded

import (
	"context"
	"database/sql"
	"fmt"
	"log/slog"
	"path/filepath"
	"time"

	_ "modernc.org/sqlite" // the driver FerretDB itself opens its files with
)

// idIndexSweep is how often new collections are looked for.
const idIndexSweep = 250 * time.Millisecond

// Index names, after their table: the one the sweep builds, FerretDB's own
// unique index of _id, and the plain index earlier versions built.
const (
	idIndexSuffix       = "__id_key"
	ferretIDIndexSuffix = "__id_"
	oldIDIndexSuffix    = "__id_pushdown"
)

// keepIDIndexes indexes the tables of every database file in dir every
// idIndexSweep until ctx ends, so that a collection has its index within a
// moment of its creation. A failure is logged when it differs from the
// last, and tried again at the next sweep: the index only makes lookups
// faster. first is the failure of the sweep made before, or nil.
func keepIDIndexes(ctx context.Context, dir string, log *slog.Logger, first error) {
	t := time.NewTicker(idIndexSweep)
	defer t.Stop()
	last := ""
	for err := first; ; err = indexIDs(ctx, dir) {
		if ctx.Err() != nil {
			return
		}
		if err != nil && err.Error() != last {
			log.Warn("index for _id lookups", "err", err)
		}
		last = ""
		if err != nil {
			last = err.Error()
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// indexIDs gives every collection table of the database files in dir that
// lacks it the unique index of _id on the pushdown's expression, in place of
// FerretDB's own.
func indexIDs(ctx context.Context, dir string) error {
	files, err := filepath.Glob(filepath.Join(dir, "*.sqlite"))
	if err != nil {
		return err
	}
	var first error
	for _, f := range files {
		if err := indexFile(ctx, f); err != nil && first == nil {
			first = err
		}
	}
	return first
}

func indexFile(ctx context.Context, file string) error {
	// mode=rw: a file FerretDB removed meanwhile (a dropped database) is not
	// made again.
	db, err := sql.Open("sqlite", "file:"+file+"?mode=rw&_pragma=busy_timeout(10000)")
	if err != nil {
		return err
	}
	defer db.Close()
	rows, err := db.QueryContext(ctx, `SELECT c.table_name FROM _ferretdb_collections c
		WHERE NOT EXISTS (SELECT 1 FROM sqlite_master i WHERE i.type = 'index' AND i.name = c.table_name || ?)`, idIndexSuffix)
	if err != nil {
		return fmt.Errorf("%s: %w", file, err)
	}
	var tables []string
	for rows.Next() {
		var t string
		if err := rows.Scan(&t); err != nil {
			rows.Close()
			return fmt.Errorf("%s: %w", file, err)
		}
		tables = append(tables, t)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return fmt.Errorf("%s: %w", file, err)
	}
	for _, t := range tables {
		if err := swapIDIndex(ctx, db, t); err != nil {
			return fmt.Errorf("%s: index %s: %w", file, t, err)
		}
	}
	return nil
}

// swapIDIndex builds the unique index on the pushdown's expression and drops
// the table's other indexes of _id, in one transaction, so that the table is
// never without a unique _id and every insert keeps one index of it.
// FerretDB tells a duplicate _id by SQLite's unique constraint failing,
// whichever index fails it.
func swapIDIndex(ctx context.Context, db *sql.DB, table string) error {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	for _, q := range []string{
		fmt.Sprintf(`CREATE UNIQUE INDEX IF NOT EXISTS %q ON %q (_ferretdb_sjson->'$._id')`, table+idIndexSuffix, table),
		fmt.Sprintf(`DROP INDEX IF EXISTS %q`, table+ferretIDIndexSuffix),
		fmt.Sprintf(`DROP INDEX IF EXISTS %q`, table+oldIDIndexSuffix),
	} {
		if _, err := tx.ExecContext(ctx, q); err != nil {
			return err
		}
	}
	return tx.Commit()
}
