package api

import (
	"bytes"
	"crypto/sha256"
	_ "embed"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"html/template"
	"regexp"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// DocsPath is where the API documentation is served, as one HTML page
// rendered from the OpenAPI document: no script, no asset from elsewhere.
const DocsPath = "/docs"

//go:embed docs.html.tmpl
var docsTemplate string

//go:embed docs.css
var docsStyle string

// The page's model, in the document's order.
type docsPage struct {
	Title, Version, Summary string
	Description             template.HTML
	Servers                 []docsServer
	Security                []docsScheme
	Operations              []docsOperation
	Schemas                 []docsSchema
	Style                   template.CSS
}

type docsServer struct {
	URL         string
	Description template.HTML
}

type docsScheme struct {
	Name, Kind  string
	Description template.HTML
}

type docsOperation struct {
	ID, Method, Path, Summary string
	Description               template.HTML
	Tags                      []string
	Public                    bool // needs no credentials
	Parameters                []docsParameter
	Body                      *docsBody
	Responses                 []docsResponse
}

type docsParameter struct {
	Name, In    string
	Required    bool
	Description template.HTML
	Schema      template.HTML
}

type docsBody struct {
	Required bool
	Content  []docsContent
}

type docsContent struct {
	Type        string
	Schema      template.HTML
	Description template.HTML // of a schema written in place
	Examples    []docsExample
}

type docsExample struct {
	Name, Value string
}

type docsResponse struct {
	Status      string
	Description template.HTML
	Headers     []docsParameter
	Content     []docsContent
}

type docsSchema struct {
	Name        string
	Description template.HTML
	Summary     template.HTML // for a schema that is not an object
	Properties  []docsProperty
}

type docsProperty struct {
	Name        string
	Required    bool
	Schema      template.HTML
	Description template.HTML
}

// renderDocs renders the documentation page of doc, and returns it with the
// hash of its style sheet, which the page's Content-Security-Policy allows.
func renderDocs(doc []byte) ([]byte, string, error) {
	var root yaml.Node
	if err := yaml.Unmarshal(doc, &root); err != nil {
		return nil, "", fmt.Errorf("parse the OpenAPI document: %w", err)
	}
	if root.Kind != yaml.DocumentNode || len(root.Content) != 1 {
		return nil, "", fmt.Errorf("the OpenAPI document is not one YAML document")
	}
	d := &docReader{root: root.Content[0]}
	p := d.page()
	if d.err != nil {
		return nil, "", d.err
	}
	p.Style = template.CSS(docsStyle)
	t, err := template.New("docs").Funcs(template.FuncMap{"statusClass": statusClass, "lower": strings.ToLower}).Parse(docsTemplate)
	if err != nil {
		return nil, "", err
	}
	var b bytes.Buffer
	if err := t.Execute(&b, p); err != nil {
		return nil, "", err
	}
	sum := sha256.Sum256([]byte(docsStyle))
	return b.Bytes(), "sha256-" + base64.StdEncoding.EncodeToString(sum[:]), nil
}

// docReader reads the document's YAML tree, following $ref within it; the
// first error it meets is kept in err.
type docReader struct {
	root *yaml.Node
	err  error
}

// get returns the value of key in the mapping n, $ref followed, or nil.
func (d *docReader) get(n *yaml.Node, key string) *yaml.Node {
	n = d.resolve(n)
	if n == nil || n.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == key {
			return d.resolve(n.Content[i+1])
		}
	}
	return nil
}

// raw is get without following a $ref of the value.
func raw(n *yaml.Node, key string) *yaml.Node {
	if n == nil || n.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == key {
			return n.Content[i+1]
		}
	}
	return nil
}

// str is the scalar value of key in n, or "".
func (d *docReader) str(n *yaml.Node, key string) string {
	if v := d.get(n, key); v != nil && v.Kind == yaml.ScalarNode {
		return v.Value
	}
	return ""
}

// pairs returns the keys and values of the mapping n, in order.
func (d *docReader) pairs(n *yaml.Node) (keys []string, values []*yaml.Node) {
	n = d.resolve(n)
	if n == nil || n.Kind != yaml.MappingNode {
		return nil, nil
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		keys = append(keys, n.Content[i].Value)
		values = append(values, n.Content[i+1])
	}
	return keys, values
}

