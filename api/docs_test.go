package api_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/messages-io/messages/api"
	"github.com/messages-io/messages/internal/browser"
	"github.com/messages-io/messages/internal/testkit"
	"github.com/messages-io/messages/web"
	"github.com/pb33f/libopenapi"
	"github.com/prometheus/client_golang/prometheus"
)

// documented is what the page must show of one operation.
type documented struct {
	id, method, path string
	words            []string // parameter names, statuses, header names
}

// operations reads the document with a parser of its own, libopenapi, so
// that the page is checked against the document and not against itself.
func operations(t *testing.T) []documented {
	t.Helper()
	doc, err := libopenapi.NewDocument(api.Document())
	if err != nil {
		t.Fatal(err)
	}
	model, err := doc.BuildV3Model()
	if err != nil {
		t.Fatal(err)
	}
	var out []documented
	for path, item := range model.Model.Paths.PathItems.FromOldest() {
		for method, op := range item.GetOperations().FromOldest() {
			d := documented{id: op.OperationId, method: strings.ToUpper(method), path: path}
			for _, p := range op.Parameters {
				d.words = append(d.words, p.Name)
			}
			for code, r := range op.Responses.Codes.FromOldest() {
				d.words = append(d.words, code)
				for name := range r.Headers.FromOldest() {
					d.words = append(d.words, name)
				}
				for _, media := range r.Content.FromOldest() {
					for name := range media.Examples.FromOldest() {
						d.words = append(d.words, name)
					}
				}
			}
			out = append(out, d)
		}
	}
	if len(out) < 4 {
		t.Fatalf("the document has %d operations; the test expects the four of v1 and the document", len(out))
	}
	return out
}

func docsServer(t *testing.T) string {
	t.Helper()
	reg := prometheus.NewRegistry()
	rt := web.NewRouter(testkit.Logger(), reg, reg, nil)
	api.Routes(rt)
	srv := httptest.NewServer(rt.Root())
	t.Cleanup(srv.Close)
	return srv.URL
}

var sectionRE = regexp.MustCompile(`(?s)<section class="operation" id="op-([^"]+)" data-operation="[^"]+">(.*?)</section>`)
var tagRE = regexp.MustCompile(`<[^>]+>`)

// The page holds a section for every operation, with its method, path,
// parameters, answers, their headers and examples, and nothing that loads
// from elsewhere.
func TestDocsPage(t *testing.T) {
	base := docsServer(t)
	res, err := http.Get(base + api.DocsPath)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	if res.StatusCode != http.StatusOK || res.Header.Get("Content-Type") != "text/html; charset=utf-8" {
		t.Fatalf("GET /docs = %d %s", res.StatusCode, res.Header.Get("Content-Type"))
	}
	if csp := res.Header.Get("Content-Security-Policy"); !strings.HasPrefix(csp, "default-src 'none'; style-src 'sha256-") {
		t.Errorf("Content-Security-Policy %q", csp)
	}
	sections := map[string]string{}
	for _, m := range sectionRE.FindAllStringSubmatch(string(body), -1) {
		sections[m[1]] = strings.Join(strings.Fields(tagRE.ReplaceAllString(m[2], " ")), " ")
	}
	for _, op := range operations(t) {
		text, ok := sections[op.id]
		if !ok {
			t.Errorf("no section for %s", op.id)
			continue
		}
		for _, w := range append([]string{op.method, op.path}, op.words...) {
			if !strings.Contains(text, w) {
				t.Errorf("the section of %s does not show %q", op.id, w)
			}
		}
		if strings.HasPrefix(op.path, "/v1/") && !strings.Contains(text, "Example {") && !strings.Contains(text, "Example list [") {
			t.Errorf("the section of %s shows no example", op.id)
		}
	}
	for _, example := range []string{`"tag": "#CQRS"`, `"text": "Hello, event sourcing!"`, `"createdAt": "2026-11-22T09:34:58.667Z"`} {
		if !strings.Contains(strings.ReplaceAll(string(body), "&#34;", `"`), example) {
			t.Errorf("no example %s", example)
		}
	}
	// An example of a body that is not JSON is shown as its text.
	if !strings.Contains(string(body), "<pre>retry: 2000\nid: ") || !strings.Contains(string(body), "\nevent: message\n") {
		t.Error("the live stream's example is not shown as text")
	}
	for _, external := range []string{"<script", "src=", "http://", "https://"} {
		if strings.Contains(strings.ReplaceAll(string(body), "http://localhost:80", ""), external) {
			t.Errorf("the page has %q", external)
		}
	}
}

