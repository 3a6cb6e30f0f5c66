package importer

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	"github.com/nats-io/nats.go/jetstream"
)

// KVLedger keeps the progress of imports in a JetStream key-value bucket,
// beside the log they fill: one key per file digest, holding the number of
// the file's first lines that are done.
type KVLedger struct {
	kv jetstream.KeyValue
}

// OpenLedger makes sure the bucket exists, with the given replicas (those of
// the stream), and returns a ledger on it.
func OpenLedger(ctx context.Context, js jetstream.JetStream, bucket string, replicas int) (*KVLedger, error) {
	kv, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket:      bucket,
		Description: "messages imported, per file: lines done",
		History:     1,
		Storage:     jetstream.FileStorage,
		Replicas:    replicas,
	})
	if err != nil {
		return nil, fmt.Errorf("bucket %s: %w", bucket, err)
	}
	return &KVLedger{kv: kv}, nil
}

// Imported returns how many first lines of the file with digest are done, 0
// for a file never imported.
func (l *KVLedger) Imported(ctx context.Context, digest string) (int64, error) {
	e, err := l.kv.Get(ctx, digest)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("get %s: %w", digest, err)
	}
	n, err := strconv.ParseInt(string(e.Value()), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("get %s: malformed entry %q", digest, e.Value())
	}
	return n, nil
}

// Record stores that the first lines of the file with digest are done. It
// never moves a file's progress back, also when two imports of it race.
func (l *KVLedger) Record(ctx context.Context, digest string, lines int64) error {
	val := []byte(strconv.FormatInt(lines, 10))
	for {
		e, err := l.kv.Get(ctx, digest)
		switch {
		case errors.Is(err, jetstream.ErrKeyNotFound):
			_, err = l.kv.Create(ctx, digest, val)
		case err != nil:
			return fmt.Errorf("record %s: %w", digest, err)
		default:
			have, perr := strconv.ParseInt(string(e.Value()), 10, 64)
			if perr == nil && have >= lines {
				return nil
			}
			_, err = l.kv.Update(ctx, digest, val, e.Revision())
		}
		if err == nil {
			return nil
		}
		var apiErr *jetstream.APIError
		if !errors.Is(err, jetstream.ErrKeyExists) && !(errors.As(err, &apiErr) && apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence) {
			return fmt.Errorf("record %s: %w", digest, err)
		}
		// Another import recorded meanwhile; look again.
	}
}
