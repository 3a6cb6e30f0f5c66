package deploy_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/compose-spec/compose-go/v2/loader"
	"github.com/compose-spec/compose-go/v2/types"
)

const testSecret = "a gateway secret of 32 bytes or more, for tests"

// loadCompose loads compose.yaml with the loader Docker Compose itself uses:
// schema validation, interpolation of env, merges and paths resolved.
func loadCompose(t *testing.T, env map[string]string) (*types.Project, error) {
	t.Helper()
	dir, err := filepath.Abs(".")
	if err != nil {
		t.Fatal(err)
	}
	return loader.LoadWithContext(context.Background(), types.ConfigDetails{
		WorkingDir:  dir,
		ConfigFiles: []types.ConfigFile{{Filename: filepath.Join(dir, "compose.yaml"), Content: read(t, "compose.yaml")}},
		Environment: env,
	}, func(o *loader.Options) { o.SetProjectName("messages", true) })
}

func composeProject(t *testing.T) *types.Project {
	t.Helper()
	p, err := loadCompose(t, map[string]string{"MESSAGES_JWT_SECRET": testSecret})
	if err != nil {
		t.Fatalf("compose.yaml: %v", err)
	}
	return p
}

// TestCompose checks the stack: a 3-node NATS cluster, a 3-member MongoDB
// replica set made by a one-shot service, the gateway in front of two
// dispatchers and two query instances, reducers, Prometheus and Grafana, all
// wired to each other by the names and ports they really have.
func TestCompose(t *testing.T) {
	p := composeProject(t)
	flags := flagNames(t)
	byRole := composeRoles(t, p, flags)
	for role, min := range map[string]int{"gateway": 1, "dispatcher": 2, "query": 2, "reducer": 2} {
		if len(byRole[role]) < min {
			t.Errorf("%d %s services %v, want at least %d", len(byRole[role]), role, byRole[role], min)
		}
	}
	for _, name := range []string{"nats-1", "nats-2", "nats-3", "mongo-1", "mongo-2", "mongo-3", "mongo-init", "prometheus", "grafana"} {
		if _, ok := p.Services[name]; !ok {
			t.Errorf("no service %s", name)
		}
	}

	checkComposeWiring(t, p, byRole)
	checkComposeServers(t, p, byRole)
	checkComposeMonitoring(t, p, byRole)

	for name, s := range p.Services {
		for _, v := range s.Volumes {
			if v.Type != types.VolumeTypeBind {
				continue
			}
			if _, err := os.Stat(v.Source); err != nil {
				t.Errorf("%s: mounts %s: %v", name, v.Source, err)
			}
		}
	}
}

// composeRoles returns the services of p that run a role of messages, by
// role, and checks how each is built and configured.
func composeRoles(t *testing.T, p *types.Project, flags map[string]bool) map[string][]string {
	t.Helper()
	byRole := map[string][]string{}
	for name, s := range p.Services {
		if s.Build == nil {
			continue
		}
		if len(s.Command) == 0 || rolePorts[s.Command[0]] == "" {
			t.Errorf("%s: command %v, want a server role of messages", name, s.Command)
			continue
		}
		role := s.Command[0]
		byRole[role] = append(byRole[role], name)
		root, _ := filepath.Abs("..")
		if s.Build.Context != root || s.Build.Dockerfile != "deploy/Dockerfile" {
			t.Errorf("%s: builds %s in %s, want deploy/Dockerfile in the repository root", name, s.Build.Dockerfile, s.Build.Context)
		}
		for k := range s.Environment {
			checkEnvName(t, flags, name, k)
		}
	}
	for role := range byRole {
		sort.Strings(byRole[role])
	}
	return byRole
}

// checkComposeWiring checks that the services of each role reach the NATS
// and MongoDB clusters and each other.
func checkComposeWiring(t *testing.T, p *types.Project, byRole map[string][]string) {
	t.Helper()
	natsURLs := "nats://nats-1:4222,nats://nats-2:4222,nats://nats-3:4222"
	for _, name := range slices.Concat(byRole["dispatcher"], byRole["reducer"], byRole["query"]) {
		env := p.Services[name].Environment
		if got := value(env, "MESSAGES_NATS_URL"); got != natsURLs {
			t.Errorf("%s: NATS %q, want every node: %s", name, got, natsURLs)
		}
		if got := value(env, "MESSAGES_REPLICAS"); got != "3" {
			t.Errorf("%s: replicas %q, want 3", name, got)
		}
	}
	for _, name := range append(slices.Clone(byRole["query"]), byRole["reducer"]...) {
		uri := value(p.Services[name].Environment, "MESSAGES_MONGO_URI")
		for _, m := range []string{"mongo-1:27017", "mongo-2:27017", "mongo-3:27017", "replicaSet=rs0"} {
			if !strings.Contains(uri, m) {
				t.Errorf("%s: MongoDB %q lacks %s", name, uri, m)
			}
		}
	}
	for _, name := range byRole["gateway"] {
		env := p.Services[name].Environment
		for key, role := range map[string]string{"MESSAGES_DISPATCHER_URLS": "dispatcher", "MESSAGES_QUERY_URLS": "query"} {
			var want []string
			for _, s := range byRole[role] {
				want = append(want, "http://"+s+":"+rolePorts[role])
			}
			if got := value(env, key); got != strings.Join(want, ",") {
				t.Errorf("%s: %s %q, want every %s: %s", name, key, got, role, strings.Join(want, ","))
			}
		}
		if value(env, "MESSAGES_JWT_SECRET") != testSecret {
			t.Errorf("%s: the JWT secret is not taken from the environment", name)
		}
	}
}

