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

// idIndexSuffix names the added index after its table.
const idIndexSuffix = "__id_pushdown"

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

// indexIDs adds the _id pushdown index to every collection table of the
// database files in dir that lacks it.
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
		q := fmt.Sprintf(`CREATE INDEX IF NOT EXISTS %q ON %q (_ferretdb_sjson->'$._id')`, t+idIndexSuffix, t)
		if _, err := db.ExecContext(ctx, q); err != nil {
			return fmt.Errorf("%s: index %s: %w", file, t, err)
		}
	}
	return nil
}
