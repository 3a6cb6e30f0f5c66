package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/messages-io/messages/eventstore"
	"github.com/messages-io/messages/readmodel"
	"github.com/messages-io/messages/reducers"
)

// verify shows each partition with events not yet folded, and fails with
// --caught-up only when an event waited longer than the grace period.
func TestVerifyShowsLagAndFailsWhenBehind(t *testing.T) {
	const folded, waiting = 2000, 1000
	f := newToolFixture(t)
	f.postMany(t, folded)
	model := f.activeModel(t)
	f.postMany(t, waiting)
	want := map[int]int{} // events waiting per partition
	for _, m := range f.msgs[folded:] {
		want[f.events.Partition(m.Tag)]++
	}

	err, out, _ := f.runTool(t, "verify", "--sample-interval", "200ms")
	if err != nil {
		t.Fatalf("verify without --caught-up: %v", err)
	}
	line := regexp.MustCompile(`(?m)^partition (\d+) behind: (\d+) events after checkpoint \d+ \(last \d+\), the first waiting [0-9.]+m?s; not moving in [0-9.]+m?s$`)
	got := map[int]int{}
	for _, m := range line.FindAllStringSubmatch(out, -1) {
		p, _ := strconv.Atoi(m[1])
		n, _ := strconv.Atoi(m[2])
		got[p] = n
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("events waiting per partition %v, want %v; verify printed:\n%s", got, want, out)
	}

	if err, _, _ := f.runTool(t, "verify", "--sample-interval", "200ms", "--caught-up=1h"); err != nil {
		t.Errorf("verify --caught-up=1h with events just appended: %v", err)
	}
	err, out, _ = f.runTool(t, "verify", "--sample-interval", "200ms", "--caught-up=0s", "--json")
	if !errors.Is(err, errBehind) || !strings.Contains(err.Error(), fmt.Sprintf("%d events not folded", waiting)) || exitCode(err) != 3 {
		t.Errorf("verify --caught-up=0s: err %v (exit status %d), want %d events behind and status 3", err, exitCode(err), waiting)
	}
	var rep struct {
		OK       bool  `json:"ok"`
		CaughtUp *bool `json:"caughtUp"`
		Lag      []struct {
			Partition int     `json:"partition"`
			Pending   int     `json:"pending"`
			Waiting   float64 `json:"waitingSeconds"`
			Moving    bool    `json:"moving"`
		} `json:"lag"`
	}
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("verify --json printed %q: %v", out, err)
	}
	got = map[int]int{}
	for _, l := range rep.Lag {
		if l.Pending > 0 {
			got[l.Partition] = l.Pending
			if l.Moving || l.Waiting <= 0 {
				t.Errorf("partition %d: moving %v, waiting %vs; want still, and waiting", l.Partition, l.Moving, l.Waiting)
			}
		}
	}
	if !rep.OK || rep.CaughtUp == nil || *rep.CaughtUp || fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("verify --json: ok %v, caughtUp %v, waiting %v; want ok, not caught up, waiting %v", rep.OK, rep.CaughtUp, got, want)
	}

	// Folded through the end, it is caught up whatever the grace.
	f.foldFrom(t, model, f.seq[f.msgs[folded].ID])
	err, out, _ = f.runTool(t, "verify", "--caught-up=0s")
	if err != nil || strings.Contains(out, "behind") {
		t.Errorf("verify --caught-up=0s of a model folded through the end: err %v, printed %q", err, out)
	}
	start := time.Now()
	if err, _, _ := f.runTool(t, "verify", "--caught-up"); err != nil || time.Since(start) > 30*time.Second {
		t.Errorf("verify --caught-up: %v after %v", err, time.Since(start))
	}
}

// foldFrom applies the events of the log from sequence from on to s, as the
// reducers do after their checkpoints.
func (f *toolFixture) foldFrom(t *testing.T, s *readmodel.Store, from uint64) {
	t.Helper()
	ctx := t.Context()
	changes := map[int][]readmodel.Change{}
	last := map[int]uint64{}
	err := f.events.Read(ctx, from, func(rec eventstore.Record) error {
		last[rec.Partition] = rec.Sequence
		c, err := reducers.Project(rec)
		if err != nil {
			return err
		}
		changes[rec.Partition] = append(changes[rec.Partition], c)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for p, seq := range last {
		if err := s.Apply(ctx, p, changes[p], seq); err != nil {
			t.Fatal(err)
		}
	}
}
