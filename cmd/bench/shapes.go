package main

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/messages-io/messages/message"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// pageSize is the limit of every list the shapes ask for.
const pageSize = 100

// shape is one query shape of GET /v1/messages: a filter, and either a
// count or the page depth pages after the first.
type shape struct {
	name      string
	tag       string
	from, to  time.Time // created in [from, to); zero leaves that side open
	wholeDays bool      // the range is asked for as YYYY-MM-DD days
	count     bool
	depth     int
}

// shapes are the shapes measured on history h.
func shapes(h history) []shape {
	day := h.start().Add(182 * 24 * time.Hour)
	from := h.start().Add(40*24*time.Hour + 5*time.Hour + 6*time.Minute + 7123*time.Millisecond)
	to := h.start().Add(300*24*time.Hour + 17*time.Hour + 29*time.Minute + 58877*time.Millisecond)
	dense := h.denseHour()
	denseFrom, denseTo := dense.Add(10*time.Minute+250*time.Millisecond), dense.Add(50*time.Minute+750*time.Millisecond)
	return []shape{
		{name: "newest page"},
		{name: "tag page", tag: "topic3"},
		{name: "tag, one day", tag: "topic3", from: day, to: day.Add(24 * time.Hour), wholeDays: true},
		{name: "page 100 deep", depth: 99},
		{name: "count, instant edges", from: from, to: to, count: true},
		{name: "count, instant edges, tag", tag: "topic3", from: from, to: to, count: true},
		{name: "dense hour, page", tag: burstTag, from: denseFrom, to: denseTo},
		{name: "dense hour, count", tag: burstTag, from: denseFrom, to: denseTo, count: true},
	}
}

// params are the parameters of the shape's first request to GET
// /v1/messages, but for count=1.
func (s shape) params() string {
	v := url.Values{}
	if s.tag != "" {
		v.Set("tag", s.tag)
	}
	switch {
	case s.wholeDays:
		v.Set("dateStart", s.from.Format(time.DateOnly))
		v.Set("dateEnd", s.to.Add(-24*time.Hour).Format(time.DateOnly))
	case !s.from.IsZero():
		v.Set("dateStart", s.from.Format(message.TimeFormat))
		v.Set("dateEnd", s.to.Format(message.TimeFormat))
	}
	if !s.count {
		v.Set("limit", strconv.Itoa(pageSize))
	}
	return v.Encode()
}

func (s shape) has(m message.Message) bool {
	return (s.tag == "" || m.Tag == s.tag) &&
		(s.from.IsZero() || !m.CreatedAt.Before(s.from)) && (s.to.IsZero() || m.CreatedAt.Before(s.to))
}

// filter is the shape's filter on the messages collection; before, when
// not empty, is the id of the message a page deep in a shape with no date
// range continues after.
func (s shape) filter(before string) bson.M {
	f := bson.M{}
	if s.tag != "" {
		f["tag"] = s.tag
	}
	switch {
	case !s.from.IsZero():
		f["_id"] = bson.M{"$gte": idFloor(s.from), "$lt": idFloor(s.to)}
	case before != "":
		f["_id"] = bson.M{"$lt": before}
	}
	return f
}

// answer is what a shape must answer on one history: its count, and the
// newest messages up to the end of its page, newest first.
type answer struct {
	shape
	n      int64
	newest []message.Message
}

// page is the messages of page i, counted from 0.
func (a answer) page(i int) []message.Message {
	return a.newest[min(i*pageSize, len(a.newest)):min((i+1)*pageSize, len(a.newest))]
}

func (a *answer) add(m message.Message) {
	a.n++
	if a.count {
		return
	}
	a.newest = append(a.newest, m)
	if len(a.newest) >= 2*(a.depth+1)*pageSize {
		a.trim()
	}
}

func (a *answer) trim() {
	slices.SortFunc(a.newest, func(x, y message.Message) int { return strings.Compare(y.ID, x.ID) })
	a.newest = a.newest[:min(len(a.newest), (a.depth+1)*pageSize)]
}