// checkComposeServers checks the NATS and MongoDB services, and that the
// roles wait for the replica set.
func checkComposeServers(t *testing.T, p *types.Project, byRole map[string][]string) {
	t.Helper()
	for i := 1; i <= 3; i++ {
		s := p.Services[fmt.Sprintf("nats-%d", i)]
		if src := bindSource(s, "/etc/nats/nats.conf"); !strings.HasSuffix(src, fmt.Sprintf("nats/nats-%d.conf", i)) {
			t.Errorf("%s: configuration from %q", s.Name, src)
		}
		if !slices.Contains(s.Command, "/etc/nats/nats.conf") {
			t.Errorf("%s: command %v does not read the mounted configuration", s.Name, s.Command)
		}
		// Docker kills the node if it is still in lame-duck mode.
		if ld := natsConfigs(t)[s.Name].LameDuckDuration; s.StopGracePeriod == nil || time.Duration(*s.StopGracePeriod) <= ld {
			t.Errorf("%s: stop_grace_period %v, want more than the lame-duck duration %v", s.Name, s.StopGracePeriod, ld)
		}
		m := p.Services[fmt.Sprintf("mongo-%d", i)]
		if !strings.Contains(strings.Join(m.Command, " "), "--replSet rs0") {
			t.Errorf("%s: command %v, want a member of rs0", m.Name, m.Command)
		}
		if init := strings.Join(p.Services["mongo-init"].Entrypoint, " "); !strings.Contains(init, fmt.Sprintf("mongo-%d:27017", i)) {
			t.Errorf("mongo-init does not add mongo-%d to the replica set", i)
		}
	}
	for _, name := range append(slices.Clone(byRole["query"]), byRole["reducer"]...) {
		if c := p.Services[name].DependsOn["mongo-init"].Condition; c != types.ServiceConditionCompletedSuccessfully {
			t.Errorf("%s: depends on mongo-init %q, want completed successfully (the replica set exists)", name, c)
		}
	}
}

// checkComposeMonitoring checks that Prometheus scrapes exactly the messages
// services, with the rules beside its configuration, and that Grafana is
// provisioned.
func checkComposeMonitoring(t *testing.T, p *types.Project, byRole map[string][]string) {
	t.Helper()
	prom := p.Services["prometheus"]
	cfg, rules := bindSource(prom, "/etc/prometheus/prometheus.yml"), bindSource(prom, "/etc/prometheus/alerts.yml")
	if !strings.HasSuffix(cfg, "prometheus/prometheus.yml") || !strings.HasSuffix(rules, "prometheus/alerts.yml") {
		t.Errorf("prometheus mounts %q and %q", cfg, rules)
	}
	var scraped, services []string
	for _, sc := range loadPrometheusConfig(t).ScrapeConfigs {
		for _, st := range sc.StaticConfigs {
			for _, tg := range st.Targets {
				if host, _, _ := strings.Cut(tg, ":"); host != "localhost" {
					scraped = append(scraped, host)
				}
			}
		}
	}
	for _, names := range byRole {
		services = append(services, names...)
	}
	sort.Strings(scraped)
	sort.Strings(services)
	if !slices.Equal(scraped, services) {
		t.Errorf("Prometheus scrapes %v, the messages services are %v", scraped, services)
	}
	if bindSource(p.Services["grafana"], "/etc/grafana/provisioning") == "" {
		t.Error("grafana: no provisioning mounted")
	}
}

// TestComposeNeedsSecret checks that the stack does not start with an empty
// token secret.
func TestComposeNeedsSecret(t *testing.T) {
	if _, err := loadCompose(t, map[string]string{}); err == nil || !strings.Contains(err.Error(), "MESSAGES_JWT_SECRET") {
		t.Errorf("loaded without MESSAGES_JWT_SECRET: %v", err)
	}
}

// grafanaDashboardsMount is where the compose stack mounts the dashboards
// into Grafana.
func grafanaDashboardsMount(t *testing.T) string {
	t.Helper()
	for _, v := range composeProject(t).Services["grafana"].Volumes {
		if v.Type == types.VolumeTypeBind && strings.HasSuffix(v.Source, "grafana/dashboards") {
			return v.Target
		}
	}
	t.Fatal("grafana: no dashboards mounted")
	return ""
}

// bindSource is the host path mounted at target in s, "" when none is.
func bindSource(s types.ServiceConfig, target string) string {
	for _, v := range s.Volumes {
		if v.Type == types.VolumeTypeBind && v.Target == target {
			return v.Source
		}
	}
	return ""
}

func value(env types.MappingWithEquals, key string) string {
	if v := env[key]; v != nil {
		return *v
	}
	return ""
}
