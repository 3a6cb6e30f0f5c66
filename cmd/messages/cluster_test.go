package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/messages-io/messages/dispatcher"
	"github.com/messages-io/messages/embedded"
	"github.com/messages-io/messages/eventstore"
	"github.com/messages-io/messages/importer"
	"github.com/messages-io/messages/internal/testkit"
	"github.com/messages-io/messages/message"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go/jetstream"
)

// TestClusterLeaderFailover runs the dispatcher, the reducers and the query
// API against a three-node JetStream cluster on loopback, with the event log
// at 3 replicas, and takes the stream's leader away in the middle of a load of
// POSTs. No answer may be a lie: every 201 is in the read model exactly once,
// every other answer is a 503 with Retry-After, and once the read model has
// folded the whole log it holds nothing that was not posted.
//
// The leader goes in two ways. Shutdown hands its leaderships to its peers
// before it stops, so the log changes leader within milliseconds. A crash
// (SIGKILL of a node running as a process of its own) hands over nothing: the
// peers elect a new leader only after the Raft election timeout, seconds in
// which every append must end in 503.
func TestClusterLeaderFailover(t *testing.T) {
	if testing.Short() {
		t.Skip("starts three-node clusters")
	}
	t.Run("shutdown", func(t *testing.T) {
		leaderFailover(t, startCluster(t, 3), false)
	})
	t.Run("crash", func(t *testing.T) {
		leaderFailover(t, startProcessCluster(t, 3), true)
	})
}

// TestClusterImport imports into a three-replica stream, where nats-server
// stages each batch in memory on the leader, and imports the same file again
// as if its progress were lost: every batch is recognised, nothing stored
// twice.
func TestClusterImport(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a three-node cluster")
	}
	urls := startCluster(t, 3).URLs()
	waitMetaLeader(t, urls)
	content := importLines(1234)
	file := writeFile(t, content)
	if err, _, errOut := runImportCmd(t, nil, "--nats-url", urls, "--replicas", "3", "--partitions", "4", "--quiet", file); err != nil {
		t.Fatalf("import: %v: %s", err, errOut)
	}
	js := connectJetStream(t, urls)
	ctx := t.Context()
	st, err := eventstore.Open(ctx, js, eventstore.Config{Partitions: 4})
	if err != nil {
		t.Fatal(err)
	}
	if last, _ := st.LastSequence(ctx); last != 1234 || st.Config().Replicas != 3 {
		t.Fatalf("log holds %d events at %d replicas, want 1234 at 3", last, st.Config().Replicas)
	}
	fresh, err := importer.OpenLedger(ctx, js, "FRESH_IMPORTS", 3)
	if err != nil {
		t.Fatal(err)
	}
	im, err := importer.New(st, fresh, importer.Config{})
	if err != nil {
		t.Fatal(err)
	}
	digest, _ := importer.Digest(strings.NewReader(content))
	sum, err := im.Import(ctx, strings.NewReader(content), digest)
	if err != nil || sum.Appended != 0 || sum.AlreadyImported != 1234 {
		t.Errorf("import without its progress = %+v, %v; want all 1234 already imported", sum, err)
	}
	if last, _ := st.LastSequence(ctx); last != 1234 {
		t.Errorf("log holds %d events after the second import, want 1234", last)
	}
}

// natsCluster is a three-node JetStream cluster whose nodes a test can stop.
type natsCluster interface {
	// URLs are the client URLs of every node, comma-separated.
	URLs() string
	// Stop stops the named node.
	Stop(t *testing.T, name string)
}

