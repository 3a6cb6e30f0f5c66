package queryapi_test

import (
	"bytes"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/messages-io/messages/internal/testkit"
	"github.com/messages-io/messages/message"
	"github.com/messages-io/messages/readmodel"
	"github.com/messages-io/messages/readmodel/queryapi"
	"github.com/messages-io/messages/web"
	"github.com/oklog/ulid/v2"
	"github.com/prometheus/client_golang/prometheus"
	"go.mongodb.org/mongo-driver/v2/mongo"
)

const testUser = "tester@example.com"

// api is the query API served over HTTP from a real read model.
type api struct {
	store *readmodel.Store
	url   string
	seq   uint64
}

// newAPI opens the read model in db and serves the query API from it, wired
// as the service wires it.
func newAPI(t *testing.T, db *mongo.Database, cfg queryapi.Config) *api {
	t.Helper()
	store, err := readmodel.Open(t.Context(), db)
	if err != nil {
		t.Fatalf("open read model: %v", err)
	}
	reg := prometheus.NewRegistry()
	rt := web.NewRouter(testkit.Logger(), reg, reg, nil)
	queryapi.New(store, testkit.Logger(), cfg).Routes(rt)
	srv := httptest.NewServer(rt.Root())
	t.Cleanup(srv.Close)
	return &api{store: store, url: srv.URL}
}

// msg is a message created at at, its id a ULID of the same millisecond.
func msg(at time.Time, tag, text string) message.Message {
	at = at.UTC().Truncate(time.Millisecond)
	return message.Message{
		ID:        ulid.MustNew(ulid.Timestamp(at), rand.Reader).String(),
		UserID:    "author-1",
		Text:      text,
		Tag:       tag,
		CreatedAt: at,
	}
}

// put folds msgs into the read model as one batch of partition 0.
func (a *api) put(t *testing.T, msgs ...message.Message) {
	t.Helper()
	changes := make([]readmodel.Change, len(msgs))
	for i, m := range msgs {
		a.seq++
		changes[i] = readmodel.Change{Message: m, Sequence: a.seq}
	}
	if err := a.store.Apply(t.Context(), 0, changes, a.seq); err != nil {
		t.Fatalf("apply: %v", err)
	}
}

// get requests target (a path with its query) as testUser.
func (a *api) get(t *testing.T, target string) (*http.Response, []byte) {
	t.Helper()
	return a.getAs(t, target, http.Header{web.UserIDHeader: {testUser}})
}

func (a *api) getAs(t *testing.T, target string, h http.Header) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, a.url+target, nil)
	if err != nil {
		t.Fatalf("request %s: %v", target, err)
	}
	req.Header = h
	client := &http.Client{Timeout: 20 * time.Second}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", target, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: read body: %v", target, err)
	}
	return resp, body
}

// list GETs target and returns the ids of the list it answers, failing
// unless the answer is 200 with a JSON array.
func (a *api) list(t *testing.T, target string) (ids []string, next string) {
	t.Helper()
	resp, body := a.get(t, target)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: status %d, want 200; body %s", target, resp.StatusCode, body)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("GET %s: Content-Type %q, want application/json", target, ct)
	}
	var msgs []message.Message
	if err := json.Unmarshal(body, &msgs); err != nil {
		t.Fatalf("GET %s: body %s is not a list of messages: %v", target, body, err)
	}
	if msgs == nil {
		t.Fatalf("GET %s: body %s is not a JSON array", target, body)
	}
	ids = make([]string, len(msgs))
	for i, m := range msgs {
		ids[i] = m.ID
	}
	return ids, nextLink(t, resp)
}

// count GETs target, which asks for count=1, and returns the bare integer it
// answers.
func (a *api) count(t *testing.T, target string) int {
	t.Helper()
	resp, body := a.get(t, target)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: status %d, want 200; body %s", target, resp.StatusCode, body)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("GET %s: Content-Type %q, want application/json", target, ct)
	}
	s := strings.TrimSpace(string(body))
	if !regexp.MustCompile(`^(0|[1-9][0-9]*)$`).MatchString(s) {
		t.Fatalf("GET %s: body %q is not a bare JSON integer", target, body)
	}
	n, err := strconv.Atoi(s)
	if err != nil {
		t.Fatalf("GET %s: body %q: %v", target, body, err)
	}
	if l := resp.Header.Get("Link"); l != "" {
		t.Errorf("GET %s: a count has a Link header %q", target, l)
	}
	return n
}

