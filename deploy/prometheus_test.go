package deploy_test

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/messages-io/messages/dispatcher"
	"github.com/messages-io/messages/gateway"
	"github.com/messages-io/messages/internal/testkit"
	"github.com/messages-io/messages/reducers"
	"github.com/messages-io/messages/web"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/rulefmt"
	"github.com/prometheus/prometheus/promql/parser"
	"gopkg.in/yaml.v3"
)

// registry keeps the collectors registered with it, to read their
// descriptions.
type registry struct{ collectors []prometheus.Collector }

func (r *registry) Register(c prometheus.Collector) error {
	r.collectors = append(r.collectors, c)
	return nil
}

func (r *registry) MustRegister(cs ...prometheus.Collector) {
	r.collectors = append(r.collectors, cs...)
}

func (r *registry) Unregister(prometheus.Collector) bool { return false }

// serviceMetrics are the names of the metric families the service's
// processes export, read from the constructors that register them, and the
// ones Prometheus and the client library add.
func serviceMetrics(t *testing.T) map[string]bool {
	t.Helper()
	reg := &registry{}
	web.NewHTTPMetrics(reg)
	reducers.NewMetrics(reg)
	if _, err := dispatcher.New(nil, testkit.Logger(), reg, dispatcher.Config{}); err != nil {
		t.Fatal(err)
	}
	_, err := gateway.New(testkit.Logger(), reg, gateway.Config{
		Dispatchers: []string{"http://dispatcher:" + rolePorts["dispatcher"]},
		Queries:     []string{"http://query:" + rolePorts["query"]},
		Secret:      []byte(strings.Repeat("s", gateway.MinSecretBytes)),
	})
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]bool{"up": true, "process_resident_memory_bytes": true, "process_cpu_seconds_total": true, "go_goroutines": true}
	fqName := regexp.MustCompile(`fqName: "([^"]+)"`)
	for _, c := range reg.collectors {
		descs := make(chan *prometheus.Desc)
		go func() {
			c.Describe(descs)
			close(descs)
		}()
		for d := range descs {
			m := fqName.FindStringSubmatch(d.String())
			if m == nil {
				t.Fatalf("no name in %s", d)
			}
			names[m[1]] = true
		}
	}
	if len(names) < 20 {
		t.Fatalf("read %d metric names from the service, want every one", len(names))
	}
	return names
}

// checkExpr parses a PromQL expression and fails when it selects a metric
// the service does not export: such a query would show nothing, and such an
// alert would never fire.
func checkExpr(t *testing.T, metrics map[string]bool, where, expr string) {
	t.Helper()
	e, err := parser.ParseExpr(expr)
	if err != nil {
		t.Errorf("%s: %q: %v", where, expr, err)
		return
	}
	parser.Inspect(e, func(n parser.Node, _ []parser.Node) error {
		vs, ok := n.(*parser.VectorSelector)
		if !ok {
			return nil
		}
		name := vs.Name
		for _, suffix := range []string{"_bucket", "_sum", "_count"} {
			if base, ok := strings.CutSuffix(name, suffix); ok && metrics[base] {
				name = base
			}
		}
		if !metrics[name] {
			t.Errorf("%s: %q selects %q, which the service does not export", where, expr, vs.Name)
		}
		return nil
	})
}

// TestAlertRules parses the alert rules as Prometheus does, PromQL and
// templates included, and checks that each alert selects metrics the service
// exports and says how severe it is and what to do.
func TestAlertRules(t *testing.T) {
	groups, errs := rulefmt.ParseFile("prometheus/alerts.yml")
	for _, err := range errs {
		t.Error(err)
	}
	if len(errs) > 0 {
		return
	}
	metrics := serviceMetrics(t)
	var alerts []string
	for _, g := range groups.Groups {
		for _, r := range g.Rules {
			name := r.Alert.Value
			if name == "" {
				t.Errorf("group %s: a rule that is no alert: %q", g.Name, r.Expr.Value)
				continue
			}
			alerts = append(alerts, name)
			checkExpr(t, metrics, name, r.Expr.Value)
			if s := r.Labels["severity"]; s != "warning" && s != "critical" {
				t.Errorf("%s: severity %q, want warning or critical", name, s)
			}
			if r.Annotations["summary"] == "" || r.Annotations["description"] == "" {
				t.Errorf("%s: want a summary and a description", name)
			}
		}
	}
	// The alerts the service's operators asked for.
	for _, want := range []string{"MessagesReducerLagging", "MessagesDeadLettersGrowing", "MessagesHTTP5xxRate"} {
		if !slices.Contains(alerts, want) {
			t.Errorf("no alert %s among %v", want, alerts)
		}
	}
}

// TestAlertRulesFire runs the alert rules' unit tests with promtool, where
// it is installed: each test feeds series to the rules and names the alerts
// that must fire and those that must not.
func TestAlertRulesFire(t *testing.T) {
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		t.Skip("promtool is not installed (Debian: apt-get install prometheus)")
	}
	out, err := exec.Command(promtool, "test", "rules", "prometheus/alerts_test.yml").CombinedOutput()
	if err != nil {
		t.Errorf("promtool test rules: %v\n%s", err, out)
	}
}

