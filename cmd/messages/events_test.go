package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/messages-io/messages/eventstore"
	"github.com/messages-io/messages/internal/testkit"
	"github.com/messages-io/messages/message"
	"github.com/nats-io/nats.go/jetstream"
)

// printedEvent is an event as `events get --json` and `events tail --json`
// print it.
type printedEvent struct {
	Sequence      uint64 `json:"sequence"`
	Partition     int    `json:"partition"`
	Subject       string `json:"subject"`
	ID            string `json:"id"`
	Type          string `json:"type"`
	Version       int    `json:"version"`
	UserID        string `json:"userId"`
	CorrelationID string `json:"correlationId"`
	Data          struct {
		Content struct {
			Text string `json:"text"`
		} `json:"content"`
		Tag string `json:"tag"`
	} `json:"data"`
}

func TestEventsGet(t *testing.T) {
	f := newToolFixture(t)
	f.postMany(t, 12)
	f.activeModel(t)
	late := f.post(t, "go", "zoe", time.Date(2026, 3, 5, 0, 0, 0, 0, time.UTC)) // not in the read model
	m := f.msgs[5]
	seq := f.seq[m.ID]

	err, out, _ := f.runTool(t, "events", "get", fmt.Sprint(seq))
	wantLines := []string{
		fmt.Sprintf("sequence     %d", seq),
		fmt.Sprintf("partition    %d", f.events.Partition(m.Tag)),
		fmt.Sprintf("subject      messages.events.%d.message.created", f.events.Partition(m.Tag)),
		"id           " + m.ID,
		"type         message.created (version 2)",
		"occurred     " + m.CreatedAt.Format(message.TimeFormat),
		"user         " + m.UserID,
		"correlation  req-" + m.ID,
		"tag          " + m.Tag,
		fmt.Sprintf("text         %q", m.Text),
	}
	for _, l := range wantLines {
		if !strings.Contains(out, l+"\n") {
			t.Errorf("events get %d: no line %q in:\n%s", seq, l, out)
		}
	}
	if err != nil {
		t.Errorf("events get %d: %v", seq, err)
	}

	for _, tc := range []struct {
		name, arg string
		want      message.Message
	}{
		{"sequence", fmt.Sprint(f.seq[f.msgs[7].ID]), f.msgs[7]},
		{"id in the read model", m.ID, m},
		{"id in lower case", strings.ToLower(m.ID), m},
		{"id only in the log", late.ID, late},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err, out, errOut := f.runTool(t, "events", "get", "--json", tc.arg)
			if err != nil || errOut != "" {
				t.Fatalf("err %v, stderr %q", err, errOut)
			}
			var ev printedEvent
			if err := json.Unmarshal([]byte(out), &ev); err != nil {
				t.Fatalf("%q: %v", out, err)
			}
			if ev.Sequence != f.seq[tc.want.ID] || ev.ID != tc.want.ID || ev.Type != message.EventCreated || ev.UserID != tc.want.UserID ||
				ev.Data.Tag != tc.want.Tag || ev.Data.Content.Text != tc.want.Text || ev.Partition != f.events.Partition(tc.want.Tag) ||
				ev.CorrelationID != "req-"+tc.want.ID {
				t.Errorf("got %+v, want %+v at %d", ev, tc.want, f.seq[tc.want.ID])
			}
		})
	}

	// The read model unreachable: the log is scanned.
	err, out, errOut := f.runTool(t, "events", "get", "--json", "--mongo-uri", "mongodb://127.0.0.1:1/", "--connect-timeout", "300ms", m.ID)
	if err != nil || !strings.Contains(out, `"id":"`+m.ID+`"`) || !strings.Contains(errOut, "scanning the log") {
		t.Errorf("read model down: err %v, stdout %q, stderr %q", err, out, errOut)
	}

	checkEventsGetErrors(t, f)
}