var linkRE = regexp.MustCompile(`^<([^>]+)>;\s*rel="next"$`)

// nextLink returns the path and query of the Link rel="next" header, "" when
// there is none.
func nextLink(t *testing.T, resp *http.Response) string {
	t.Helper()
	links := resp.Header.Values("Link")
	switch len(links) {
	case 0:
		return ""
	case 1:
	default:
		t.Fatalf("%d Link headers: %q", len(links), links)
	}
	m := linkRE.FindStringSubmatch(links[0])
	if m == nil {
		t.Fatalf("Link header %q is not <url>; rel=\"next\"", links[0])
	}
	u, err := resp.Request.URL.Parse(m[1])
	if err != nil {
		t.Fatalf("Link header %q: %v", links[0], err)
	}
	if u.Host != resp.Request.URL.Host || u.Path != "/v1/messages" {
		t.Fatalf("Link header %q does not point at this API's /v1/messages", links[0])
	}
	return u.RequestURI()
}

// checkProblem fails unless resp is an RFC 9457 problem document for status.
func checkProblem(t *testing.T, resp *http.Response, body []byte, status int) {
	t.Helper()
	testkit.CheckProblem(t, resp, body, status)
}

// newestFirst returns the ids of msgs that keep, newest first.
func newestFirst(msgs []message.Message, keep func(message.Message) bool) []string {
	var ids []string
	for _, m := range msgs {
		if keep(m) {
			ids = append(ids, m.ID)
		}
	}
	slices.Sort(ids)
	slices.Reverse(ids)
	if ids == nil {
		ids = []string{}
	}
	return ids
}

func all(message.Message) bool { return true }

func TestUserIDRequired(t *testing.T) {
	a := newAPI(t, testkit.Database(t), queryapi.Config{})
	m := msg(utc(2026, 1, 1, 12, 0, 0, 0), "go", "hello")
	a.put(t, m)
	targets := []string{"/v1/messages", "/v1/messages?count=1", "/v1/messages/" + m.ID, "/v1/messages?limit=0"}
	headers := []struct {
		name string
		h    http.Header
	}{
		{"missing", http.Header{}},
		{"empty", http.Header{web.UserIDHeader: {""}}},
		{"space", http.Header{web.UserIDHeader: {"bad user"}}},
		{"slash", http.Header{web.UserIDHeader: {"a/b"}}},
		{"129 characters", http.Header{web.UserIDHeader: {strings.Repeat("u", 129)}}},
		{"given twice", http.Header{web.UserIDHeader: {"alice", "bob"}}},
	}
	for _, target := range targets {
		for _, h := range headers {
			t.Run(h.name+" "+target, func(t *testing.T) {
				resp, body := a.getAs(t, target, h.h)
				checkProblem(t, resp, body, http.StatusForbidden)
			})
		}
	}
	t.Run("well-formed user id is admitted", func(t *testing.T) {
		for _, user := range []string{"u", "Alice.B_c:d@e-f", strings.Repeat("u", 128)} {
			resp, body := a.getAs(t, "/v1/messages/"+m.ID, http.Header{web.UserIDHeader: {user}})
			if resp.StatusCode != http.StatusOK {
				t.Errorf("X-User-ID %q: status %d, want 200; body %s", user, resp.StatusCode, body)
			}
		}
	})
}

