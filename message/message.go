// Package message defines the domain of the service: a short tagged message,
// the rules a valid one keeps, and the events that create it.
package message

import (
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/messages-io/messages/event"
	"github.com/oklog/ulid/v2"
)

// Limits of a message.
const (
	MaxTextChars  = 1000
	MaxTagChars   = 64
	MaxUserIDLen  = 128
	TimeFormat    = "2006-01-02T15:04:05.000Z07:00"
	EventCreated  = "message.created"
	CreatedSchema = 2
)

// Message is a short text under one tag, written by one user.
type Message struct {
	ID        string    `json:"id"`
	UserID    string    `json:"userId"`
	Text      string    `json:"text"`
	Tag       string    `json:"tag"`
	CreatedAt time.Time `json:"createdAt"`
}

// MarshalJSON writes createdAt in UTC with millisecond precision, the
// precision of the id's time.
func (m Message) MarshalJSON() ([]byte, error) {
	type wire struct {
		ID        string `json:"id"`
		UserID    string `json:"userId"`
		Text      string `json:"text"`
		Tag       string `json:"tag"`
		CreatedAt string `json:"createdAt"`
	}
	return json.Marshal(wire{m.ID, m.UserID, m.Text, m.Tag, m.CreatedAt.UTC().Format(TimeFormat)})
}

var (
	tagRE    = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)
	userIDRE = regexp.MustCompile(`^[A-Za-z0-9._:@-]{1,128}$`)
)

// NormalizeTag checks a tag as a caller wrote it and returns its stored form:
// one leading '#' dropped, lower-cased. Its error says what a tag must be, in
// words fit for the caller.
func NormalizeTag(tag string) (string, error) {
	t := strings.TrimPrefix(tag, "#")
	if !tagRE.MatchString(t) {
		return "", fmt.Errorf("tag must be 1-%d characters of A-Z a-z 0-9 _ - (one leading # allowed)", MaxTagChars)
	}
	return strings.ToLower(t), nil
}

// ValidateText checks a message text: UTF-8, not blank, at most MaxTextChars
// characters. Its error says what a text must be, in words fit for the
// caller.
func ValidateText(text string) error {
	switch {
	case !utf8.ValidString(text):
		return errors.New("text must be UTF-8")
	case strings.TrimSpace(text) == "":
		return errors.New("text must not be empty or blank")
	case utf8.RuneCountInString(text) > MaxTextChars:
		return fmt.Errorf("text must be at most %d characters, got %d", MaxTextChars, utf8.RuneCountInString(text))
	}
	return nil
}

// ValidUserID reports whether id is a well-formed user id: 1-128 characters of
// A-Z a-z 0-9 . _ : @ -.
func ValidUserID(id string) bool { return userIDRE.MatchString(id) }

// ValidID reports whether id is a message id: a ULID in canonical form.
func ValidID(id string) bool {
	u, err := ulid.ParseStrict(id)
	return err == nil && u.String() == id
}

// Created is the data of a message.created event in its current shape,
// version 2: the text sits in content, where attachments can join it later.
// Version 1 carried the text at the top level: {"text": ..., "tag": ...}.
type Created struct {
	Content *Content `json:"content"`
	Tag     string   `json:"tag"`
}

// Content is what a message says.
type Content struct {
	Text *string `json:"text"`
}

// createdV1 is the first shape of message.created.
type createdV1 struct {
	Text *string `json:"text"`
	Tag  string  `json:"tag"`
}

// Upcasters returns the registry that brings every stored shape of the
// message events to the current one.
func Upcasters() *event.Upcasters {
	return event.NewUpcasters().
		Current(EventCreated, CreatedSchema).
		Register(EventCreated, 1, func(ev event.Event) (event.Event, error) {
			var v1 createdV1
			if err := json.Unmarshal(ev.Data, &v1); err != nil {
				return ev, err
			}
			if v1.Text == nil {
				return ev, errors.New("no text")
			}
			data, err := json.Marshal(Created{Content: &Content{Text: v1.Text}, Tag: v1.Tag})
			if err != nil {
				return ev, err
			}
			ev.Data = data
			return ev, nil
		})
}

// CreatedEvent returns the event that records m, in the current shape. The
// event's id is the message's id and its time the message's creation time.
func CreatedEvent(m Message, correlationID string) (event.Event, error) {
	data, err := json.Marshal(Created{Content: &Content{Text: &m.Text}, Tag: m.Tag})
	if err != nil {
		return event.Event{}, err
	}
	return event.Event{
		ID:            m.ID,
		Type:          EventCreated,
		Version:       CreatedSchema,
		OccurredAt:    m.CreatedAt.UTC(),
		UserID:        m.UserID,
		CorrelationID: correlationID,
		Data:          data,
	}, nil
}

// FromCreated returns the message a message.created event records, in any
// version the registry knows.
func FromCreated(ev event.Event) (Message, error) {
	return FromCreatedWith(Upcasters(), ev)
}

// FromCreatedWith is FromCreated with the given upcasters.
func FromCreatedWith(u *event.Upcasters, ev event.Event) (Message, error) {
	if ev.Type != EventCreated {
		return Message{}, fmt.Errorf("%w: event type %q is not %s", event.ErrMalformed, ev.Type, EventCreated)
	}
	ev, err := u.Upcast(ev)
	if err != nil {
		return Message{}, err
	}
	var c Created
	if err := json.Unmarshal(ev.Data, &c); err != nil {
		return Message{}, fmt.Errorf("%w: %s data: %v", event.ErrMalformed, ev.Type, err)
	}
	if !ValidID(ev.ID) || c.Tag == "" || c.Content == nil || c.Content.Text == nil {
		return Message{}, fmt.Errorf("%w: %s %q lacks an id, a tag or a text", event.ErrMalformed, ev.Type, ev.ID)
	}
	return Message{
		ID:        ev.ID,
		UserID:    ev.UserID,
		Text:      *c.Content.Text,
		Tag:       c.Tag,
		CreatedAt: ev.OccurredAt.UTC(),
	}, nil
}

// LoneSurrogate reports whether JSON text escapes a UTF-16 surrogate that is
// not part of a pair. Decoding would silently turn it into U+FFFD, so text
// written that way is not UTF-8 to the service.
func LoneSurrogate(lit []byte) bool {
	pending := false // a high surrogate waits for its low half
	for i := 0; i < len(lit); i++ {
		if lit[i] != '\\' {
			if pending {
				return true
			}
			continue
		}
		i++
		if i >= len(lit) || lit[i] != 'u' || i+4 >= len(lit) {
			if pending {
				return true
			}
			continue
		}
		r, err := strconv.ParseUint(string(lit[i+1:i+5]), 16, 16)
		i += 4
		if err != nil {
			continue
		}
		switch {
		case r >= 0xD800 && r < 0xDC00:
			if pending {
				return true
			}
			pending = true
		case r >= 0xDC00 && r < 0xE000:
			if !pending {
				return true
			}
			pending = false
		default:
			if pending {
				return true
			}
		}
	}
	return pending
}