// checkEventsGetErrors checks what events get says of what it cannot get.
func checkEventsGetErrors(t *testing.T, f *toolFixture) {
	t.Helper()
	unknown := "01KJPQRWH05HKAVW5XRH5ER2AN"
	for _, tc := range []struct {
		args []string
		want string // the error, or "usage:" and what standard error says
	}{
		{[]string{"999"}, "no event at sequence 999"},
		{[]string{unknown}, "no event of message " + unknown + " in the log"},
		{[]string{"nonsense"}, `usage:"nonsense" is neither a stream sequence nor a message id`},
		{[]string{"0"}, `usage:"0" is neither a stream sequence nor a message id`},
		{[]string{}, "usage:want one SEQ or MESSAGE_ID, got 0"},
		{[]string{"1", "2"}, "usage:want one SEQ or MESSAGE_ID, got 2"},
	} {
		err, _, errOut := f.runTool(t, append([]string{"events", "get"}, tc.args...)...)
		if rest, ok := strings.CutPrefix(tc.want, "usage:"); ok {
			if err != errUsage || !strings.Contains(errOut, rest) {
				t.Errorf("events get %v: err %v, stderr %q; want usage saying %q", tc.args, err, errOut, rest)
			}
			continue
		}
		if err == nil || err.Error() != tc.want {
			t.Errorf("events get %v: err %v, want %q", tc.args, err, tc.want)
		}
	}
}

func TestEventsStats(t *testing.T) {
	f := newToolFixture(t)
	f.postMany(t, 14)
	type part struct{ events, first, last uint64 }
	want := map[int]*part{}
	for _, m := range f.msgs {
		p := f.events.Partition(m.Tag)
		if want[p] == nil {
			want[p] = &part{first: f.seq[m.ID]}
		}
		want[p].events++
		want[p].last = f.seq[m.ID]
	}
	// A reducer's consumer of go's partition, which has folded some events.
	goP := f.events.Partition("go")
	acked := ackSome(t, f, goP)
	var ackedEvents uint64
	for _, m := range f.msgs {
		if f.events.Partition(m.Tag) == goP && f.seq[m.ID] <= acked {
			ackedEvents++
		}
	}

	err, out, _ := f.runTool(t, "events", "stats", "--json")
	if err != nil {
		t.Fatal(err)
	}
	var st eventstore.Stats
	if err := json.Unmarshal([]byte(out), &st); err != nil {
		t.Fatalf("%q: %v", out, err)
	}
	if st.Stream != "MESSAGES" || st.Events != 14 || st.First != 1 || st.Last != 14 || st.Bytes == 0 || len(st.Partitions) != 4 {
		t.Errorf("stats = %+v", st)
	}
	for _, p := range st.Partitions {
		w := want[p.Partition]
		if w == nil {
			w = &part{}
		}
		if p.Events != w.events || p.First != w.first || p.Last != w.last {
			t.Errorf("partition %d: %+v, want %+v", p.Partition, p, *w)
		}
	}
	wantCons := eventstore.ConsumerStats{Name: fmt.Sprintf("reducer-p%d", goP), Partition: goP, Pending: want[goP].events - ackedEvents,
		AckFloor: acked, Delivered: acked, Lag: want[goP].events - ackedEvents}
	if len(st.Consumers) != 1 || st.Consumers[0] != wantCons {
		t.Errorf("consumers = %+v, want %+v", st.Consumers, wantCons)
	}

	err, out, _ = f.runTool(t, "events", "stats")
	if err != nil {
		t.Fatal(err)
	}
	for _, re := range []string{
		`^stream MESSAGES: 14 events, \d+ bytes, sequences 1-14\n\n`,
		`\nPARTITION +EVENTS +FIRST +LAST\n`,
		fmt.Sprintf(`\n%d +%d +%d +%d\n`, goP, want[goP].events, want[goP].first, want[goP].last),
		`\nCONSUMER +PARTITION +PENDING +ACK PENDING +ACK FLOOR +DELIVERED +REDELIVERED +LAG\n`,
		fmt.Sprintf(`\nreducer-p%d +%d +%d +0 +%d +%d +0 +%d\n$`, goP, goP, wantCons.Pending, acked, acked, wantCons.Lag),
	} {
		if !regexp.MustCompile(re).MatchString(out) {
			t.Errorf("events stats printed:\n%s\nwant it to match %q", out, re)
		}
	}
}

