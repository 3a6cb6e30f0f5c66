package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/messages-io/messages/eventstore"
	"github.com/messages-io/messages/internal/testkit"
	"github.com/messages-io/messages/message"
	"github.com/messages-io/messages/readmodel"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/oklog/ulid/v2"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
)

// toolFixture is a log on an embedded NATS server and a read model on an
// embedded MongoDB-wire server, for the commands that inspect them.
type toolFixture struct {
	natsURL, mongoURI string
	js                jetstream.JetStream
	events            *eventstore.Store
	db                *mongo.Database
	gens              *readmodel.Generations
	msgs              []message.Message
	seq               map[string]uint64
}

func newToolFixture(t *testing.T) *toolFixture {
	t.Helper()
	ns := testkit.NATS(t)
	_, js := testkit.JetStream(t, ns)
	ctx := t.Context()
	events, err := eventstore.Open(ctx, js, eventstore.Config{Partitions: 4})
	if err != nil {
		t.Fatal(err)
	}
	mongoURI := testkit.Mongo(t).URI()
	db := testkit.DatabaseOn(t, mongoURI)
	gens, err := readmodel.OpenGenerations(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	return &toolFixture{natsURL: ns.ClientURL(), mongoURI: mongoURI, js: js, events: events, db: db, gens: gens, seq: map[string]uint64{}}
}

// post appends a message of tag by user, created at.
func (f *toolFixture) post(t *testing.T, tag, user string, at time.Time) message.Message {
	t.Helper()
	m := message.Message{ID: ulid.MustNew(ulid.Timestamp(at), ulid.DefaultEntropy()).String(), UserID: user,
		Text: fmt.Sprintf("%s says %d", user, len(f.msgs)), Tag: tag, CreatedAt: at.UTC().Truncate(time.Millisecond)}
	ev, err := message.CreatedEvent(m, "req-"+m.ID)
	if err != nil {
		t.Fatal(err)
	}
	res, err := f.events.Append(t.Context(), eventstore.Append{Event: ev, PartitionKey: tag})
	if err != nil {
		t.Fatal(err)
	}
	f.msgs = append(f.msgs, m)
	f.seq[m.ID] = res.Sequence
	return m
}

// postMany appends n messages over four tags, three users and two days.
func (f *toolFixture) postMany(t *testing.T, n int) {
	t.Helper()
	start := time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)
	for i := range n {
		f.post(t, []string{"go", "nats", "rust", "sql"}[i%4], fmt.Sprint("u", i%3), start.Add(time.Duration(i)*151*time.Minute))
	}
}

// fold applies the whole log to s as the reducers do, each partition's
// checkpoint at its last event.
func (f *toolFixture) fold(t *testing.T, s *readmodel.Store) {
	t.Helper()
	f.foldFrom(t, s, 1)
}

// activeModel returns the active generation, folded from the whole log.
func (f *toolFixture) activeModel(t *testing.T) *readmodel.Store {
	t.Helper()
	ctx := t.Context()
	gen, err := f.gens.Active(ctx)
	if err != nil {
		t.Fatal(err)
	}
	s, err := f.gens.Store(ctx, gen)
	if err != nil {
		t.Fatal(err)
	}
	f.fold(t, s)
	return s
}

func (f *toolFixture) collection(gen int, name string) *mongo.Collection {
	return f.db.Collection(fmt.Sprintf("g%d_%s", gen, name))
}

// runTool runs `messages args…` against the fixture's servers, given in the
// environment, and returns its error, standard output and standard error.
func (f *toolFixture) runTool(t *testing.T, args ...string) (error, string, string) {
	t.Helper()
	environ := map[string]string{
		"MESSAGES_NATS_URL":  f.natsURL,
		"MESSAGES_MONGO_URI": f.mongoURI,
		"MESSAGES_MONGO_DB":  f.db.Name(),
	}
	var stdout, stderr bytes.Buffer
	err := run(t.Context(), args, env{getenv: func(k string) string { return environ[k] }, stdout: &stdout, stderr: &stderr})
	return err, stdout.String(), stderr.String()
}