// startBrowser runs the headless browser of this machine, or skips the test
// with what to install, unless MESSAGES_BROWSER_TESTS=require (as .ci/run
// sets it) makes a missing browser a failure.
func startBrowser(t *testing.T) *browser.Browser {
	t.Helper()
	path, err := browser.Find(os.Getenv("MESSAGES_CHROMIUM"))
	if err != nil {
		msg := fmt.Sprintf("no headless browser (%v): install Debian's chromium (apt-get install -y chromium) or set MESSAGES_CHROMIUM to a Chromium or Chrome binary, then run go test -run Browser ./api/", err)
		if os.Getenv("MESSAGES_BROWSER_TESTS") == "require" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	b, err := browser.Start(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	return b
}

// The page in a real browser: every operation of the document is shown,
// styled, and the console has no error.
func TestDocsInBrowser(t *testing.T) {
	b := startBrowser(t)
	base := docsServer(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	page, err := b.Open(ctx, base+api.DocsPath)
	if err != nil {
		t.Fatal(err)
	}
	defer page.Close()

	var shown []struct {
		ID      string `json:"id"`
		Visible bool   `json:"visible"`
		Text    string `json:"text"`
	}
	err = page.Eval(ctx, `Array.from(document.querySelectorAll("section.operation")).map(s => ({
		id: s.dataset.operation,
		visible: s.getClientRects().length > 0 && getComputedStyle(s).visibility === "visible" && s.offsetHeight > 0,
		text: s.innerText,
	}))`, &shown)
	if err != nil {
		t.Fatal(err)
	}
	byID := map[string]int{}
	for i, s := range shown {
		byID[s.ID] = i
	}
	for _, op := range operations(t) {
		i, ok := byID[op.id]
		if !ok {
			t.Errorf("%s %s (%s) is not on the page", op.method, op.path, op.id)
			continue
		}
		s := shown[i]
		if !s.Visible {
			t.Errorf("%s is on the page but not shown", op.id)
		}
		text := strings.Join(strings.Fields(s.Text), " ")
		for _, w := range append([]string{op.method, op.path}, op.words...) {
			if !strings.Contains(text, w) {
				t.Errorf("%s: the browser shows no %q", op.id, w)
			}
		}
	}
	// The style sheet applied: the page's CSP let it in.
	var color string
	if err := page.Eval(ctx, `getComputedStyle(document.querySelector("span.method")).color`, &color); err != nil || color != "rgb(255, 255, 255)" {
		t.Errorf("a method badge's color is %q, %v: the style sheet did not apply", color, err)
	}
	if errs := page.Errors(); len(errs) > 0 {
		t.Errorf("the console has errors:\n%s", strings.Join(errs, "\n"))
	}
}

// The console check is not blind: a page that logs an error, throws, and
// loads what its policy forbids is caught.
func TestBrowserSeesConsoleErrors(t *testing.T) {
	b := startBrowser(t)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		w.Header().Set("Content-Security-Policy", "default-src 'none'; script-src 'unsafe-inline'")
		io.WriteString(w, `<!doctype html><title>bad</title><style>p{color:red}</style>
<script>console.error("logged"); setTimeout(() => { throw new Error("thrown") })</script><p>bad</p>`)
	}))
	defer srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	page, err := b.Open(ctx, srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer page.Close()
	want := []string{"logged", "thrown", "Content Security Policy"}
	testkit.Eventually(t, 10*time.Second, 20*time.Millisecond, func() error {
		// A round trip delivers the events sent before it.
		var ignored int
		if err := page.Eval(ctx, "1", &ignored); err != nil {
			return err
		}
		all := strings.Join(page.Errors(), "\n")
		for _, w := range want {
			if !strings.Contains(all, w) {
				return fmt.Errorf("errors %q lack %q", all, w)
			}
		}
		return nil
	})
}
