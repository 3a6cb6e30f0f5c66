package eventstore

import (
	"errors"
	"fmt"
	"regexp"
	"time"
)

// Config describes the stream that holds the log. Partitions and the subject
// prefix are fixed for the life of a stream; the other settings may change.
type Config struct {
	// Stream is the JetStream stream name. Default "MESSAGES".
	Stream string
	// SubjectPrefix starts every event subject:
	// <prefix>.<partition>.<event type>. Default "messages.events".
	SubjectPrefix string
	// Partitions is how many partitions the log is split into: 1-1024.
	// Default 8. Each partition is a durable consumer per reducer group and
	// a document per year in an all-tags count, so the bound keeps both
	// within what one process and one count should carry.
	Partitions int
	// Replicas is the stream's replication factor: 1 in dev, 3 or 5 in
	// production, at most 5 (nats-server's limit). Zero keeps an existing
	// stream's, and makes a new one with 1.
	Replicas int
	// DuplicateWindow is how long JetStream remembers message ids to drop
	// repeated appends: at least 1s (nats-server takes 100ms, too short for
	// any retry). Zero keeps an existing stream's, and makes a new one with
	// 10 minutes.
	DuplicateWindow time.Duration
	// WindowAbove, when set, is how long an append may be repeated: the
	// stream's duplicate window must be longer, or a repeat could store
	// the event twice. Open refuses a stream, existing or to be made, whose
	// window would not be, before it makes or changes anything.
	WindowAbove time.Duration
}

const (
	defaultStream          = "MESSAGES"
	defaultSubjectPrefix   = "messages.events"
	defaultPartitions      = 8
	defaultDuplicateWindow = 10 * time.Minute
	maxPartitions          = 1024
	maxReplicas            = 5 // nats-server's StreamMaxReplicas
	minDuplicateWindow     = time.Second
)

var (
	streamNameRE    = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)
	subjectPrefixRE = regexp.MustCompile(`^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$`)
)

func (c *Config) setDefaults() {
	if c.Stream == "" {
		c.Stream = defaultStream
	}
	if c.SubjectPrefix == "" {
		c.SubjectPrefix = defaultSubjectPrefix
	}
	if c.Partitions == 0 {
		c.Partitions = defaultPartitions
	}
	if c.Replicas == 0 {
		c.Replicas = 1
	}
	if c.DuplicateWindow == 0 {
		c.DuplicateWindow = defaultDuplicateWindow
	}
}

// DefaultConfig is the stream a zero Config makes when there is none yet.
func DefaultConfig() Config {
	var c Config
	c.setDefaults()
	return c
}

// ErrInvalidConfig means a Config that no stream can take.
var ErrInvalidConfig = errors.New("invalid event store configuration")

// Validate reports the first setting that cannot describe a stream, before
// any server is asked: JetStream would refuse it, or the service could not
// keep its promises on it. Unset settings take their defaults. The error
// wraps ErrInvalidConfig.
func (c Config) Validate() error {
	c.setDefaults()
	if err := c.validate(); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidConfig, err)
	}
	return nil
}

func (c Config) validate() error {
	switch {
	case !streamNameRE.MatchString(c.Stream):
		return fmt.Errorf("stream name %q: want 1-64 of A-Z a-z 0-9 _ -", c.Stream)
	case !subjectPrefixRE.MatchString(c.SubjectPrefix):
		return fmt.Errorf("subject prefix %q: want dot-separated tokens of A-Z a-z 0-9 _ -", c.SubjectPrefix)
	case c.Partitions < 1 || c.Partitions > maxPartitions:
		return fmt.Errorf("partitions %d: want 1-%d", c.Partitions, maxPartitions)
	case c.Replicas < 1 || c.Replicas > maxReplicas:
		return fmt.Errorf("replicas %d: want 1-%d", c.Replicas, maxReplicas)
	case c.DuplicateWindow < minDuplicateWindow:
		return fmt.Errorf("duplicate window %s: want at least %s", c.DuplicateWindow, minDuplicateWindow)
	}
	return nil
}
