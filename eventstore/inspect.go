package eventstore

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// ErrNoStream means the stream of the log does not exist.
var ErrNoStream = errors.New("no such stream")

// OpenExisting returns a store on the existing stream named name, with the
// layout the stream was created with (its partitions and subject prefix),
// without creating or changing anything: for tools that inspect the log
// while the service runs.
func OpenExisting(ctx context.Context, js jetstream.JetStream, name string) (*Store, error) {
	stream, err := js.Stream(ctx, name)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		return nil, fmt.Errorf("stream %s: %w", name, ErrNoStream)
	}
	if err != nil {
		return nil, fmt.Errorf("stream %s: %w", name, unavailable(err))
	}
	have := stream.CachedInfo().Config
	cfg := Config{Stream: name, Replicas: have.Replicas, DuplicateWindow: have.Duplicates}
	if len(have.Subjects) == 1 {
		cfg.SubjectPrefix, _ = strings.CutSuffix(have.Subjects[0], ".>")
	}
	cfg.Partitions, err = strconv.Atoi(have.Metadata[metaPartitions])
	if err != nil {
		return nil, fmt.Errorf("stream %s: %w: it records no partitions", name, ErrIncompatibleStream)
	}
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("stream %s: %w: %v", name, ErrIncompatibleStream, err)
	}
	want := have
	want.Subjects = []string{cfg.SubjectPrefix + ".>"}
	if err := compatible(have, want); err != nil {
		return nil, fmt.Errorf("stream %s: %w", name, err)
	}
	return &Store{js: js, stream: stream, cfg: cfg}, nil
}

// EventFilter is the subject filter matching the events of type eventType
// (every type when empty) in partition (every partition when negative).
func (s *Store) EventFilter(partition int, eventType string) string {
	p := "*"
	if partition >= 0 {
		p = strconv.Itoa(partition)
	}
	if eventType == "" {
		eventType = ">"
	}
	return s.cfg.SubjectPrefix + "." + p + "." + eventType
}

// Follow calls fn for every event matching filter (a subject filter such as
// EventFilter returns; every event when empty) from sequence from on, in log
// order, then for each such event as it is appended, until ctx ends or fn
// returns an error. From 0 starts with the next event appended. It returns
// ctx's error when ctx ends.
func (s *Store) Follow(ctx context.Context, from uint64, filter string, fn func(Record) error) error {
	cfg := jetstream.OrderedConsumerConfig{DeliverPolicy: jetstream.DeliverNewPolicy}
	if from > 0 {
		cfg.DeliverPolicy, cfg.OptStartSeq = jetstream.DeliverByStartSequencePolicy, from
	}
	if filter != "" {
		cfg.FilterSubjects = []string{filter}
	}
	cons, err := s.stream.OrderedConsumer(ctx, cfg)
	if err != nil {
		return fmt.Errorf("follow: %w", unavailable(err))
	}
	return s.consume(ctx, cons, "follow", 0, fn)
}

// Stats describes the log: its size, the events of each partition, and the
// progress of each durable consumer.
type Stats struct {
	Stream     string           `json:"stream"`
	Events     uint64           `json:"events"`
	Bytes      uint64           `json:"bytes"`
	First      uint64           `json:"firstSequence"`
	Last       uint64           `json:"lastSequence"`
	Partitions []PartitionStats `json:"partitions"`
	Consumers  []ConsumerStats  `json:"consumers"`
}

// PartitionStats describes the events of one partition. First and Last are 0
// when it holds none.
type PartitionStats struct {
	Partition int    `json:"partition"`
	Events    uint64 `json:"events"`
	First     uint64 `json:"firstSequence"`
	Last      uint64 `json:"lastSequence"`
}

// ConsumerStats describes how far one durable consumer has come.
type ConsumerStats struct {
	Name string `json:"name"`
	// Partition is the partition the consumer delivers, -1 when it delivers
	// some other selection of events.
	Partition int `json:"partition"`
	// Pending counts the events stored and not yet delivered.
	Pending uint64 `json:"pending"`
	// AckPending counts the events delivered and not yet acknowledged.
	AckPending uint64 `json:"ackPending"`
	// AckFloor is the stream sequence up to which every event is
	// acknowledged.
	AckFloor uint64 `json:"ackFloor"`
	// Delivered is the stream sequence of the last event delivered.
	Delivered   uint64 `json:"delivered"`
	Redelivered uint64 `json:"redelivered"`
	// Lag counts the events not yet acknowledged: Pending plus AckPending.
	Lag uint64 `json:"lag"`
}

