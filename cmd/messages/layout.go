package main

import (
	"github.com/messages-io/messages/eventstore"
	"github.com/messages-io/messages/position"
)

// layout is the layout of the log that consistency tokens name: the
// stream's own when this process opened it, else the one its flags
// describe.
func (s *service) layout(cfg eventstore.Config) position.Layout {
	if s.events != nil {
		return s.events.Layout()
	}
	l := position.Layout{Stream: cfg.Stream, Partitions: cfg.Partitions}
	if l.Stream == "" {
		l.Stream = "MESSAGES"
	}
	if l.Partitions == 0 {
		l.Partitions = 8
	}
	return l
}
