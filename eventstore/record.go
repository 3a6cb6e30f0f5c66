package eventstore

import (
	"time"

	"github.com/messages-io/messages/event"
)

// Record is an event as read from the log, with its place in it.
type Record struct {
	event.Event
	// Sequence is the event's stream sequence, unique and increasing across
	// the whole log.
	Sequence  uint64
	Partition int
	Subject   string
	// StoredAt is when JetStream stored the event.
	StoredAt time.Time
	// Raw is the entry as stored.
	Raw []byte
	// Err is set when the entry is not a well-formed event; Event is then
	// incomplete.
	Err error
}
