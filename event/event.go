package event

import (
	"bytes"
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

// ErrMalformed is wrapped by errors for log entries that are not a
// well-formed event.
var ErrMalformed = errors.New("malformed event")

// Encode returns the event's JSON form as stored in the log. Its data is
// kept as given, compacted: json.Marshal would also escape <, > and & for
// HTML, so that data decoded from the log would differ from what was
// appended.
func Encode(ev Event) ([]byte, error) {
	if err := ev.validate(); err != nil {
		return nil, err
	}
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(ev); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n")), nil
}

// Decode parses one log entry into an event.
func Decode(b []byte) (Event, error) {
	var ev Event
	if err := json.Unmarshal(b, &ev); err != nil {
		return Event{}, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	if err := ev.validate(); err != nil {
		return Event{}, err
	}
	return ev, nil
}

func (ev Event) validate() error {
	switch {
	case ev.ID == "":
		return fmt.Errorf("%w: no id", ErrMalformed)
	case ev.Type == "":
		return fmt.Errorf("%w: no type", ErrMalformed)
	case ev.Version < 1:
		return fmt.Errorf("%w: version %d", ErrMalformed, ev.Version)
	case len(ev.Data) == 0:
		return fmt.Errorf("%w: no data", ErrMalformed)
	}
	return nil
}
