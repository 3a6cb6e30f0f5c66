// Package dispatcher is the write API: it validates POST /v1/messages, turns
// each accepted message into a message.created event and answers 201 only
// once the event store has acknowledged it.
//
// An append whose acknowledgement does not come has an unknown outcome: the
// event may be stored. The dispatcher resolves it where it can by publishing
// the event again with the same message id before its deadline: the stream's
// duplicate window keeps at most one copy, and the acknowledgement says
// whether the first was stored (Duplicate). So a POST is answered 201 when
// its event is stored, 503 of type OutcomeUnknownType when nothing could be
// learned before the deadline, and a plain 503 only when the append
// certainly stored nothing: it was never sent, or the store refused it.
package dispatcher

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"regexp"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/messages-io/messages/eventstore"
	"github.com/messages-io/messages/message"
	"github.com/messages-io/messages/position"
	"github.com/messages-io/messages/web"
	"github.com/oklog/ulid/v2"
	"github.com/prometheus/client_golang/prometheus"
)

// Log is where the dispatcher appends events: the event store.
type Log interface {
	Append(ctx context.Context, a eventstore.Append) (eventstore.Appended, error)
	Get(ctx context.Context, seq uint64) (eventstore.Record, error)
}

// Config holds the dispatcher's options.
type Config struct {
	// AppendTimeout bounds how long a request waits for the event store to
	// acknowledge; past it the answer is 503. Default 3s.
	AppendTimeout time.Duration
	// ResendAfter is how long one attempt waits for the acknowledgement
	// before the event is published again with the same message id.
	// Default a third of AppendTimeout.
	ResendAfter time.Duration
	// RetryAfter is what a 503 tells the caller to wait. Default 1s.
	RetryAfter time.Duration
	// Now is the clock that stamps messages. Default time.Now.
	Now func() time.Time
}

func (c *Config) setDefaults() {
	if c.AppendTimeout == 0 {
		c.AppendTimeout = 3 * time.Second
	}
	if c.ResendAfter == 0 {
		c.ResendAfter = c.AppendTimeout / 3
	}
	if c.RetryAfter == 0 {
		c.RetryAfter = time.Second
	}
	if c.Now == nil {
		c.Now = time.Now
	}
}

// DefaultConfig holds the options a zero Config takes.
func DefaultConfig() Config {
	var c Config
	c.setDefaults()
	return c
}

// DefaultAddr is the address the write API listens on unless told
// otherwise.
const DefaultAddr = ":8081"

// Validate reports the first option out of range.
func (c Config) Validate() error {
	if c.AppendTimeout < 0 || c.ResendAfter < 0 || c.RetryAfter < 0 {
		return errors.New("dispatcher: durations must not be negative")
	}
	return nil
}

// API serves the write side of /v1/messages.
type API struct {
	events  Log
	logger  *slog.Logger
	cfg     Config
	appends *prometheus.CounterVec
	resends prometheus.Counter
	latency prometheus.Histogram
	// layout is the log's, for consistency tokens; zero when the log does
	// not say it.
	layout position.Layout
}

// New returns the write API appending to events.
func New(events Log, logger *slog.Logger, reg prometheus.Registerer, cfg Config) (*API, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	a := &API{
		events: events,
		logger: logger,
		cfg:    cfg,
		appends: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "messages",
			Subsystem: "dispatcher",
			Name:      "appends_total",
			Help:      "Events appended to the event store, by result (stored, duplicate, unknown, unavailable, canceled, failed).",
		}, []string{"result"}),
		resends: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "messages",
			Subsystem: "dispatcher",
			Name:      "append_resends_total",
			Help:      "Events published again with the same message id because the acknowledgement of an attempt did not come.",
		}),
		latency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: "messages",
			Subsystem: "dispatcher",
			Name:      "append_duration_seconds",
			Help:      "Time from sending an event to the event store's acknowledgement.",
			Buckets:   []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5},
		}),
	}
	reg.MustRegister(a.appends, a.resends, a.latency)
	if l, ok := events.(interface{ Layout() position.Layout }); ok {
		a.layout = l.Layout()
	}
	return a, nil
}

// Routes registers the write API's endpoints on rt.
func (a *API) Routes(rt *web.Router) {
	rt.Route(http.MethodPost, "/v1/messages", http.HandlerFunc(a.create))
}

var idempotencyKeyRE = regexp.MustCompile(`^[\x21-\x7e]{1,255}$`)

// IdempotencyKeyHeader makes a POST safe to retry.
const IdempotencyKeyHeader = "Idempotency-Key"