func TestListNewestFirst(t *testing.T) {
	a := newAPI(t, testkit.Database(t), queryapi.Config{})

	t.Run("empty read model is an empty array", func(t *testing.T) {
		resp, body := a.get(t, "/v1/messages")
		if resp.StatusCode != http.StatusOK || strings.TrimSpace(string(body)) != "[]" {
			t.Fatalf("status %d body %q, want 200 []", resp.StatusCode, body)
		}
		if l := resp.Header.Get("Link"); l != "" {
			t.Errorf("Link %q on an empty list", l)
		}
		if n := a.count(t, "/v1/messages?count=1"); n != 0 {
			t.Errorf("count %d, want 0", n)
		}
	})

	base := utc(2026, 2, 10, 8, 0, 0, 0)
	// Inserted out of time order, so that order must come from the query.
	msgs := []message.Message{
		msg(base.Add(3*time.Minute), "go", "third"),
		msg(base.Add(1*time.Minute), "go", "first"),
		msg(base.Add(5*time.Minute), "rust", "fifth"),
		msg(base.Add(2*time.Minute), "go-lang", "second"),
		msg(base.Add(4*time.Minute), "go", "fourth"),
		msg(base.Add(6*time.Millisecond), "zig", "zeroth"),
	}
	a.put(t, msgs...)

	t.Run("whole messages, newest first", func(t *testing.T) {
		resp, body := a.get(t, "/v1/messages")
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("status %d body %s", resp.StatusCode, body)
		}
		var got []map[string]string
		if err := json.Unmarshal(body, &got); err != nil {
			t.Fatalf("body %s: %v", body, err)
		}
		want := slices.Clone(msgs)
		slices.SortFunc(want, func(x, y message.Message) int { return y.CreatedAt.Compare(x.CreatedAt) })
		if len(got) != len(want) {
			t.Fatalf("got %d messages, want %d: %s", len(got), len(want), body)
		}
		for i, w := range want {
			exp := map[string]string{
				"id": w.ID, "userId": w.UserID, "text": w.Text, "tag": w.Tag,
				"createdAt": w.CreatedAt.Format("2006-01-02T15:04:05.000Z"),
			}
			if fmt.Sprint(got[i]) != fmt.Sprint(exp) {
				t.Errorf("message %d:\n got  %v\n want %v", i, got[i], exp)
			}
		}
	})

	tests := []struct {
		name  string
		query string
		want  []string
	}{
		{"tag", "tag=go", newestFirst(msgs, func(m message.Message) bool { return m.Tag == "go" })},
		{"tag upper case", "tag=GO", newestFirst(msgs, func(m message.Message) bool { return m.Tag == "go" })},
		{"tag with #", "tag=%23gO", newestFirst(msgs, func(m message.Message) bool { return m.Tag == "go" })},
		{"tag with a dash, upper case", "tag=GO-LANG", []string{msgs[3].ID}},
		{"tag is not a prefix match", "tag=g", []string{}},
		{"unknown tag", "tag=nosuchtag", []string{}},
		{"range with nothing in it", "dateStart=2030-01-01", []string{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, next := a.list(t, "/v1/messages?"+tt.query)
			if !slices.Equal(got, tt.want) {
				t.Errorf("ids\n got  %v\n want %v", got, tt.want)
			}
			if next != "" {
				t.Errorf("Link to %s on a short list", next)
			}
		})
	}
}

func TestCountMatchesList(t *testing.T) {
	a := newAPI(t, testkit.Database(t), queryapi.Config{})
	var msgs []message.Message
	start := utc(2026, 4, 1, 0, 0, 0, 0)
	tags := []string{"go", "rust", "go", "zig", "go"}
	for i := range 15 {
		// Five a day, over three days.
		m := msg(start.Add(time.Duration(i/5)*24*time.Hour+time.Duration(i)*time.Hour), tags[i%len(tags)], fmt.Sprint("m", i))
		msgs = append(msgs, m)
	}
	a.put(t, msgs...)
	tests := []struct {
		name  string
		query string
		want  int
	}{
		{"all", "", 15},
		{"tag go", "tag=go", 9},
		{"tag GO", "tag=GO", 9},
		{"tag rust", "tag=rust", 3},
		{"unknown tag", "tag=cobol", 0},
		{"one day", "dateStart=2026-04-02&dateEnd=2026-04-02", 5},
		{"from a day on", "dateStart=2026-04-02", 10},
		{"up to a day", "dateEnd=2026-04-01", 5},
		{"tag and days", "tag=go&dateStart=2026-04-01&dateEnd=2026-04-02", 6},
		{"instants", "dateStart=2026-04-01T02:00:00Z&dateEnd=2026-04-01T04:00:00Z", 2},
		{"empty range", "dateStart=2026-04-02&dateEnd=2026-04-02T00:00:00Z", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sep := "?"
			if tt.query != "" {
				sep = "?" + tt.query + "&"
			}
			n := a.count(t, "/v1/messages"+sep+"count=1")
			if n != tt.want {
				t.Errorf("count %d, want %d", n, tt.want)
			}
			ids, next := a.list(t, "/v1/messages"+sep+"count=0")
			if len(ids) != n || next != "" {
				t.Errorf("list of %d (next %q), count %d", len(ids), next, n)
			}
		})
	}
	t.Run("body is exactly the integer", func(t *testing.T) {
		_, body := a.get(t, "/v1/messages?count=1&tag=rust")
		if string(body) != "3\n" && string(body) != "3" {
			t.Errorf("body %q, want 3", body)
		}
	})
}