func leaderFailover(t *testing.T, cluster natsCluster, crash bool) {
	urls := cluster.URLs()
	mongo := testkit.Mongo(t)
	db := fmt.Sprintf("cluster_%d", time.Now().UnixNano())

	stream := []string{"--nats-url", urls, "--replicas", "3", "--partitions", "4"}
	api := startRole(t, "dispatcher", append(stream, "--append-timeout", "2s")...)
	// The reducer is started without --replicas, as the README's
	// deployment starts it: it keeps the stream at the dispatcher's 3.
	reducer := startRole(t, "reducer", "--nats-url", urls, "--partitions", "4", "--mongo-uri", mongo.URI(), "--mongo-db", db)
	query := startRole(t, "query", "--mongo-uri", mongo.URI(), "--mongo-db", db)

	js := connectJetStream(t, urls)
	before, err := streamInfo(js)
	if err != nil {
		t.Fatal(err)
	}
	if before.Config.Replicas != 3 || before.Cluster == nil || len(before.Cluster.Replicas) != 2 {
		t.Fatalf("stream at %d replicas, cluster %+v: want a leader and 2 replicas", before.Config.Replicas, before.Cluster)
	}

	posts := startLoad(t, api, 6)
	posts.waitCreated(t, 100, 30*time.Second)

	info, err := streamInfo(js)
	if err != nil {
		t.Fatal(err)
	}
	beforeKill := posts.count()
	killedAt := time.Now()
	cluster.Stop(t, info.Cluster.Leader)
	t.Logf("stopped the stream leader %s after %d POSTs", info.Cluster.Leader, beforeKill.posted)

	// Keep posting through the election and until appends succeed again.
	posts.waitCreated(t, beforeKill.created+150, 45*time.Second)
	if wait := time.Second - time.Since(killedAt); wait > 0 {
		time.Sleep(wait)
	}
	results := posts.stop()
	t.Logf("load went on for %v after the leader stopped", time.Since(killedAt).Round(time.Millisecond))

	answered := sortAnswers(t, results, false)
	created, unavailable := answered.created, answered.unavailable
	after, err := streamInfo(js)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%d POSTs: %d created, %d unavailable; stream leader now %s", len(results), len(created), len(unavailable), after.Cluster.Leader)
	switch {
	case len(unavailable) > 0:
	case crash:
		// No leader for at least the election timeout, longer than the
		// append timeout: some POST must have waited through it.
		t.Error("no POST got 503 although the log had no leader for seconds")
	default:
		t.Log("no POST got 503: the leader handed over between two appends")
	}
	if after.Cluster.Leader == info.Cluster.Leader {
		t.Errorf("stream leader is still %s", after.Cluster.Leader)
	}

	// The read model settles at the whole log: every event folded once,
	// and every role is ready again on the two remaining servers.
	settling := time.Now()
	stored := settled(t, query, js)
	t.Logf("read model settled in %v", time.Since(settling).Round(time.Millisecond))
	for _, addr := range []string{api, reducer, query} {
		waitReady(t, addr)
	}
	storedAnyway := checkStored(t, "the read model", stored, answered)
	total := 0
	for _, ids := range stored {
		total += len(ids)
	}
	t.Logf("read model: %d messages, %d of them answered 503 and stored anyway", total, storedAnyway)
	if want := len(created) + storedAnyway; total != want {
		t.Errorf("read model holds %d messages, want %d created + %d stored after a 503", total, len(created), storedAnyway)
	}
}

// serverCluster is a cluster of embedded NATS servers in the test's process.
type serverCluster struct {
	servers []*server.Server
}

// startCluster starts n clustered NATS servers with JetStream in the test's
// process and waits until they have elected a meta leader; they are shut
// down when the test ends.
func startCluster(t *testing.T, n int) *serverCluster {
	t.Helper()
	c := &serverCluster{}
	for _, cfg := range clusterConfigs(t, n) {
		s, err := embedded.StartNATS(cfg)
		if err != nil {
			t.Fatalf("start nats %s: %v", cfg.ServerName, err)
		}
		t.Cleanup(func() {
			s.Shutdown()
			s.WaitForShutdown()
		})
		c.servers = append(c.servers, s)
	}
	waitMetaLeader(t, c.URLs())
	return c
}

func (c *serverCluster) URLs() string {
	var urls []string
	for _, s := range c.servers {
		urls = append(urls, s.ClientURL())
	}
	return strings.Join(urls, ",")
}

// Stop shuts the named server down, which first hands its leaderships over.
func (c *serverCluster) Stop(t *testing.T, name string) {
	t.Helper()
	for _, s := range c.servers {
		if s.Name() == name {
			s.Shutdown()
			s.WaitForShutdown()
			return
		}
	}
	t.Fatalf("no server named %q", name)
}

// clusterConfigs configures n servers of one cluster on free loopback ports,
// each storing in a directory of the test.
func clusterConfigs(t *testing.T, n int) []embedded.NATSConfig {
	t.Helper()
	var routes []string
	for range n {
		routes = append(routes, "nats-route://"+freeAddr(t))
	}
	var cfgs []embedded.NATSConfig
	for i := range n {
		cfgs = append(cfgs, embedded.NATSConfig{
			Listen:     freeAddr(t),
			StoreDir:   t.TempDir(),
			ServerName: fmt.Sprintf("n%d", i+1),
			Cluster: &embedded.ClusterConfig{
				Name:   "messages-test",
				Listen: strings.TrimPrefix(routes[i], "nats-route://"),
				Routes: routes,
			},
		})
	}
	return cfgs
}