func (a *API) create(w http.ResponseWriter, r *http.Request) {
	if c := web.ContentCoding(r.Header); c != "" {
		web.WriteUnsupportedCoding(w, r, c)
		return
	}
	in, status, err := readBody(r)
	if err != nil {
		web.WriteProblem(w, r, status, err.Error())
		return
	}
	key := r.Header.Get(IdempotencyKeyHeader)
	if _, ok := r.Header[IdempotencyKeyHeader]; ok && !idempotencyKeyRE.MatchString(key) {
		web.WriteProblem(w, r, http.StatusBadRequest, "Idempotency-Key must be 1-255 visible ASCII characters")
		return
	}
	user := web.UserID(r.Context())
	now := a.cfg.Now().UTC().Truncate(time.Millisecond)
	m := message.Message{
		ID:        ulid.MustNew(ulid.Timestamp(now), ulid.DefaultEntropy()).String(),
		UserID:    user,
		Text:      in.Text,
		Tag:       in.Tag,
		CreatedAt: now,
	}
	ev, err := message.CreatedEvent(m, web.RequestID(r.Context()))
	if err != nil {
		a.fail(w, r, err)
		return
	}
	app := eventstore.Append{Event: ev, PartitionKey: m.Tag}
	if key != "" {
		app.MsgID = idempotentMsgID(user, key)
	}
	ctx, cancel := context.WithTimeout(r.Context(), a.cfg.AppendTimeout)
	defer cancel()
	start := time.Now()
	res, err := a.append(ctx, app)
	a.latency.Observe(time.Since(start).Seconds())
	if err != nil {
		a.fail(w, r, err)
		return
	}
	if res.Duplicate && key == "" {
		// The message id is this event's own: what the store already had
		// is an earlier attempt of this request.
		res.Duplicate = false
	}
	if res.Duplicate {
		a.answerDuplicate(w, r, res.Sequence, m)
		return
	}
	a.appends.WithLabelValues("stored").Inc()
	a.setToken(w, res.Partition, res.Sequence)
	a.created(w, m)
}

// append appends app before ctx ends. An attempt whose acknowledgement does
// not come within ResendAfter is published again with the same message id,
// and so on until one is acknowledged or ctx ends. The error wraps
// eventstore.ErrOutcomeUnknown when some attempt may have stored the event
// and none was acknowledged; any other error means nothing was stored.
func (a *API) append(ctx context.Context, app eventstore.Append) (eventstore.Appended, error) {
	var unknown error // the last attempt that may have stored the event
	for {
		start := time.Now()
		actx, cancel := context.WithTimeout(ctx, a.cfg.ResendAfter)
		res, err := a.events.Append(actx, app)
		cancel()
		switch {
		case err == nil:
			return res, nil
		case errors.Is(err, eventstore.ErrOutcomeUnknown),
			errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, eventstore.ErrUnavailable):
			unknown = err
		case unknown == nil:
			return res, err // certainly not stored, and no attempt before
		}
		// Some attempt may have stored the event: only an acknowledgement
		// can tell, so try again until the deadline, pausing when the
		// store failed at once (no connection yet).
		if time.Since(start) < a.cfg.ResendAfter {
			select {
			case <-ctx.Done():
			case <-time.After(50 * time.Millisecond):
			}
		}
		if ctx.Err() != nil {
			if !errors.Is(unknown, eventstore.ErrOutcomeUnknown) {
				unknown = fmt.Errorf("%w: %w", eventstore.ErrOutcomeUnknown, unknown)
			}
			return eventstore.Appended{}, unknown
		}
		a.resends.Inc()
	}
}

// answerDuplicate answers a request whose event's message id the store already had:
// the answer of the earlier request with the same Idempotency-Key, 409 when
// that key came with a different message, or 201 when the earlier append
// was this request's own unacknowledged attempt.
func (a *API) answerDuplicate(w http.ResponseWriter, r *http.Request, seq uint64, want message.Message) {
	// The append may have used up the request's time; a stored event
	// deserves its own short wait to be read back.
	ctx, cancel := context.WithTimeout(r.Context(), a.cfg.AppendTimeout)
	defer cancel()
	rec, err := a.events.Get(ctx, seq)
	if err != nil {
		a.fail(w, r, fmt.Errorf("%w: the event with this Idempotency-Key is stored and could not be read: %w", eventstore.ErrOutcomeUnknown, err))
		return
	}
	if rec.Event.ID == want.ID {
		a.appends.WithLabelValues("stored").Inc()
		a.setToken(w, rec.Partition, seq)
		a.created(w, want)
		return
	}
	a.appends.WithLabelValues("duplicate").Inc()
	first, err := message.FromCreated(rec.Event)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	if first.UserID != want.UserID || first.Text != want.Text || first.Tag != want.Tag {
		web.WriteProblem(w, r, http.StatusConflict, "Idempotency-Key was already used for a different message")
		return
	}
	w.Header().Set("Idempotent-Replayed", "true")
	a.setToken(w, rec.Partition, seq)
	a.created(w, first)
}

func (a *API) created(w http.ResponseWriter, m message.Message) {
	w.Header().Set("Location", "/v1/messages/"+m.ID)
	web.WriteJSON(w, http.StatusCreated, m)
}

// OutcomeUnknownType is the problem type of a 503 to a POST whose event
// may or may not be stored: the event store did not acknowledge it, and
// nothing could be learned before the deadline. A retry with the same
// Idempotency-Key stores the message at most once and answers with it. A
// plain 503 (about:blank) to a POST promises that nothing was stored.
const OutcomeUnknownType = web.OutcomeUnknownType

