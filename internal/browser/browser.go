// Package browser drives a headless Chromium over the DevTools protocol, for
// tests that load a page the service serves as a person's browser would and
// read what it shows and what its console says.
package browser

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/net/websocket"
)

// names are the executables Find looks for on the PATH, in order.
func names() []string {
	return []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable"}
}

// Find returns the browser to run: explicit when set, else the first of
// chromium, chromium-browser, google-chrome and google-chrome-stable on the
// PATH.
func Find(explicit string) (string, error) {
	if explicit != "" {
		return exec.LookPath(explicit)
	}
	for _, n := range names() {
		if p, err := exec.LookPath(n); err == nil {
			return p, nil
		}
	}
	return "", fmt.Errorf("none of %s is on the PATH", strings.Join(names(), ", "))
}

// Browser is a running headless browser with a profile of its own.
type Browser struct {
	cmd    *exec.Cmd
	dir    string
	port   int
	exited chan struct{}
}

// Start runs the browser at path, headless, with a fresh profile, none of
// its own network traffic (updates, sync, background requests) and the
// DevTools protocol on a random loopback port.
func Start(ctx context.Context, path string) (*Browser, error) {
	dir, err := os.MkdirTemp("", "browser-profile-")
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(path,
		"--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync",
		"--disable-extensions", "--disable-default-apps", "--mute-audio",
		"--user-data-dir="+dir, "--remote-debugging-address=127.0.0.1", "--remote-debugging-port=0",
		"--remote-allow-origins=http://127.0.0.1", "about:blank")
	if err := cmd.Start(); err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("start %s: %w", path, err)
	}
	b := &Browser{cmd: cmd, dir: dir, exited: make(chan struct{})}
	go func() { _ = cmd.Wait(); close(b.exited) }()
	// The browser writes its port into the profile once it listens.
	for {
		if data, err := os.ReadFile(filepath.Join(dir, "DevToolsActivePort")); err == nil {
			line, _, _ := strings.Cut(string(data), "\n")
			if b.port, err = strconv.Atoi(strings.TrimSpace(line)); err == nil && b.port > 0 {
				return b, nil
			}
		}
		select {
		case <-b.exited:
			os.RemoveAll(dir)
			return nil, fmt.Errorf("%s exited before it listened", path)
		case <-ctx.Done():
			b.Close()
			return nil, fmt.Errorf("%s did not listen: %w", path, ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// Close stops the browser and removes its profile.
func (b *Browser) Close() {
	_ = b.cmd.Process.Kill()
	<-b.exited
	os.RemoveAll(b.dir)
}

// Page is a browser tab.
type Page struct {
	b      *Browser
	id     string
	conn   *websocket.Conn
	mu     sync.Mutex
	nextID int
	calls  map[int]chan reply
	errs   []string
	loaded chan struct{}
	done   chan struct{} // closed when the connection ends
}

type reply struct {
	Result json.RawMessage `json:"result"`
	Error  *struct {
		Code    int    `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

// message is anything the browser sends: a reply (ID set) or an event.
type message struct {
	ID     int             `json:"id"`
	Method string          `json:"method"`
	Params json.RawMessage `json:"params"`
	reply
}

// Open opens url in a new tab and waits until it has loaded: its load event
// fired.
func (b *Browser) Open(ctx context.Context, url string) (*Page, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPut, fmt.Sprintf("http://127.0.0.1:%d/json/new?about:blank", b.port), nil)
	if err != nil {
		return nil, err
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("open a tab: %w", err)
	}
	defer res.Body.Close()
	var target struct {
		ID  string `json:"id"`
		WS  string `json:"webSocketDebuggerUrl"`
		Err string `json:"error"`
	}
	if err := json.NewDecoder(res.Body).Decode(&target); err != nil || target.WS == "" {
		return nil, fmt.Errorf("open a tab: %s: %v", res.Status, err)
	}
	conn, err := websocket.Dial(target.WS, "", "http://127.0.0.1")
	if err != nil {
		return nil, fmt.Errorf("connect to the tab: %w", err)
	}
	p := &Page{b: b, id: target.ID, conn: conn, calls: map[int]chan reply{}, loaded: make(chan struct{}, 1), done: make(chan struct{})}
	go p.read()
	for _, m := range []string{"Runtime.enable", "Log.enable", "Page.enable"} {
		if err := p.Call(ctx, m, nil, nil); err != nil {
			p.Close()
			return nil, err
		}
	}
	var nav struct {
		ErrorText string `json:"errorText"`
	}
	if err := p.Call(ctx, "Page.navigate", map[string]string{"url": url}, &nav); err != nil {
		p.Close()
		return nil, err
	}
	if nav.ErrorText != "" {
		p.Close()
		return nil, fmt.Errorf("navigate to %s: %s", url, nav.ErrorText)
	}
	select {
	case <-p.loaded:
		return p, nil
	case <-p.done:
		return nil, errors.New("the tab closed before the page loaded")
	case <-ctx.Done():
		p.Close()
		return nil, fmt.Errorf("%s did not load: %w", url, ctx.Err())
	}
}

// Call sends a DevTools method with params and decodes its result into out,
// when out is not nil.
func (p *Page) Call(ctx context.Context, method string, params, out any) error {
	p.mu.Lock()
	p.nextID++
	id := p.nextID
	ch := make(chan reply, 1)
	p.calls[id] = ch
	p.mu.Unlock()
	if params == nil {
		params = struct{}{}
	}
	if err := websocket.JSON.Send(p.conn, map[string]any{"id": id, "method": method, "params": params}); err != nil {
		return fmt.Errorf("%s: %w", method, err)
	}
	select {
	case r := <-ch:
		if r.Error != nil {
			return fmt.Errorf("%s: %s (%d)", method, r.Error.Message, r.Error.Code)
		}
		if out != nil {
			return json.Unmarshal(r.Result, out)
		}
		return nil
	case <-p.done:
		return fmt.Errorf("%s: the connection to the tab ended", method)
	case <-ctx.Done():
		return fmt.Errorf("%s: %w", method, ctx.Err())
	}
}

// Eval evaluates a JavaScript expression in the page and decodes its value,
// which must be JSON, into out.
func (p *Page) Eval(ctx context.Context, expr string, out any) error {
	var r struct {
		Result struct {
			Value json.RawMessage `json:"value"`
		} `json:"result"`
		Exception *struct {
			Text string `json:"text"`
		} `json:"exceptionDetails"`
	}
	if err := p.Call(ctx, "Runtime.evaluate", map[string]any{"expression": expr, "returnByValue": true}, &r); err != nil {
		return err
	}
	if r.Exception != nil {
		return fmt.Errorf("evaluate: %s", r.Exception.Text)
	}
	return json.Unmarshal(r.Result.Value, out)
}

// Errors returns what the page reported as errors so far: console.error
// and failed assertions, uncaught exceptions, and the browser's own error
// entries (a resource that failed to load, a Content-Security-Policy
// violation).
func (p *Page) Errors() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.errs...)
}

// Close closes the tab.
func (p *Page) Close() {
	p.conn.Close()
	<-p.done
	if res, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/json/close/%s", p.b.port, p.id)); err == nil {
		res.Body.Close()
	}
}

// read receives replies and events until the connection ends.
func (p *Page) read() {
	defer close(p.done)
	for {
		var m message
		if err := websocket.JSON.Receive(p.conn, &m); err != nil {
			return
		}
		if m.ID != 0 {
			p.mu.Lock()
			ch := p.calls[m.ID]
			delete(p.calls, m.ID)
			p.mu.Unlock()
			if ch != nil {
				ch <- m.reply
			}
			continue
		}
		p.event(m.Method, m.Params)
	}
}

func (p *Page) event(method string, params json.RawMessage) {
	var problem string
	switch method {
	case "Page.loadEventFired":
		select {
		case p.loaded <- struct{}{}:
		default:
		}
	case "Runtime.consoleAPICalled":
		var e struct {
			Type string `json:"type"`
			Args []struct {
				Value       any    `json:"value"`
				Description string `json:"description"`
			} `json:"args"`
		}
		if json.Unmarshal(params, &e) == nil && (e.Type == "error" || e.Type == "assert") {
			var parts []string
			for _, a := range e.Args {
				if a.Description != "" {
					parts = append(parts, a.Description)
				} else {
					parts = append(parts, fmt.Sprint(a.Value))
				}
			}
			problem = "console." + e.Type + ": " + strings.Join(parts, " ")
		}
	case "Runtime.exceptionThrown":
		var e struct {
			Details struct {
				Text      string `json:"text"`
				Exception struct {
					Description string `json:"description"`
				} `json:"exception"`
			} `json:"exceptionDetails"`
		}
		if json.Unmarshal(params, &e) == nil {
			problem = "exception: " + e.Details.Text + " " + e.Details.Exception.Description
		}
	case "Log.entryAdded":
		var e struct {
			Entry struct {
				Level  string `json:"level"`
				Source string `json:"source"`
				Text   string `json:"text"`
				URL    string `json:"url"`
			} `json:"entry"`
		}
		if json.Unmarshal(params, &e) == nil && e.Entry.Level == "error" {
			problem = e.Entry.Source + ": " + e.Entry.Text + " " + e.Entry.URL
		}
	}
	if problem != "" {
		p.mu.Lock()
		p.errs = append(p.errs, strings.TrimSpace(problem))
		p.mu.Unlock()
	}
}