// answers works out, in one pass over the history of n messages, what each
// shape must answer, holding at most twice the messages of each shape's
// pages.
func answers(h history, n int, ss []shape) []answer {
	as := make([]answer, len(ss))
	for i, s := range ss {
		as[i].shape = s
	}
	h.between(0, n, func(m message.Message) {
		for i := range as {
			if as[i].has(m) {
				as[i].add(m)
			}
		}
	})
	for i := range as {
		as[i].trim()
	}
	return as
}

// shapeResult is one shape measured at one size.
type shapeResult struct {
	name       string
	api, plain []time.Duration
	n          int64  // the count, or the messages on the page
	wrong      string // the first wrong answer, of the API or the plain find
}

// benchShapes measures every shape on the history of size messages: reps
// requests to the API after a warm-up, and plainReps plain finds or counts
// on coll, each answer checked.
func benchShapes(ctx context.Context, c *http.Client, base string, coll *mongo.Collection, h history, size, reps, plainReps int) ([]shapeResult, error) {
	var out []shapeResult
	for _, a := range answers(h, size, shapes(h)) {
		r, err := measure(ctx, c, base, coll, a, reps, plainReps)
		if err != nil {
			return out, fmt.Errorf("%s: %w", a.name, err)
		}
		out = append(out, r)
	}
	return out, nil
}

// readShapes asks the API every shape once, as a client reading the
// history would, and checks each answer.
func readShapes(ctx context.Context, c *http.Client, base string, h history, size int) error {
	for _, a := range answers(h, size, shapes(h)) {
		path, _, wrong, err := walk(ctx, c, base, a)
		if err == nil && wrong == "" {
			_, wrong, err = askAPI(ctx, c, base, path, a)
		}
		if err != nil {
			return fmt.Errorf("%s: %w", a.name, err)
		}
		if wrong != "" {
			return fmt.Errorf("%s: %s", a.name, wrong)
		}
	}
	return nil
}

func measure(ctx context.Context, c *http.Client, base string, coll *mongo.Collection, a answer, reps, plainReps int) (shapeResult, error) {
	r := shapeResult{name: a.name, n: a.n}
	if !a.count {
		r.n = int64(len(a.page(a.depth)))
	}
	path, before, wrong, err := walk(ctx, c, base, a)
	if err != nil || wrong != "" {
		r.wrong = wrong
		return r, err
	}
	for i := 0; i <= reps; i++ {
		d, wrong, err := askAPI(ctx, c, base, path, a)
		if err != nil {
			return r, err
		}
		r.wrong = cmp.Or(r.wrong, wrong)
		if i > 0 {
			r.api = append(r.api, d)
		}
	}
	for range plainReps {
		d, wrong, err := askPlain(ctx, coll, before, a)
		if err != nil {
			return r, fmt.Errorf("plain: %w", err)
		}
		r.wrong = cmp.Or(r.wrong, wrong)
		r.plain = append(r.plain, d)
	}
	return r, nil
}

// walk follows the shape's next links to its page and returns that page's
// path and the id its cursor continues after. Each page on the way is
// checked.
func walk(ctx context.Context, c *http.Client, base string, a answer) (path, before, wrong string, err error) {
	path = "/v1/messages?" + a.params()
	for i := range a.depth {
		msgs, next, err := list(ctx, c, base, path)
		if err != nil {
			return "", "", "", err
		}
		if w := differ(msgs, a.page(i)); w != "" {
			return "", "", fmt.Sprintf("API, page %d on the way: %s", i+1, w), nil
		}
		if next == "" || len(msgs) == 0 {
			return "", "", fmt.Sprintf("API: no next link after page %d", i+1), nil
		}
		path, before = next, msgs[len(msgs)-1].ID
	}
	return path, before, "", nil
}

