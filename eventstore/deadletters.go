package eventstore

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Headers of a dead letter.
const (
	hdrOriginalSeq     = "Messages-Original-Sequence"
	hdrOriginalSubject = "Messages-Original-Subject"
	hdrPartition       = "Messages-Partition"
	hdrReason          = "Messages-Reason"
	hdrError           = "Messages-Error"
)

// DeadLetter is a parked event.
type DeadLetter struct {
	// Sequence is the dead letter's place in the dead-letter stream.
	Sequence uint64 `json:"sequence"`
	// OriginalSequence is the event's place in the log.
	OriginalSequence uint64    `json:"originalSequence"`
	Subject          string    `json:"subject"`
	Partition        int       `json:"partition"`
	Reason           string    `json:"reason"`
	Error            string    `json:"error"`
	ParkedAt         time.Time `json:"parkedAt"`
	Raw              []byte    `json:"raw"`
}

func (s *Store) deadLetterStream() string { return s.cfg.Stream + "_DLQ" }

func (s *Store) deadLetterSubject(partition int) string {
	return s.cfg.SubjectPrefix + "_dlq." + strconv.Itoa(partition)
}

// deadLetters makes sure the dead-letter stream exists.
func (s *Store) deadLetters(ctx context.Context) (jetstream.Stream, error) {
	st, err := s.js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
		Name:        s.deadLetterStream(),
		Description: "events of the messages log that could not be folded",
		Subjects:    []string{s.cfg.SubjectPrefix + "_dlq.>"},
		Storage:     jetstream.FileStorage,
		Replicas:    s.cfg.Replicas,
		Duplicates:  s.cfg.DuplicateWindow,
	})
	if err != nil {
		return nil, fmt.Errorf("dead-letter stream: %w", unavailable(err))
	}
	return st, nil
}

// Park stores rec in the dead-letter stream with the reason it could not be
// folded. Parking the same event twice within the duplicate window stores it
// once.
func (s *Store) Park(ctx context.Context, rec Record, reason string, cause error) error {
	if _, err := s.deadLetters(ctx); err != nil {
		return err
	}
	msg := &nats.Msg{Subject: s.deadLetterSubject(rec.Partition), Data: rec.Raw, Header: nats.Header{}}
	msg.Header.Set(jetstream.MsgIDHeader, "park-"+strconv.FormatUint(rec.Sequence, 10))
	msg.Header.Set(hdrOriginalSeq, strconv.FormatUint(rec.Sequence, 10))
	msg.Header.Set(hdrOriginalSubject, rec.Subject)
	msg.Header.Set(hdrPartition, strconv.Itoa(rec.Partition))
	msg.Header.Set(hdrReason, reason)
	if cause != nil {
		msg.Header.Set(hdrError, cause.Error())
	}
	if _, err := s.js.PublishMsg(ctx, msg); err != nil {
		return fmt.Errorf("park event %d: %w", rec.Sequence, unavailable(err))
	}
	return nil
}

// DeadLetters returns every parked event, oldest first.
func (s *Store) DeadLetters(ctx context.Context) ([]DeadLetter, error) {
	st, err := s.deadLetters(ctx)
	if err != nil {
		return nil, err
	}
	var out []DeadLetter
	for seq := uint64(1); ; seq++ {
		raw, err := st.GetMsg(ctx, seq, jetstream.WithGetMsgSubject(s.cfg.SubjectPrefix+"_dlq.>"))
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			return out, nil
		}
		if err != nil {
			return nil, fmt.Errorf("dead letters: %w", unavailable(err))
		}
		out = append(out, deadLetter(raw))
		seq = raw.Sequence
	}
}

// DeadLetter returns the dead letter at seq in the dead-letter stream.
func (s *Store) DeadLetter(ctx context.Context, seq uint64) (DeadLetter, error) {
	st, err := s.deadLetters(ctx)
	if err != nil {
		return DeadLetter{}, err
	}
	raw, err := st.GetMsg(ctx, seq)
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return DeadLetter{}, fmt.Errorf("dead letter %d: %w", seq, ErrNotFound)
	}
	if err != nil {
		return DeadLetter{}, fmt.Errorf("dead letter %d: %w", seq, unavailable(err))
	}
	return deadLetter(raw), nil
}

func deadLetter(raw *jetstream.RawStreamMsg) DeadLetter {
	orig, _ := strconv.ParseUint(raw.Header.Get(hdrOriginalSeq), 10, 64)
	p, _ := strconv.Atoi(raw.Header.Get(hdrPartition))
	return DeadLetter{
		Sequence:         raw.Sequence,
		OriginalSequence: orig,
		Subject:          raw.Header.Get(hdrOriginalSubject),
		Partition:        p,
		Reason:           raw.Header.Get(hdrReason),
		Error:            raw.Header.Get(hdrError),
		ParkedAt:         raw.Time,
		Raw:              raw.Data,
	}
}

// Discard deletes the dead letter at seq: its event stays unfolded.
func (s *Store) Discard(ctx context.Context, seq uint64) error {
	st, err := s.deadLetters(ctx)
	if err != nil {
		return err
	}
	if err := st.DeleteMsg(ctx, seq); err != nil {
		if errors.Is(err, jetstream.ErrMsgNotFound) || errors.Is(err, jetstream.ErrMsgDeleteUnsuccessful) {
			return fmt.Errorf("dead letter %d: %w", seq, ErrNotFound)
		}
		return fmt.Errorf("discard dead letter %d: %w", seq, unavailable(err))
	}
	return nil
}

// Retry appends the parked event at seq to the log again, to be folded as a
// new event, and then removes the dead letter. It returns the event's new
// sequence.
func (s *Store) Retry(ctx context.Context, seq uint64) (uint64, error) {
	dl, err := s.DeadLetter(ctx, seq)
	if err != nil {
		return 0, err
	}
	msg := &nats.Msg{Subject: dl.Subject, Data: dl.Raw, Header: nats.Header{}}
	msg.Header.Set(jetstream.MsgIDHeader, "retry-"+strconv.FormatUint(dl.OriginalSequence, 10)+"-"+strconv.FormatUint(seq, 10))
	msg.Header.Set(jetstream.ExpectedStreamHeader, s.cfg.Stream)
	ack, err := s.js.PublishMsg(ctx, msg)
	if err != nil {
		return 0, fmt.Errorf("retry dead letter %d: %w", seq, unavailable(err))
	}
	if err := s.Discard(ctx, seq); err != nil && !errors.Is(err, ErrNotFound) {
		return ack.Sequence, err
	}
	return ack.Sequence, nil
}

// Parked returns the log sequences of every parked event.
func (s *Store) Parked(ctx context.Context) (map[uint64]bool, error) {
	dls, err := s.DeadLetters(ctx)
	if err != nil {
		return nil, err
	}
	out := make(map[uint64]bool, len(dls))
	for _, dl := range dls {
		out[dl.OriginalSequence] = true
	}
	return out, nil
}
