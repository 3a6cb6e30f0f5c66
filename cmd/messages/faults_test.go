package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/messages-io/messages/embedded"
	"github.com/messages-io/messages/eventstore"
	"github.com/messages-io/messages/importer"
	"github.com/messages-io/messages/internal/testkit"
	"github.com/messages-io/messages/message"
	"github.com/nats-io/nats.go/jetstream"
	"go.mongodb.org/mongo-driver/v2/mongo/readpref"
)

// The fault suite: real processes of the service and of its servers, under a
// bounded load of POSTs, crashed (kill -9) or paused (SIGSTOP, as a machine
// that stops answering) and resumed. Each test checks what every answer
// promised against what the log and the read model hold afterwards. Waits are
// bounded polls on the state asserted; the only times asserted are the
// protocol's own bounds (--append-timeout, --query-timeout), with a margin
// for a busy machine.

// faultMargin is what a busy machine may add to a protocol bound before an
// answer counts as late.
const faultMargin = 10 * time.Second

// serverCommands are the embedded servers TestRoleProcess can run in a
// process of their own, so that a test can pause or kill one as it would a
// real server: `nats-server ADDR DIR` and `mongo-server ADDR DIR`.
func serverCommands() map[string]func(ctx context.Context, args []string) error {
	return map[string]func(context.Context, []string) error{
		"nats-server": func(ctx context.Context, args []string) error {
			if len(args) != 2 {
				return errors.New("nats-server ADDR DIR")
			}
			s, err := embedded.StartNATS(embedded.NATSConfig{Listen: args[0], StoreDir: args[1]})
			if err != nil {
				return err
			}
			<-ctx.Done()
			s.Shutdown()
			s.WaitForShutdown()
			return nil
		},
		"mongo-server": func(ctx context.Context, args []string) error {
			if len(args) != 2 {
				return errors.New("mongo-server ADDR DIR")
			}
			m, err := embedded.StartMongo(embedded.MongoConfig{Listen: args[0], Dir: args[1]})
			if err != nil {
				return err
			}
			<-ctx.Done()
			m.Close()
			return nil
		},
	}
}

// startNATSProcess runs an embedded NATS server with JetStream in a process
// of its own and returns it with its URL once it answers JetStream requests.
func startNATSProcess(t *testing.T) (*process, string) {
	t.Helper()
	addr := freeAddr(t)
	p := startProcess(t, "nats-server", addr, t.TempDir())
	waitMetaLeader(t, "nats://"+addr)
	return p, "nats://" + addr
}

// startMongoProcess runs the embedded MongoDB-wire server in a process of
// its own and returns it with its URI once it answers.
func startMongoProcess(t *testing.T) (*process, string) {
	t.Helper()
	addr := freeAddr(t)
	p := startProcess(t, "mongo-server", addr, t.TempDir())
	uri := "mongodb://" + addr + "/"
	client := mongoClient(t, uri)
	testkit.Eventually(t, 60*time.Second, 100*time.Millisecond, func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		return client.Ping(ctx, readpref.Primary())
	})
	return p, uri
}

// pause stops the process (SIGSTOP) until resume: its sockets stay open and
// nothing it was sent is answered. The test's end resumes it.
func (p *process) pause(t *testing.T) {
	t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatalf("SIGSTOP: %v", err)
	}
	t.Cleanup(func() { _ = p.cmd.Process.Signal(syscall.SIGCONT) })
}

// resume continues a paused process (SIGCONT).
func (p *process) resume(t *testing.T) {
	t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGCONT); err != nil {
		t.Fatalf("SIGCONT: %v", err)
	}
}

// waitReady waits until the process serving at addr answers /readyz with 200.
func waitReady(t *testing.T, addr string) {
	t.Helper()
	client := &http.Client{Timeout: 5 * time.Second}
	testkit.Eventually(t, 90*time.Second, 100*time.Millisecond, func() error {
		resp, err := client.Get("http://" + addr + "/readyz")
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("%s/readyz: %d", addr, resp.StatusCode)
		}
		return nil
	})
}

// answers sorts the answers of a load: 201s, honest 503s and POSTs that got
// no answer at all. Any other answer fails the test.
type answers struct {
	created, unavailable, unanswered []postResult
}