// processCluster is a cluster of NATS servers each in a process of its own,
// running TestClusterNode, so that a node can be killed as a crash would.
type processCluster struct {
	urls  []string
	nodes map[string]*process
}

// startProcessCluster starts n clustered NATS servers with JetStream, each
// in a process of its own, and waits until they have elected a meta leader;
// they are stopped when the test ends.
func startProcessCluster(t *testing.T, n int) *processCluster {
	t.Helper()
	c := &processCluster{nodes: map[string]*process{}}
	for _, cfg := range clusterConfigs(t, n) {
		c.nodes[cfg.ServerName] = startChild(t, "nats "+cfg.ServerName, "TestClusterNode", cfg)
		c.urls = append(c.urls, "nats://"+cfg.Listen)
	}
	waitMetaLeader(t, c.URLs())
	return c
}

func (c *processCluster) URLs() string { return strings.Join(c.urls, ",") }

// Stop kills the named node's process: it hands nothing over and flushes
// nothing.
func (c *processCluster) Stop(t *testing.T, name string) {
	t.Helper()
	node, ok := c.nodes[name]
	if !ok {
		t.Fatalf("no node named %q", name)
	}
	node.kill(t)
}

// TestClusterNode is not a test of its own: it runs one NATS server of
// TestClusterLeaderFailover's cluster in a process of its own, configured by
// startProcessCluster, until its standard input closes or it is killed.
func TestClusterNode(t *testing.T) {
	var cfg embedded.NATSConfig
	ctx := childConfig(t, &cfg)
	s, err := embedded.StartNATS(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		s.Shutdown()
		s.WaitForShutdown()
	}()
	<-ctx.Done()
}

// waitMetaLeader waits until the cluster at urls answers JetStream requests,
// which it does once it has elected a meta leader.
func waitMetaLeader(t *testing.T, urls string) {
	t.Helper()
	js := connectJetStream(t, urls)
	testkit.Eventually(t, 30*time.Second, 100*time.Millisecond, func() error {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_, err := js.AccountInfo(ctx)
		return err
	})
}

// freeAddr returns a loopback address whose port was free a moment ago: a
// cluster's route addresses must be known before its servers start.
func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// streamInfo reads the event log's stream info, retrying through an
// election.
func streamInfo(js jetstream.JetStream) (*jetstream.StreamInfo, error) {
	var err error
	for range 20 {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		var s jetstream.Stream
		if s, err = js.Stream(ctx, "MESSAGES"); err == nil {
			var info *jetstream.StreamInfo
			if info, err = s.Info(ctx); err == nil && info.Cluster != nil && info.Cluster.Leader != "" {
				cancel()
				return info, nil
			} else if err == nil {
				err = fmt.Errorf("stream has no leader: %+v", info.Cluster)
			}
		}
		cancel()
		time.Sleep(250 * time.Millisecond)
	}
	return nil, fmt.Errorf("stream info: %w", err)
}

// postResult is what one POST was answered.
type postResult struct {
	text   string
	status int
	id     string
	// honest503 is true for a 503 with Retry-After and a problem document.
	honest503 bool
	// notStored is true for a 503 that says nothing was stored (type
	// about:blank), false for one whose outcome is unknown.
	notStored bool
	detail    string
	err       error
	// took is the time from sending the POST to reading its answer.
	took time.Duration
}

// load posts messages with unique texts from several clients until stopped.
type load struct {
	mu      sync.Mutex
	results []postResult
	created int
	// unanswered counts the POSTs that got no answer at all.
	unanswered int
	stopped    chan struct{}
	wg         sync.WaitGroup
}

type loadCount struct{ posted, created int }

// maxPosts bounds the load whatever happens.
const maxPosts = 20000

// startLoad posts from clients clients as fast as they are answered, up to
// maxPosts answers.
func startLoad(t *testing.T, addr string, clients int) *load {
	t.Helper()
	return startPacedLoad(t, addr, clients, 0, maxPosts)
}