// askAPI sends the shape's request and checks the answer.
func askAPI(ctx context.Context, c *http.Client, base, path string, a answer) (time.Duration, string, error) {
	t := time.Now()
	if a.count {
		n, err := count(ctx, c, base, a.params())
		d := time.Since(t)
		if err == nil && n != a.n {
			return d, fmt.Sprintf("API counted %d, not %d", n, a.n), nil
		}
		return d, "", err
	}
	msgs, _, err := list(ctx, c, base, path)
	d := time.Since(t)
	if w := differ(msgs, a.page(a.depth)); err == nil && w != "" {
		return d, "API: " + w, nil
	}
	return d, "", err
}

// askPlain finds or counts the shape's messages on coll and checks the
// answer.
func askPlain(ctx context.Context, coll *mongo.Collection, before string, a answer) (time.Duration, string, error) {
	t := time.Now()
	if a.count {
		n, err := coll.CountDocuments(ctx, a.filter(before))
		d := time.Since(t)
		if err == nil && n != a.n {
			return d, fmt.Sprintf("countDocuments counted %d, not %d", n, a.n), nil
		}
		return d, "", err
	}
	opts := options.Find().SetSort(bson.D{{Key: "_id", Value: -1}}).SetLimit(pageSize)
	cur, err := coll.Find(ctx, a.filter(before), opts)
	if err != nil {
		return 0, "", err
	}
	var docs []struct {
		ID        string    `bson:"_id"`
		UserID    string    `bson:"userId"`
		Text      string    `bson:"text"`
		Tag       string    `bson:"tag"`
		CreatedAt time.Time `bson:"createdAt"`
	}
	err = cur.All(ctx, &docs)
	d := time.Since(t)
	msgs := make([]message.Message, len(docs))
	for i, x := range docs {
		msgs[i] = message.Message{ID: x.ID, UserID: x.UserID, Text: x.Text, Tag: x.Tag, CreatedAt: x.CreatedAt}
	}
	if w := differ(msgs, a.page(a.depth)); err == nil && w != "" {
		return d, "plain find: " + w, nil
	}
	return d, "", err
}

// differ says how got differs from want, or "" when it does not.
func differ(got, want []message.Message) string {
	for i := range min(len(got), len(want)) {
		g, w := got[i], want[i]
		if g.ID != w.ID || g.UserID != w.UserID || g.Text != w.Text || g.Tag != w.Tag || !g.CreatedAt.Equal(w.CreatedAt) {
			return fmt.Sprintf("message %d is %s %q, not %s %q", i+1, g.ID, g.Text, w.ID, w.Text)
		}
	}
	if len(got) != len(want) {
		return fmt.Sprintf("%d messages, not %d", len(got), len(want))
	}
	return ""
}

// list gets one page of messages and the path of the next page, empty when
// there is none.
func list(ctx context.Context, c *http.Client, base, path string) ([]message.Message, string, error) {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, base+path, nil)
	req.Header.Set("X-User-ID", "bench")
	resp, err := c.Do(req)
	if err != nil {
		return nil, "", err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return nil, "", fmt.Errorf("GET %s: %s: %s", path, resp.Status, b)
	}
	var msgs []message.Message
	if err := json.Unmarshal(b, &msgs); err != nil {
		return nil, "", fmt.Errorf("GET %s: %w", path, err)
	}
	return msgs, nextLink(resp.Header.Get("Link")), nil
}

// nextLink is the target of a Link header's rel="next", empty when none.
func nextLink(h string) string {
	for _, l := range strings.Split(h, ",") {
		target, params, ok := strings.Cut(l, ";")
		if ok && strings.Contains(params, `rel="next"`) {
			return strings.Trim(strings.TrimSpace(target), "<>")
		}
	}
	return ""
}

func logShapes(size int, rs []shapeResult) {
	for _, r := range rs {
		verdict := "right"
		if r.wrong != "" {
			verdict = "WRONG: " + r.wrong
		}
		log.Printf("shapes at %d: %-26s API %v, plain %v (%.1f×), %d, %s", size, r.name+":",
			median(r.api), median(r.plain), mdur(r.plain)/mdur(r.api), r.n, verdict)
	}
}
