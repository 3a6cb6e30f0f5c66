package importer

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"
	"unicode/utf8"

	"github.com/messages-io/messages/message"
	"github.com/oklog/ulid/v2"
)

// MaxLineBytes is the longest line read; a longer one is a bad line. A text
// of 1000 characters, each escaped as \uXXXX, fits several times over.
const MaxLineBytes = 64 << 10

// maxFutureSkew is how far past the importer's clock a createdAt may lie:
// the service never holds messages from the future.
const maxFutureSkew = time.Minute

// lineFields are the fields of a line, each a JSON string.
var lineFields = []string{"id", "userId", "text", "tag", "createdAt"}

// ParseLine checks one line of an import file and returns the message it
// records. The line is one JSON object with string fields userId, text, tag
// and createdAt (RFC 3339), and optionally id; text, tag and userId obey the
// rules of the write API. Without an id the message id is derived from the
// line's content (see MessageID); with one, it must be a ULID whose time is
// createdAt in milliseconds, since the read model's date ranges are id ranges.
// now bounds createdAt from above.
func ParseLine(line []byte, now time.Time) (message.Message, error) {
	fields, err := object(line)
	if err != nil {
		return message.Message{}, err
	}
	for _, name := range lineFields[1:] {
		if _, ok := fields[name]; !ok {
			return message.Message{}, fmt.Errorf("%s is required", name)
		}
	}
	m := message.Message{UserID: fields["userId"], Text: fields["text"]}
	if !message.ValidUserID(m.UserID) {
		return message.Message{}, fmt.Errorf("userId must be 1-%d characters of A-Z a-z 0-9 . _ : @ -", message.MaxUserIDLen)
	}
	if err := message.ValidateText(m.Text); err != nil {
		return message.Message{}, err
	}
	if m.Tag, err = message.NormalizeTag(fields["tag"]); err != nil {
		return message.Message{}, err
	}
	created, err := time.Parse(time.RFC3339Nano, fields["createdAt"])
	if err != nil {
		return message.Message{}, fmt.Errorf("createdAt %q is not an RFC 3339 time", fields["createdAt"])
	}
	created = created.UTC()
	switch {
	case created.Before(time.UnixMilli(0)):
		return message.Message{}, fmt.Errorf("createdAt %s is before 1970", fields["createdAt"])
	case created.After(now.Add(maxFutureSkew)):
		return message.Message{}, fmt.Errorf("createdAt %s is in the future", fields["createdAt"])
	}
	m.CreatedAt = created.Truncate(time.Millisecond)
	if id, ok := fields["id"]; ok {
		u, err := ulid.ParseStrict(id)
		if err != nil {
			return message.Message{}, fmt.Errorf("id %q is not a ULID", id)
		}
		if int64(u.Time()) != m.CreatedAt.UnixMilli() {
			return message.Message{}, fmt.Errorf("id %s carries the time %s, not createdAt %s",
				id, ulid.Time(u.Time()).UTC().Format(message.TimeFormat), m.CreatedAt.Format(message.TimeFormat))
		}
		m.ID = u.String()
		return m, nil
	}
	m.ID = MessageID(m.UserID, m.Tag, m.Text, created)
	return m, nil
}

// MessageID is the id of an imported message that came without one: a ULID
// whose time is created in milliseconds and whose entropy is the first 10
// bytes of SHA-256 over userId, tag (stored form), text and created (RFC 3339
// with nanoseconds, UTC), separated by NUL bytes. The same line always gets
// the same id, so importing it again stores nothing new.
func MessageID(userID, tag, text string, created time.Time) string {
	h := sha256.New()
	io.WriteString(h, userID)
	h.Write([]byte{0})
	io.WriteString(h, tag)
	h.Write([]byte{0})
	io.WriteString(h, text)
	h.Write([]byte{0})
	io.WriteString(h, created.UTC().Format(time.RFC3339Nano))
	var u ulid.ULID
	_ = u.SetTime(uint64(created.UnixMilli()))
	copy(u[6:], h.Sum(nil)[:10])
	return u.String()
}

// object reads a line as one JSON object of string fields, each known and
// given once.
func object(line []byte) (map[string]string, error) {
	if !utf8.Valid(line) {
		return nil, errors.New("line is not UTF-8")
	}
	if message.LoneSurrogate(line) {
		return nil, errors.New("line must be UTF-8: it escapes half of a surrogate pair")
	}
	dec := json.NewDecoder(bytes.NewReader(line))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return nil, errors.New("line is not a JSON object")
	}
	fields := make(map[string]string, len(lineFields))
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, jsonError(err)
		}
		name, _ := tok.(string)
		if !known(name) {
			return nil, fmt.Errorf("unknown field %q; want userId, text, tag, createdAt and optionally id", name)
		}
		if _, dup := fields[name]; dup {
			return nil, fmt.Errorf("field %s is given twice", name)
		}
		tok, err = dec.Token()
		if err != nil {
			return nil, jsonError(err)
		}
		v, ok := tok.(string)
		if !ok {
			return nil, fmt.Errorf("%s must be a string", name)
		}
		fields[name] = v
	}
	if _, err := dec.Token(); err != nil {
		return nil, jsonError(err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("line holds more than one JSON value")
	}
	return fields, nil
}

func known(name string) bool {
	for _, f := range lineFields {
		if f == name {
			return true
		}
	}
	return false
}

func jsonError(err error) error {
	return fmt.Errorf("line is not a JSON object: %v", err)
}

// blank reports whether a line holds only white space.
func blank(line []byte) bool {
	return len(bytes.TrimSpace(line)) == 0
}
