package check

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/backstage-mcp/backstage-mcp/policy/policyfile"
	"github.com/backstage-mcp/backstage-mcp/server"
	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	"sigs.k8s.io/yaml"
)

var update = flag.Bool("update", false, "rewrite the Helm values table in docs/deploying.md from values.yaml")

const chartDir = "../backstage-mcp"

// newObject returns an empty typed object for a manifest's apiVersion and
// kind; an unexpected kind is an error, so the chart cannot grow an
// unchecked manifest.
func newObject(apiVersion, kind string) (any, error) {
	switch apiVersion + "/" + kind {
	case "v1/ConfigMap":
		return &corev1.ConfigMap{}, nil
	case "v1/Secret":
		return &corev1.Secret{}, nil
	case "v1/Service":
		return &corev1.Service{}, nil
	case "v1/ServiceAccount":
		return &corev1.ServiceAccount{}, nil
	case "apps/v1/Deployment":
		return &appsv1.Deployment{}, nil
	case "policy/v1/PodDisruptionBudget":
		return &policyv1.PodDisruptionBudget{}, nil
	case "autoscaling/v2/HorizontalPodAutoscaler":
		return &autoscalingv2.HorizontalPodAutoscaler{}, nil
	case "networking.k8s.io/v1/Ingress":
		return &networkingv1.Ingress{}, nil
	case "networking.k8s.io/v1/NetworkPolicy":
		return &networkingv1.NetworkPolicy{}, nil
	case "monitoring.coreos.com/v1/ServiceMonitor":
		return &monitoringv1.ServiceMonitor{}, nil
	}
	return nil, fmt.Errorf("unexpected manifest %s %s", apiVersion, kind)
}

// render runs helm template and decodes every document strictly.
func render(t *testing.T, args ...string) (map[string]any, error) {
	t.Helper()
	cmd := exec.Command("helm", append([]string{"template", "rel", chartDir, "--namespace", "mcp", "--kube-version", "1.31.0"}, args...)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("helm template: %w: %s", err, stderr.String())
	}
	objs, err := decodeStrict(out)
	if err != nil {
		t.Fatal(err)
	}
	return objs, nil
}

// decodeStrict splits a multi-document YAML stream and decodes each
// document into its Kubernetes type, failing on unknown fields and
// duplicate keys. The result is keyed "Kind/name".
func decodeStrict(stream []byte) (map[string]any, error) {
	objs := map[string]any{}
	for i, doc := range bytes.Split(stream, []byte("\n---")) {
		js, err := yaml.YAMLToJSONStrict(doc)
		if err != nil {
			return nil, fmt.Errorf("document %d: %w", i, err)
		}
		if string(js) == "null" {
			continue
		}
		var head struct {
			APIVersion string `json:"apiVersion"`
			Kind       string `json:"kind"`
			Metadata   struct {
				Name string `json:"name"`
			} `json:"metadata"`
		}
		if err := json.Unmarshal(js, &head); err != nil {
			return nil, fmt.Errorf("document %d: %w", i, err)
		}
		obj, err := newObject(head.APIVersion, head.Kind)
		if err != nil {
			return nil, fmt.Errorf("document %d: %w", i, err)
		}
		dec := json.NewDecoder(bytes.NewReader(js))
		dec.DisallowUnknownFields()
		if err := dec.Decode(obj); err != nil {
			return nil, fmt.Errorf("%s %s: %w", head.Kind, head.Metadata.Name, err)
		}
		if _, err := dec.Token(); !errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("%s %s: trailing data", head.Kind, head.Metadata.Name)
		}
		key := head.Kind + "/" + head.Metadata.Name
		if _, dup := objs[key]; dup {
			return nil, fmt.Errorf("%s rendered twice", key)
		}
		objs[key] = obj
	}
	return objs, nil
}

func TestDecodeStrictRejectsUnknownFields(t *testing.T) {
	tests := []struct {
		name, doc, want string
	}{
		{"misspelt field", "apiVersion: v1\nkind: Service\nmetadata: {name: x}\nspec: {prots: []}\n", `unknown field "prots"`},
		{"duplicate key", "apiVersion: v1\nkind: Service\nmetadata: {name: x}\nmetadata: {name: y}\n", "already set"},
		{"unchecked kind", "apiVersion: batch/v1\nkind: Job\nmetadata: {name: x}\n", "unexpected manifest"},
		{"wrong type", "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: x}\nspec: {replicas: two}\n", "cannot unmarshal"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := decodeStrict([]byte(tc.doc))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want %q", err, tc.want)
			}
		})
	}
}