func sortAnswers(t *testing.T, results []postResult, unansweredOK bool) answers {
	t.Helper()
	var a answers
	for _, r := range results {
		switch {
		case r.err != nil && unansweredOK:
			a.unanswered = append(a.unanswered, r)
		case r.err != nil:
			t.Errorf("POST %q: %v", r.text, r.err)
		case r.status == http.StatusCreated:
			a.created = append(a.created, r)
		case r.status == http.StatusServiceUnavailable:
			a.unavailable = append(a.unavailable, r)
			if !r.honest503 {
				t.Errorf("POST %q: 503 without Retry-After or a problem document: %s", r.text, r.detail)
			}
		default:
			t.Errorf("POST %q: %d %s, want 201 or 503", r.text, r.status, r.detail)
		}
	}
	return a
}

// checkStored holds what is stored, as texts with the ids stored under
// them, to what each POST was answered: every 201 stored exactly once under
// its id, nothing stored after a 503 that promised nothing was, at most one
// copy of a POST whose outcome was unknown or that got no answer, and
// nothing that was never posted. It returns how many messages were stored
// without a 201.
func checkStored(t *testing.T, where string, stored map[string][]string, a answers) int {
	t.Helper()
	left := map[string][]string{}
	for text, ids := range stored {
		left[text] = ids
	}
	for _, r := range a.created {
		if ids := left[r.text]; len(ids) != 1 || ids[0] != r.id {
			t.Errorf("201 %s %q: %s holds it under %v", r.id, r.text, where, ids)
		}
		delete(left, r.text)
	}
	var without201 int
	for _, r := range append(append([]postResult(nil), a.unavailable...), a.unanswered...) {
		switch n := len(left[r.text]); {
		case n == 0:
		case n == 1 && r.notStored && r.status == http.StatusServiceUnavailable:
			t.Errorf("503 %q said nothing was stored, and %s holds it", r.text, where)
		case n == 1:
			without201++
		default:
			t.Errorf("POST %q answered %d (%v): %s holds it %d times", r.text, r.status, r.err, where, n)
		}
		delete(left, r.text)
	}
	for text, ids := range left {
		t.Errorf("%s holds %q (%v), which was never posted", where, text, ids)
	}
	return without201
}

// readModelTexts lists every message the query API at addr serves, by text.
func readModelTexts(addr string) (map[string][]string, int, error) {
	ms, err := listMessages(addr)
	if err != nil {
		return nil, 0, err
	}
	byText := map[string][]string{}
	for _, m := range ms {
		byText[m.Text] = append(byText[m.Text], m.ID)
	}
	return byText, len(ms), nil
}

