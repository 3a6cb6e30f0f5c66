package api_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/messages-io/messages/api"
	"github.com/messages-io/messages/internal/testkit"
	"github.com/messages-io/messages/web"
	"github.com/pb33f/libopenapi"
	validator "github.com/pb33f/libopenapi-validator"
	"github.com/prometheus/client_golang/prometheus"
)

// The document is valid OpenAPI 3.1 and describes each v1 operation.
func TestDocumentIsValidOpenAPI31(t *testing.T) {
	doc, err := libopenapi.NewDocument(api.Document())
	if err != nil {
		t.Fatal(err)
	}
	if v := doc.GetVersion(); v != "3.1.0" {
		t.Fatalf("version = %q, want 3.1.0", v)
	}
	v, errs := validator.NewValidator(doc)
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	if ok, verrs := v.ValidateDocument(); !ok {
		for _, e := range verrs {
			t.Errorf("%s: %s", e.Message, e.Reason)
		}
	}
	model, merrs := doc.BuildV3Model()
	if merrs != nil {
		t.Fatal(merrs)
	}
	for path, methods := range map[string][]string{
		"/v1/messages":      {"POST", "GET"},
		"/v1/messages/{id}": {"GET"},
	} {
		item, ok := model.Model.Paths.PathItems.Get(path)
		if !ok {
			t.Errorf("no path %s", path)
			continue
		}
		ops := item.GetOperations()
		for _, m := range methods {
			if _, ok := ops.Get(map[string]string{"POST": "post", "GET": "get"}[m]); !ok {
				t.Errorf("no %s %s", m, path)
			}
		}
	}
}

func TestRoutesServeTheDocument(t *testing.T) {
	reg := prometheus.NewRegistry()
	rt := web.NewRouter(testkit.Logger(), reg, reg, nil)
	api.Routes(rt)
	rec := httptest.NewRecorder()
	rt.Root().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, api.DocumentPath, nil))
	res := rec.Result()
	body, _ := io.ReadAll(res.Body)
	if res.StatusCode != http.StatusOK || string(body) != string(api.Document()) {
		t.Errorf("GET %s = %d, %d bytes; want 200 and the document", api.DocumentPath, res.StatusCode, len(body))
	}
	if ct := res.Header.Get("Content-Type"); ct != "application/yaml" {
		t.Errorf("Content-Type = %q, want application/yaml", ct)
	}
	// The document is served by value: a caller changing its copy changes
	// nothing served.
	b := api.Document()
	b[0] = 'X'
	if api.Document()[0] == 'X' {
		t.Error("Document returns the served bytes themselves")
	}
}
