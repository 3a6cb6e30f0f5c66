package eventstore

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/messages-io/messages/event"
	"github.com/messages-io/messages/fault"
	"github.com/messages-io/messages/position"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Sentinel errors of the package; callers test them with errors.Is.
// ErrUnavailable, ErrNotFound and ErrOutcomeUnknown are also of the kinds of
// package fault.
var (
	// ErrUnavailable means JetStream did not answer in time or could not be
	// reached; the operation may be retried.
	ErrUnavailable = fault.New("event store unavailable", fault.ErrUnavailable)
	// ErrNotFound means no event is stored at the requested place.
	ErrNotFound = fault.New("event not found", fault.ErrNotFound)
	// ErrIncompatibleStream means the stream exists with a layout (partitions
	// or subjects) other than the configured one.
	ErrIncompatibleStream = errors.New("incompatible stream")
	// ErrRejected means JetStream refused the request for a reason other
	// than availability, such as a stream configuration the servers cannot
	// take; the same request will be refused again.
	ErrRejected = errors.New("rejected by the event store")
	// ErrOutcomeUnknown means an append was sent and no acknowledgement
	// came: the event may be stored or not. Appending it again with the
	// same MsgID within the duplicate window stores it at most once, and
	// the acknowledgement of that append says which (Appended.Duplicate).
	ErrOutcomeUnknown = fault.New("append outcome unknown", fault.ErrOutcomeUnknown)
)

const metaPartitions = "messages.partitions"

// Store appends events to the stream and reads them back.
type Store struct {
	js     jetstream.JetStream
	stream jetstream.Stream
	cfg    Config
}

// Open makes sure the stream exists with the configured settings and returns a
// store on it. It is safe to call from every process at every start: an
// existing stream is updated in place where its settings may change, and
// refused where its partitioning differs. Replicas and DuplicateWindow left
// zero keep an existing stream's, so that a process started without them (an
// import, or one role of several) never changes what another set; the store's
// Config then holds the stream's.
func Open(ctx context.Context, js jetstream.JetStream, cfg Config) (*Store, error) {
	given := cfg
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	want := jetstream.StreamConfig{
		Name:        cfg.Stream,
		Description: "messages event log",
		Subjects:    []string{cfg.SubjectPrefix + ".>"},
		Retention:   jetstream.LimitsPolicy,
		Storage:     jetstream.FileStorage,
		Replicas:    cfg.Replicas,
		Duplicates:  cfg.DuplicateWindow,
		DenyDelete:  true,
		DenyPurge:   true,
		Metadata:    map[string]string{metaPartitions: strconv.Itoa(cfg.Partitions)},
		// AppendBatch stores a batch of events under one deduplication id.
		AllowAtomicPublish: true,
	}
	stream, err := js.Stream(ctx, cfg.Stream)
	switch {
	case errors.Is(err, jetstream.ErrStreamNotFound):
		if err := cfg.windowAbove(cfg.DuplicateWindow); err != nil {
			return nil, err
		}
		stream, err = js.CreateStream(ctx, want)
		if errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) {
			// Another process created it first.
			return Open(ctx, js, given)
		}
		if err != nil {
			return nil, fmt.Errorf("create stream %s: %w", cfg.Stream, unavailable(err))
		}
	case err != nil:
		return nil, fmt.Errorf("stream %s: %w", cfg.Stream, unavailable(err))
	default:
		have := stream.CachedInfo().Config
		if err := compatible(have, want); err != nil {
			return nil, fmt.Errorf("stream %s: %w", cfg.Stream, err)
		}
		if given.Replicas == 0 {
			cfg.Replicas = have.Replicas
		}
		if given.DuplicateWindow == 0 {
			cfg.DuplicateWindow = have.Duplicates
		}
		if err := cfg.windowAbove(cfg.DuplicateWindow); err != nil {
			return nil, err
		}
		if have.Replicas != cfg.Replicas || have.Duplicates != cfg.DuplicateWindow || !have.AllowAtomicPublish {
			have.Replicas, have.Duplicates, have.AllowAtomicPublish = cfg.Replicas, cfg.DuplicateWindow, true
			if stream, err = js.UpdateStream(ctx, have); err != nil {
				return nil, fmt.Errorf("update stream %s: %w", cfg.Stream, unavailable(err))
			}
		}
	}
	return &Store{js: js, stream: stream, cfg: cfg}, nil
}

