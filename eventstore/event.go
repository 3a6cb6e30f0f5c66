package eventstore

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// Event is one entry of the log: the envelope every event shares and its
// type-specific data, encoded as JSON.
type Event struct {
	ID            string          `json:"id"`
	Type          string          `json:"type"`
	Version       int             `json:"version"`
	OccurredAt    time.Time       `json:"occurredAt"`
	UserID        string          `json:"userId"`
	CorrelationID string          `json:"correlationId,omitempty"`
	Data          json.RawMessage `json:"data"`
}

// Record is an event as read from the log, with its place in it.
type Record struct {
	Event
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

// ErrMalformedEvent is wrapped by errors for log entries that are not a
// well-formed event.
var ErrMalformedEvent = errors.New("malformed event")

// Encode returns the event's JSON form as stored in the log.
func Encode(ev Event) ([]byte, error) {
	if err := ev.validate(); err != nil {
		return nil, err
	}
	return json.Marshal(ev)
}

// Decode parses one log entry into an event.
func Decode(b []byte) (Event, error) {
	var ev Event
	if err := json.Unmarshal(b, &ev); err != nil {
		return Event{}, fmt.Errorf("%w: %v", ErrMalformedEvent, err)
	}
	if err := ev.validate(); err != nil {
		return Event{}, err
	}
	return ev, nil
}

func (ev Event) validate() error {
	switch {
	case ev.ID == "":
		return fmt.Errorf("%w: no id", ErrMalformedEvent)
	case ev.Type == "":
		return fmt.Errorf("%w: no type", ErrMalformedEvent)
	case ev.Version < 1:
		return fmt.Errorf("%w: version %d", ErrMalformedEvent, ev.Version)
	case len(ev.Data) == 0:
		return fmt.Errorf("%w: no data", ErrMalformedEvent)
	}
	return nil
}
