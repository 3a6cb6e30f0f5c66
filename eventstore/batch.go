package eventstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nuid"
)

// MaxBatch is the most events one AppendBatch takes: nats-server's default
// limit on an atomic batch.
const MaxBatch = 1000

// Headers of JetStream's atomic batch publish (nats-server 2.12 and later).
const (
	batchIDHeader     = "Nats-Batch-Id"
	batchSeqHeader    = "Nats-Batch-Sequence"
	batchCommitHeader = "Nats-Batch-Commit"
)

// JetStream API error codes of atomic batches that nats.go does not name
// (nats-server's errors.json).
const (
	// JSAtomicPublishIncompleteBatchErr: a message of the batch did not
	// arrive, or the batch timed out; nothing was stored.
	errCodeBatchIncomplete jetstream.ErrorCode = 10176
	// JSStreamDuplicateMessageConflict: a batch with the same id is being
	// stored; the answer of a retry says whether it was.
	errCodeDuplicateInProcess jetstream.ErrorCode = 10158
	// JSAtomicPublishContainsDuplicateMessageErr: the batch's id was seen
	// within the duplicate window, so the batch is stored already.
	errCodeBatchDuplicate jetstream.ErrorCode = 10201
	// JSAtomicPublishTooManyInflight: too many batches are open on the
	// stream or the server; nothing was stored.
	errCodeBatchTooManyInflight jetstream.ErrorCode = 10210
)

// AppendedBatch says where a batch is stored.
type AppendedBatch struct {
	// Last is the sequence of the batch's last event; its events are the
	// len(batch) sequences up to it. Zero for a duplicate.
	Last uint64
	// Duplicate is true when a batch with the same id was already stored
	// within the duplicate window; nothing was stored again.
	Duplicate bool
}

// AppendBatch writes the events of batch as one atomic batch under the
// deduplication id msgID, and returns once JetStream has acknowledged it: it
// stores every event of the batch, in order and in one piece, or none.
// Appending a batch again with the same msgID within the duplicate window
// stores nothing and says so, whatever the batch holds. JetStream remembers
// one id per batch instead of one per event, which is what makes batches the
// way to append a large history.
//
// Errors are those of Append: one that wraps ErrOutcomeUnknown followed the
// commit of the batch, which may be stored or not; any other stored nothing.
// A batch of no events or of more than MaxBatch, and any batch on a stream
// that does not take atomic batches (nats-server before 2.12), is refused
// before anything is sent.
func (s *Store) AppendBatch(ctx context.Context, msgID string, batch []Append) (AppendedBatch, error) {
	if len(batch) == 0 || len(batch) > MaxBatch {
		return AppendedBatch{}, fmt.Errorf("append batch of %d events: want 1-%d", len(batch), MaxBatch)
	}
	if msgID == "" {
		return AppendedBatch{}, errors.New("append batch: no deduplication id")
	}
	// A server older than 2.12 does not keep AllowAtomicPublish.
	if !s.stream.CachedInfo().Config.AllowAtomicPublish {
		return AppendedBatch{}, fmt.Errorf("append batch: %w: stream %s does not take atomic batches (nats-server 2.12 or later does)", ErrRejected, s.cfg.Stream)
	}
	msgs := make([]*nats.Msg, len(batch))
	for i, a := range batch {
		msg, err := s.message(a)
		if err != nil {
			return AppendedBatch{}, err
		}
		msgs[i] = msg
	}
	if err := ctx.Err(); err != nil {
		return AppendedBatch{}, fmt.Errorf("append batch: %w", unavailable(err)) // not sent
	}
	// A fresh batch id for every attempt: a retried batch starts anew, and
	// only msgID ties it to an earlier attempt.
	id := nuid.Next()
	nc := s.js.Conn()
	last := len(msgs) - 1
	for i, msg := range msgs {
		msg.Header.Set(batchIDHeader, id)
		msg.Header.Set(batchSeqHeader, strconv.Itoa(i+1))
		if i == last {
			break
		}
		// The staged messages need no answer: a lost one makes the
		// commit fail as incomplete.
		if err := nc.PublishMsg(msg); err != nil {
			return AppendedBatch{}, fmt.Errorf("append batch: %w: %w", ErrUnavailable, err)
		}
	}
	commit := msgs[last]
	commit.Header.Set(jetstream.MsgIDHeader, msgID)
	commit.Header.Set(batchCommitHeader, "1")
	resp, err := nc.RequestMsgWithContext(ctx, commit)
	if err != nil {
		return AppendedBatch{}, fmt.Errorf("append batch: %w", appendFailure(err))
	}
	return batchAck(resp.Data, len(msgs))
}

// batchAck reads JetStream's answer to the commit of a batch of n events.
func batchAck(data []byte, n int) (AppendedBatch, error) {
	var ack struct {
		Error    *jetstream.APIError `json:"error"`
		Sequence uint64              `json:"seq"`
		Batch    string              `json:"batch"`
		Count    int                 `json:"count"`
	}
	if err := json.Unmarshal(data, &ack); err != nil {
		// The batch was committed, and what became of it is unreadable.
		return AppendedBatch{}, fmt.Errorf("append batch: %w: %w: acknowledgement: %w", ErrOutcomeUnknown, ErrUnavailable, err)
	}
	if e := ack.Error; e != nil {
		switch e.ErrorCode {
		case errCodeBatchDuplicate:
			return AppendedBatch{Duplicate: true}, nil
		case errCodeBatchIncomplete, errCodeBatchTooManyInflight, errCodeDuplicateInProcess:
			return AppendedBatch{}, fmt.Errorf("append batch: %w: %w", ErrUnavailable, e)
		}
		return AppendedBatch{}, fmt.Errorf("append batch: %w", unavailable(e))
	}
	if ack.Batch == "" || ack.Count != n {
		// The stream stored the messages, each by itself or in another
		// batch: a server that took the stream's setting and not the
		// batch. Going on would store them again.
		return AppendedBatch{}, fmt.Errorf("append batch: %w: %w: the stream did not take it as one batch of %d", ErrOutcomeUnknown, ErrRejected, n)
	}
	return AppendedBatch{Last: ack.Sequence}, nil
}