// logTexts reads every message of the event log at natsURL, by text.
func logTexts(t *testing.T, natsURL string, partitions int) map[string][]string {
	t.Helper()
	ctx := t.Context()
	events, err := eventstore.Open(ctx, connectJetStream(t, natsURL), eventstore.Config{Partitions: partitions})
	if err != nil {
		t.Fatal(err)
	}
	byText := map[string][]string{}
	err = events.Read(ctx, 1, func(rec eventstore.Record) error {
		m, err := message.FromCreated(rec.Event)
		if err != nil {
			return fmt.Errorf("event %d: %w", rec.Sequence, err)
		}
		byText[m.Text] = append(byText[m.Text], m.ID)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return byText
}

// storedEvents is the number of events in the log at js.
func storedEvents(js jetstream.JetStream) (uint64, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	s, err := js.Stream(ctx, "MESSAGES")
	if err != nil {
		return 0, err
	}
	info, err := s.Info(ctx)
	if err != nil {
		return 0, err
	}
	return info.State.Msgs, nil
}

// settled waits until the query API at addr lists every event of the log at
// js, and its count of every tag and of each tag agrees with the list; it
// returns the list by text.
func settled(t *testing.T, addr string, js jetstream.JetStream) map[string][]string {
	t.Helper()
	var byText map[string][]string
	testkit.Eventually(t, 120*time.Second, 250*time.Millisecond, func() error {
		n, err := storedEvents(js)
		if err != nil {
			return err
		}
		var listed int
		if byText, listed, err = readModelTexts(addr); err != nil {
			return err
		}
		if uint64(listed) != n {
			return fmt.Errorf("the read model lists %d messages, the log holds %d events", listed, n)
		}
		return nil
	})
	// A batch's counts are written after its messages: wait for them.
	perTag := map[string]int{}
	var total int
	for text := range byText {
		// Texts are "client C message I", tagged tag<I%8>.
		i, err := strconv.Atoi(text[strings.LastIndexByte(text, ' ')+1:])
		if err != nil {
			t.Fatalf("text %q", text)
		}
		perTag[fmt.Sprint("tag", i%8)] += len(byText[text])
		total += len(byText[text])
	}
	testkit.Eventually(t, 60*time.Second, 100*time.Millisecond, func() error {
		if n, err := count(addr, ""); err != nil || n != total {
			return fmt.Errorf("count = %d (%v), the list has %d", n, err, total)
		}
		for tag, want := range perTag {
			if n, err := count(addr, "tag="+tag); err != nil || n != want {
				return fmt.Errorf("count of %s = %d (%v), the list has %d", tag, n, err, want)
			}
		}
		return nil
	})
	return byText
}

// count asks the query API at addr for a count.
func count(addr, query string) (int, error) {
	resp, body, _, err := get(addr, "/v1/messages?count=1&"+query)
	if err != nil {
		return 0, err
	}
	if resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("count %s: %d %s", query, resp.StatusCode, body)
	}
	return strconv.Atoi(strings.TrimSpace(string(body)))
}

// get sends a GET to the process at addr and returns the answer and how long
// it took.
func get(addr, path string) (*http.Response, []byte, time.Duration, error) {
	req, err := http.NewRequest(http.MethodGet, "http://"+addr+path, nil)
	if err != nil {
		return nil, nil, 0, err
	}
	req.Header.Set("X-User-ID", "fault-user")
	client := &http.Client{Timeout: time.Minute}
	start := time.Now()
	resp, err := client.Do(req)
	if err != nil {
		return nil, nil, 0, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return resp, body, time.Since(start), err
}

// `messages dev` killed with kill -9 under a load of POSTs, and started
// again on its data: every 201 is in the read model exactly once, the counts
// equal the list, nothing is stored that was not posted, a POST in flight at
// the kill is stored at most once, and verify finds the read model equal to
// the log.
func TestDevKilledUnderLoad(t *testing.T) {
	const partitions = 4
	apiAddr, natsAddr, mongoAddr := freeAddr(t), freeAddr(t), freeAddr(t)
	args := []string{"dev", "--addr", apiAddr, "--log-level", "warn", "--partitions", fmt.Sprint(partitions),
		"--data-dir", t.TempDir(), "--nats-listen", natsAddr, "--mongo-listen", mongoAddr, "--mongo-db", "faults"}
	dev := startProcess(t, args...)
	waitReady(t, apiAddr)

	posts := startPacedLoad(t, apiAddr, 4, 10*time.Millisecond, 1000)
	posts.waitCreated(t, 150, 60*time.Second)
	atKill := posts.count()
	dev.kill(t)
	t.Logf("killed dev after %d POSTs, %d created", atKill.posted, atKill.created)

	startProcess(t, args...)
	posts.waitCreated(t, atKill.created+150, 120*time.Second)
	a := sortAnswers(t, posts.stop(), true)
	t.Logf("%d POSTs: %d created, %d answered 503, %d without an answer", len(a.created)+len(a.unavailable)+len(a.unanswered),
		len(a.created), len(a.unavailable), len(a.unanswered))

	byText := settled(t, apiAddr, connectJetStream(t, "nats://"+natsAddr))
	without201 := checkStored(t, "the read model", byText, a)
	t.Logf("the read model holds %d messages without a 201 (in flight at the kill)", without201)
	if without201 > len(a.unanswered)+len(a.unavailable) {
		t.Errorf("%d messages stored without a 201, more than the %d POSTs that got none", without201, len(a.unanswered)+len(a.unavailable))
	}
	if n, err := count(apiAddr, ""); err != nil || n != len(a.created)+without201 {
		t.Errorf("count = %d (%v), want %d created + %d stored without an answer", n, err, len(a.created), without201)
	}

	var out, errOut strings.Builder
	err := run(t.Context(), []string{"verify", "--nats-url", "nats://" + natsAddr, "--mongo-uri", "mongodb://" + mongoAddr + "/",
		"--mongo-db", "faults", "--caught-up"}, env{getenv: func(string) string { return "" }, stdout: &out, stderr: &errOut})
	if err != nil {
		t.Errorf("verify after the restart: %v\n%s%s", err, out.String(), errOut.String())
	}
}

// `messages import` killed with kill -9 while it appends, and run again at
// once, within the duplicate window: the batches the killed run committed
// past its recorded progress are recognised, and the log holds every line
// once.
func TestImportKilledAndRunAgain(t *testing.T) {
	const lines = 100_000
	ns := testkit.NATS(t)
	url := ns.ClientURL()
	var b strings.Builder
	for i := range lines {
		at := time.Date(2025, 2, 1, 0, 0, 0, 0, time.UTC).Add(time.Duration(i) * time.Minute)
		fmt.Fprintf(&b, `{"userId":"u%d","text":"text %d","tag":"t%d","createdAt":%q}`+"\n", i%3, i, i%4, at.Format(time.RFC3339))
	}
	file := writeFile(t, b.String())
	args := []string{"import", "--nats-url", url, "--partitions", "4", "--quiet", "--log-level", "warn", file}
	im := startProcess(t, args...)
	_, js := testkit.JetStream(t, ns)
	ctx := t.Context()
	var st *eventstore.Store
	testkit.Eventually(t, 60*time.Second, 5*time.Millisecond, func() error {
		var err error
		if st == nil {
			if st, err = eventstore.Open(ctx, js, eventstore.Config{Partitions: 4}); err != nil {
				st = nil
				return err
			}
		}
		if last, err := st.LastSequence(ctx); err != nil || last < 20_000 {
			return fmt.Errorf("log at %d (%v), want the first batches stored", last, err)
		}
		return nil
	})
	select {
	case <-im.done:
		t.Fatal("the import finished before it could be killed")
	default:
	}
	im.kill(t)
	atKill, _ := st.LastSequence(ctx)
	if atKill >= lines {
		t.Fatalf("the log held all %d lines at the kill", atKill)
	}
	ledger, err := importer.OpenLedger(ctx, js, "MESSAGES_IMPORTS", 1)
	if err != nil {
		t.Fatal(err)
	}
	digest, _ := importer.Digest(strings.NewReader(b.String()))
	done, err := ledger.Imported(ctx, digest)
	if err != nil || done >= int64(atKill) {
		// Batches commit every few milliseconds, the ledger every second.
		t.Fatalf("the ledger records %d lines done (%v), want fewer than the %d in the log", done, err, atKill)
	}
	t.Logf("killed the import with %d of %d lines in the log, %d recorded as done", atKill, lines, done)

	var out, errOut strings.Builder
	if err := run(ctx, append([]string{"import", "--json"}, args[1:]...), env{getenv: noEnv, stdout: &out, stderr: &errOut}); err != nil {
		t.Fatalf("import run again: %v: %s", err, errOut.String())
	}
	var sum struct{ Appended, AlreadyImported int64 }
	if err := json.Unmarshal([]byte(out.String()), &sum); err != nil {
		t.Fatalf("summary %q: %v", out.String(), err)
	}
	t.Logf("run again: %d appended, %d already imported", sum.Appended, sum.AlreadyImported)
	// Every line in the log at the kill is in a committed batch, which the
	// second run skips or finds already stored.
	if sum.Appended+sum.AlreadyImported != lines || sum.AlreadyImported < int64(atKill) {
		t.Errorf("second run = %+v, want the %d lines, at least the %d in the log already imported", sum, lines, atKill)
	}
	if sum.AlreadyImported <= done {
		t.Errorf("second run = %+v: no batch past the %d lines recorded was recognised", sum, done)
	}
	ids := map[string]int{}
	if err := st.Read(ctx, 0, func(r eventstore.Record) error {
		ids[r.ID]++
		return r.Err
	}); err != nil {
		t.Fatal(err)
	}
	last, _ := st.LastSequence(ctx)
	if last != lines || len(ids) != lines {
		t.Errorf("log holds %d events of %d messages, want %d of %d", last, len(ids), lines, lines)
	}
}

// A reducer process killed with kill -9 again and again under a load of
// POSTs, and started again each time: every 201 is folded exactly once, the
// counts are exact, and every partition's lag returns to 0.
func TestReducerKilledRepeatedlyUnderLoad(t *testing.T) {
	const partitions, kills = 4, 3
	ns := testkit.NATS(t)
	mongoURI := testkit.Mongo(t).URI()
	stream := []string{"--nats-url", ns.ClientURL(), "--partitions", fmt.Sprint(partitions)}
	store := []string{"--mongo-uri", mongoURI, "--mongo-db", "faults"}
	api := startRole(t, "dispatcher", stream...)
	query := startRole(t, "query", store...)
	reducerAddr := freeAddr(t)
	args := append(append([]string{"reducer", "--addr", reducerAddr, "--log-level", "warn", "--takeover-after", "3s"}, stream...), store...)
	reducer := startProcess(t, args...)
	db := mongoClient(t, mongoURI).Database("faults")

	posts := startPacedLoad(t, api, 2, 80*time.Millisecond, 600)
	posts.waitCreated(t, 40, 60*time.Second)
	for kill := range kills {
		// Kill it only once it folds every partition again.
		from := checkpoints(db)
		testkit.Eventually(t, 90*time.Second, 50*time.Millisecond, func() error {
			cps := checkpoints(db)
			for p := range partitions {
				if cps[p] <= from[p] {
					return fmt.Errorf("partition %d still at %d; checkpoints %v", p, cps[p], cps)
				}
			}
			return nil
		})
		reducer.kill(t)
		t.Logf("kill %d after %d POSTs, checkpoints %v", kill+1, posts.count().posted, checkpoints(db))
		reducer = startProcess(t, args...)
	}
	posts.waitCreated(t, posts.count().created+25, 60*time.Second)
	a := sortAnswers(t, posts.stop(), false)
	if len(a.unavailable) > 0 {
		t.Errorf("%d POSTs answered 503 with the event store up", len(a.unavailable))
	}
	t.Logf("%d POSTs created", len(a.created))

	byText := settled(t, query, connectJetStream(t, ns.ClientURL()))
	checkStored(t, "the read model", byText, a)
	if n, err := count(query, ""); err != nil || n != len(a.created) {
		t.Errorf("count = %d (%v), want the %d created", n, err, len(a.created))
	}
	testkit.Eventually(t, 60*time.Second, 200*time.Millisecond, func() error {
		lags, err := gauges(reducerAddr, "messages_reducer_lag_events")
		if err != nil {
			return err
		}
		for p := range partitions {
			if v, ok := lags[strconv.Itoa(p)]; !ok || v != 0 {
				return fmt.Errorf("lag per partition %v, want 0 for each of %d", lags, partitions)
			}
		}
		return nil
	})
}

// gauges reads the values of a per-partition series from the /metrics of
// the process at addr, by partition.
func gauges(addr, name string) (map[string]float64, error) {
	resp, body, _, err := get(addr, "/metrics")
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("/metrics: %d", resp.StatusCode)
	}
	out := map[string]float64{}
	prefix := name + `{partition="`
	for _, line := range strings.Split(string(body), "\n") {
		rest, ok := strings.CutPrefix(line, prefix)
		if !ok {
			continue
		}
		p, value, ok := strings.Cut(rest, `"} `)
		if !ok {
			return nil, fmt.Errorf("/metrics line %q", line)
		}
		v, err := strconv.ParseFloat(value, 64)
		if err != nil {
			return nil, fmt.Errorf("/metrics line %q: %v", line, err)
		}
		out[p] = v
	}
	return out, nil
}

// The process serving the read model's MongoDB wire paused (SIGSTOP) under a
// load of POSTs: POSTs still get 201, since they need only the log; reads
// answer 503 with Retry-After within --query-timeout; and once it continues
// (SIGCONT) everything posted is folded exactly once.
func TestReadModelPaused(t *testing.T) {
	const partitions, queryTimeout = 4, 2 * time.Second
	ns := testkit.NATS(t)
	mongo, mongoURI := startMongoProcess(t)
	stream := []string{"--nats-url", ns.ClientURL(), "--partitions", fmt.Sprint(partitions)}
	store := []string{"--mongo-uri", mongoURI, "--mongo-db", "faults"}
	api := startRole(t, "dispatcher", stream...)
	startRole(t, "reducer", append(stream, store...)...)
	query := startRole(t, "query", append(store, "--query-timeout", queryTimeout.String())...)

	posts := startPacedLoad(t, api, 2, 100*time.Millisecond, 600)
	posts.waitCreated(t, 40, 60*time.Second)
	testkit.Eventually(t, 60*time.Second, 100*time.Millisecond, func() error {
		if n, err := count(query, ""); err != nil || n == 0 {
			return fmt.Errorf("count %d (%v), want some folded", n, err)
		}
		return nil
	})
	var someID string
	if ms, err := listMessages(query); err != nil || len(ms) == 0 {
		t.Fatalf("list before the pause: %d messages, %v", len(ms), err)
	} else {
		someID = ms[0].ID
	}

	mongo.pause(t)
	atPause := posts.count()
	for _, path := range []string{"/v1/messages", "/v1/messages?count=1", "/v1/messages?tag=tag3&count=1", "/v1/messages/" + someID} {
		resp, body, took, err := get(query, path)
		switch {
		case err != nil:
			t.Errorf("GET %s with the read model paused: %v", path, err)
		case resp.StatusCode != http.StatusServiceUnavailable || !retryAfterRE.MatchString(resp.Header.Get("Retry-After")):
			t.Errorf("GET %s with the read model paused: %d, Retry-After %q, %s; want 503 with Retry-After",
				path, resp.StatusCode, resp.Header.Get("Retry-After"), body)
		case took > queryTimeout+faultMargin:
			t.Errorf("GET %s with the read model paused answered after %v, --query-timeout is %v", path, took, queryTimeout)
		default:
			t.Logf("GET %s with the read model paused: 503 after %v", path, took.Round(time.Millisecond))
		}
	}
	posts.waitCreated(t, atPause.created+60, 60*time.Second)
	mongo.resume(t)
	duringPause := posts.count()
	posts.waitCreated(t, duringPause.created+20, 60*time.Second)
	a := sortAnswers(t, posts.stop(), false)
	if len(a.unavailable) > 0 {
		t.Errorf("%d POSTs answered 503: a POST needs only the log", len(a.unavailable))
	}
	t.Logf("%d POSTs created, %d of them while the read model was paused", len(a.created), duringPause.created-atPause.created)

	byText := settled(t, query, connectJetStream(t, ns.ClientURL()))
	checkStored(t, "the read model", byText, a)
	if n, err := count(query, ""); err != nil || n != len(a.created) {
		t.Errorf("count = %d (%v), want the %d created", n, err, len(a.created))
	}
}

// The NATS server paused (SIGSTOP) under a load of POSTs: each POST is
// answered within --append-timeout, 503 while nothing can be learned of its
// event, and afterwards the log holds every 201 exactly once, nothing a 503
// said was not stored, at most one copy of a POST whose outcome was unknown,
// and nothing that was never posted.
func TestNATSPaused(t *testing.T) {
	const partitions, appendTimeout = 4, 2 * time.Second
	nats, natsURL := startNATSProcess(t)
	api := startRole(t, "dispatcher", "--nats-url", natsURL, "--partitions", fmt.Sprint(partitions),
		"--append-timeout", appendTimeout.String())

	posts := startPacedLoad(t, api, 2, 50*time.Millisecond, 600)
	posts.waitCreated(t, 40, 60*time.Second)
	nats.pause(t)
	atPause := posts.count()
	// Paused for several append timeouts: every client waits one out at a
	// time.
	testkit.Eventually(t, 60*time.Second, 50*time.Millisecond, func() error {
		if c := posts.count(); c.posted-c.created < atPause.posted-atPause.created+6 {
			return fmt.Errorf("%d POSTs not created since the pause, want 6", c.posted-c.created-(atPause.posted-atPause.created))
		}
		return nil
	})
	nats.resume(t)
	posts.waitCreated(t, posts.count().created+20, 60*time.Second)
	results := posts.stop()
	a := sortAnswers(t, results, false)
	if len(a.unavailable) == 0 {
		t.Error("no POST answered 503 while the event store was paused")
	}
	for _, r := range results {
		if r.err == nil && r.took > appendTimeout+faultMargin {
			t.Errorf("POST %q answered %d after %v; --append-timeout is %v", r.text, r.status, r.took, appendTimeout)
		}
	}
	var unknown int
	for _, r := range a.unavailable {
		if !r.notStored {
			unknown++
		}
	}
	stored := logTexts(t, natsURL, partitions)
	without201 := checkStored(t, "the log", stored, a)
	t.Logf("%d POSTs: %d created, %d answered 503 (%d of unknown outcome, %d of them stored)",
		len(results), len(a.created), len(a.unavailable), unknown, without201)
}