func TestVerifyFindsDriftAndPassesAfterARebuild(t *testing.T) {
	f := newToolFixture(t)
	f.postMany(t, 20)
	f.activeModel(t)
	ctx := t.Context()

	err, out, errOut := f.runTool(t, "verify")
	if err != nil || out != "generation 1 agrees with the log: 20 events, 20 messages compared\n" || errOut != "" {
		t.Fatalf("verify a clean model: err %v, stdout %q, stderr %q", err, out, errOut)
	}

	// Corrupt the model: a message deleted, another altered, a count gone.
	gone, altered := f.msgs[4], f.msgs[9]
	if _, err := f.collection(1, "messages").DeleteOne(ctx, bson.M{"_id": gone.ID}); err != nil {
		t.Fatal(err)
	}
	if _, err := f.collection(1, "messages").UpdateOne(ctx, bson.M{"_id": altered.ID}, bson.M{"$set": bson.M{"text": "rewritten"}}); err != nil {
		t.Fatal(err)
	}
	rustDay := f.msgs[2].CreatedAt.Format(time.DateOnly)
	// The count of a day is the field MM-DD of its year's document.
	if _, err := f.collection(1, "counts").UpdateOne(ctx, bson.M{"_id": "rust/" + rustDay[:4]}, bson.M{"$unset": bson.M{rustDay[5:]: ""}}); err != nil {
		t.Fatal(err)
	}
	rustCount := 0
	for _, m := range f.msgs {
		if m.Tag == "rust" && m.CreatedAt.Format(time.DateOnly) == rustDay {
			rustCount++
		}
	}

	err, out, _ = f.runTool(t, "verify")
	if err == nil || err.Error() != "read model drifted from the log: 3 differences" {
		t.Errorf("verify a corrupted model: err = %v", err)
	}
	want := fmt.Sprintf(`different %s tag=%s day=%s seq=%d: want text=%q got text="rewritten"
missing %s tag=%s day=%s seq=%d
count tag=rust day=%s: want %d got 0
generation 1 differs from the log: 20 events, 19 messages compared; 3 differences
`, altered.ID, altered.Tag, altered.CreatedAt.Format(time.DateOnly), f.seq[altered.ID], altered.Text,
		gone.ID, gone.Tag, gone.CreatedAt.Format(time.DateOnly), f.seq[gone.ID],
		rustDay, rustCount)
	if out != want {
		t.Errorf("verify printed:\n%s\nwant:\n%s", out, want)
	}

	checkVerifyJSON(t, f, altered)

	// Rebuilt from the log beside it and switched to, the model agrees
	// again; the corrupted generation still differs.
	s, err := f.gens.Create(ctx, "rebuild")
	if err != nil {
		t.Fatal(err)
	}
	f.fold(t, s)
	if err := f.gens.Activate(ctx, s.Generation()); err != nil {
		t.Fatal(err)
	}
	if err, out, _ := f.runTool(t, "verify"); err != nil || !strings.HasPrefix(out, "generation 2 agrees with the log") {
		t.Errorf("verify after the rebuild: err %v, stdout %q", err, out)
	}
	if err, _, _ := f.runTool(t, "verify", "--generation", "1"); err == nil {
		t.Error("verify --generation 1 succeeded on the corrupted generation")
	}
}

// checkVerifyJSON checks verify --json on the corrupted model of
// TestVerifyFindsDriftAndPassesAfterARebuild, with at most one difference
// listed: the altered message.
func checkVerifyJSON(t *testing.T, f *toolFixture, altered message.Message) {
	t.Helper()
	err, out, _ := f.runTool(t, "verify", "--json", "--max-diffs", "1")
	if err == nil {
		t.Error("verify --json of a corrupted model succeeded")
	}
	var rep struct {
		Stream     string `json:"stream"`
		Database   string `json:"database"`
		Generation int    `json:"generation"`
		OK         bool   `json:"ok"`
		Events     int    `json:"events"`
		Messages   int    `json:"messages"`
		DiffCount  int    `json:"diffCount"`
		Diffs      []struct {
			Kind, ID, Tag, Day string
			Seq                uint64
		} `json:"diffs"`
		Through map[string]uint64 `json:"through"`
	}
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("verify --json printed %q: %v", out, err)
	}
	partitions := map[string]uint64{} // the last sequence of each partition
	for _, m := range f.msgs {
		p := fmt.Sprint(f.events.Partition(m.Tag))
		partitions[p] = max(partitions[p], f.seq[m.ID])
	}
	if rep.Stream != "MESSAGES" || rep.Database != f.db.Name() || rep.Generation != 1 || rep.OK || rep.Events != 20 ||
		rep.Messages != 19 || rep.DiffCount != 3 || len(rep.Diffs) != 1 || !reflect.DeepEqual(rep.Through, partitions) ||
		rep.Diffs[0].Kind != "different" || rep.Diffs[0].ID != altered.ID || rep.Diffs[0].Seq != f.seq[altered.ID] {
		t.Errorf("verify --json = %+v", rep)
	}
}

func TestVerifyCommandErrors(t *testing.T) {
	f := newToolFixture(t)
	f.postMany(t, 3)
	f.activeModel(t)
	for _, tc := range []struct {
		name string
		args []string
		want string // the error, or for usage what standard error holds
	}{
		{"no such generation", []string{"verify", "--generation", "7"}, regexp.QuoteMeta("no generation 7 in database " + f.db.Name() + " (it has 1)")},
		{"no read model", []string{"verify", "--mongo-db", "elsewhere"}, "^database elsewhere holds no read model$"},
		{"no stream", []string{"verify", "--stream", "OTHER"}, "^no stream OTHER at nats://.*: nothing was appended yet, or --stream names another$"},
		{"no nats", []string{"verify", "--nats-url", "nats://127.0.0.1:1", "--connect-timeout", "200ms"}, "^nats nats://127.0.0.1:1: "},
		{"bad max diffs", []string{"verify", "--max-diffs", "0"}, `^--max-diffs 0: want at least 1$`},
		{"unknown flag", []string{"verify", "--partitions", "4"}, "usage:flag provided but not defined: --partitions"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err, _, errOut := f.runTool(t, tc.args...)
			if rest, ok := strings.CutPrefix(tc.want, "usage:"); ok {
				if err != errUsage || !strings.Contains(errOut, rest) {
					t.Errorf("err %v, stderr %q; want usage with %q", err, errOut, rest)
				}
				return
			}
			if err == nil || !regexp.MustCompile(tc.want).MatchString(err.Error()) || strings.Contains(err.Error(), "\n") {
				t.Errorf("err = %v, want one line matching %q", err, tc.want)
			}
		})
	}

	var out bytes.Buffer
	e := env{getenv: func(string) string { return "" }, stdout: &out, stderr: &out}
	if err := run(t.Context(), []string{"verify", "--help"}, e); err == nil {
		t.Error("verify --help: no flag.ErrHelp")
	}
	for _, s := range []string{"Examples:", "messages verify --generation 3", "MESSAGES_MONGO_URI", "--max-diffs", "--json"} {
		if !strings.Contains(out.String(), s) {
			t.Errorf("verify --help does not say %q:\n%s", s, out.String())
		}
	}
}