func TestDateEdges(t *testing.T) {
	a := newAPI(t, testkit.Database(t), queryapi.Config{})
	// Day D is 2026-01-15.
	startD := msg(utc(2026, 1, 15, 0, 0, 0, 0), "go", "first instant of D")
	lastD := msg(utc(2026, 1, 15, 23, 59, 59, 999e6), "go", "last millisecond of D")
	firstD1 := msg(utc(2026, 1, 16, 0, 0, 0, 0), "go", "first instant of D+1")
	lastD1 := msg(utc(2026, 1, 16, 23, 59, 59, 999e6), "go", "last millisecond of D+1")
	firstD2 := msg(utc(2026, 1, 17, 0, 0, 0, 0), "go", "first instant of D+2")
	beforeD := msg(utc(2026, 1, 14, 23, 59, 59, 999e6), "go", "last millisecond of D-1")
	mid := msg(utc(2026, 1, 15, 12, 0, 0, 0), "go", "noon of D")
	// The smallest id of D+1's first millisecond (no entropy bits set): the
	// id a bound at that instant is compared against.
	floorD1 := msg(utc(2026, 1, 16, 0, 0, 0, 0), "go", "smallest id of D+1")
	floorD1.ID = ulid.MustNew(ulid.Timestamp(floorD1.CreatedAt), bytes.NewReader(make([]byte, 10))).String()
	a.put(t, beforeD, startD, mid, lastD, floorD1, firstD1, lastD1, firstD2)
	ids := func(ms ...message.Message) []string {
		out := []string{}
		for _, m := range ms {
			out = append(out, m.ID)
		}
		return out
	}
	tests := []struct {
		name  string
		query string
		want  []string // newest first
	}{
		{"dateEnd=D includes its last millisecond, not D+1",
			"dateEnd=2026-01-15", ids(lastD, mid, startD, beforeD)},
		{"dateStart=D+1 starts at its first instant",
			"dateStart=2026-01-16", ids(firstD2, lastD1, firstD1, floorD1)},
		{"dateStart=D&dateEnd=D is the whole day D",
			"dateStart=2026-01-15&dateEnd=2026-01-15", ids(lastD, mid, startD)},
		{"dateStart=D+1&dateEnd=D+1 is the whole day D+1",
			"dateStart=2026-01-16&dateEnd=2026-01-16", ids(lastD1, firstD1, floorD1)},
		{"two whole days",
			"dateStart=2026-01-15&dateEnd=2026-01-16", ids(lastD1, firstD1, floorD1, lastD, mid, startD)},
		{"instant dateEnd at a message excludes it",
			"dateEnd=2026-01-16T00:00:00Z", ids(lastD, mid, startD, beforeD)},
		{"instant dateEnd with milliseconds at a message excludes it",
			"dateEnd=2026-01-15T23:59:59.999Z", ids(mid, startD, beforeD)},
		{"instant dateEnd just after a message includes it",
			"dateEnd=2026-01-15T23:59:59.999000001Z", ids(lastD, mid, startD, beforeD)},
		{"instant dateStart at a message includes it",
			"dateStart=2026-01-15T23:59:59.999Z", ids(firstD2, lastD1, firstD1, floorD1, lastD)},
		{"instant dateStart just after a message excludes it",
			"dateStart=2026-01-15T23:59:59.9990001Z", ids(firstD2, lastD1, firstD1, floorD1)},
		{"instant range one millisecond wide",
			"dateStart=2026-01-15T23:59:59.999Z&dateEnd=2026-01-16T00:00:00Z", ids(lastD)},
		{"instant range of D+1's first millisecond",
			"dateStart=2026-01-16T00:00:00Z&dateEnd=2026-01-16T00:00:00.001Z", ids(firstD1, floorD1)},
		{"offset instant at a message includes it",
			"dateStart=2026-01-16T05:30:00%2B05:30&dateEnd=2026-01-16T01:00:00.001%2B01:00", ids(firstD1, floorD1)},
		{"day start equal to instant end is empty",
			"dateStart=2026-01-16&dateEnd=2026-01-16T00:00:00Z", ids()},
		{"instant start at the last millisecond of day end",
			"dateStart=2026-01-15T23:59:59.999Z&dateEnd=2026-01-15", ids(lastD)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, _ := a.list(t, "/v1/messages?"+tt.query)
			if !slices.Equal(got, tt.want) {
				t.Errorf("ids\n got  %v\n want %v", got, tt.want)
			}
			if n := a.count(t, "/v1/messages?count=1&"+tt.query); n != len(tt.want) {
				t.Errorf("count %d, want %d", n, len(tt.want))
			}
		})
	}
}