// resolve follows the $ref of n, if any, within the document.
func (d *docReader) resolve(n *yaml.Node) *yaml.Node {
	for range 10 {
		ref := raw(n, "$ref")
		if ref == nil {
			return n
		}
		n = d.pointer(ref.Value)
	}
	d.fail(fmt.Errorf("a $ref chain is longer than 10"))
	return nil
}

func (d *docReader) pointer(ref string) *yaml.Node {
	if !strings.HasPrefix(ref, "#/") {
		d.fail(fmt.Errorf("$ref %q is not within the document", ref))
		return nil
	}
	n := d.root
	for _, part := range strings.Split(ref[2:], "/") {
		part = strings.NewReplacer("~1", "/", "~0", "~").Replace(part)
		if n = raw(n, part); n == nil {
			d.fail(fmt.Errorf("$ref %q names nothing", ref))
			return nil
		}
	}
	return n
}

func (d *docReader) fail(err error) {
	if d.err == nil {
		d.err = err
	}
}

func (d *docReader) page() docsPage {
	info := d.get(d.root, "info")
	p := docsPage{
		Title:       d.str(info, "title"),
		Version:     d.str(info, "version"),
		Summary:     d.str(info, "summary"),
		Description: markdown(d.str(info, "description")),
	}
	for _, s := range d.get(d.root, "servers").Content {
		p.Servers = append(p.Servers, docsServer{URL: d.str(s, "url"), Description: template.HTML(inline(d.str(s, "description")))})
	}
	names, schemes := d.pairs(d.get(d.get(d.root, "components"), "securitySchemes"))
	for i, s := range schemes {
		kind := d.str(s, "type")
		switch kind {
		case "http":
			kind = "HTTP " + d.str(s, "scheme")
			if f := d.str(s, "bearerFormat"); f != "" {
				kind += " (" + f + ")"
			}
		case "apiKey":
			kind = "header " + d.str(s, "name")
		}
		p.Security = append(p.Security, docsScheme{Name: names[i], Kind: kind, Description: markdown(d.str(s, "description"))})
	}
	paths, items := d.pairs(d.get(d.root, "paths"))
	for i, item := range items {
		methods, ops := d.pairs(item)
		for j, op := range ops {
			switch methods[j] {
			case "get", "put", "post", "delete", "options", "head", "patch", "trace":
			default:
				continue
			}
			p.Operations = append(p.Operations, d.operation(paths[i], methods[j], item, op))
		}
	}
	names, schemas := d.pairs(d.get(d.get(d.root, "components"), "schemas"))
	for i, s := range schemas {
		p.Schemas = append(p.Schemas, d.schemaSection(names[i], s))
	}
	return p
}

func (d *docReader) operation(path, method string, item, op *yaml.Node) docsOperation {
	o := docsOperation{
		ID:          d.str(op, "operationId"),
		Method:      strings.ToUpper(method),
		Path:        path,
		Summary:     d.str(op, "summary"),
		Description: markdown(d.str(op, "description")),
	}
	if tags := d.get(op, "tags"); tags != nil {
		for _, t := range tags.Content {
			o.Tags = append(o.Tags, t.Value)
		}
	}
	if sec := d.get(op, "security"); sec != nil && len(sec.Content) == 0 {
		o.Public = true
	}
	var params []*yaml.Node
	if ps := d.get(item, "parameters"); ps != nil {
		params = append(params, ps.Content...)
	}
	if ps := d.get(op, "parameters"); ps != nil {
		params = append(params, ps.Content...)
	}
	for _, pn := range params {
		o.Parameters = append(o.Parameters, docsParameter{
			Name:        d.str(pn, "name"),
			In:          d.str(pn, "in"),
			Required:    d.str(pn, "required") == "true",
			Description: markdown(d.str(pn, "description")),
			Schema:      d.schemaText(raw(d.resolve(pn), "schema")),
		})
	}
	if body := d.get(op, "requestBody"); body != nil {
		o.Body = &docsBody{Required: d.str(body, "required") == "true", Content: d.content(d.get(body, "content"))}
	}
	codes, responses := d.pairs(d.get(op, "responses"))
	for i, r := range responses {
		resp := docsResponse{Status: codes[i], Description: markdown(d.str(r, "description")), Content: d.content(d.get(r, "content"))}
		names, headers := d.pairs(d.get(r, "headers"))
		for k, h := range headers {
			resp.Headers = append(resp.Headers, docsParameter{
				Name:        names[k],
				Required:    d.str(h, "required") == "true",
				Description: markdown(d.str(h, "description")),
				Schema:      d.schemaText(raw(d.resolve(h), "schema")),
			})
		}
		o.Responses = append(o.Responses, resp)
	}
	return o
}

