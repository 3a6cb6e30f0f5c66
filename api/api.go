// Package api holds the OpenAPI 3.1 document of the v1 HTTP API and serves
// it, as YAML and as an HTML page rendered from it, so that every process
// answering /v1 requests can describe them.
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

// Routes serves the document at DocumentPath and its documentation page at
// DocsPath on rt.
func Routes(rt *web.Router) {
	rt.Route(http.MethodGet, DocumentPath, http.HandlerFunc(serve))
	rt.Route(http.MethodGet, DocsPath, docsHandler(Document()))
}

// docsHandler serves the page rendered from doc, once, under a
// Content-Security-Policy that allows nothing but its own style sheet: the
// page loads nothing and runs nothing.
func docsHandler(doc []byte) http.Handler {
	page, styleHash, err := renderDocs(doc)
	if err != nil {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			web.WriteProblem(w, r, http.StatusInternalServerError, "the API documentation cannot be rendered: "+err.Error())
		})
	}
	csp := "default-src 'none'; style-src '" + styleHash + "'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
	return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Cache-Control", "public, max-age=300")
		w.Header().Set("Content-Security-Policy", csp)
		w.Header().Set("X-Content-Type-Options", "nosniff")
		_, _ = w.Write(page)
	})
}

func serve(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/yaml")
	w.Header().Set("Cache-Control", "public, max-age=300")
	_, _ = w.Write([]byte(document))
}
