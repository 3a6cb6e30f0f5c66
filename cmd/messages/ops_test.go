package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/messages-io/messages/internal/testkit"
	"github.com/nats-io/nats.go"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// tool runs one messages command against the servers of a dev stack and
// returns what it printed and its error.
func tool(t *testing.T, a Addrs, args ...string) (string, error) {
	t.Helper()
	var out, errOut bytes.Buffer
	e := env{
		getenv: func(k string) string {
			switch k {
			case "MESSAGES_NATS_URL":
				return a.NATS
			case "MESSAGES_MONGO_URI":
				return a.Mongo
			}
			return ""
		},
		stdout: &out, stderr: &errOut,
	}
	err := run(t.Context(), args, e)
	return out.String() + errOut.String(), err
}

// The operator's loop: verify agrees, a document is lost and another
// tampered with by hand, verify says so, a replay rebuilds the model while it
// is served, and verify agrees again; a poison event is parked and managed.
func TestOperatingTheReadModel(t *testing.T) {
	a, _ := startDevAddrs(t, t.TempDir(), nil)
	base := "http://" + a.API
	for i := range 40 {
		resp, body := call(t, http.MethodPost, base+"/v1/messages", fmt.Sprintf(`{"text":"m%d","tag":"t%d"}`, i, i%4))
		if resp.StatusCode != http.StatusCreated {
			t.Fatalf("POST: %d %s", resp.StatusCode, body)
		}
	}
	waitCount(t, base, "", 40, 30*time.Second)
	if out, err := tool(t, a, "verify"); err != nil || !strings.Contains(out, "generation 1 agrees with the log: 40 events") {
		t.Fatalf("verify of a sound model: %v\n%s", err, out)
	}

	client, err := mongo.Connect(options.Client().ApplyURI(a.Mongo))
	if err != nil {
		t.Fatal(err)
	}
	defer client.Disconnect(context.Background())
	msgs := client.Database("messages").Collection("g1_messages")
	ctx := t.Context()
	if _, err := msgs.DeleteOne(ctx, bson.M{"text": "m3"}); err != nil {
		t.Fatal(err)
	}
	if _, err := msgs.UpdateOne(ctx, bson.M{"text": "m7"}, bson.M{"$set": bson.M{"text": "tampered"}}); err != nil {
		t.Fatal(err)
	}
	out, err := tool(t, a, "verify", "--json")
	if err == nil {
		t.Fatalf("verify of a corrupted model passed:\n%s", out)
	}
	var rep struct {
		OK        bool `json:"ok"`
		DiffCount int  `json:"diffCount"`
	}
	if jerr := json.Unmarshal([]byte(strings.SplitN(out, "\n", 2)[0]), &rep); jerr != nil || rep.OK || rep.DiffCount < 2 {
		t.Errorf("verify --json = %+v (%v):\n%s", rep, jerr, out)
	}

	during := replayUnderTraffic(t, a)
	total := 40 + during
	waitCount(t, base, "", total, 30*time.Second)
	if out, err := tool(t, a, "verify"); err != nil || !strings.Contains(out, "generation 2 agrees with the log") {
		t.Fatalf("verify after the replay: %v\n%s", err, out)
	}
	resp, body := call(t, http.MethodGet, base+"/v1/messages?tag=t3&limit=1000", "")
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), `"m3"`) || !strings.Contains(string(body), `"m7"`) {
		t.Errorf("after the replay the lost and tampered messages are not back: %s", body)
	}

	checkPoisonParked(t, a)
}

// postMessage posts body as the test user and returns the status. It calls
// replayUnderTraffic runs replay --drop-old on the dev stack at a while
// POSTs go on, checks that it switched, and returns how many POSTs were
// stored meanwhile.
func replayUnderTraffic(t *testing.T, a Addrs) int {
	t.Helper()
	base := "http://" + a.API
	// The posting goroutine calls no testing.T method: it reports how many
	// it stored and the error that stopped it, if any.
	type traffic struct {
		posted int
		err    error
	}
	stop := make(chan struct{})
	posted := make(chan traffic, 1)
	go func() {
		n := 0
		for {
			select {
			case <-stop:
				posted <- traffic{posted: n}
				return
			default:
			}
			status, err := postMessage(base, fmt.Sprintf(`{"text":"during %d","tag":"t%d"}`, n, n%4))
			if err != nil {
				posted <- traffic{posted: n, err: err}
				return
			}
			if status == http.StatusCreated {
				n++
			}
			time.Sleep(5 * time.Millisecond)
		}
	}()
	out, err := tool(t, a, "replay", "--drop-old")
	close(stop)
	tr := <-posted
	if tr.err != nil {
		t.Fatalf("posting during the replay: %v", tr.err)
	}
	during := tr.posted
	if err != nil || !strings.Contains(out, "switched to generation 2") {
		t.Fatalf("replay: %v\n%s", err, out)
	}
	return during
}

// checkPoisonParked publishes a poison event to the dev stack at a and
// checks that it is parked, listed and discarded.
func checkPoisonParked(t *testing.T, a Addrs) {
	t.Helper()
	nc, err := nats.Connect(a.NATS)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	if err := nc.Publish("messages.events.0.message.created", []byte(`{"id":"01M81BMF973EJ26XN3CX7QHJ1X","type":"message.created","version":9,"occurredAt":"2026-11-22T10:00:00Z","userId":"a","data":{}}`)); err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, 60*time.Second, 100*time.Millisecond, func() error {
		out, err := tool(t, a, "dlq", "list", "--json")
		if err != nil {
			return err
		}
		if !strings.Contains(out, `"originalSequence"`) || !strings.Contains(out, "version 9 is newer") {
			return fmt.Errorf("not parked yet: %s", out)
		}
		return nil
	})
	if out, err := tool(t, a, "dlq", "show", "1"); err != nil || !strings.Contains(out, "cannot be folded after 5 attempts") {
		t.Errorf("dlq show: %v\n%s", err, out)
	}
	if out, err := tool(t, a, "dlq", "discard", "1"); err != nil || !strings.Contains(out, "discarded") {
		t.Errorf("dlq discard: %v\n%s", err, out)
	}
	if out, err := tool(t, a, "dlq", "list"); err != nil || !strings.Contains(out, "0 parked events") {
		t.Errorf("dlq list after discard: %v\n%s", err, out)
	}
	if _, err := tool(t, a, "dlq", "show", "nine"); err == nil {
		t.Error("dlq show with a bad sequence succeeded")
	}
}

// no testing.T method, for goroutines other than the test's.
func postMessage(base, body string) (int, error) {
	req, err := http.NewRequest(http.MethodPost, base+"/v1/messages", strings.NewReader(body))
	if err != nil {
		return 0, err
	}
	req.Header.Set("X-User-Id", "e2e-user")
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, fmt.Errorf("POST: %w", err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode, nil
}
