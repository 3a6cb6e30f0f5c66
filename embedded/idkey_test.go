package embedded_test

import (
	"database/sql"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/messages-io/messages/embedded"
	"github.com/messages-io/messages/internal/testkit"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
	_ "modernc.org/sqlite"
)

// databaseIn starts a server of its own on the SQLite files in dir, stopped
// when the test ends, and returns a database on it.
func databaseIn(t *testing.T, dir string) *mongo.Database {
	t.Helper()
	m, err := embedded.StartMongo(embedded.MongoConfig{Listen: "127.0.0.1:0", Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(m.Close)
	return testkit.DatabaseOn(t, m.URI())
}

// indexedCollection makes a collection of three documents on a server of its
// own and waits until its table has the one index of _id the server keeps,
// and no other.
func indexedCollection(t *testing.T) *mongo.Collection {
	t.Helper()
	dir := t.TempDir()
	db := databaseIn(t, dir)
	coll := db.Collection("points")
	if _, err := coll.InsertMany(t.Context(), []any{bson.M{"_id": "a"}, bson.M{"_id": "b"}, bson.M{"_id": "c"}}); err != nil {
		t.Fatal(err)
	}
	file, err := sql.Open("sqlite", "file:"+filepath.Join(dir, db.Name()+".sqlite")+"?mode=ro&_pragma=busy_timeout(10000)")
	if err != nil {
		t.Fatal(err)
	}
	defer file.Close()
	testkit.Eventually(t, 10*time.Second, 50*time.Millisecond, func() error {
		var table string
		if err := file.QueryRow(`SELECT table_name FROM _ferretdb_collections WHERE name = 'points'`).Scan(&table); err != nil {
			return err
		}
		rows, err := file.Query(`SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name = ? ORDER BY name`, table)
		if err != nil {
			return err
		}
		defer rows.Close()
		var got []string
		for rows.Next() {
			var name, def string
			if err := rows.Scan(&name, &def); err != nil {
				return err
			}
			got = append(got, fmt.Sprintf("%s: %s", name, def))
		}
		want := fmt.Sprintf(`%s__id_key: CREATE UNIQUE INDEX "%[1]s__id_key" ON "%[1]s" (_ferretdb_sjson->'$._id')`, table)
		if !slices.Equal(got, []string{want}) {
			return fmt.Errorf("indexes of %s: %q, want %q", table, got, want)
		}
		return rows.Err()
	})
	return coll
}

// A table keeps one index of _id, the unique one on the pushdown's
// expression, so an insert writes one index entry instead of two.
func TestOneIndexOfID(t *testing.T) {
	indexedCollection(t)
}

// With FerretDB's own index of _id gone, a duplicate _id is still refused:
// alone, and inside an unordered insertMany, whose other documents are
// stored.
func TestDuplicateIDRefusedByTheKeptIndex(t *testing.T) {
	ctx := t.Context()
	coll := indexedCollection(t)
	if _, err := coll.InsertOne(ctx, bson.M{"_id": "b"}); !mongo.IsDuplicateKeyError(err) {
		t.Fatalf("insert of a stored _id: %v, want a duplicate key error", err)
	}
	_, err := coll.InsertMany(ctx, []any{bson.M{"_id": "d"}, bson.M{"_id": "a"}, bson.M{"_id": "e"}}, options.InsertMany().SetOrdered(false))
	var bulk mongo.BulkWriteException
	if !errors.As(err, &bulk) || len(bulk.WriteErrors) != 1 || bulk.WriteErrors[0].Index != 1 || !mongo.IsDuplicateKeyError(bulk.WriteErrors[0]) {
		t.Fatalf("unordered insertMany with one stored _id: %v, want one duplicate at index 1", err)
	}
	n, err := coll.CountDocuments(ctx, bson.M{})
	if err != nil || n != 5 {
		t.Fatalf("count %d (%v), want 5: a, b, c, d, e", n, err)
	}
}