// content lists the media types of a content map with their schemas and
// examples.
func (d *docReader) content(n *yaml.Node) []docsContent {
	types, media := d.pairs(n)
	var out []docsContent
	for i, m := range media {
		schema := raw(d.resolve(m), "schema")
		c := docsContent{Type: types[i], Schema: d.schemaText(schema)}
		if raw(schema, "$ref") == nil {
			c.Description = markdown(d.str(schema, "description"))
		}
		// A JSON body's example is shown as JSON; any other is its text.
		isJSON := strings.Contains(types[i], "json")
		if ex := d.get(m, "example"); ex != nil {
			c.Examples = append(c.Examples, docsExample{Value: d.exampleOf(ex, isJSON)})
		}
		names, exs := d.pairs(d.get(m, "examples"))
		for k, ex := range exs {
			c.Examples = append(c.Examples, docsExample{Name: names[k], Value: d.exampleOf(d.get(ex, "value"), isJSON)})
		}
		out = append(out, c)
	}
	return out
}

// exampleOf is an example as JSON, or for a body of another type that is
// text, the text itself.
func (d *docReader) exampleOf(n *yaml.Node, isJSON bool) string {
	if !isJSON && n != nil && n.Kind == yaml.ScalarNode && n.Tag == "!!str" {
		return n.Value
	}
	return d.exampleText(n)
}

// exampleText is an example as JSON, indented, its keys in the document's
// order.
func (d *docReader) exampleText(n *yaml.Node) string {
	if n == nil {
		return ""
	}
	var b strings.Builder
	if err := writeJSON(&b, n, ""); err != nil {
		d.fail(fmt.Errorf("an example: %w", err))
	}
	return b.String()
}

// writeJSON writes the YAML value n as JSON.
func writeJSON(b *strings.Builder, n *yaml.Node, indent string) error {
	switch n.Kind {
	case yaml.MappingNode, yaml.SequenceNode:
		open, end, step := "{", "}", 2
		if n.Kind == yaml.SequenceNode {
			open, end, step = "[", "]", 1
		}
		if len(n.Content) == 0 {
			b.WriteString(open + end)
			return nil
		}
		b.WriteString(open + "\n")
		for i := 0; i < len(n.Content); i += step {
			b.WriteString(indent + "  ")
			if step == 2 {
				k, _ := json.Marshal(n.Content[i].Value)
				b.Write(k)
				b.WriteString(": ")
			}
			if err := writeJSON(b, n.Content[i+step-1], indent+"  "); err != nil {
				return err
			}
			if i+step < len(n.Content) {
				b.WriteString(",")
			}
			b.WriteString("\n")
		}
		b.WriteString(indent + end)
		return nil
	case yaml.AliasNode:
		return writeJSON(b, n.Alias, indent)
	}
	var v any
	if err := n.Decode(&v); err != nil {
		return err
	}
	j, err := json.Marshal(v)
	if err != nil {
		return err
	}
	b.Write(j)
	return nil
}

// schemaText describes a schema in a line: a link to a named schema, or its
// type and constraints.
func (d *docReader) schemaText(n *yaml.Node) template.HTML {
	if n == nil {
		return ""
	}
	if ref := raw(n, "$ref"); ref != nil {
		name := ref.Value[strings.LastIndex(ref.Value, "/")+1:]
		if strings.HasPrefix(ref.Value, "#/components/schemas/") {
			return template.HTML(fmt.Sprintf(`<a href="#schema-%s">%s</a>`, template.HTMLEscapeString(name), template.HTMLEscapeString(name)))
		}
		return d.schemaText(d.resolve(n))
	}
	for _, alt := range []string{"oneOf", "anyOf"} {
		if alts := raw(n, alt); alts != nil {
			var parts []string
			for _, a := range alts.Content {
				part := string(d.schemaText(a))
				if desc := d.str(a, "description"); desc != "" {
					part += " — " + inline(desc)
				}
				parts = append(parts, part)
			}
			sep := " <em>or</em> "
			if alt == "oneOf" {
				sep = " <em>or else</em> "
			}
			return template.HTML(strings.Join(parts, sep))
		}
	}
	typ := d.str(n, "type")
	if typ == "array" {
		text := "array of " + string(d.schemaText(raw(n, "items")))
		return template.HTML(text + d.constraints(n, "minItems", "maxItems"))
	}
	text := template.HTMLEscapeString(typ)
	if f := d.str(n, "format"); f != "" {
		text += " (" + template.HTMLEscapeString(f) + ")"
	}
	return template.HTML(text + d.constraints(n, "const", "enum", "default", "minimum", "maximum", "minLength", "maxLength", "pattern", "examples"))
}

