package main

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"hash/fnv"
	"os"
	"strconv"
	"time"

	"github.com/messages-io/messages/message"
	"github.com/oklog/ulid/v2"
)

// history is the imported history of the benchmark, made from the messages'
// numbers so that any answer about it can be worked out again without
// holding it. A history of n messages spreads them over the year before
// end, message k's time a hash of k, so every prefix covers the year
// evenly; beside them lies a burst of n/5 messages of one tag within one
// hour of that year, the dense hour.
type history struct{ end time.Time }

const (
	yearMillis = 365 * 24 * 3600 * 1000
	hourMillis = 3600 * 1000
	// burstTag is the tag of the burst, one of the spread messages' tags.
	burstTag = "topic3"
)

func (h history) start() time.Time { return h.end.Add(-yearMillis * time.Millisecond) }

// denseHour is the start of the hour that holds the burst.
func (h history) denseHour() time.Time { return h.start().Add(200*24*time.Hour + 13*time.Hour) }

// burstOf is how many messages of the burst a history of n messages holds.
func burstOf(n int) int { return n / 5 }

// total is how many messages a history of n messages holds, burst included.
func total(n int) int { return n + burstOf(n) }

func hashOf(k int) uint64 {
	f := fnv.New64a()
	fmt.Fprint(f, k)
	return f.Sum64()
}

func (h history) at(k int) time.Time {
	return h.start().Add(time.Duration(hashOf(k)%yearMillis) * time.Millisecond)
}

// spread returns message k of the messages spread over the year.
func (h history) spread(k int) message.Message {
	t := h.at(k)
	return message.Message{ID: historyID(t, 0, k), UserID: "user" + strconv.Itoa(k%100),
		Text: fmt.Sprintf("imported message %d of the benchmark history", k), Tag: "topic" + strconv.Itoa(k%8), CreatedAt: t}
}

// burst returns message j of the burst.
func (h history) burst(j int) message.Message {
	t := h.denseHour().Add(time.Duration(hashOf(-1-j)%hourMillis) * time.Millisecond)
	return message.Message{ID: historyID(t, 1, j), UserID: "user" + strconv.Itoa(j%100),
		Text: fmt.Sprintf("burst message %d of the benchmark history", j), Tag: burstTag, CreatedAt: t}
}

// historyID is the id the import file gives a message: a ULID of its time
// whose entropy is its part of the history and its number, so that ids are
// known before the import and no two collide.
func historyID(t time.Time, part byte, k int) string {
	var id ulid.ULID
	_ = id.SetTime(uint64(t.UnixMilli()))
	id[6] = part
	binary.BigEndian.PutUint64(id[8:], uint64(k))
	return id.String()
}

// between calls f with each message a history gains as it grows from
// from to to messages.
func (h history) between(from, to int, f func(message.Message)) {
	for k := from; k < to; k++ {
		f(h.spread(k))
	}
	for j := burstOf(from); j < burstOf(to); j++ {
		f(h.burst(j))
	}
}

// writeLines writes the messages a history gains as it grows from from to
// to messages as an import file.
func (h history) writeLines(name string, from, to int) error {
	f, err := os.Create(name)
	if err != nil {
		return err
	}
	w := bufio.NewWriterSize(f, 1<<20)
	h.between(from, to, func(m message.Message) {
		fmt.Fprintf(w, `{"id":"%s","userId":"%s","text":"%s","tag":"%s","createdAt":"%s"}`+"\n",
			m.ID, m.UserID, m.Text, m.Tag, m.CreatedAt.Format(time.RFC3339Nano))
	})
	if err := w.Flush(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
