package main

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/messages-io/messages/eventstore"
	"github.com/messages-io/messages/position"
	"github.com/messages-io/messages/readmodel/queryapi"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// openFeed gives the query API the feed of its live streams. A process that
// opened the log already follows it; a query role alone connects to NATS
// without waiting for it, so that it answers reads while the log is out of
// reach, and its streams wait.
func (s *service) openFeed(url string, cfg eventstore.Config, q *queryapi.Config) error {
	var log queryapi.Log = s.events
	if s.events == nil {
		s.ncClosed = make(chan struct{})
		nc, err := nats.Connect(url,
			nats.Name("messages query"),
			nats.RetryOnFailedConnect(true),
			nats.MaxReconnects(-1),
			nats.ReconnectWait(250*time.Millisecond),
			nats.ClosedHandler(func(*nats.Conn) { close(s.ncClosed) }),
		)
		if err != nil {
			return fmt.Errorf("nats %s: %w", url, err)
		}
		s.nc = nc
		js, err := jetstream.New(nc)
		if err != nil {
			return fmt.Errorf("jetstream: %w", err)
		}
		log = &existingLog{js: js, stream: cfg.Stream}
	}
	s.feed = queryapi.NewFeed(log, s.rm, s.log.With("component", "streams"), queryapi.FeedConfig{Registerer: s.reg})
	q.Streams.Feed = s.feed
	if s.events != nil {
		// The log answered already: streams are served from the start.
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := s.feed.Start(ctx); err != nil {
			s.log.Warn("live streams wait for the event log", "err", err)
		}
	}
	return nil
}

// existingLog is the stream of the log, opened as it exists once it can be:
// a query role neither creates nor changes it.
type existingLog struct {
	js     jetstream.JetStream
	stream string
	mu     sync.Mutex
	store  *eventstore.Store
}

func (l *existingLog) open(ctx context.Context) (*eventstore.Store, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.store == nil {
		st, err := eventstore.OpenExisting(ctx, l.js, l.stream)
		if err != nil {
			return nil, err
		}
		l.store = st
	}
	return l.store, nil
}

func (l *existingLog) Layout() position.Layout {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.store == nil {
		return position.Layout{}
	}
	return l.store.Layout()
}

func (l *existingLog) LastSequence(ctx context.Context) (uint64, error) {
	st, err := l.open(ctx)
	if err != nil {
		return 0, err
	}
	return st.LastSequence(ctx)
}

func (l *existingLog) Follow(ctx context.Context, from uint64, filter string, fn func(eventstore.Record) error) error {
	st, err := l.open(ctx)
	if err != nil {
		return err
	}
	return st.Follow(ctx, from, filter, fn)
}

func (l *existingLog) Read(ctx context.Context, from uint64, fn func(eventstore.Record) error) error {
	st, err := l.open(ctx)
	if err != nil {
		return err
	}
	return st.Read(ctx, from, fn)
}

func (l *existingLog) Folds(ctx context.Context, fn func(position.Folded)) error {
	st, err := l.open(ctx)
	if err != nil {
		return err
	}
	return st.Folds(ctx, fn)
}