// constraints lists the named keywords of n that it has.
func (d *docReader) constraints(n *yaml.Node, keys ...string) string {
	var parts []string
	for _, k := range keys {
		v := raw(n, k)
		if v == nil {
			continue
		}
		var val string
		switch v.Kind {
		case yaml.SequenceNode:
			var items []string
			for _, it := range v.Content {
				items = append(items, it.Value)
			}
			val = strings.Join(items, ", ")
		default:
			val = v.Value
		}
		parts = append(parts, fmt.Sprintf("%s <code>%s</code>", k, template.HTMLEscapeString(val)))
	}
	if len(parts) == 0 {
		return ""
	}
	return "; " + strings.Join(parts, "; ")
}

func (d *docReader) schemaSection(name string, n *yaml.Node) docsSchema {
	s := docsSchema{Name: name, Description: markdown(d.str(n, "description"))}
	names, props := d.pairs(d.get(n, "properties"))
	if len(props) == 0 {
		s.Summary = d.schemaText(n)
		return s
	}
	required := map[string]bool{}
	if req := d.get(n, "required"); req != nil {
		for _, r := range req.Content {
			required[r.Value] = true
		}
	}
	for i, pn := range props {
		s.Properties = append(s.Properties, docsProperty{
			Name:        names[i],
			Required:    required[names[i]],
			Schema:      d.schemaText(pn),
			Description: markdown(d.str(pn, "description")),
		})
	}
	if ap := d.get(n, "additionalProperties"); ap != nil && ap.Value == "false" {
		s.Summary = "An object with these properties and no others."
	}
	return s
}

var (
	codeSpan = regexp.MustCompile("`([^`]+)`")
	strong   = regexp.MustCompile(`\*\*([^*]+)\*\*`)
	listItem = regexp.MustCompile(`^\s*[-*] `)
)

// markdown renders the little Markdown the document's descriptions use:
// paragraphs, lists, `code` and **strong**. Everything else is text.
func markdown(s string) template.HTML {
	var b strings.Builder
	for _, block := range strings.Split(strings.TrimSpace(s), "\n\n") {
		lines := strings.Split(strings.TrimSpace(block), "\n")
		if len(lines) == 0 || lines[0] == "" {
			continue
		}
		if listItem.MatchString(lines[0]) {
			b.WriteString("<ul>")
			var item []string
			flush := func() {
				if len(item) > 0 {
					b.WriteString("<li>" + inline(strings.Join(item, " ")) + "</li>")
					item = nil
				}
			}
			for _, l := range lines {
				if listItem.MatchString(l) {
					flush()
					l = listItem.ReplaceAllString(l, "")
				}
				item = append(item, strings.TrimSpace(l))
			}
			flush()
			b.WriteString("</ul>")
			continue
		}
		for i := range lines {
			lines[i] = strings.TrimSpace(lines[i])
		}
		b.WriteString("<p>" + inline(strings.Join(lines, " ")) + "</p>")
	}
	return template.HTML(b.String())
}

func inline(s string) string {
	s = template.HTMLEscapeString(s)
	s = codeSpan.ReplaceAllString(s, "<code>$1</code>")
	return strong.ReplaceAllString(s, "<strong>$1</strong>")
}

// statusClass is the class of a status code's badge: 2xx, 4xx or 5xx.
func statusClass(code string) string {
	if n, err := strconv.Atoi(code); err == nil {
		return fmt.Sprintf("s%dxx", n/100)
	}
	return "sother"
}
