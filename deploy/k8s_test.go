package deploy_test

import (
	"fmt"
	"path/filepath"
	"slices"
	"sort"
	"testing"

	"gopkg.in/yaml.v3"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	sigsyaml "sigs.k8s.io/yaml"
)

// manifests are the Kubernetes objects of deploy/k8s, decoded strictly into
// the API's own types: a field that is misspelt, misplaced or of the wrong
// type fails.
type manifests struct {
	deployments []appsv1.Deployment
	services    []corev1.Service
	pdbs        []policyv1.PodDisruptionBudget
	configMaps  []corev1.ConfigMap
	namespaces  []corev1.Namespace
	files       []string
}

func loadManifests(t *testing.T) manifests {
	t.Helper()
	paths, err := filepath.Glob("k8s/*.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var m manifests
	for _, path := range paths {
		if filepath.Base(path) == "kustomization.yaml" {
			continue
		}
		m.files = append(m.files, filepath.Base(path))
		for i, doc := range yamlDocs(t, path) {
			raw, err := yaml.Marshal(doc)
			if err != nil {
				t.Fatal(err)
			}
			var head struct {
				APIVersion string `json:"apiVersion"`
				Kind       string `json:"kind"`
			}
			if err := sigsyaml.Unmarshal(raw, &head); err != nil {
				t.Fatalf("%s #%d: %v", path, i+1, err)
			}
			where := fmt.Sprintf("%s #%d (%s)", path, i+1, head.Kind)
			var obj any
			switch head.APIVersion + " " + head.Kind {
			case "apps/v1 Deployment":
				m.deployments = append(m.deployments, appsv1.Deployment{})
				obj = &m.deployments[len(m.deployments)-1]
			case "v1 Service":
				m.services = append(m.services, corev1.Service{})
				obj = &m.services[len(m.services)-1]
			case "policy/v1 PodDisruptionBudget":
				m.pdbs = append(m.pdbs, policyv1.PodDisruptionBudget{})
				obj = &m.pdbs[len(m.pdbs)-1]
			case "v1 ConfigMap":
				m.configMaps = append(m.configMaps, corev1.ConfigMap{})
				obj = &m.configMaps[len(m.configMaps)-1]
			case "v1 Namespace":
				m.namespaces = append(m.namespaces, corev1.Namespace{})
				obj = &m.namespaces[len(m.namespaces)-1]
			default:
				t.Fatalf("%s: %s %s is not a kind these tests know", where, head.APIVersion, head.Kind)
			}
			if err := sigsyaml.UnmarshalStrict(raw, obj); err != nil {
				t.Errorf("%s: %v", where, err)
			}
		}
	}
	return m
}

// TestKubernetes checks the manifests: every role is a Deployment of the
// image with liveness, readiness and startup probes on /healthz and /readyz,
// resource requests, a non-root security context, environment taken from the
// ConfigMap by keys it has, a Service and a PodDisruptionBudget that select
// its pods; and the kustomization lists every file.
func TestKubernetes(t *testing.T) {
	m := loadManifests(t)
	if len(m.configMaps) != 1 || len(m.namespaces) != 1 {
		t.Fatalf("%d ConfigMaps and %d Namespaces, want one of each", len(m.configMaps), len(m.namespaces))
	}
	config := m.configMaps[0]
	if config.Data["MESSAGES_REPLICAS"] != "3" {
		t.Errorf("ConfigMap: MESSAGES_REPLICAS %q, want 3", config.Data["MESSAGES_REPLICAS"])
	}
	flags := flagNames(t)
	for k := range config.Data {
		checkEnvName(t, flags, "ConfigMap", k)
	}

	var roles []string
	for _, d := range m.deployments {
		role := d.Name
		roles = append(roles, role)
		t.Run(role, func(t *testing.T) {
			pod := d.Spec.Template
			if d.Spec.Selector == nil || !selects(d.Spec.Selector.MatchLabels, pod.Labels) {
				t.Errorf("selector %v does not select the pod labels %v", d.Spec.Selector, pod.Labels)
			}
			if d.Spec.Replicas == nil || *d.Spec.Replicas < 2 {
				t.Errorf("replicas %v, want at least 2", d.Spec.Replicas)
			}
			sc := pod.Spec.SecurityContext
			if sc == nil || sc.RunAsNonRoot == nil || !*sc.RunAsNonRoot {
				t.Error("pod does not require a non-root user")
			}
			if len(pod.Spec.Containers) != 1 {
				t.Fatalf("%d containers, want 1", len(pod.Spec.Containers))
			}
			checkContainer(t, pod.Spec.Containers[0], role, config, flags)
			if grace := pod.Spec.TerminationGracePeriodSeconds; grace == nil || *grace < 25 {
				t.Errorf("termination grace %v, want time for the 15s shutdown and the last batch", grace)
			}

			checkSelectedOnce(t, m, pod.Labels, role)
		})
	}
	sort.Strings(roles)
	if want := []string{"dispatcher", "gateway", "query", "reducer"}; !slices.Equal(roles, want) {
		t.Errorf("Deployments %v, want %v", roles, want)
	}
	// The gateway reaches the Services of the roles behind it.
	for key, role := range map[string]string{"MESSAGES_DISPATCHER_URLS": "dispatcher", "MESSAGES_QUERY_URLS": "query"} {
		if got, want := config.Data[key], "http://"+role+":"+rolePorts[role]; got != want {
			t.Errorf("ConfigMap: %s %q, want the %s Service %s", key, got, role, want)
		}
	}

	checkKustomization(t, m)
}

// checkContainer checks the container of the Deployment of role: its
// arguments, port, probes, resources, security and environment, which
// takes the ConfigMap config.
func checkContainer(t *testing.T, c corev1.Container, role string, config corev1.ConfigMap, flags map[string]bool) {
	t.Helper()
	if len(c.Args) == 0 || c.Args[0] != role || rolePorts[role] == "" {
		t.Errorf("args %v, want the server role %s", c.Args, role)
	}
	if c.Image == "" {
		t.Error("no image")
	}
	if len(c.Ports) != 1 || c.Ports[0].Name != "http" || fmt.Sprint(c.Ports[0].ContainerPort) != rolePorts[role] {
		t.Errorf("ports %+v, want http on %s", c.Ports, rolePorts[role])
	}
	checkProbe(t, "liveness", c.LivenessProbe, "/healthz")
	checkProbe(t, "readiness", c.ReadinessProbe, "/readyz")
	checkProbe(t, "startup", c.StartupProbe, "/healthz")
	for _, r := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
		if q := c.Resources.Requests[r]; q.IsZero() {
			t.Errorf("no %s request", r)
		}
	}
	if q := c.Resources.Limits[corev1.ResourceMemory]; q.IsZero() {
		t.Error("no memory limit")
	}
	if s := c.SecurityContext; s == nil || s.AllowPrivilegeEscalation == nil || *s.AllowPrivilegeEscalation ||
		s.ReadOnlyRootFilesystem == nil || !*s.ReadOnlyRootFilesystem {
		t.Error("container may escalate privileges or write its root filesystem")
	}
	for _, e := range c.Env {
		checkEnvName(t, flags, role, e.Name)
		if e.Name == "MESSAGES_ADDR" && e.Value != ":"+rolePorts[role] {
			t.Errorf("MESSAGES_ADDR %q, want :%s", e.Value, rolePorts[role])
		}
		if ref := e.ValueFrom; ref != nil && ref.ConfigMapKeyRef != nil {
			if ref.ConfigMapKeyRef.Name != config.Name {
				t.Errorf("%s from ConfigMap %s, want %s", e.Name, ref.ConfigMapKeyRef.Name, config.Name)
			} else if _, ok := config.Data[ref.ConfigMapKeyRef.Key]; !ok {
				t.Errorf("%s from key %s, which the ConfigMap lacks", e.Name, ref.ConfigMapKeyRef.Key)
			}
		}
	}
}

