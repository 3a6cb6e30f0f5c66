package deploy_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/messages-io/messages/dispatcher"
	"github.com/messages-io/messages/gateway"
	"github.com/messages-io/messages/readmodel/queryapi"
	"github.com/messages-io/messages/reducers"
	"gopkg.in/yaml.v3"
)

// The roles of the messages binary that run as servers, with the port each
// listens on by default: the service's own defaults.
var rolePorts = map[string]string{
	"gateway":    port(gateway.DefaultAddr),
	"dispatcher": port(dispatcher.DefaultAddr),
	"query":      port(queryapi.DefaultAddr),
	"reducer":    port(reducers.DefaultAddr),
}

// port is the port of a listen address.
func port(addr string) string {
	_, p, err := net.SplitHostPort(addr)
	if err != nil || p == "" {
		panic("no port in listen address " + addr)
	}
	return p
}

// TestFilesParse reads every YAML and JSON file under deploy/ in full,
// every document of it.
func TestFilesParse(t *testing.T) {
	var n int
	err := filepath.WalkDir(".", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		switch filepath.Ext(path) {
		case ".yaml", ".yml":
			n++
			if docs := yamlDocs(t, path); len(docs) == 0 {
				t.Errorf("%s: no YAML document", path)
			}
		case ".json":
			n++
			var v any
			if err := json.Unmarshal(read(t, path), &v); err != nil {
				t.Errorf("%s: %v", path, err)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if n < 10 {
		t.Errorf("found %d YAML and JSON files, want the compose file, Prometheus, Grafana and Kubernetes files", n)
	}
}

// TestDockerfile checks the image recipe: a multi-stage build of a static
// binary with cgo off, and a final stage on a minimal base that runs as a
// numeric non-root user and exposes every role's port.
func TestDockerfile(t *testing.T) {
	stages := dockerStages(t, "Dockerfile")
	if len(stages) < 2 {
		t.Fatalf("%d stages, want a build stage and a run stage", len(stages))
	}
	build, final := stages[0], stages[len(stages)-1]

	goVersion := regexp.MustCompile(`(?m)^go (\d+\.\d+)`).FindSubmatch(read(t, "../go.mod"))
	if goVersion == nil {
		t.Fatal("go.mod has no go directive")
	}
	if want := "golang:" + string(goVersion[1]); !strings.HasPrefix(build.from, want) {
		t.Errorf("build stage FROM %s, want %s (go.mod's Go version)", build.from, want)
	}
	var built string
	for _, run := range build.all("RUN") {
		if strings.Contains(run, "go build") {
			built = run
		}
	}
	for _, want := range []string{"CGO_ENABLED=0", "./cmd/messages", "-o "} {
		if !strings.Contains(built, want) {
			t.Errorf("build stage's go build %q lacks %q", built, want)
		}
	}

	if !strings.HasPrefix(final.from, "gcr.io/distroless/static") && final.from != "scratch" {
		t.Errorf("final stage FROM %s, want a distroless static or scratch base", final.from)
	}
	copies := final.all("COPY")
	if len(copies) != 1 || !strings.Contains(copies[0], "--from="+build.name) {
		t.Errorf("final stage COPY %q, want the binary from stage %q only", copies, build.name)
	}
	user := final.last("USER")
	if uid, _, _ := strings.Cut(user, ":"); !regexp.MustCompile(`^[1-9][0-9]*$`).MatchString(uid) {
		t.Errorf("final stage USER %q, want a numeric non-root user (Kubernetes' runAsNonRoot can check only a number)", user)
	}
	exposed := strings.Fields(strings.Join(final.all("EXPOSE"), " "))
	for role, port := range rolePorts {
		if !slices.Contains(exposed, port) {
			t.Errorf("EXPOSE %v lacks %s, the %s's port", exposed, port, role)
		}
	}
	var entry []string
	if err := json.Unmarshal([]byte(final.last("ENTRYPOINT")), &entry); err != nil || len(entry) != 1 {
		t.Fatalf("ENTRYPOINT %q, want the binary in exec form", final.last("ENTRYPOINT"))
	}
	if dst := strings.Fields(copies[0]); dst[len(dst)-1] != entry[0] {
		t.Errorf("ENTRYPOINT %s is not the copied binary %s", entry[0], dst[len(dst)-1])
	}
}

// dockerStage is one FROM section of a Dockerfile.
type dockerStage struct {
	from, name string
	// instructions in order: keyword upper-cased, then its arguments.
	instructions [][2]string
}

func (s dockerStage) all(keyword string) []string {
	var args []string
	for _, in := range s.instructions {
		if in[0] == keyword {
			args = append(args, in[1])
		}
	}
	return args
}

func (s dockerStage) last(keyword string) string {
	all := s.all(keyword)
	if len(all) == 0 {
		return ""
	}
	return all[len(all)-1]
}

// dockerStages splits a Dockerfile into its stages, joining continued lines
// and dropping comments.
func dockerStages(t *testing.T, path string) []dockerStage {
	t.Helper()
	var stages []dockerStage
	var logical string
	for _, line := range strings.Split(string(read(t, path)), "\n") {
		trimmed := strings.TrimSpace(line)
		if strings.HasPrefix(trimmed, "#") || trimmed == "" && logical == "" {
			continue
		}
		if strings.HasSuffix(trimmed, "\\") {
			logical += strings.TrimSuffix(trimmed, "\\") + " "
			continue
		}
		logical += trimmed
		keyword, args, _ := strings.Cut(logical, " ")
		logical = ""
		keyword, args = strings.ToUpper(keyword), strings.Join(strings.Fields(args), " ")
		if keyword == "FROM" {
			f := strings.Fields(args)
			s := dockerStage{from: f[len(f)-1]}
			if len(f) >= 3 && strings.EqualFold(f[len(f)-2], "AS") {
				s = dockerStage{from: f[len(f)-3], name: f[len(f)-1]}
			}
			stages = append(stages, s)
			continue
		}
		if len(stages) == 0 {
			t.Fatalf("%s: %s before the first FROM", path, keyword)
		}
		st := &stages[len(stages)-1]
		st.instructions = append(st.instructions, [2]string{keyword, args})
	}
	return stages
}

func read(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// yamlDocs decodes every document of a YAML file.
func yamlDocs(t *testing.T, path string) []*yaml.Node {
	t.Helper()
	dec := yaml.NewDecoder(bytes.NewReader(read(t, path)))
	var docs []*yaml.Node
	for {
		var n yaml.Node
		err := dec.Decode(&n)
		if errors.Is(err, io.EOF) {
			return docs
		}
		if err != nil {
			t.Fatalf("%s: document %d: %v", path, len(docs)+1, err)
		}
		docs = append(docs, &n)
	}
}

// flagNames are the flags the messages binary defines, read from its
// sources: an environment variable MESSAGES_X that names none of them is
// ignored by every role, so it is a mistake in a deployment file.
func flagNames(t *testing.T) map[string]bool {
	t.Helper()
	files, err := filepath.Glob("../cmd/messages/*.go")
	if err != nil || len(files) == 0 {
		t.Fatalf("sources of cmd/messages: %v", err)
	}
	re := regexp.MustCompile(`fs\.[A-Za-z0-9]+\([^"\n]*"([a-z0-9-]+)"`)
	names := map[string]bool{}
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		for _, m := range re.FindAllSubmatch(read(t, f), -1) {
			names[string(m[1])] = true
		}
	}
	for _, must := range []string{"nats-url", "mongo-uri", "replicas", "addr"} {
		if !names[must] {
			t.Fatalf("found no flag %q in cmd/messages: the pattern that reads flags needs updating", must)
		}
	}
	return names
}

// checkEnvName fails when name is a MESSAGES_ variable that sets no flag.
func checkEnvName(t *testing.T, flags map[string]bool, where, name string) {
	t.Helper()
	flag, ok := strings.CutPrefix(name, "MESSAGES_")
	if !ok {
		return
	}
	if !flags[strings.ReplaceAll(strings.ToLower(flag), "_", "-")] {
		t.Errorf("%s: %s sets no flag of messages", where, name)
	}
}
