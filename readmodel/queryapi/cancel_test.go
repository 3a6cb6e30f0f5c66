package queryapi_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/messages-io/messages/internal/testkit"
	"github.com/messages-io/messages/message"
	"github.com/messages-io/messages/readmodel"
	"github.com/messages-io/messages/readmodel/queryapi"
	"github.com/messages-io/messages/web"
	"github.com/prometheus/client_golang/prometheus"
)

// stalledReader answers no query until its caller gives up, then fails with
// the error its fail func makes of the context's.
type stalledReader struct {
	entered chan struct{}
	fail    func(ctxErr error) error
}

func (s stalledReader) wait(ctx context.Context) error {
	s.entered <- struct{}{}
	<-ctx.Done()
	return s.fail(ctx.Err())
}

func (s stalledReader) Get(ctx context.Context, _ string) (message.Message, error) {
	return message.Message{}, s.wait(ctx)
}

func (s stalledReader) List(ctx context.Context, _ readmodel.Page) ([]message.Message, error) {
	return nil, s.wait(ctx)
}

func (s stalledReader) Count(ctx context.Context, _ readmodel.Filter) (int64, error) {
	return 0, s.wait(ctx)
}

// requests returns the value of messages_http_requests_total for route, GET
// and code, 0 when there is no such series.
func requests(t *testing.T, g prometheus.Gatherer, route, code string) float64 {
	t.Helper()
	families, err := g.Gather()
	if err != nil {
		t.Fatalf("gather: %v", err)
	}
	for _, f := range families {
		if f.GetName() != "messages_http_requests_total" {
			continue
		}
		for _, m := range f.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			if labels["route"] == route && labels["method"] == http.MethodGet && labels["code"] == code {
				return m.GetCounter().GetValue()
			}
		}
	}
	return 0
}

// TestAbandonedReadIsRecordedAs499 cancels reads while the read model works
// on them, and checks that each is counted and logged as 499, never as the
// 200 an empty handler implies or a 503 written to nobody.
func TestAbandonedReadIsRecordedAs499(t *testing.T) {
	tests := []struct {
		name   string
		target string
		route  string
		// fail is what the read model returns once the caller's context
		// ended: drivers do not always wrap context.Canceled.
		fail func(error) error
	}{
		{"list, canceled", "/v1/messages?tag=go", "/v1/messages", func(err error) error { return err }},
		{"count, connection error", "/v1/messages?count=1", "/v1/messages",
			func(error) error { return fmt.Errorf("%w: connection closed", readmodel.ErrUnavailable) }},
		{"by id, canceled", "/v1/messages/01ARZ3NDEKTSV4RRFFQ69G5FAV", "/v1/messages/:id",
			func(err error) error { return fmt.Errorf("find: %w", err) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var logs testkit.Logs
			log := slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
			reg := prometheus.NewRegistry()
			rt := web.NewRouter(log, reg, reg, nil)
			rd := stalledReader{entered: make(chan struct{}, 1), fail: tt.fail}
			queryapi.New(rd, testkit.Logger(), queryapi.Config{Timeout: time.Minute}).Routes(rt)
			srv := httptest.NewServer(rt.Root())
			t.Cleanup(srv.Close)

			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			req, err := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL+tt.target, nil)
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set(web.UserIDHeader, "alice")
			done := make(chan error, 1)
			go func() {
				resp, err := http.DefaultClient.Do(req)
				if err == nil {
					resp.Body.Close()
					err = fmt.Errorf("answered %s, want no answer", resp.Status)
				}
				done <- err
			}()
			select {
			case <-rd.entered:
			case <-time.After(10 * time.Second):
				t.Fatal("the read never reached the read model")
			}
			cancel()
			if err := <-done; !errors.Is(err, context.Canceled) {
				t.Fatalf("client: %v, want context.Canceled", err)
			}

			testkit.Eventually(t, 5*time.Second, 10*time.Millisecond, func() error {
				if n := requests(t, reg, tt.route, "499"); n != 1 {
					return fmt.Errorf("messages_http_requests_total{code=499} = %v, want 1", n)
				}
				if logs.String() == "" {
					return errors.New("no access log record")
				}
				return nil
			})
			for _, code := range []string{"200", "503", "500"} {
				if n := requests(t, reg, tt.route, code); n != 0 {
					t.Errorf("messages_http_requests_total{code=%s} = %v, want 0", code, n)
				}
			}
			var rec struct {
				Msg    string
				Status int
			}
			if err := json.Unmarshal(bytes.TrimSpace([]byte(logs.String())), &rec); err != nil {
				t.Fatalf("access log %q: %v", logs.String(), err)
			}
			if rec.Msg != "request" || rec.Status != 499 {
				t.Errorf("access log = %s, want one request record with status 499", logs.String())
			}
		})
	}
}
