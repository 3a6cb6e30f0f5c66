// Package api holds the OpenAPI 3.1 document of the v1 HTTP API and serves
// it, so that every process answering /v1 requests can describe them.
package api

import (
	_ "embed"
	"net/http"

	"github.com/messages-io/messages/web"
)

// DocumentPath is where the OpenAPI document is served.
const DocumentPath = "/openapi.yaml"

//go:embed openapi.yaml
var document string

// Document returns the OpenAPI 3.1 document of the v1 API, in YAML.
func Document() []byte { return []byte(document) }

// Routes serves the document at DocumentPath on rt.
func Routes(rt *web.Router) {
	rt.Route(http.MethodGet, DocumentPath, http.HandlerFunc(serve))
}

func serve(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/yaml")
	w.Header().Set("Cache-Control", "public, max-age=300")
	_, _ = w.Write([]byte(document))
}