// fail answers a POST whose append went wrong, saying exactly what is known
// of the event's fate: append and answerDuplicate have made every error that
// leaves it unknown wrap eventstore.ErrOutcomeUnknown.
func (a *API) fail(w http.ResponseWriter, r *http.Request, err error) {
	unknown := "the event store did not acknowledge the message in time, so it may or may not be stored; " +
		"retry with the same Idempotency-Key, which stores it at most once"
	if r.Header.Get(IdempotencyKeyHeader) == "" {
		unknown = "the event store did not acknowledge the message in time, so it may or may not be stored; " +
			"a retry without an Idempotency-Key may store it twice, so send one with every POST"
	}
	kind := web.Failure{
		Log:            a.logger,
		What:           "append",
		RetryAfter:     a.cfg.RetryAfter,
		OutcomeUnknown: unknown,
		Unavailable:    "the event store could not take the message and nothing was stored; retry later",
		Internal:       "the message could not be stored",
	}.Answer(w, r, err)
	a.appends.WithLabelValues(kind.String()).Inc()
}

// idempotentMsgID derives the event store's deduplication id from the caller
// and their key, so that a retry within the duplicate window stores nothing.
func idempotentMsgID(user, key string) string {
	sum := sha256.Sum256([]byte(user + "\x00" + key))
	return "idem-" + hex.EncodeToString(sum[:16])
}

type input struct {
	Text string
	Tag  string
}

// readBody checks and decodes a POST body, returning the status and reason
// for a bad one.
func readBody(r *http.Request) (input, int, error) {
	ct := r.Header.Get("Content-Type")
	mt, params, err := mime.ParseMediaType(ct)
	if err != nil || !(mt == "application/json" || strings.HasPrefix(mt, "application/") && strings.HasSuffix(mt, "+json")) {
		return input{}, http.StatusUnsupportedMediaType, fmt.Errorf("Content-Type must be application/json, got %q", ct)
	}
	if cs, ok := params["charset"]; ok && !strings.EqualFold(cs, "utf-8") {
		return input{}, http.StatusUnsupportedMediaType, fmt.Errorf("charset must be utf-8, got %q", cs)
	}
	if r.ContentLength > web.MaxBodyBytes {
		return input{}, http.StatusRequestEntityTooLarge, fmt.Errorf("body must be at most %d bytes", web.MaxBodyBytes)
	}
	body, err := io.ReadAll(http.MaxBytesReader(nil, r.Body, web.MaxBodyBytes))
	if err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			return input{}, http.StatusRequestEntityTooLarge, fmt.Errorf("body must be at most %d bytes", web.MaxBodyBytes)
		}
		return input{}, http.StatusBadRequest, fmt.Errorf("reading body: %v", err)
	}
	in, err := decode(body)
	if err != nil {
		return input{}, http.StatusBadRequest, err
	}
	return in, 0, nil
}

// decode parses and validates a message body: one JSON object with exactly
// the fields text and tag, spelled so, once each, both strings.
func decode(body []byte) (input, error) {
	if !utf8.Valid(body) {
		return input{}, errors.New("body must be UTF-8")
	}
	fields, err := object(body)
	if err != nil {
		return input{}, err
	}
	text, ok := fields["text"]
	if !ok {
		return input{}, errors.New("text is required")
	}
	tag, ok := fields["tag"]
	if !ok {
		return input{}, errors.New("tag is required")
	}
	if err := message.ValidateText(text); err != nil {
		return input{}, err
	}
	if tag, err = message.NormalizeTag(tag); err != nil {
		return input{}, err
	}
	return input{Text: text, Tag: tag}, nil
}

// object reads a JSON object of string fields named text or tag.
func object(body []byte) (map[string]string, error) {
	dec := json.NewDecoder(bytes.NewReader(body))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return nil, errors.New("body must be a JSON object")
	}
	fields := map[string]string{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, jsonError(err)
		}
		name, _ := tok.(string)
		if name != "text" && name != "tag" {
			return nil, fmt.Errorf("unknown field %q; only text and tag are accepted", name)
		}
		if _, dup := fields[name]; dup {
			return nil, fmt.Errorf("field %s is given twice", name)
		}
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return nil, jsonError(err)
		}
		var v string
		if len(raw) == 0 || raw[0] != '"' || json.Unmarshal(raw, &v) != nil {
			return nil, fmt.Errorf("%s must be a string", name)
		}
		if message.LoneSurrogate(raw) {
			return nil, fmt.Errorf("%s must be UTF-8: it escapes half of a surrogate pair", name)
		}
		fields[name] = v
	}
	if _, err := dec.Token(); err != nil {
		return nil, jsonError(err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("body must be a single JSON object")
	}
	return fields, nil
}

func jsonError(err error) error {
	return fmt.Errorf("body must be a JSON object: %v", err)
}