// startPacedLoad posts from clients clients, each waiting every between
// two POSTs, until limit POSTs in all were answered. A POST that got no
// answer (the server is down) does not count, and its client waits a
// moment before the next.
func startPacedLoad(t *testing.T, addr string, clients int, every time.Duration, limit int) *load {
	t.Helper()
	l := &load{stopped: make(chan struct{})}
	client := &http.Client{Timeout: 15 * time.Second}
	for c := range clients {
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			for i := 0; ; i++ {
				wait := every
				r := post(client, "http://"+addr+"/v1/messages", fmt.Sprintf("client %d message %d", c, i), fmt.Sprintf("tag%d", i%8))
				l.mu.Lock()
				l.results = append(l.results, r)
				if r.status == http.StatusCreated {
					l.created++
				}
				if r.err != nil {
					l.unanswered++
					wait = max(wait, 50*time.Millisecond)
				}
				full := len(l.results)-l.unanswered >= limit
				l.mu.Unlock()
				if full {
					return
				}
				select {
				case <-l.stopped:
					return
				case <-time.After(wait):
				}
			}
		}()
	}
	t.Cleanup(func() { l.stop() })
	return l
}

func (l *load) count() loadCount {
	l.mu.Lock()
	defer l.mu.Unlock()
	return loadCount{posted: len(l.results), created: l.created}
}

// waitCreated waits until n POSTs in all were answered 201.
func (l *load) waitCreated(t *testing.T, n int, timeout time.Duration) {
	t.Helper()
	testkit.Eventually(t, timeout, 20*time.Millisecond, func() error {
		if c := l.count(); c.created < n {
			return fmt.Errorf("%d of %d POSTs created, want %d", c.created, c.posted, n)
		}
		return nil
	})
}

// stop ends the load, waits for the POSTs in flight and returns every answer.
func (l *load) stop() []postResult {
	select {
	case <-l.stopped:
	default:
		close(l.stopped)
	}
	l.wg.Wait()
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.results
}

var retryAfterRE = regexp.MustCompile(`^[1-9][0-9]*$`)

func post(client *http.Client, url, text, tag string) postResult {
	r := postResult{text: text}
	body, _ := json.Marshal(map[string]string{"text": text, "tag": tag})
	req, err := http.NewRequest(http.MethodPost, url, strings.NewReader(string(body)))
	if err != nil {
		r.err = err
		return r
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-User-ID", "cluster-user")
	start := time.Now()
	resp, err := client.Do(req)
	if err != nil {
		r.err = err
		return r
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	r.took = time.Since(start)
	if err != nil {
		r.err = err
		return r
	}
	r.status, r.detail = resp.StatusCode, strings.TrimSpace(string(b))
	switch resp.StatusCode {
	case http.StatusCreated:
		var m message.Message
		if err := json.Unmarshal(b, &m); err != nil || m.Text != text || resp.Header.Get("Location") != "/v1/messages/"+m.ID {
			r.err = fmt.Errorf("201 with body %s and Location %q", b, resp.Header.Get("Location"))
		}
		r.id = m.ID
	case http.StatusServiceUnavailable:
		var p struct {
			Type   string `json:"type"`
			Status int    `json:"status"`
			Title  string `json:"title"`
		}
		r.honest503 = retryAfterRE.MatchString(resp.Header.Get("Retry-After")) &&
			strings.HasPrefix(resp.Header.Get("Content-Type"), "application/problem+json") &&
			json.Unmarshal(b, &p) == nil && p.Status == http.StatusServiceUnavailable && p.Title != "" &&
			(p.Type == "about:blank" || p.Type == dispatcher.OutcomeUnknownType)
		r.notStored = p.Type == "about:blank"
	}
	return r
}

// listMessages reads every message of the read model through the query API,
// page by page.
func listMessages(addr string) ([]message.Message, error) {
	var all []message.Message
	path := "/v1/messages?limit=1000"
	for pages := 0; path != ""; pages++ {
		if pages > 100 {
			return nil, fmt.Errorf("more than 100 pages")
		}
		req, err := http.NewRequest(http.MethodGet, "http://"+addr+path, nil)
		if err != nil {
			return nil, err
		}
		req.Header.Set("X-User-ID", "cluster-user")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return nil, err
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			return nil, err
		}
		if resp.StatusCode != http.StatusOK {
			return nil, fmt.Errorf("GET %s: %d %s", path, resp.StatusCode, body)
		}
		var page []message.Message
		if err := json.Unmarshal(body, &page); err != nil {
			return nil, fmt.Errorf("GET %s: %w", path, err)
		}
		all = append(all, page...)
		path = ""
		if link := resp.Header.Get("Link"); link != "" {
			m := nextLink.FindStringSubmatch(link)
			if m == nil {
				return nil, fmt.Errorf("Link %q", link)
			}
			path = m[1]
		}
	}
	return all, nil
}