func TestChartFullRender(t *testing.T) {
	objs, err := render(t, "--values", filepath.Join(chartDir, "ci/values-ci.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"ConfigMap/rel-backstage-mcp", "ConfigMap/rel-backstage-mcp-policy", "Deployment/rel-backstage-mcp",
		"Service/rel-backstage-mcp", "Service/rel-backstage-mcp-admin", "ServiceAccount/rel-backstage-mcp",
		"PodDisruptionBudget/rel-backstage-mcp", "HorizontalPodAutoscaler/rel-backstage-mcp", "Ingress/rel-backstage-mcp",
		"NetworkPolicy/rel-backstage-mcp", "ServiceMonitor/rel-backstage-mcp", "Secret/rel-backstage-mcp-admin",
	} {
		if objs[want] == nil {
			t.Errorf("%s not rendered", want)
		}
	}
	if len(objs) != 12 {
		t.Errorf("rendered %d objects, want 12", len(objs))
	}
	if s, ok := objs["Secret/rel-backstage-mcp-admin"].(*corev1.Secret); !ok || len(s.Data["token"]) != 48 {
		t.Errorf("admin token Secret = %+v, want a generated 48-byte token", objs["Secret/rel-backstage-mcp-admin"])
	}

	d := objs["Deployment/rel-backstage-mcp"].(*appsv1.Deployment)
	pod := d.Spec.Template.Spec
	if d.Spec.Replicas != nil {
		t.Errorf("replicas set although the HPA owns them")
	}
	if psc := pod.SecurityContext; psc == nil || psc.RunAsNonRoot == nil || !*psc.RunAsNonRoot || psc.RunAsUser == nil || *psc.RunAsUser != 65532 {
		t.Errorf("pod securityContext = %+v, want runAsNonRoot and uid 65532", psc)
	}
	if pod.AutomountServiceAccountToken == nil || *pod.AutomountServiceAccountToken {
		t.Errorf("service account token mounted; the server never calls the Kubernetes API")
	}
	c := pod.Containers[0]
	sc := c.SecurityContext
	if sc == nil || sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem ||
		sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation ||
		sc.Capabilities == nil || len(sc.Capabilities.Drop) != 1 || sc.Capabilities.Drop[0] != "ALL" {
		t.Errorf("container securityContext = %+v, want read-only root, no privilege escalation, drop ALL", sc)
	}
	if c.LivenessProbe == nil || c.LivenessProbe.HTTPGet.Path != "/healthz" {
		t.Errorf("liveness probe %+v, want /healthz", c.LivenessProbe)
	}
	if c.ReadinessProbe == nil || c.ReadinessProbe.HTTPGet.Path != "/readyz" {
		t.Errorf("readiness probe %+v, want /readyz", c.ReadinessProbe)
	}
	if c.Resources.Limits.Memory().IsZero() || c.Resources.Requests.Cpu().IsZero() {
		t.Errorf("resources %+v, want a memory limit and a CPU request", c.Resources)
	}
	if !contains(c.Args, "--admin-http=0.0.0.0:9090") {
		t.Errorf("args %q lack the admin listener", c.Args)
	}
	env := map[string]corev1.EnvVar{}
	for _, e := range c.Env {
		env[e.Name] = e
	}
	for name, secret := range map[string]string{"BACKSTAGE_MCP_REDIS_URL": "backstage-mcp-redis", "BACKSTAGE_MCP_CURSOR_KEY": "backstage-mcp-cursor"} {
		if e, ok := env[name]; !ok || e.ValueFrom == nil || e.ValueFrom.SecretKeyRef == nil || e.ValueFrom.SecretKeyRef.Name != secret {
			t.Errorf("env %s = %+v, want it from Secret %s", name, e, secret)
		}
	}
	if env["BACKSTAGE_MCP_BACKSTAGE_TOKEN_FILE"].Value != "/var/run/secrets/backstage-mcp/backstage/token" {
		t.Errorf("token file env = %+v", env["BACKSTAGE_MCP_BACKSTAGE_TOKEN_FILE"])
	}
	if env["BACKSTAGE_MCP_ADMIN_TOKEN_FILE"].Value != "/var/run/secrets/backstage-mcp/admin/token" {
		t.Errorf("admin token file env = %+v: the admin port listens on the pod's address and must demand a token", env["BACKSTAGE_MCP_ADMIN_TOKEN_FILE"])
	}
	if env["OTEL_EXPORTER_OTLP_ENDPOINT"].Value != "http://otel-collector.observability:4318" {
		t.Errorf("OTLP endpoint env = %+v", env["OTEL_EXPORTER_OTLP_ENDPOINT"])
	}
	for _, v := range pod.Volumes {
		if v.Name == "backstage-token" && (v.Secret == nil || v.Secret.SecretName != "backstage-mcp-backstage") {
			t.Errorf("token volume %+v, want Secret backstage-mcp-backstage", v)
		}
		if v.Name == "admin-token" && (v.Secret == nil || v.Secret.SecretName != "rel-backstage-mcp-admin") {
			t.Errorf("admin token volume %+v, want Secret rel-backstage-mcp-admin", v)
		}
	}

	// The rendered config and policy are accepted by the server's own
	// strict parsers, with the environment the Deployment sets.
	cm := objs["ConfigMap/rel-backstage-mcp"].(*corev1.ConfigMap)
	getenv := func(k string) string {
		switch k {
		case "BACKSTAGE_MCP_CURSOR_KEY":
			return strings.Repeat("k", 32)
		}
		return env[k].Value
	}
	cfg, err := server.ParseConfig([]byte(cm.Data["config.yaml"]), "config.yaml", getenv)
	if err != nil {
		t.Fatalf("rendered config.yaml rejected by the server: %v\n%s", err, cm.Data["config.yaml"])
	}
	// With the admin address the args give (a pod address, not loopback),
	// the server accepts the config only because the token file is set.
	cfg.Server.AdminAddr = "0.0.0.0:9090"
	if err := cfg.Validate(); err != nil {
		t.Errorf("config with --admin-http=0.0.0.0:9090 rejected: %v", err)
	}
	if cfg.Backstage.BaseURL != "http://backstage.backstage.svc:7007" || cfg.Server.PublicURL != "https://mcp.example.com" ||
		cfg.Policy.File != "/etc/backstage-mcp/policy/policy.yaml" || cfg.Server.CursorKey == "" || string(cfg.Audit.Sink) != "stdout" {
		t.Errorf("config as the pod sees it: backstage %q, public %q, policy %q, cursor key set %v, audit %q",
			cfg.Backstage.BaseURL, cfg.Server.PublicURL, cfg.Policy.File, cfg.Server.CursorKey != "", cfg.Audit.Sink)
	}
	pcm := objs["ConfigMap/rel-backstage-mcp-policy"].(*corev1.ConfigMap)
	if _, _, err := policyfile.Parse([]byte(pcm.Data["policy.yaml"]), "policy.yaml"); err != nil {
		t.Errorf("rendered policy.yaml rejected: %v", err)
	}

	np := objs["NetworkPolicy/rel-backstage-mcp"].(*networkingv1.NetworkPolicy)
	if len(np.Spec.PolicyTypes) != 2 || len(np.Spec.Egress) != 2 {
		t.Errorf("network policy types %v, %d egress rules", np.Spec.PolicyTypes, len(np.Spec.Egress))
	}
	adminRules := 0
	for _, r := range np.Spec.Ingress {
		for _, p := range r.Ports {
			if p.Port != nil && p.Port.String() == "admin" {
				adminRules++
				if len(r.From) == 0 {
					t.Errorf("network policy admits every source to the admin port")
				}
			}
		}
	}
	if adminRules != 1 {
		t.Errorf("%d ingress rules for the admin port, want 1 (values-ci names its scrapers)", adminRules)
	}
	hasRedis := false
	for _, p := range np.Spec.Egress[1].Ports {
		hasRedis = hasRedis || p.Port.IntValue() == 6379
	}
	if !hasRedis {
		t.Errorf("egress does not open the Redis port")
	}
	ing := objs["Ingress/rel-backstage-mcp"].(*networkingv1.Ingress)
	if h := ing.Spec.Rules[0].Host; h != "mcp.example.com" {
		t.Errorf("ingress host %q, want the publicURL host", h)
	}
	for _, p := range ing.Spec.Rules[0].HTTP.Paths {
		if p.Path == "/metrics" || p.Backend.Service.Port.Name == "admin" {
			t.Errorf("ingress exposes the admin port: %+v", p)
		}
	}
	sm := objs["ServiceMonitor/rel-backstage-mcp"].(*monitoringv1.ServiceMonitor)
	if sm.Spec.Endpoints[0].Port != "admin" || sm.Labels["release"] != "prometheus" {
		t.Errorf("service monitor %+v", sm.Spec)
	}
	if a := sm.Spec.Endpoints[0].Authorization; a == nil || a.Credentials == nil || a.Credentials.Name != "rel-backstage-mcp-admin" || a.Credentials.Key != "token" {
		t.Errorf("service monitor authorization %+v, want the admin token Secret", a)
	}
}

func TestChartMinimalRender(t *testing.T) {
	objs, err := render(t, "--set", "backstage.url=http://backstage:7007", "--set", "backstage.token=s3cr3t-token-value",
		"--set", "publicURL=https://mcp.example.com", "--set", "config.auth.issuers[0].url=https://login.example.com/",
		"--set-string", "policy=version: 1")
	if err != nil {
		t.Fatal(err)
	}
	for _, absent := range []string{"HorizontalPodAutoscaler/rel-backstage-mcp", "Ingress/rel-backstage-mcp", "ServiceMonitor/rel-backstage-mcp"} {
		if objs[absent] != nil {
			t.Errorf("%s rendered although off by default", absent)
		}
	}
	s, ok := objs["Secret/rel-backstage-mcp-backstage"].(*corev1.Secret)
	if !ok || string(s.Data["token"]) != "s3cr3t-token-value" {
		t.Fatalf("inline token Secret = %+v", objs["Secret/rel-backstage-mcp-backstage"])
	}
	d := objs["Deployment/rel-backstage-mcp"].(*appsv1.Deployment)
	// The default image is the one the release publishes, at the version
	// the chart ships with.
	var chart struct {
		AppVersion string `json:"appVersion"`
	}
	if err := yaml.Unmarshal(readFile(t, filepath.Join(chartDir, "Chart.yaml")), &chart); err != nil {
		t.Fatal(err)
	}
	if img := d.Spec.Template.Spec.Containers[0].Image; chart.AppVersion == "" || img != "ghcr.io/backstage-mcp/backstage-mcp:"+chart.AppVersion {
		t.Errorf("default image %q, want ghcr.io/backstage-mcp/backstage-mcp:%s (the published name at appVersion)", img, chart.AppVersion)
	}
	if d.Spec.Replicas == nil || *d.Spec.Replicas != 1 {
		t.Errorf("replicas %v, want 1", d.Spec.Replicas)
	}
	for _, e := range d.Spec.Template.Spec.Containers[0].Env {
		if strings.HasPrefix(e.Name, "OTEL_") {
			t.Errorf("tracing env %s set although tracing is off by default", e.Name)
		}
	}
	// No scraper named: the network policy admits no one to the admin port.
	np := objs["NetworkPolicy/rel-backstage-mcp"].(*networkingv1.NetworkPolicy)
	for _, r := range np.Spec.Ingress {
		for _, p := range r.Ports {
			if p.Port != nil && p.Port.String() == "admin" {
				t.Errorf("network policy opens the admin port with no scraper named: %+v", r)
			}
		}
	}
}

// TestChartRedisSentinelWithSecrets: Redis behind Sentinel with an ACL
// password and TLS from Secrets: no URL Secret is needed, the password
// is a mounted file named by BACKSTAGE_MCP_REDIS_PASSWORD_FILE, the CA and
// client certificate are mounted and named in config.redis.tls, the
// sentinels' port is open, and the server accepts the rendered config.
func TestChartRedisSentinelWithSecrets(t *testing.T) {
	objs, err := render(t, "--set", "backstage.url=http://backstage:7007", "--set", "backstage.existingSecret=tok",
		"--set", "publicURL=https://mcp.example.com", "--set", "config.auth.issuers[0].url=https://login.example.com/",
		"--set-string", "policy=version: 1", "--set", "replicaCount=3", "--set", "cursorKey.existingSecret=cursor",
		"--set", "config.state=redis", "--set", "config.redis.sentinel.masterName=mymaster",
		"--set", "config.redis.sentinel.addrs={sentinel-0:26379,sentinel-1:26379}", "--set", "config.redis.username=mcp",
		"--set", "redis.enabled=true", "--set", "redis.passwordSecret=redis-acl", "--set", "redis.sentinelPasswordKey=sentinel", "--set", "redis.tlsSecret=redis-tls",
		"--set", "redis.tlsClientCert=true", "--set", "redis.extraPorts={26379}")
	if err != nil {
		t.Fatal(err)
	}
	d := objs["Deployment/rel-backstage-mcp"].(*appsv1.Deployment)
	pod := d.Spec.Template.Spec
	env := map[string]corev1.EnvVar{}
	for _, e := range pod.Containers[0].Env {
		env[e.Name] = e
	}
	if _, ok := env["BACKSTAGE_MCP_REDIS_URL"]; ok {
		t.Errorf("BACKSTAGE_MCP_REDIS_URL set without redis.existingSecret")
	}
	if got := env["BACKSTAGE_MCP_REDIS_PASSWORD_FILE"].Value; got != "/var/run/secrets/backstage-mcp/redis/password" {
		t.Errorf("BACKSTAGE_MCP_REDIS_PASSWORD_FILE = %q", got)
	}
	vols := map[string]string{}
	for _, v := range pod.Volumes {
		if v.Secret != nil {
			vols[v.Name] = v.Secret.SecretName
		}
	}
	mounts := map[string]string{}
	for _, m := range pod.Containers[0].VolumeMounts {
		mounts[m.Name] = m.MountPath
	}
	if vols["redis-password"] != "redis-acl" || mounts["redis-password"] != "/var/run/secrets/backstage-mcp/redis" ||
		vols["redis-tls"] != "redis-tls" || mounts["redis-tls"] != "/etc/backstage-mcp/redis-tls" {
		t.Errorf("volumes %v mounted at %v, want the password and TLS Secrets", vols, mounts)
	}
	cm := objs["ConfigMap/rel-backstage-mcp"].(*corev1.ConfigMap)
	cfg, err := server.ParseConfig([]byte(cm.Data["config.yaml"]), "config.yaml", func(k string) string {
		if k == "BACKSTAGE_MCP_CURSOR_KEY" {
			return strings.Repeat("k", 32)
		}
		return env[k].Value
	})
	if err != nil {
		t.Fatalf("rendered config.yaml rejected by the server: %v\n%s", err, cm.Data["config.yaml"])
	}
	r := cfg.Redis
	if r.Mode() != "sentinel" || r.Username != "mcp" || r.Sentinel.PasswordFile != "/var/run/secrets/backstage-mcp/redis/sentinel" || r.PasswordFile != "/var/run/secrets/backstage-mcp/redis/password" || !r.TLS.Enabled ||
		r.TLS.CAFile != "/etc/backstage-mcp/redis-tls/ca.crt" || r.TLS.CertFile != "/etc/backstage-mcp/redis-tls/tls.crt" || r.TLS.KeyFile != "/etc/backstage-mcp/redis-tls/tls.key" {
		t.Errorf("redis config as the pod sees it: %+v", r)
	}
	np := objs["NetworkPolicy/rel-backstage-mcp"].(*networkingv1.NetworkPolicy)
	var ports []string
	for _, e := range np.Spec.Egress {
		for _, p := range e.Ports {
			ports = append(ports, p.Port.String())
		}
	}
	if !contains(ports, "6379") || !contains(ports, "26379") {
		t.Errorf("egress ports %v, want 6379 and the sentinels' 26379", ports)
	}
}

// TestChartRefusesUnsafeValues: values that would deploy a broken or
// unsafe server fail at render time with a message naming the fix.
func TestChartRefusesUnsafeValues(t *testing.T) {
	base := []string{"--set", "backstage.url=http://backstage:7007", "--set", "backstage.existingSecret=tok",
		"--set", "publicURL=https://mcp.example.com", "--set", "config.auth.issuers[0].url=https://login.example.com/",
		"--set-string", "policy=version: 1"}
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"chart defaults", nil, "backstage.url is required"},
		{"no policy", append(append([]string{}, base...), "--set-string", "policy="), "policy is required"},
		{"replicas without redis", append(append([]string{}, base...), "--set", "replicaCount=3"), "needs redis.enabled"},
		{"autoscaling without cursor key", append(append([]string{}, base...), "--set", "autoscaling.enabled=true",
			"--set", "redis.enabled=true", "--set", "redis.existingSecret=r"), "needs cursorKey.existingSecret"},
		{"redis without cursor key", append(append([]string{}, base...), "--set", "redis.enabled=true", "--set", "redis.existingSecret=r"),
			"redis.enabled needs cursorKey.existingSecret"},
		{"redis without a way to reach it", append(append([]string{}, base...), "--set", "redis.enabled=true", "--set", "cursorKey.existingSecret=c"),
			"redis.enabled needs redis.existingSecret (the Secret holding the Redis URL), or config.redis.sentinel or config.redis.cluster"},
		{"service monitor without admin port", append(append([]string{}, base...), "--set", "serviceMonitor.enabled=true",
			"--set", "metrics.enabled=false"), "needs metrics.enabled"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := render(t, tc.args...)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want %q", err, tc.want)
			}
		})
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func TestMain(m *testing.M) {
	flag.Parse()
	if _, err := exec.LookPath("helm"); err != nil {
		fmt.Fprintln(os.Stderr, "helm not on PATH: run `make chart`, which installs the pinned helm into .cache/bin")
		os.Exit(1)
	}
	os.Exit(m.Run())
}