// walk follows Link rel="next" from target and returns each page's ids.
func (a *api) walk(t *testing.T, target string) [][]string {
	t.Helper()
	var pages [][]string
	for target != "" {
		if len(pages) > 100 {
			t.Fatalf("more than 100 pages; last Link %s", target)
		}
		ids, next := a.list(t, target)
		pages = append(pages, ids)
		target = next
	}
	return pages
}

func pageSizes(pages [][]string) []int {
	var n []int
	for _, p := range pages {
		n = append(n, len(p))
	}
	return n
}

func TestPagination(t *testing.T) {
	a := newAPI(t, testkit.Database(t), queryapi.Config{})
	start := utc(2026, 5, 1, 0, 0, 0, 0)
	var msgs []message.Message
	for i := range 25 {
		msgs = append(msgs, msg(start.Add(time.Duration(i)*time.Minute), "page", fmt.Sprint("p", i)))
	}
	// Two messages in one millisecond: the cursor must tell them apart.
	msgs = append(msgs[:24], msg(msgs[23].CreatedAt, "page", "p23 twin"))
	// Filtered pagination: 30 messages over three days, two tags.
	var mixed []message.Message
	for i := range 30 {
		tag := "Even"
		if i%3 == 0 {
			tag = "odd"
		}
		m := msg(utc(2026, 6, 1, 0, 0, 0, 0).Add(time.Duration(i)*150*time.Minute), strings.ToLower(tag), fmt.Sprint("x", i))
		mixed = append(mixed, m)
	}
	a.put(t, append(slices.Clone(msgs), mixed...)...)

	t.Run("pages of 10, 10, 5 newest first", func(t *testing.T) {
		pages := a.walk(t, "/v1/messages?tag=page&limit=10")
		if got := pageSizes(pages); !slices.Equal(got, []int{10, 10, 5}) {
			t.Fatalf("page sizes %v, want [10 10 5]", got)
		}
		if got, want := slices.Concat(pages...), newestFirst(msgs, all); !slices.Equal(got, want) {
			t.Errorf("pages joined\n got  %v\n want %v", got, want)
		}
	})

	t.Run("last page exactly full has no Link", func(t *testing.T) {
		pages := a.walk(t, "/v1/messages?tag=page&limit=5")
		if got := pageSizes(pages); !slices.Equal(got, []int{5, 5, 5, 5, 5}) {
			t.Fatalf("page sizes %v, want five of 5", got)
		}
		if got, want := slices.Concat(pages...), newestFirst(msgs, all); !slices.Equal(got, want) {
			t.Errorf("pages joined\n got  %v\n want %v", got, want)
		}
	})

	t.Run("limit larger than the list", func(t *testing.T) {
		pages := a.walk(t, "/v1/messages?tag=page&limit=1000")
		if got := pageSizes(pages); !slices.Equal(got, []int{25}) {
			t.Fatalf("page sizes %v, want [25]", got)
		}
	})

	t.Run("limit 1", func(t *testing.T) {
		pages := a.walk(t, "/v1/messages?tag=page&limit=1")
		if got, want := slices.Concat(pages...), newestFirst(msgs, all); len(pages) != 25 || !slices.Equal(got, want) {
			t.Errorf("%d pages joined\n got  %v\n want %v", len(pages), got, want)
		}
	})

	checkFilteredPagination(t, a, mixed)
}