// windowAbove refuses a duplicate window that is not longer than
// WindowAbove.
func (c Config) windowAbove(window time.Duration) error {
	if c.WindowAbove > 0 && window <= c.WindowAbove {
		return fmt.Errorf("stream %s: %w: duplicate window %s is not longer than %s, the longest an append is repeated",
			c.Stream, ErrInvalidConfig, window, c.WindowAbove)
	}
	return nil
}

func compatible(have, want jetstream.StreamConfig) error {
	if have.Metadata[metaPartitions] != want.Metadata[metaPartitions] {
		return fmt.Errorf("%w: it has %q partitions, configured %q",
			ErrIncompatibleStream, have.Metadata[metaPartitions], want.Metadata[metaPartitions])
	}
	if len(have.Subjects) != 1 || have.Subjects[0] != want.Subjects[0] {
		return fmt.Errorf("%w: it holds subjects %v, configured %v", ErrIncompatibleStream, have.Subjects, want.Subjects)
	}
	if have.Storage != want.Storage || !have.DenyDelete || !have.DenyPurge || have.MaxAge != 0 {
		return fmt.Errorf("%w: it is not an append-only file stream", ErrIncompatibleStream)
	}
	return nil
}

// Config returns the settings the store runs with, defaults filled in.
func (s *Store) Config() Config { return s.cfg }

// Partitions is the number of partitions of the log.
func (s *Store) Partitions() int { return s.cfg.Partitions }

// Partition returns the partition that holds every event of key.
func (s *Store) Partition(key string) int {
	return position.PartitionOf(key, s.cfg.Partitions)
}

func (s *Store) subject(partition int, eventType string) string {
	return s.cfg.SubjectPrefix + "." + strconv.Itoa(partition) + "." + eventType
}

// PartitionFilter is the subject filter matching every event of partition.
func (s *Store) PartitionFilter(partition int) string {
	return s.cfg.SubjectPrefix + "." + strconv.Itoa(partition) + ".>"
}

func (s *Store) partitionOf(subject string) int {
	rest, ok := strings.CutPrefix(subject, s.cfg.SubjectPrefix+".")
	if !ok {
		return -1
	}
	p, _, _ := strings.Cut(rest, ".")
	n, err := strconv.Atoi(p)
	if err != nil {
		return -1
	}
	return n
}

// Append is an event to write and how to place it.
type Append struct {
	Event event.Event
	// PartitionKey picks the partition: events with equal keys keep their
	// order in one partition.
	PartitionKey string
	// MsgID deduplicates the append within the duplicate window; the event
	// id when empty. Retrying an append with the same MsgID stores it once.
	MsgID string
}

// Appended says where an appended event is stored.
type Appended struct {
	Sequence uint64
	// Partition is the partition the event went to.
	Partition int
	// Duplicate is true when an event with the same MsgID was already
	// stored within the duplicate window; Sequence is then that event's.
	Duplicate bool
}

// Append writes one event and returns once JetStream has acknowledged it,
// that is, once it is stored on a quorum of the stream's replicas.
//
// An error says whether the event may be stored. One that wraps
// ErrOutcomeUnknown followed the sending of the event: its acknowledgement did
// not come before ctx ended or the connection dropped. Any other error stored
// nothing: the event was never sent (no connection), nothing took it (no
// responders), or JetStream refused it (ErrRejected, or ErrUnavailable when
// the refusal is about availability). Errors other than a canceled context
// wrap ErrUnavailable or ErrRejected.
func (s *Store) Append(ctx context.Context, a Append) (Appended, error) {
	msg, err := s.message(a)
	if err != nil {
		return Appended{}, err
	}
	msgID := a.MsgID
	if msgID == "" {
		msgID = a.Event.ID
	}
	msg.Header.Set(jetstream.MsgIDHeader, msgID)
	if err := ctx.Err(); err != nil {
		return Appended{}, fmt.Errorf("append: %w", unavailable(err)) // not sent
	}
	ack, err := s.js.PublishMsg(ctx, msg)
	if err != nil {
		return Appended{}, fmt.Errorf("append: %w", appendFailure(err))
	}
	return Appended{Sequence: ack.Sequence, Partition: s.Partition(a.PartitionKey), Duplicate: ack.Duplicate}, nil
}

// message returns the message that appends a's event, without a
// deduplication id.
func (s *Store) message(a Append) (*nats.Msg, error) {
	data, err := event.Encode(a.Event)
	if err != nil {
		return nil, err
	}
	msg := &nats.Msg{
		Subject: s.subject(s.Partition(a.PartitionKey), a.Event.Type),
		Data:    data,
		Header:  nats.Header{},
	}
	msg.Header.Set(jetstream.ExpectedStreamHeader, s.cfg.Stream)
	return msg, nil
}