// prometheusConfig is the part of Prometheus' configuration file the stack
// uses; decoding it strictly rejects any other or misspelt field.
type prometheusConfig struct {
	Global struct {
		ScrapeInterval     model.Duration    `yaml:"scrape_interval"`
		ScrapeTimeout      model.Duration    `yaml:"scrape_timeout"`
		EvaluationInterval model.Duration    `yaml:"evaluation_interval"`
		ExternalLabels     map[string]string `yaml:"external_labels"`
	} `yaml:"global"`
	RuleFiles     []string `yaml:"rule_files"`
	ScrapeConfigs []struct {
		JobName       string `yaml:"job_name"`
		StaticConfigs []struct {
			Targets []string          `yaml:"targets"`
			Labels  map[string]string `yaml:"labels"`
		} `yaml:"static_configs"`
	} `yaml:"scrape_configs"`
}

func loadPrometheusConfig(t *testing.T) prometheusConfig {
	t.Helper()
	f, err := os.Open("prometheus/prometheus.yml")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	dec := yaml.NewDecoder(f)
	dec.KnownFields(true)
	var c prometheusConfig
	if err := dec.Decode(&c); err != nil {
		t.Fatalf("prometheus.yml: %v", err)
	}
	return c
}

// TestPrometheusConfig checks the scrape configuration: one job per role,
// scraping the role's port, the rule file beside it, and sane intervals.
// promtool checks the whole file where it is installed.
func TestPrometheusConfig(t *testing.T) {
	c := loadPrometheusConfig(t)
	g := c.Global
	if g.ScrapeInterval <= 0 || g.ScrapeTimeout <= 0 || g.ScrapeTimeout > g.ScrapeInterval || g.EvaluationInterval <= 0 {
		t.Errorf("intervals: scrape %v, timeout %v, evaluation %v", g.ScrapeInterval, g.ScrapeTimeout, g.EvaluationInterval)
	}
	if len(c.RuleFiles) != 1 {
		t.Errorf("rule files %v, want alerts.yml", c.RuleFiles)
	}
	for _, rf := range c.RuleFiles {
		if _, err := os.Stat(filepath.Join("prometheus", rf)); err != nil {
			t.Errorf("rule file %s, relative to prometheus.yml: %v", rf, err)
		}
	}
	jobs := map[string][]string{}
	for _, sc := range c.ScrapeConfigs {
		if _, dup := jobs[sc.JobName]; dup {
			t.Errorf("job %s twice", sc.JobName)
		}
		for _, st := range sc.StaticConfigs {
			jobs[sc.JobName] = append(jobs[sc.JobName], st.Targets...)
		}
	}
	for role, port := range rolePorts {
		targets := jobs[role]
		if len(targets) == 0 {
			t.Errorf("no job scrapes the %s", role)
		}
		for _, tg := range targets {
			if !strings.HasPrefix(tg, role) || !strings.HasSuffix(tg, ":"+port) {
				t.Errorf("job %s scrapes %s, want a %s service on port %s", role, tg, role, port)
			}
		}
	}
	if promtool, err := exec.LookPath("promtool"); err == nil {
		out, err := exec.Command(promtool, "check", "config", "prometheus/prometheus.yml").CombinedOutput()
		if err != nil {
			t.Errorf("promtool check config: %v\n%s", err, out)
		}
	}
}

// dashboard is the part of Grafana's dashboard model that Grafana needs to
// provision a dashboard and that the panels here use.
type dashboard struct {
	UID           string  `json:"uid"`
	Title         string  `json:"title"`
	SchemaVersion int     `json:"schemaVersion"`
	Panels        []panel `json:"panels"`
	Templating    struct {
		List []struct {
			Name    string `json:"name"`
			Type    string `json:"type"`
			Query   string `json:"query"`
			Current struct {
				Value string `json:"value"`
			} `json:"current"`
		} `json:"list"`
	} `json:"templating"`
}

type panel struct {
	ID         int                      `json:"id"`
	Type       string                   `json:"type"`
	Title      string                   `json:"title"`
	Datasource *datasourceRef           `json:"datasource"`
	GridPos    struct{ H, W, X, Y int } `json:"gridPos"`
	Targets    []struct {
		RefID      string         `json:"refId"`
		Expr       string         `json:"expr"`
		Datasource *datasourceRef `json:"datasource"`
	} `json:"targets"`
}

type datasourceRef struct {
	Type string `json:"type"`
	UID  string `json:"uid"`
}

// grafanaVariables stand for the variables Grafana fills into a query.
var grafanaVariables = strings.NewReplacer("$__rate_interval", "1m", "$__interval", "15s", "$__range", "1h")

