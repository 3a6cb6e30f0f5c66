// Package queryapi is the read API: GET /v1/messages with its tag, date,
// count and paging parameters, and GET /v1/messages/{id}, answered from the
// read model only.
package queryapi

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/julienschmidt/httprouter"
	"github.com/messages-io/messages/message"
	"github.com/messages-io/messages/position"
	"github.com/messages-io/messages/readmodel"
	"github.com/messages-io/messages/web"
	"github.com/oklog/ulid/v2"
	"github.com/prometheus/client_golang/prometheus"
)

// Reader answers queries from the read model.
type Reader interface {
	Get(ctx context.Context, id string) (message.Message, error)
	List(ctx context.Context, p readmodel.Page) ([]message.Message, error)
	Count(ctx context.Context, f readmodel.Filter) (int64, error)
}

// Paging limits.
const (
	DefaultLimit = 100
	MaxLimit     = 1000
)

// Config holds the query API's options.
type Config struct {
	// Timeout bounds one read model query; past it the answer is 503.
	// Default 5s.
	Timeout time.Duration
	// RetryAfter is what a 503 tells the caller to wait. Default 1s.
	RetryAfter time.Duration
	// Layout is the event log's, whose places consistency tokens name.
	// Unset, a request with a token is refused.
	Layout position.Layout
	// ConsistencyWait bounds how long a read with consistency tokens
	// waits for the read model to fold them. Default
	// DefaultConsistencyWait, at most MaxConsistencyWait.
	ConsistencyWait time.Duration
	// PollInterval is how often the checkpoints are read while a request
	// waits on them. Default 10ms.
	PollInterval time.Duration
	// Registerer takes the query API's metrics; nil registers them nowhere.
	Registerer prometheus.Registerer
	// Streams serves and bounds live streams.
	Streams StreamConfig
}

func (c *Config) setDefaults() {
	if c.Timeout == 0 {
		c.Timeout = 5 * time.Second
	}
	if c.RetryAfter == 0 {
		c.RetryAfter = time.Second
	}
	if c.ConsistencyWait == 0 {
		c.ConsistencyWait = DefaultConsistencyWait
	}
	c.ConsistencyWait = min(c.ConsistencyWait, MaxConsistencyWait)
	if c.PollInterval == 0 {
		c.PollInterval = 10 * time.Millisecond
	}
	if c.Registerer == nil {
		c.Registerer = prometheus.NewRegistry()
	}
	c.Streams.setDefaults()
}

// DefaultConfig holds the options a zero Config takes.
func DefaultConfig() Config {
	var c Config
	c.setDefaults()
	return c
}

// DefaultAddr is the address the query API listens on unless told
// otherwise.
const DefaultAddr = ":8082"

// API serves the read side of /v1/messages.
type API struct {
	rm  Reader
	log *slog.Logger
	cfg Config
	// progress reads the checkpoints, when rm can; folds shares their
	// reads among the requests that wait on consistency tokens.
	progress Progress
	folds    *watermarks
	metrics  *metrics
}

// New returns the query API reading from rm. When rm also tells its
// Progress, reads take consistency tokens and lists and counts carry an
// ETag.
func New(rm Reader, log *slog.Logger, cfg Config) *API {
	cfg.setDefaults()
	a := &API{rm: rm, log: log, cfg: cfg, metrics: newMetrics(cfg.Registerer)}
	if p, ok := rm.(Progress); ok {
		a.progress = p
		a.folds = newWatermarks(p, cfg.PollInterval)
	}
	return a
}

// Routes registers the query API's endpoints on rt.
func (a *API) Routes(rt *web.Router) {
	rt.Route(http.MethodGet, "/v1/messages", http.HandlerFunc(a.list))
	rt.Route(http.MethodGet, "/v1/messages/:id", http.HandlerFunc(a.get))
}

