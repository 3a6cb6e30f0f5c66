package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/messages-io/messages/internal/testkit"
	"github.com/messages-io/messages/message"
)

func call(t *testing.T, method, url, body string) (*http.Response, []byte) {
	t.Helper()
	header := http.Header{"X-User-Id": {"e2e-user"}}
	if body != "" {
		header.Set("Content-Type", "application/json")
	}
	return send(t, method, url, header, body)
}

var nextLink = regexp.MustCompile(`^<([^>]+)>; rel="next"$`)

// listAll follows a list's next links from path to its end and returns the
// ids in the order served.
func listAll(t *testing.T, base, path string) []string {
	t.Helper()
	var ids []string
	for pages := 0; path != ""; pages++ {
		if pages > 100 {
			t.Fatal("more than 100 pages")
		}
		resp, body := call(t, http.MethodGet, base+path, "")
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("GET %s: %d %s", path, resp.StatusCode, body)
		}
		var page []message.Message
		if err := json.Unmarshal(body, &page); err != nil {
			t.Fatalf("GET %s: %v", path, err)
		}
		for _, m := range page {
			ids = append(ids, m.ID)
		}
		path = ""
		if link := resp.Header.Get("Link"); link != "" {
			m := nextLink.FindStringSubmatch(link)
			if m == nil {
				t.Fatalf("Link %q", link)
			}
			path = m[1]
		}
	}
	return ids
}

func countOf(t *testing.T, base, query string) int {
	t.Helper()
	resp, body := call(t, http.MethodGet, base+"/v1/messages?count=1&"+query, "")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("count %s: %d %s", query, resp.StatusCode, body)
	}
	n, err := strconv.Atoi(strings.TrimSpace(string(body)))
	if err != nil {
		t.Fatalf("count %s: body %q is not a bare integer", query, body)
	}
	return n
}

// waitCount waits up to within for the count of query at the API at base
// to be want.
func waitCount(t *testing.T, base, query string, want int, within time.Duration) {
	t.Helper()
	testkit.Eventually(t, within, 25*time.Millisecond, func() error {
		if n := countOf(t, base, query); n != want {
			return fmt.Errorf("count %q = %d, want %d", query, n, want)
		}
		return nil
	})
}

// TestDevEndToEnd posts messages of several tags across several days through
// the whole stack and reads them back with every kind of query, before and
// after a restart on the same data.
func TestDevEndToEnd(t *testing.T) {
	dir := t.TempDir()
	clk := &testkit.Clock{}
	base, stop := startDev(t, dir, clk.Now)

	// Every partition this process folds is reported from the start, so
	// that an alert on increase() sees the first dead letter.
	resp, body := call(t, http.MethodGet, base+"/metrics", "")
	for p := range 4 {
		series := fmt.Sprintf("messages_reducer_dead_letters_total{partition=\"%d\"} 0\n", p)
		if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), series) {
			t.Errorf("GET /metrics: %d, no %q", resp.StatusCode, series)
		}
	}

	posted := postAcrossDays(t, base, clk)
	total := len(posted)
	waitCount(t, base, "", total, 30*time.Second)

	checkQueries(t, base, posted)

	// Everything is still there after a restart on the same data, and the
	// restarted stack keeps folding.
	stop()
	base, _ = startDev(t, dir, clk.Now)
	checkQueries(t, base, posted)
	clk.Set(devDay(5))
	resp, body = call(t, http.MethodPost, base+"/v1/messages", `{"text":"after restart","tag":"go"}`)
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("POST after restart: %d %s", resp.StatusCode, body)
	}
	waitCount(t, base, "tag=go&dateStart=2026-03-05", 1, 30*time.Second)
	// The tag's count document is written before the all-tags one.
	waitCount(t, base, "", total+1, 10*time.Second)
}

// devDay is midnight UTC of the day d of March 2026.
func devDay(d int) time.Time { return time.Date(2026, 3, d, 0, 0, 0, 0, time.UTC) }

// postAcrossDays posts messages of three tags at the edges of three days and
// at ordinary times, each stamped by clk, and returns them oldest first.
func postAcrossDays(t *testing.T, base string, clk *testkit.Clock) []message.Message {
	t.Helper()
	day := devDay
	ms := time.Millisecond
	// Messages at the edges of days and at ordinary times.
	times := []time.Time{
		day(1), day(1).Add(9 * time.Hour), day(2).Add(-ms),
		day(2), day(2).Add(ms), day(2).Add(12 * time.Hour), day(3).Add(-ms),
		day(3), day(3).Add(18 * time.Hour), day(4).Add(-ms),
	}
	tags := []string{"Go", "#nats", "mongo"}
	var posted []message.Message // oldest first
	for i, at := range times {
		for j, tag := range tags {
			if (i+j)%4 == 3 {
				continue // not every tag on every instant
			}
			clk.Set(at.Add(time.Duration(j) * 10 * time.Microsecond))
			resp, body := call(t, http.MethodPost, base+"/v1/messages", fmt.Sprintf(`{"text":"message %d/%d","tag":%q}`, i, j, tag))
			if resp.StatusCode != http.StatusCreated {
				t.Fatalf("POST: %d %s", resp.StatusCode, body)
			}
			var m message.Message
			if err := json.Unmarshal(body, &m); err != nil {
				t.Fatal(err)
			}
			if resp.Header.Get("Location") != "/v1/messages/"+m.ID || !m.CreatedAt.Equal(at) {
				t.Fatalf("POST answered %s at %v, Location %q", body, m.CreatedAt, resp.Header.Get("Location"))
			}
			posted = append(posted, m)
		}
	}
	return posted
}

