package main

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/messages-io/messages/message"
)

// TestAnswers checks the bounded pass over the history against sorting the
// whole of it.
func TestAnswers(t *testing.T) {
	h := history{end: time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)}
	const n = 12000
	var all []message.Message
	h.between(0, n, func(m message.Message) { all = append(all, m) })
	slices.SortFunc(all, func(x, y message.Message) int { return strings.Compare(y.ID, x.ID) })
	ss := append(shapes(h), shape{name: "tag page 6 deep", tag: "topic5", depth: 5})
	for _, a := range answers(h, n, ss) {
		t.Run(a.name, func(t *testing.T) {
			var want []message.Message
			for _, m := range all {
				if a.has(m) {
					want = append(want, m)
				}
			}
			if a.n != int64(len(want)) {
				t.Fatalf("count %d, want %d", a.n, len(want))
			}
			if a.count {
				return
			}
			page := want[min(a.depth*pageSize, len(want)):min((a.depth+1)*pageSize, len(want))]
			if d := differ(a.page(a.depth), page); d != "" || len(page) == 0 {
				t.Fatalf("page %d of %d messages: %s", a.depth, len(page), d)
			}
		})
	}
}

func TestDiffer(t *testing.T) {
	h := history{end: time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)}
	want := []message.Message{h.spread(1), h.spread(2)}
	changed := slices.Clone(want)
	changed[1].Text += "!"
	for _, tc := range []struct {
		name string
		got  []message.Message
		ok   bool
	}{
		{"same", slices.Clone(want), true},
		{"text changed", changed, false},
		{"order", []message.Message{want[1], want[0]}, false},
		{"one short", want[:1], false},
	} {
		if got := differ(tc.got, want); (got == "") != tc.ok {
			t.Errorf("%s: differ = %q", tc.name, got)
		}
	}
}

func TestNextLink(t *testing.T) {
	for h, want := range map[string]string{
		`</v1/messages?cursor=abc&limit=100>; rel="next"`: "/v1/messages?cursor=abc&limit=100",
		`</v1/x>; rel="prev", </v1/y>; rel="next"`:        "/v1/y",
		``: "",
	} {
		if got := nextLink(h); got != want {
			t.Errorf("nextLink(%q) = %q, want %q", h, got, want)
		}
	}
}