// checkFilteredPagination walks filtered lists of mixed, stored in a, page
// by page.
func checkFilteredPagination(t *testing.T, a *api, mixed []message.Message) {
	t.Helper()
	t.Run("tag and day range", func(t *testing.T) {
		from, to := day(2026, 6, 2), day(2026, 6, 4)
		want := newestFirst(mixed, func(m message.Message) bool {
			return m.Tag == "even" && !m.CreatedAt.Before(from) && m.CreatedAt.Before(to)
		})
		if len(want) != 13 {
			t.Fatalf("fixture: %d messages in range, want 13", len(want))
		}
		// The tag's '#' must come back escaped in the Link, or the rest
		// of the URL would be a fragment.
		pages := a.walk(t, "/v1/messages?tag=%23EVEN&dateStart=2026-06-02&dateEnd=2026-06-03&limit=4")
		if got := pageSizes(pages); !slices.Equal(got, []int{4, 4, 4, 1}) {
			t.Fatalf("page sizes %v, want [4 4 4 1]", got)
		}
		if got := slices.Concat(pages...); !slices.Equal(got, want) {
			t.Errorf("pages joined\n got  %v\n want %v", got, want)
		}
	})

	t.Run("tag and instant range", func(t *testing.T) {
		from, to := utc(2026, 6, 1, 5, 0, 0, 0), utc(2026, 6, 3, 2, 30, 0, 0)
		want := newestFirst(mixed, func(m message.Message) bool {
			return m.Tag == "odd" && !m.CreatedAt.Before(from) && m.CreatedAt.Before(to)
		})
		if len(want) < 4 {
			t.Fatalf("fixture: only %d messages in range", len(want))
		}
		q := url.Values{"tag": {"odd"}, "dateStart": {from.Format(time.RFC3339)}, "dateEnd": {to.Format(time.RFC3339)}, "limit": {"2"}}
		pages := a.walk(t, "/v1/messages?"+q.Encode())
		if got := slices.Concat(pages...); !slices.Equal(got, want) {
			t.Errorf("pages joined\n got  %v\n want %v", got, want)
		}
		for i, p := range pages[:len(pages)-1] {
			if len(p) != 2 {
				t.Errorf("page %d has %d messages, want 2", i, len(p))
			}
		}
	})

	t.Run("Link keeps the other parameters", func(t *testing.T) {
		resp, body := a.get(t, "/v1/messages?tag=Even&dateStart=2026-06-02&dateEnd=2026-06-03&limit=4")
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("status %d body %s", resp.StatusCode, body)
		}
		next := nextLink(t, resp)
		u, err := url.Parse(next)
		if err != nil {
			t.Fatal(err)
		}
		q := u.Query()
		for k, v := range map[string]string{"tag": "Even", "dateStart": "2026-06-02", "dateEnd": "2026-06-03", "limit": "4"} {
			if q.Get(k) != v {
				t.Errorf("Link %s: %s=%q, want %q", next, k, q.Get(k), v)
			}
		}
		if q.Get("cursor") == "" {
			t.Errorf("Link %s has no cursor", next)
		}
	})
}

func TestPaginationIsStableUnderNewMessages(t *testing.T) {
	a := newAPI(t, testkit.Database(t), queryapi.Config{})
	start := utc(2026, 7, 1, 12, 0, 0, 0)
	var msgs []message.Message
	for i := range 25 {
		msgs = append(msgs, msg(start.Add(time.Duration(i)*time.Second), "live", fmt.Sprint("m", i)))
	}
	a.put(t, msgs...)
	want := newestFirst(msgs, all)

	var pages [][]string
	target := "/v1/messages?tag=live&limit=10"
	for i := 0; target != ""; i++ {
		if i > 10 {
			t.Fatalf("more than 10 pages")
		}
		ids, next := a.list(t, target)
		pages = append(pages, ids)
		// Newer messages arrive after each page, some under the same tag.
		a.put(t,
			msg(start.Add(time.Hour+time.Duration(i)*time.Minute), "live", fmt.Sprint("new", i)),
			msg(start.Add(time.Hour+time.Duration(i)*time.Minute+time.Second), "other", fmt.Sprint("new other", i)),
		)
		target = next
	}
	if got := pageSizes(pages); !slices.Equal(got, []int{10, 10, 5}) {
		t.Fatalf("page sizes %v, want [10 10 5]", got)
	}
	if got := slices.Concat(pages...); !slices.Equal(got, want) {
		t.Errorf("pages joined\n got  %v\n want %v", got, want)
	}
	// The new messages are there for a fresh first page.
	first, _ := a.list(t, "/v1/messages?tag=live&limit=3")
	if len(first) != 3 || slices.Contains(want, first[0]) {
		t.Errorf("fresh first page %v does not start with a new message", first)
	}
}

