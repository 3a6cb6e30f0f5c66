package main

import (
	"net/http"
	"strings"
	"testing"

	"github.com/messages-io/messages/api"
)

// The API documentation is served by dev (and so by every process with the
// query role) and by the gateway, without credentials.
func TestDocsServed(t *testing.T) {
	dev, _ := startDev(t, t.TempDir(), nil)
	gw := startGatewayCmd(t, dev, dev)
	for _, base := range []string{dev, gw} {
		res, body := send(t, http.MethodGet, base+api.DocsPath, nil, "")
		if res.StatusCode != http.StatusOK || !strings.HasPrefix(res.Header.Get("Content-Type"), "text/html") {
			t.Errorf("GET %s%s = %d %s", base, api.DocsPath, res.StatusCode, res.Header.Get("Content-Type"))
			continue
		}
		for _, op := range []string{"createMessage", "listMessages", "getMessage", "getOpenAPI"} {
			if !strings.Contains(string(body), `data-operation="`+op+`"`) {
				t.Errorf("GET %s%s shows no %s", base, api.DocsPath, op)
			}
		}
	}
}