// checkSelectedOnce checks that the pods labelled labels, of role, are
// selected by one PodDisruptionBudget and one Service, on the role's port.
func checkSelectedOnce(t *testing.T, m manifests, labels map[string]string, role string) {
	t.Helper()
	var pdbs, services int
	for _, p := range m.pdbs {
		if p.Spec.Selector != nil && selects(p.Spec.Selector.MatchLabels, labels) {
			pdbs++
			if p.Spec.MinAvailable == nil && p.Spec.MaxUnavailable == nil {
				t.Errorf("PodDisruptionBudget %s sets neither minAvailable nor maxUnavailable", p.Name)
			}
		}
	}
	for _, s := range m.services {
		if len(s.Spec.Selector) > 0 && selects(s.Spec.Selector, labels) {
			services++
			if len(s.Spec.Ports) != 1 || s.Spec.Ports[0].TargetPort != intstr.FromString("http") || fmt.Sprint(s.Spec.Ports[0].Port) != rolePorts[role] {
				t.Errorf("Service %s ports %+v, want %s to the http port", s.Name, s.Spec.Ports, rolePorts[role])
			}
		}
	}
	if pdbs != 1 || services != 1 {
		t.Errorf("selected by %d PodDisruptionBudgets and %d Services, want 1 of each", pdbs, services)
	}
}

// checkKustomization checks that the kustomization lists every manifest
// and puts them in the namespace they create.
func checkKustomization(t *testing.T, m manifests) {
	t.Helper()
	var k struct {
		APIVersion string   `yaml:"apiVersion"`
		Kind       string   `yaml:"kind"`
		Namespace  string   `yaml:"namespace"`
		Resources  []string `yaml:"resources"`
		Images     []struct {
			Name    string `yaml:"name"`
			NewName string `yaml:"newName"`
			NewTag  string `yaml:"newTag"`
		} `yaml:"images"`
	}
	strictYAML(t, "k8s/kustomization.yaml", &k)
	sort.Strings(k.Resources)
	sort.Strings(m.files)
	if k.Kind != "Kustomization" || !slices.Equal(k.Resources, m.files) {
		t.Errorf("kustomization %s lists %v, want every manifest %v", k.Kind, k.Resources, m.files)
	}
	if k.Namespace != m.namespaces[0].Name {
		t.Errorf("kustomization puts objects in %q, the manifests create namespace %q", k.Namespace, m.namespaces[0].Name)
	}
}

func checkProbe(t *testing.T, kind string, p *corev1.Probe, path string) {
	t.Helper()
	if p == nil || p.HTTPGet == nil {
		t.Errorf("no HTTP %s probe", kind)
		return
	}
	if p.HTTPGet.Path != path || p.HTTPGet.Port != intstr.FromString("http") {
		t.Errorf("%s probe on %s port %s, want %s on http", kind, p.HTTPGet.Path, p.HTTPGet.Port.String(), path)
	}
}

// selects reports whether a label selector's matchLabels select labels.
func selects(selector, labels map[string]string) bool {
	if len(selector) == 0 {
		return false
	}
	for k, v := range selector {
		if labels[k] != v {
			return false
		}
	}
	return true
}