func TestDefaultLimit(t *testing.T) {
	a := newAPI(t, testkit.Database(t), queryapi.Config{})
	start := utc(2026, 8, 1, 0, 0, 0, 0)
	var msgs []message.Message
	for i := range queryapi.DefaultLimit + 1 {
		msgs = append(msgs, msg(start.Add(time.Duration(i)*time.Second), "bulk", fmt.Sprint("b", i)))
	}
	a.put(t, msgs...)
	pages := a.walk(t, "/v1/messages")
	if got := pageSizes(pages); !slices.Equal(got, []int{100, 1}) {
		t.Fatalf("page sizes %v, want [100 1]", got)
	}
	if got, want := slices.Concat(pages...), newestFirst(msgs, all); !slices.Equal(got, want) {
		t.Errorf("pages joined differ from all messages newest first")
	}
	if n := a.count(t, "/v1/messages?count=1"); n != 101 {
		t.Errorf("count %d, want 101 (not bounded by the page limit)", n)
	}
}

func TestGetByID(t *testing.T) {
	a := newAPI(t, testkit.Database(t), queryapi.Config{})
	m := msg(utc(2026, 3, 4, 5, 6, 7, 89e6), "go", `héllo "wörld" <b>&</b>`)
	m.UserID = "alice@example.com"
	other := msg(utc(2026, 3, 4, 5, 6, 8, 0), "go", "other")
	a.put(t, m, other)

	t.Run("found", func(t *testing.T) {
		resp, body := a.get(t, "/v1/messages/"+m.ID)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("status %d body %s", resp.StatusCode, body)
		}
		if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
			t.Errorf("Content-Type %q, want application/json", ct)
		}
		var got map[string]any
		dec := json.NewDecoder(bytes.NewReader(body))
		if err := dec.Decode(&got); err != nil {
			t.Fatalf("body %s: %v", body, err)
		}
		want := map[string]any{
			"id":        m.ID,
			"userId":    "alice@example.com",
			"text":      `héllo "wörld" <b>&</b>`,
			"tag":       "go",
			"createdAt": "2026-03-04T05:06:07.089Z",
		}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("message\n got  %v\n want %v", got, want)
		}
	})

	t.Run("whole second keeps its milliseconds", func(t *testing.T) {
		_, body := a.get(t, "/v1/messages/"+other.ID)
		var raw map[string]any
		if err := json.Unmarshal(body, &raw); err != nil {
			t.Fatalf("body %s: %v", body, err)
		}
		if raw["createdAt"] != "2026-03-04T05:06:08.000Z" || raw["id"] != other.ID {
			t.Errorf("got %v, want id %s createdAt 2026-03-04T05:06:08.000Z", raw, other.ID)
		}
	})

	notFound := []string{
		ulid.MustNew(ulid.Timestamp(m.CreatedAt), rand.Reader).String(), // same millisecond, other id
		"00000000000000000000000000",
		"7ZZZZZZZZZZZZZZZZZZZZZZZZZ",
	}
	for _, id := range notFound {
		t.Run("unknown "+id, func(t *testing.T) {
			resp, body := a.get(t, "/v1/messages/"+id)
			checkProblem(t, resp, body, http.StatusNotFound)
		})
	}

	malformed := []string{
		"123",
		"not-a-ulid",
		m.ID + "0",                   // 27 characters
		m.ID[:25],                    // 25 characters
		"8ZZZZZZZZZZZZZZZZZZZZZZZZZ", // past the largest ULID
		"0000000000000000000000000U", // U is not Crockford base32
		"%20" + m.ID[1:],
	}
	for _, id := range malformed {
		t.Run("malformed "+id, func(t *testing.T) {
			resp, body := a.get(t, "/v1/messages/"+id)
			checkProblem(t, resp, body, http.StatusBadRequest)
		})
	}
}