func (a *API) get(w http.ResponseWriter, r *http.Request) {
	// ULIDs are case-insensitive; stored ids are in canonical upper case.
	id := strings.ToUpper(httprouter.ParamsFromContext(r.Context()).ByName("id"))
	if !message.ValidID(id) {
		web.WriteProblem(w, r, http.StatusBadRequest, "message id must be a ULID of 26 characters")
		return
	}
	if _, ok := a.await(w, r); !ok {
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), a.cfg.Timeout)
	defer cancel()
	m, err := a.rm.Get(ctx, id)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	writeMessage(w, r, m)
}

func (a *API) list(w http.ResponseWriter, r *http.Request) {
	if wantsStream(r) {
		a.stream(w, r)
		return
	}
	params, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		web.WriteProblem(w, r, http.StatusBadRequest, "the query string is malformed: "+err.Error())
		return
	}
	q, err := ParseQuery(params)
	if err != nil {
		web.WriteProblem(w, r, http.StatusBadRequest, err.Error())
		return
	}
	prog, ok := a.await(w, r)
	if !ok {
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), a.cfg.Timeout)
	defer cancel()
	if !a.conditional(ctx, w, r, q.Tag, prog) {
		return
	}
	if q.Count {
		n, err := a.rm.Count(ctx, q.Filter)
		if err != nil {
			a.fail(w, r, err)
			return
		}
		web.WriteJSON(w, http.StatusOK, n)
		return
	}
	// One more than asked tells whether another page follows.
	page := q.Page
	page.Limit++
	msgs, err := a.rm.List(ctx, page)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	if len(msgs) > q.Limit {
		msgs = msgs[:q.Limit]
		next := params
		next.Set("cursor", EncodeCursor(msgs[len(msgs)-1].ID))
		w.Header().Set("Link", fmt.Sprintf(`<%s?%s>; rel="next"`, r.URL.Path, next.Encode()))
	}
	if msgs == nil {
		msgs = []message.Message{}
	}
	web.WriteJSON(w, http.StatusOK, msgs)
}

// fail answers a read that went wrong.
func (a *API) fail(w http.ResponseWriter, r *http.Request, err error) {
	web.Failure{
		Log:         a.log,
		What:        "query",
		RetryAfter:  a.cfg.RetryAfter,
		NotFound:    "no such message",
		Unavailable: "the read model did not answer; retry later",
		Internal:    "the query failed",
	}.Answer(w, r, err)
}

// Query is a parsed GET /v1/messages.
type Query struct {
	readmodel.Page
	Count bool
}

var digits = regexp.MustCompile(`^[0-9]{1,4}$`)

var knownParams = map[string]bool{"tag": true, "dateStart": true, "dateEnd": true, "count": true, "limit": true, "cursor": true}

// ParseQuery checks the parameters of GET /v1/messages, saying what is wrong
// with the first bad one.
func ParseQuery(v url.Values) (Query, error) {
	for name, vals := range v {
		if !knownParams[name] {
			return Query{}, fmt.Errorf("unknown parameter %q; use tag, dateStart, dateEnd, count, limit, cursor", name)
		}
		if len(vals) > 1 {
			return Query{}, fmt.Errorf("parameter %s given %d times", name, len(vals))
		}
	}
	q := Query{Page: readmodel.Page{Limit: DefaultLimit}}
	if v.Has("tag") {
		tag, err := message.NormalizeTag(v.Get("tag"))
		if err != nil {
			return Query{}, err
		}
		q.Tag = tag
	}
	var from, to time.Time
	var endDay bool
	if v.Has("dateStart") {
		t, _, err := parseBound(v.Get("dateStart"), false)
		if err != nil {
			return Query{}, fmt.Errorf("dateStart: %w", err)
		}
		from, q.From = t, readmodel.At(t)
	}
	if v.Has("dateEnd") {
		t, day, err := parseBound(v.Get("dateEnd"), true)
		if err != nil {
			return Query{}, fmt.Errorf("dateEnd: %w", err)
		}
		to, endDay, q.To = t, day, readmodel.At(t)
	}
	if v.Has("dateStart") && v.Has("dateEnd") && (from.After(to) || endDay && from.Equal(to)) {
		return Query{}, errors.New("dateStart is after dateEnd")
	}
	switch c := v.Get("count"); {
	case !v.Has("count"), c == "0":
	case c == "1":
		q.Count = true
		if v.Has("limit") || v.Has("cursor") {
			return Query{}, errors.New("limit and cursor apply to lists, not to count=1")
		}
	default:
		return Query{}, errors.New("count must be 0 or 1")
	}
	if v.Has("limit") {
		n, err := strconv.Atoi(v.Get("limit"))
		if err != nil || !digits.MatchString(v.Get("limit")) || n < 1 || n > MaxLimit {
			return Query{}, fmt.Errorf("limit must be a whole number from 1 to %d", MaxLimit)
		}
		q.Limit = n
	}
	if v.Has("cursor") {
		id, err := DecodeCursor(v.Get("cursor"))
		if err != nil {
			return Query{}, err
		}
		q.Before = id
	}
	return q, nil
}

