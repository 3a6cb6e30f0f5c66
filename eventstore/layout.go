package eventstore

import "github.com/messages-io/messages/position"

// Layout is the stream and partitions of the log, what consistency tokens
// and stream positions are relative to.
func (s *Store) Layout() position.Layout {
	return position.Layout{Stream: s.cfg.Stream, Partitions: s.cfg.Partitions}
}