// appendFailure translates the error of a publish, telling the failures
// that certainly stored nothing from those after which the event may be
// stored.
func appendFailure(err error) error {
	var apiErr *jetstream.APIError
	switch {
	case errors.Is(err, jetstream.ErrNoStreamResponse), errors.Is(err, nats.ErrNoResponders):
		// No stream took the event: nothing listened on its subject.
		return fmt.Errorf("%w: %w", ErrUnavailable, err)
	case errors.As(err, &apiErr):
		// JetStream answered, refusing the event.
		return unavailable(err)
	case notSent(err):
		return fmt.Errorf("%w: %w", ErrUnavailable, err)
	case errors.Is(err, context.Canceled):
		return fmt.Errorf("%w: %w", ErrOutcomeUnknown, err)
	}
	// A timeout, a lost connection or a garbled acknowledgement, after
	// the event was sent.
	return fmt.Errorf("%w: %w: %w", ErrOutcomeUnknown, ErrUnavailable, err)
}

// notSent tells the errors nats.go returns before it writes a message to the
// connection. A closed connection is not one of them: nats.go says so too
// when the connection closes while the acknowledgement is awaited.
func notSent(err error) bool {
	for _, e := range []error{
		nats.ErrReconnectBufExceeded, // disconnected, and no buffering
		nats.ErrConnectionDraining,
		nats.ErrInvalidConnection,
		nats.ErrMaxPayload,
		nats.ErrBadSubject,
		nats.ErrHeadersNotSupported,
		nats.ErrInvalidMsg,
	} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

// Get reads the event stored at sequence seq.
func (s *Store) Get(ctx context.Context, seq uint64) (Record, error) {
	raw, err := s.stream.GetMsg(ctx, seq)
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return Record{}, fmt.Errorf("get %d: %w", seq, ErrNotFound)
	}
	if err != nil {
		return Record{}, fmt.Errorf("get %d: %w", seq, unavailable(err))
	}
	rec := s.record(raw.Subject, raw.Sequence, raw.Time, raw.Data)
	return rec, rec.Err
}

func (s *Store) record(subject string, seq uint64, storedAt time.Time, data []byte) Record {
	rec := Record{Sequence: seq, Subject: subject, Partition: s.partitionOf(subject), StoredAt: storedAt, Raw: data}
	rec.Event, rec.Err = event.Decode(data)
	if rec.Err != nil {
		rec.Err = fmt.Errorf("event %d: %w", seq, rec.Err)
	}
	return rec
}

// LastSequence is the sequence of the newest event in the log, 0 when empty.
func (s *Store) LastSequence(ctx context.Context) (uint64, error) {
	info, err := s.stream.Info(ctx)
	if err != nil {
		return 0, fmt.Errorf("stream info: %w", unavailable(err))
	}
	return info.State.LastSeq, nil
}

// Ping checks that JetStream answers for the stream.
func (s *Store) Ping(ctx context.Context) error {
	_, err := s.LastSequence(ctx)
	return err
}

// unavailable translates an error of JetStream: an answer about availability
// wraps ErrUnavailable, any other answer of the JetStream API wraps
// ErrRejected, and anything else (no answer, no connection) is unavailable.
func unavailable(err error) error {
	if errors.Is(err, context.Canceled) {
		return err
	}
	var apiErr *jetstream.APIError
	if errors.As(err, &apiErr) && !transient(apiErr) {
		return fmt.Errorf("%w: %w", ErrRejected, err)
	}
	return fmt.Errorf("%w: %w", ErrUnavailable, err)
}

// transient tells the JetStream API errors that say the servers cannot serve
// the request now, and may later: the 503s (not enough resources, JetStream
// not up yet), a cluster without a leader, and a cluster with too few peers
// up to place the stream's replicas.
func transient(e *jetstream.APIError) bool {
	switch e.ErrorCode {
	case errCodeClusterNoPeers, errCodeClusterNotLeader:
		return true
	}
	return e.Code == 503
}

// JetStream API error codes nats.go does not name (nats-server's
// errors.json: JSClusterNoPeersErrF, JSClusterNotLeaderErr).
const (
	errCodeClusterNoPeers   jetstream.ErrorCode = 10005
	errCodeClusterNotLeader jetstream.ErrorCode = 10009
)