// rfc3339 is the grammar of an RFC 3339 date-time (section 5.6): 'T' and
// 'Z' in either case, a fraction after '.' only, and a numeric offset of
// hours and minutes. The ranges of its fields are checked apart.
var rfc3339 = regexp.MustCompile(`^[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt]([0-9]{2}):([0-9]{2}):([0-9]{2})(\.[0-9]+)?(?:[Zz]|[+-]([0-9]{2}):([0-9]{2}))$`)

// parseBound reads a date bound: YYYY-MM-DD, a whole UTC day (an end bound
// includes its day, so it stands for the start of the next), or an RFC 3339
// instant. An instant's offset must be within RFC 3339's ranges, hours 00-23
// and minutes 00-59, which Go's parser does not check; a leap second, :60,
// is refused, as time.Time cannot hold it.
func parseBound(s string, end bool) (t time.Time, day bool, err error) {
	if len(s) == len(time.DateOnly) {
		t, err := time.Parse(time.DateOnly, s)
		if err != nil {
			return time.Time{}, false, fmt.Errorf("%q is not a date (YYYY-MM-DD)", s)
		}
		if end {
			t = t.AddDate(0, 0, 1)
		}
		return t, true, nil
	}
	m := rfc3339.FindStringSubmatch(s)
	if m == nil {
		return time.Time{}, false, fmt.Errorf("%q is neither a date (YYYY-MM-DD) nor an RFC 3339 time", s)
	}
	if m[5] != "" && (m[5] > "23" || m[6] > "59") {
		return time.Time{}, false, fmt.Errorf("%q has an offset out of range: hours 00-23, minutes 00-59", s)
	}
	if m[3] == "60" && m[1] <= "23" && m[2] <= "59" {
		return time.Time{}, false, fmt.Errorf("%q is a leap second, which is not supported; use :59 or the next minute", s)
	}
	// Only T and Z are letters in it.
	t, err = time.Parse(time.RFC3339Nano, strings.ToUpper(s))
	if err != nil {
		return time.Time{}, false, fmt.Errorf("%q is not a valid RFC 3339 time: %w", s, err)
	}
	return t.UTC(), false, nil
}

// EncodeCursor makes the opaque cursor that continues a list after the
// message with id.
func EncodeCursor(id string) string {
	u, err := ulid.ParseStrict(id)
	if err != nil {
		return ""
	}
	return base64.RawURLEncoding.EncodeToString(u[:])
}

// DecodeCursor returns the message id a cursor continues after. Decoding is
// strict, so that each id has one cursor: without it, a cursor whose last
// character differs only in bits the decoder drops would be taken too. The
// length is checked first, because the decoder skips line breaks.
func DecodeCursor(c string) (string, error) {
	if len(c) != base64.RawURLEncoding.EncodedLen(len(ulid.ULID{})) {
		return "", errors.New("cursor is not one this API gave out")
	}
	b, err := base64.RawURLEncoding.Strict().DecodeString(c)
	if err != nil || len(b) != len(ulid.ULID{}) {
		return "", errors.New("cursor is not one this API gave out")
	}
	var u ulid.ULID
	copy(u[:], b)
	return u.String(), nil
}