func TestBadRequests(t *testing.T) {
	a := newAPI(t, testkit.Database(t), queryapi.Config{})
	a.put(t, msg(utc(2026, 1, 1, 0, 0, 0, 0), "go", "x"))
	for _, q := range []string{
		"tag=", "tag=a%20b", "dateStart=2026-13-01", "dateEnd=yesterday", "dateStart=2026-1-1",
		"dateStart=2026-01-02&dateEnd=2026-01-01", "dateStart=2026-01-02T00:00:00Z&dateEnd=2026-01-01",
		"count=2", "count=true", "count=", "count=1&limit=5", "count=1&cursor=" + queryapi.EncodeCursor("01ARZ3NDEKTSV4RRFFQ69G5FAV"),
		"limit=0", "limit=1001", "limit=abc", "cursor=garbage!", "cursor=", "foo=bar", "tag=go&tag=go",
	} {
		t.Run(q, func(t *testing.T) {
			resp, body := a.get(t, "/v1/messages?"+q)
			checkProblem(t, resp, body, http.StatusBadRequest)
		})
	}
}

func TestOtherErrorsAreProblems(t *testing.T) {
	a := newAPI(t, testkit.Database(t), queryapi.Config{})
	m := msg(utc(2026, 1, 1, 0, 0, 0, 0), "go", "x")
	a.put(t, m)
	tests := []struct {
		name   string
		method string
		target string
		status int
	}{
		{"trailing slash is no route", http.MethodGet, "/v1/messages/", http.StatusNotFound},
		{"path under a message", http.MethodGet, "/v1/messages/" + m.ID + "/replies", http.StatusNotFound},
		{"unknown /v1 path", http.MethodGet, "/v1/tags", http.StatusNotFound},
		{"DELETE a message", http.MethodDelete, "/v1/messages/" + m.ID, http.StatusMethodNotAllowed},
		{"PUT the list", http.MethodPut, "/v1/messages", http.StatusMethodNotAllowed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, err := http.NewRequest(tt.method, a.url+tt.target, nil)
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set(web.UserIDHeader, testUser)
			resp, err := (&http.Client{Timeout: 20 * time.Second}).Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			body, err := io.ReadAll(resp.Body)
			if err != nil {
				t.Fatal(err)
			}
			checkProblem(t, resp, body, tt.status)
		})
	}
	// The message is still there: DELETE did nothing.
	if resp, body := a.get(t, "/v1/messages/"+m.ID); resp.StatusCode != http.StatusOK {
		t.Errorf("after DELETE: status %d body %s", resp.StatusCode, body)
	}
}

// A query string that does not parse must not lose the parameters it holds:
// answering it as if they were absent widens the answer (an unfiltered list
// for a filtered request).
func TestMalformedQueryStringIsRejected(t *testing.T) {
	a := newAPI(t, testkit.Database(t), queryapi.Config{})
	a.put(t, msg(utc(2026, 1, 1, 0, 0, 0, 0), "go", "x"), msg(utc(2026, 1, 1, 0, 0, 1, 0), "rust", "y"))
	for _, q := range []string{
		"tag=go%zz",      // bad percent-escape
		"tag=go;count=1", // semicolon, no longer a separator
		"count=1&tag=%",
	} {
		t.Run(q, func(t *testing.T) {
			resp, body := a.get(t, "/v1/messages?"+q)
			checkProblem(t, resp, body, http.StatusBadRequest)
		})
	}
}

func TestReadModelUnavailable(t *testing.T) {
	m := testkit.Mongo(t)
	a := newAPI(t, testkit.DatabaseOn(t, m.URI()), queryapi.Config{Timeout: 2 * time.Second, RetryAfter: 3 * time.Second})
	known := msg(utc(2026, 1, 1, 0, 0, 0, 0), "go", "x")
	a.put(t, known)
	if ids, _ := a.list(t, "/v1/messages"); len(ids) != 1 {
		t.Fatalf("before the outage: %d messages, want 1", len(ids))
	}
	m.Close()

	for _, target := range []string{
		"/v1/messages",
		"/v1/messages?tag=go&dateStart=2026-01-01&limit=5",
		"/v1/messages?count=1",
		"/v1/messages?count=1&tag=go",
		"/v1/messages/" + known.ID,
	} {
		t.Run(target, func(t *testing.T) {
			t.Parallel()
			start := time.Now()
			resp, body := a.get(t, target)
			elapsed := time.Since(start)
			checkProblem(t, resp, body, http.StatusServiceUnavailable)
			if ra := resp.Header.Get("Retry-After"); ra != "3" {
				t.Errorf("Retry-After %q, want 3", ra)
			}
			if elapsed > 6*time.Second {
				t.Errorf("answered after %v; the timeout is 2s", elapsed)
			}
		})
	}
}
