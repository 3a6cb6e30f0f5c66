package embedded_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/messages-io/messages/internal/testkit"
	"go.mongodb.org/mongo-driver/v2/bson"
)

// A lookup by _id alone is served by an index, not a scan of the table, in a
// collection made after the server started.
func TestLookupByIDUsesIndex(t *testing.T) {
	ctx := t.Context()
	db := testkit.Database(t)
	coll := db.Collection("points")
	docs := make([]any, 100)
	for i := range docs {
		docs[i] = bson.M{"_id": fmt.Sprintf("k%03d", i), "n": i}
	}
	if _, err := coll.InsertMany(ctx, docs); err != nil {
		t.Fatal(err)
	}
	plan := func() string {
		// EXPLAIN reports the plan of the schema the connection read last;
		// a query first reads the new one.
		if err := coll.FindOne(ctx, bson.M{"_id": "k042"}).Err(); err != nil {
			t.Fatal(err)
		}
		var out struct {
			QueryPlanner struct {
				Plan []string `bson:"Plan"`
			} `bson:"queryPlanner"`
		}
		cmd := bson.D{{Key: "explain", Value: bson.D{{Key: "find", Value: "points"}, {Key: "filter", Value: bson.M{"_id": "k042"}}}}}
		if err := db.RunCommand(ctx, cmd).Decode(&out); err != nil {
			t.Fatal(err)
		}
		return strings.Join(out.QueryPlanner.Plan, "; ")
	}
	testkit.Eventually(t, 5*time.Second, 50*time.Millisecond, func() error {
		if p := plan(); !strings.Contains(p, "USING INDEX") {
			return fmt.Errorf("plan of a find by _id: %s", p)
		}
		return nil
	})
	var got struct{ N int }
	if err := coll.FindOne(ctx, bson.M{"_id": "k042"}).Decode(&got); err != nil || got.N != 42 {
		t.Fatalf("find by _id: %+v, %v", got, err)
	}
}