// Stats reads the size of the log, of each partition, and the progress of
// each durable consumer on the stream.
func (s *Store) Stats(ctx context.Context) (Stats, error) {
	info, err := s.stream.Info(ctx, jetstream.WithSubjectFilter(s.cfg.SubjectPrefix+".>"))
	if err != nil {
		return Stats{}, fmt.Errorf("stream info: %w", unavailable(err))
	}
	st := Stats{
		Stream: s.cfg.Stream,
		Events: info.State.Msgs,
		Bytes:  info.State.Bytes,
		First:  info.State.FirstSeq,
		Last:   info.State.LastSeq,
	}
	if st.Events == 0 {
		st.First = 0
	}
	st.Partitions = make([]PartitionStats, s.cfg.Partitions)
	for p := range st.Partitions {
		st.Partitions[p].Partition = p
	}
	for subject, n := range info.State.Subjects {
		if p := s.partitionOf(subject); p >= 0 && p < s.cfg.Partitions {
			st.Partitions[p].Events += n
		}
	}
	for p := range st.Partitions {
		ps := &st.Partitions[p]
		if ps.Events == 0 {
			continue
		}
		first, err := s.stream.GetMsg(ctx, 1, jetstream.WithGetMsgSubject(s.PartitionFilter(p)))
		if err != nil {
			return Stats{}, fmt.Errorf("first event of partition %d: %w", p, unavailable(err))
		}
		last, err := s.stream.GetLastMsgForSubject(ctx, s.PartitionFilter(p))
		if err != nil {
			return Stats{}, fmt.Errorf("last event of partition %d: %w", p, unavailable(err))
		}
		ps.First, ps.Last = first.Sequence, last.Sequence
	}
	st.Consumers, err = s.consumers(ctx)
	if err != nil {
		return Stats{}, err
	}
	return st, nil
}

// consumers returns the durable consumers of the stream, by name.
func (s *Store) consumers(ctx context.Context) ([]ConsumerStats, error) {
	filters := make(map[string]int, s.cfg.Partitions)
	for p := range s.cfg.Partitions {
		filters[s.PartitionFilter(p)] = p
	}
	out := []ConsumerStats{}
	list := s.stream.ListConsumers(ctx)
	for ci := range list.Info() {
		if ci.Config.Durable == "" {
			continue // an ordered reader, such as a replay or a tail
		}
		p, ok := filters[ci.Config.FilterSubject]
		if !ok {
			p = -1
		}
		ackPending := uint64(max(ci.NumAckPending, 0))
		out = append(out, ConsumerStats{
			Name:        ci.Name,
			Partition:   p,
			Pending:     ci.NumPending,
			AckPending:  ackPending,
			AckFloor:    ci.AckFloor.Stream,
			Delivered:   ci.Delivered.Stream,
			Redelivered: uint64(max(ci.NumRedelivered, 0)),
			Lag:         ci.NumPending + ackPending,
		})
	}
	if err := list.Err(); err != nil {
		return nil, fmt.Errorf("consumers: %w", unavailable(err))
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// Backlog describes the events of one partition stored after a sequence.
type Backlog struct {
	// Events counts them; Oldest is when the first of them was stored, zero
	// when there is none.
	Events uint64
	Oldest time.Time
	// Last is the sequence of the partition's last event, 0 when it has
	// none.
	Last uint64
}

// BacklogAfter returns the events of partition stored after sequence after:
// for a reducer's checkpoint, how far it is behind.
func (s *Store) BacklogAfter(ctx context.Context, partition int, after uint64) (Backlog, error) {
	filter := s.PartitionFilter(partition)
	var b Backlog
	last, err := s.stream.GetLastMsgForSubject(ctx, filter)
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return b, nil
	}
	if err != nil {
		return b, fmt.Errorf("last event of partition %d: %w", partition, unavailable(err))
	}
	b.Last = last.Sequence
	if after >= last.Sequence {
		return b, nil
	}
	next, err := s.stream.GetMsg(ctx, after+1, jetstream.WithGetMsgSubject(filter))
	if err != nil {
		return b, fmt.Errorf("partition %d after %d: %w", partition, after, unavailable(err))
	}
	b.Oldest = next.Time
	// A consumer starting at that event counts the rest as pending; it
	// delivers nothing and is deleted at once.
	cons, err := s.stream.CreateConsumer(ctx, jetstream.ConsumerConfig{
		FilterSubject:     filter,
		DeliverPolicy:     jetstream.DeliverByStartSequencePolicy,
		OptStartSeq:       next.Sequence,
		AckPolicy:         jetstream.AckNonePolicy,
		MemoryStorage:     true,
		Replicas:          1,
		InactiveThreshold: time.Minute,
	})
	if err != nil {
		return b, fmt.Errorf("count partition %d after %d: %w", partition, after, unavailable(err))
	}
	info := cons.CachedInfo()
	dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	_ = s.stream.DeleteConsumer(dctx, info.Name)
	b.Events = info.NumPending
	return b, nil
}