// ackSome has a reducer's consumer of partition p take and acknowledge its
// first event, and returns the sequence acknowledged through. It pulls one
// event at a time: a pull request for more could be sent another after the
// consumer closed, which would show as delivered and pending for the ack
// wait.
func ackSome(t *testing.T, f *toolFixture, p int) uint64 {
	t.Helper()
	ctx := t.Context()
	cons, err := f.events.Consumer(ctx, p, eventstore.ConsumerConfig{Name: "reducer", FetchWait: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	var acked uint64
	testkit.Eventually(t, 10*time.Second, 10*time.Millisecond, func() error {
		b, err := cons.Next(ctx, acked, 1)
		if err != nil {
			return err
		}
		if len(b.Records) > 0 {
			acked = b.Records[len(b.Records)-1].Sequence
			if err := b.Ack(ctx, acked); err != nil {
				return err
			}
		}
		if acked == 0 {
			return fmt.Errorf("nothing delivered yet")
		}
		return nil
	})
	cons.Close(ctx)
	return acked
}

// tail runs `messages events tail args…` until the returned function stops
// it; the function returns the tail's error.
func (f *toolFixture) tail(t *testing.T, out *syncBuffer, args ...string) func() error {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, append([]string{"events", "tail", "--nats-url", f.natsURL}, args...),
			env{getenv: func(string) string { return "" }, stdout: out, stderr: out})
	}()
	var err error
	stopped := false
	stop := func() error {
		if !stopped {
			stopped = true
			cancel()
			select {
			case err = <-done:
			case <-time.After(10 * time.Second):
				t.Fatal("tail did not stop within 10s")
			}
		}
		return err
	}
	t.Cleanup(func() { _ = stop() })
	return stop
}

// waitForNewReader waits until a reader of the events appended from now on
// is registered with the stream.
func (f *toolFixture) waitForNewReader(t *testing.T) {
	t.Helper()
	ctx := t.Context()
	testkit.Eventually(t, 10*time.Second, 10*time.Millisecond, func() error {
		stream, err := f.js.Stream(ctx, "MESSAGES")
		if err != nil {
			return err
		}
		list := stream.ListConsumers(ctx)
		for ci := range list.Info() {
			if ci.Config.DeliverPolicy == jetstream.DeliverNewPolicy {
				return nil
			}
		}
		return fmt.Errorf("no reader of new events: %v", list.Err())
	})
}

// waitForLines waits until out holds n lines.
func waitForLines(t *testing.T, out *syncBuffer, n int) []string {
	t.Helper()
	var lines []string
	testkit.Eventually(t, 10*time.Second, 10*time.Millisecond, func() error {
		lines = strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
		if out.String() == "" {
			lines = nil
		}
		if len(lines) < n {
			return fmt.Errorf("%d lines printed, want %d:\n%s", len(lines), n, out.String())
		}
		return nil
	})
	return lines
}

