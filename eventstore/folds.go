package eventstore

import (
	"context"
	"fmt"

	"github.com/messages-io/messages/position"
	"github.com/nats-io/nats.go"
)

// foldsSubject is where the reducers of the log tell what they folded. It is
// a plain NATS subject, outside every stream: a notice is a hint, sent at
// most once, and never stored.
func (s *Store) foldsSubject() string { return "_messages.folded." + s.cfg.Stream }

// PublishFolded tells every process that follows the fold of the log what
// a reducer folded. It does not wait for the server.
func (s *Store) PublishFolded(f position.Folded) error {
	return s.js.Conn().Publish(s.foldsSubject(), f.Encode())
}

// Folds calls fn, one at a time, with each notice published by
// PublishFolded from now on, until ctx ends. Notices that arrive while the
// connection is down are lost; a malformed one is skipped.
func (s *Store) Folds(ctx context.Context, fn func(position.Folded)) error {
	sub, err := s.js.Conn().Subscribe(s.foldsSubject(), func(m *nats.Msg) {
		if f, err := position.ParseFolded(m.Data); err == nil {
			fn(f)
		}
	})
	if err != nil {
		return fmt.Errorf("follow the fold: %w", unavailable(err))
	}
	<-ctx.Done()
	_ = sub.Unsubscribe()
	return ctx.Err()
}
