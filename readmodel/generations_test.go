package readmodel_test

import (
	"errors"
	"testing"
	"time"

	"github.com/messages-io/messages/internal/testkit"
	"github.com/messages-io/messages/readmodel"
)

func TestGenerationsSwitchAtomically(t *testing.T) {
	ctx := t.Context()
	db := testkit.Database(t)
	gens, err := readmodel.OpenGenerations(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	if gen, err := gens.Active(ctx); err != nil || gen != 1 {
		t.Fatalf("active = %d, %v; want 1 in a new database", gen, err)
	}
	first, err := readmodel.Open(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	if err := first.Apply(ctx, 0, changes("go", start, 3, 1), 3); err != nil {
		t.Fatal(err)
	}
	live, err := readmodel.NewLive(ctx, gens, testkit.Logger())
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = live.Follow(ctx, 20*time.Millisecond) }()

	next, err := gens.Create(ctx, "test")
	if err != nil {
		t.Fatal(err)
	}
	if next.Generation() != 2 {
		t.Fatalf("new generation %d, want 2", next.Generation())
	}
	if err := next.Apply(ctx, 0, changes("go", start, 5, 1), 5); err != nil {
		t.Fatal(err)
	}
	// Building a generation changes nothing that is served.
	if n, _ := live.Count(ctx, readmodel.Filter{}); n != 3 {
		t.Errorf("while building, count = %d, want 3", n)
	}
	if err := gens.Drop(ctx, 1); !errors.Is(err, readmodel.ErrActive) {
		t.Errorf("dropping the active generation: %v", err)
	}
	if err := gens.Activate(ctx, 2); err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, 5*time.Second, 10*time.Millisecond, func() error {
		if n, _ := live.Count(ctx, readmodel.Filter{}); n != 5 {
			return errors.New("live read model still on the old generation")
		}
		return nil
	})
	infos, err := gens.List(ctx)
	if err != nil || len(infos) != 2 || infos[0].State != readmodel.StateRetired || infos[1].State != readmodel.StateActive {
		t.Errorf("generations = %+v, %v", infos, err)
	}
	if err := gens.Drop(ctx, 1); err != nil {
		t.Fatal(err)
	}
	if infos, _ := gens.List(ctx); len(infos) != 1 {
		t.Errorf("after drop: %+v", infos)
	}
	// The old generation's data is gone; the active one is intact.
	old, _ := gens.Store(ctx, 1)
	if n, _ := old.CountByScan(ctx, readmodel.Filter{}); n != 0 {
		t.Errorf("dropped generation still has %d messages", n)
	}
	if n, _ := live.Count(ctx, readmodel.Filter{}); n != 5 {
		t.Errorf("active generation count %d, want 5", n)
	}
}

func TestOpenExistingGenerationsAndFind(t *testing.T) {
	ctx := t.Context()
	db := testkit.Database(t)
	if _, err := readmodel.OpenExistingGenerations(ctx, db); !errors.Is(err, readmodel.ErrNoReadModel) ||
		err.Error() != "database "+db.Name()+" holds no read model" {
		t.Fatalf("open in an empty database: %v, want %v", err, readmodel.ErrNoReadModel)
	}
	if names, err := db.ListCollectionNames(ctx, map[string]any{}); err != nil || len(names) != 0 {
		t.Fatalf("collections %v (%v) after opening an empty database; want none made", names, err)
	}
	gens, err := readmodel.OpenGenerations(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := gens.Create(ctx, "next"); err != nil {
		t.Fatal(err)
	}
	gens, err = readmodel.OpenExistingGenerations(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ gen, want int }{{0, 1}, {1, 1}, {2, 2}} {
		s, err := gens.Find(ctx, tc.gen)
		if err != nil || s.Generation() != tc.want {
			t.Errorf("Find(%d) = %v, %v; want generation %d", tc.gen, s, err, tc.want)
		}
	}
	want := "no generation 7 in database " + db.Name() + " (it has 1, 2)"
	if _, err := gens.Find(ctx, 7); err == nil || err.Error() != want {
		t.Errorf("Find(7) = %v, want %q", err, want)
	}
}