// checkQueries checks every kind of query of the API at base against the
// messages posted, oldest first.
func checkQueries(t *testing.T, base string, posted []message.Message) {
	t.Helper()
	day := devDay
	ms := time.Millisecond
	// want lists the posted messages a filter selects, newest first.
	want := func(tag string, from, to time.Time) []string {
		var ids []string
		for i := len(posted) - 1; i >= 0; i-- {
			m := posted[i]
			if (tag == "" || m.Tag == tag) && (from.IsZero() || !m.CreatedAt.Before(from)) && (to.IsZero() || m.CreatedAt.Before(to)) {
				ids = append(ids, m.ID)
			}
		}
		return ids
	}
	checks := []struct {
		query    string
		tag      string
		from, to time.Time
	}{
		{"", "", time.Time{}, time.Time{}},
		{"tag=go", "go", time.Time{}, time.Time{}},
		{"tag=GO", "go", time.Time{}, time.Time{}},
		{"tag=%23Nats", "nats", time.Time{}, time.Time{}},
		{"tag=unknown", "unknown", time.Time{}, time.Time{}},
		{"dateStart=2026-03-01&dateEnd=2026-03-01", "", day(1), day(2)},
		{"dateStart=2026-03-02&dateEnd=2026-03-02", "", day(2), day(3)},
		{"dateStart=2026-03-02", "", day(2), time.Time{}},
		{"dateEnd=2026-03-02", "", time.Time{}, day(3)},
		{"dateStart=2026-03-02&dateEnd=2026-03-03&tag=mongo", "mongo", day(2), day(4)},
		{"dateStart=2026-03-01T23:59:59.999Z&dateEnd=2026-03-02T00:00:00Z", "", day(2).Add(-ms), day(2)},
		{"dateStart=2026-03-02T00:00:00Z&dateEnd=2026-03-02T00:00:00.001Z", "", day(2), day(2).Add(ms)},
		{"dateStart=2026-03-02T01:00:00%2B01:00&dateEnd=2026-03-03T00:00:00Z", "", day(2), day(3)},
		{"dateStart=2026-03-03T00:00:00Z&tag=go", "go", day(3), time.Time{}},
		{"dateEnd=2026-03-02T00:00:00.001Z&tag=nats", "nats", time.Time{}, day(2).Add(ms)},
	}
	for _, c := range checks {
		w := want(c.tag, c.from, c.to)
		// A batch's counts are written one document after another;
		// the all-tags count may be written before a tag's.
		waitCount(t, base, c.query, len(w), 10*time.Second)
		for _, limit := range []int{1000, 4} {
			got := listAll(t, base, fmt.Sprintf("/v1/messages?limit=%d&%s", limit, c.query))
			if strings.Join(got, ",") != strings.Join(w, ",") {
				t.Errorf("list %q by %d: got %d ids, want %d, or out of order", c.query, limit, len(got), len(w))
			}
		}
	}
	m := posted[len(posted)/2]
	resp, body := call(t, http.MethodGet, base+"/v1/messages/"+m.ID, "")
	var got message.Message
	if resp.StatusCode != http.StatusOK || json.Unmarshal(body, &got) != nil || got != m {
		t.Errorf("GET by id: %d %s, want %+v", resp.StatusCode, body, m)
	}
}

func TestCommandLine(t *testing.T) {
	var out, errOut bytes.Buffer
	e := env{getenv: func(string) string { return "" }, stdout: &out, stderr: &errOut}
	if err := run(t.Context(), []string{"--help"}, e); err != nil {
		t.Errorf("--help: %v", err)
	}
	for _, c := range commands() {
		if !strings.Contains(out.String(), c.name) {
			t.Errorf("--help does not name %s", c.name)
		}
	}
	out.Reset()
	if err := run(t.Context(), []string{"dev", "--help"}, e); err == nil || !strings.Contains(out.String(), "MESSAGES_DATA_DIR") {
		t.Errorf("dev --help: %v, printed %q", err, out.String())
	}
	if err := run(t.Context(), []string{"nope"}, e); err != errUsage {
		t.Errorf("unknown command: %v", err)
	}
	if err := run(t.Context(), []string{"query", "--no-such-flag"}, e); err != errUsage {
		t.Errorf("unknown flag: %v", err)
	}
	badEnv := e
	badEnv.getenv = func(k string) string {
		if k == "MESSAGES_PARTITIONS" {
			return "many"
		}
		return ""
	}
	if err := run(t.Context(), []string{"reducer"}, badEnv); err == nil || !strings.Contains(err.Error(), "MESSAGES_PARTITIONS") {
		t.Errorf("bad environment value: %v", err)
	}
	if err := run(t.Context(), []string{"query", "--log-level", "loud"}, e); err == nil || !strings.Contains(err.Error(), "log-level") {
		t.Errorf("bad log level: %v", err)
	}
}