// TestDashboard checks that the dashboard has what Grafana needs to load it
// and that every panel queries Prometheus with PromQL that parses and selects
// metrics the service exports, through the provisioned data source.
func TestDashboard(t *testing.T) {
	var d dashboard
	if err := json.Unmarshal(read(t, "grafana/dashboards/messages.json"), &d); err != nil {
		t.Fatal(err)
	}
	if d.UID == "" || len(d.UID) > 40 || d.Title == "" || d.SchemaVersion < 30 || len(d.Panels) == 0 {
		t.Fatalf("uid %q, title %q, schemaVersion %d, %d panels: want a uid of at most 40 characters, a title, a current schema and panels",
			d.UID, d.Title, d.SchemaVersion, len(d.Panels))
	}
	// The data source variable defaults to the provisioned data source.
	var dsVar string
	for _, v := range d.Templating.List {
		if v.Type == "datasource" && v.Query == "prometheus" {
			dsVar = v.Name
			if uid := provisionedDatasourceUID(t); v.Current.Value != uid {
				t.Errorf("variable %s defaults to %q, want the provisioned data source %q", v.Name, v.Current.Value, uid)
			}
		}
	}
	if dsVar == "" {
		t.Fatal("no Prometheus data source variable")
	}
	metrics := serviceMetrics(t)
	ids := map[int]bool{}
	var queries int
	for _, p := range d.Panels {
		where := fmt.Sprintf("panel %d %q", p.ID, p.Title)
		if ids[p.ID] {
			t.Errorf("%s: id used twice", where)
		}
		ids[p.ID] = true
		if p.GridPos.W <= 0 || p.GridPos.H <= 0 || p.GridPos.X+p.GridPos.W > 24 {
			t.Errorf("%s: gridPos %+v outside the 24 columns", where, p.GridPos)
		}
		if p.Type == "row" {
			continue
		}
		if p.Title == "" || p.Type == "" || len(p.Targets) == 0 {
			t.Errorf("%s: want a type, a title and targets", where)
		}
		if p.Datasource == nil || p.Datasource.Type != "prometheus" || p.Datasource.UID != "${"+dsVar+"}" {
			t.Errorf("%s: datasource %+v, want the ${%s} variable", where, p.Datasource, dsVar)
		}
		refs := map[string]bool{}
		for _, tg := range p.Targets {
			if tg.RefID == "" || refs[tg.RefID] {
				t.Errorf("%s: refId %q missing or repeated", where, tg.RefID)
			}
			refs[tg.RefID] = true
			checkExpr(t, metrics, where, grafanaVariables.Replace(tg.Expr))
			queries++
		}
	}
	if queries < 10 {
		t.Errorf("%d queries, want panels on requests, appends, reducers and the gateway", queries)
	}
}

// provisionedDatasourceUID reads the uid of the data source Grafana is given.
func provisionedDatasourceUID(t *testing.T) string {
	t.Helper()
	var p struct {
		APIVersion  int `yaml:"apiVersion"`
		Datasources []struct {
			Name, UID, Type, URL, Access string
			IsDefault                    bool           `yaml:"isDefault"`
			Editable                     bool           `yaml:"editable"`
			JSONData                     map[string]any `yaml:"jsonData"`
		} `yaml:"datasources"`
	}
	strictYAML(t, "grafana/provisioning/datasources/prometheus.yaml", &p)
	if p.APIVersion != 1 || len(p.Datasources) != 1 || p.Datasources[0].Type != "prometheus" || p.Datasources[0].URL != "http://prometheus:9090" {
		t.Fatalf("data sources %+v, want the stack's Prometheus", p)
	}
	return p.Datasources[0].UID
}

// TestDashboardProvisioning checks that Grafana is told to load the
// dashboards from where the compose stack mounts them.
func TestDashboardProvisioning(t *testing.T) {
	var p struct {
		APIVersion int `yaml:"apiVersion"`
		Providers  []struct {
			Name, Folder, Type    string
			DisableDeletion       bool `yaml:"disableDeletion"`
			AllowUIUpdates        bool `yaml:"allowUiUpdates"`
			UpdateIntervalSeconds int  `yaml:"updateIntervalSeconds"`
			Options               struct {
				Path                      string
				FoldersFromFilesStructure bool `yaml:"foldersFromFilesStructure"`
			}
		}
	}
	strictYAML(t, "grafana/provisioning/dashboards/messages.yaml", &p)
	if p.APIVersion != 1 || len(p.Providers) != 1 || p.Providers[0].Type != "file" {
		t.Fatalf("providers %+v, want one file provider", p)
	}
	if got, want := p.Providers[0].Options.Path, grafanaDashboardsMount(t); got != want {
		t.Errorf("provider reads %s, the compose stack mounts the dashboards at %s", got, want)
	}
}

// strictYAML decodes the YAML file at path into v, refusing unknown fields.
func strictYAML(t *testing.T, path string, v any) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	dec := yaml.NewDecoder(f)
	dec.KnownFields(true)
	if err := dec.Decode(v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}