func TestEventsTail(t *testing.T) {
	f := newToolFixture(t)
	f.postMany(t, 8)
	at := time.Date(2026, 3, 9, 10, 0, 0, 0, time.UTC)

	// By tag, from the start of the log, then live.
	var out syncBuffer
	stop := f.tail(t, &out, "--tag", "#GO", "--from-seq", "1")
	waitForLines(t, &out, 2) // msgs 0 and 4
	f.post(t, "nats", "u9", at)
	live := f.post(t, "go", "u9", at.Add(time.Minute))
	lines := waitForLines(t, &out, 3)
	if err := stop(); err != nil {
		t.Errorf("tail stopped with %v", err)
	}
	var want []string
	for _, m := range []message.Message{f.msgs[0], f.msgs[4], live} {
		want = append(want, fmt.Sprintf("%d %s p%d message.created %s go %q", f.seq[m.ID], m.CreatedAt.Format(message.TimeFormat),
			f.events.Partition("go"), m.UserID, m.Text))
	}
	if got := strings.Join(lines, "\n"); got != strings.Join(want, "\n") {
		t.Errorf("tail --tag go printed:\n%s\nwant:\n%s", got, strings.Join(want, "\n"))
	}

	// By user, the last 6 events of the log, as JSON.
	out = syncBuffer{}
	stop = f.tail(t, &out, "--user", "u1", "--last", "6", "--json", "--type", message.EventCreated)
	var wantSeqs []uint64
	for _, m := range f.msgs {
		if m.UserID == "u1" && f.seq[m.ID] > 10-6 {
			wantSeqs = append(wantSeqs, f.seq[m.ID])
		}
	}
	lines = waitForLines(t, &out, len(wantSeqs))
	var gotSeqs []uint64
	for _, l := range lines {
		var ev printedEvent
		if err := json.Unmarshal([]byte(l), &ev); err != nil {
			t.Fatalf("%q: %v", l, err)
		}
		if ev.UserID != "u1" {
			t.Errorf("tail --user u1 printed an event of %s", ev.UserID)
		}
		gotSeqs = append(gotSeqs, ev.Sequence)
	}
	if fmt.Sprint(gotSeqs) != fmt.Sprint(wantSeqs) || len(wantSeqs) == 0 {
		t.Errorf("tail --user u1 --last 6 printed sequences %v, want %v", gotSeqs, wantSeqs)
	}
	_ = stop()

	// From now on: only events appended after the tail began.
	out = syncBuffer{}
	stop = f.tail(t, &out)
	f.waitForNewReader(t)
	newest := f.post(t, "sql", "u2", at.Add(2*time.Minute))
	lines = waitForLines(t, &out, 1)
	if len(lines) != 1 || !strings.HasPrefix(lines[0], fmt.Sprintf("%d ", f.seq[newest.ID])) {
		t.Errorf("tail printed %q, want only the event appended after it began, %d", lines, f.seq[newest.ID])
	}
	_ = stop()

	err, _, errOut := f.runTool(t, "events", "tail", "--from-seq", "3", "--last", "2")
	if err != errUsage || !strings.Contains(errOut, "--from-seq and --last exclude each other") {
		t.Errorf("tail --from-seq --last: err %v, stderr %q", err, errOut)
	}
	if err, _, _ := f.runTool(t, "events", "tail", "--tag", "no spaces"); err == nil || !strings.HasPrefix(err.Error(), `--tag "no spaces": tag must be`) {
		t.Errorf("tail with a bad tag: err %v", err)
	}
}

func TestEventsCommandLine(t *testing.T) {
	var out, errOut bytes.Buffer
	e := env{getenv: func(string) string { return "" }, stdout: &out, stderr: &errOut}
	if err := run(t.Context(), []string{"events"}, e); err != errUsage || !strings.Contains(errOut.String(), "Subcommands:") {
		t.Errorf("events without a subcommand: err %v, stderr %q", err, errOut.String())
	}
	if err := run(t.Context(), []string{"events", "--help"}, e); err != nil || !strings.Contains(out.String(), "messages events stats --json") {
		t.Errorf("events --help: err %v, stdout %q", err, out.String())
	}
	errOut.Reset()
	if err := run(t.Context(), []string{"events", "list"}, e); err != errUsage || !strings.Contains(errOut.String(), `unknown subcommand "list"`) {
		t.Errorf("events list: err %v, stderr %q", err, errOut.String())
	}
	for _, sub := range []string{"tail", "get", "stats"} {
		out.Reset()
		if err := run(t.Context(), []string{"events", sub, "--help"}, e); err == nil || !strings.Contains(out.String(), "Examples:\n  messages events "+sub) ||
			!strings.Contains(out.String(), "MESSAGES_NATS_URL") || !strings.Contains(out.String(), "--json") {
			t.Errorf("events %s --help: err %v, printed:\n%s", sub, err, out.String())
		}
	}
}
