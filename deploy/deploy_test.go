package deploy

import (
	"fmt"
	"net"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// TestFilesParse parses every YAML (all documents) and JSON file here.
func TestFilesParse(t *testing.T) {
	yamls := filesUnder(t, ".", ".yaml", ".yml")
	jsons := filesUnder(t, ".", ".json")
	for _, want := range []string{"compose.yaml", "k8s/deployment.yaml", "prometheus/rules.yml",
		"prometheus/prometheus.yml", "grafana/provisioning/datasources/prometheus.yml"} {
		if !slices.Contains(yamls, filepath.FromSlash(want)) {
			t.Errorf("%s is missing", want)
		}
	}
	if !slices.Contains(jsons, filepath.FromSlash("grafana/dashboards/fieldvault.json")) {
		t.Error("grafana/dashboards/fieldvault.json is missing")
	}
	docs := 0
	for _, f := range yamls {
		docs += len(readYAMLDocs(t, f))
	}
	for _, f := range jsons {
		readJSON(t, f)
	}
	t.Logf("parsed %d YAML files (%d documents) and %d JSON files", len(yamls), docs, len(jsons))
}

// TestDecodeYAMLRejects makes sure the YAML loader is strict enough to be
// worth running: duplicate keys and broken documents fail.
func TestDecodeYAMLRejects(t *testing.T) {
	for _, bad := range []string{
		"a: 1\na: 2\n",
		"a: 1\n---\nb: [1, 2\n",
		"a:\n  - b\n c: d\n",
	} {
		if _, err := decodeYAMLDocs([]byte(bad)); err == nil {
			t.Errorf("decodeYAMLDocs(%q) succeeded", bad)
		}
	}
	docs, err := decodeYAMLDocs([]byte("a: 1\n---\nb: 2\n---\n"))
	if err != nil || len(docs) != 2 {
		t.Errorf("two documents: got %d, %v", len(docs), err)
	}
}

// k8sObject is one Kubernetes object and the file it came from.
type k8sObject struct {
	file string
	obj  map[string]any
}

func (o k8sObject) kind() string { return getStr(o.obj, "kind") }
func (o k8sObject) name() string { return getStr(o.obj, "metadata", "name") }

func loadK8s(t *testing.T) (objs []k8sObject, kust map[string]any, examples []k8sObject) {
	t.Helper()
	for _, f := range filesUnder(t, "k8s", ".yaml", ".yml") {
		for i, d := range readYAMLDocs(t, f) {
			m, ok := d.(map[string]any)
			if !ok {
				t.Fatalf("%s document %d is not a mapping", f, i)
			}
			o := k8sObject{file: f, obj: m}
			switch {
			case o.kind() == "Kustomization":
				kust = m
			case strings.Contains(filepath.Base(f), ".example."):
				examples = append(examples, o)
			default:
				objs = append(objs, o)
			}
		}
	}
	if kust == nil {
		t.Fatal("k8s/kustomization.yaml is missing")
	}
	return objs, kust, examples
}

func findObj(t *testing.T, objs []k8sObject, kind string) map[string]any {
	t.Helper()
	var found []map[string]any
	for _, o := range objs {
		if o.kind() == kind {
			found = append(found, o.obj)
		}
	}
	if len(found) != 1 {
		t.Fatalf("want exactly one %s, found %d", kind, len(found))
	}
	return found[0]
}

func TestKubernetesObjects(t *testing.T) {
	objs, kust, examples := loadK8s(t)
	seen := map[string]string{}
	for _, o := range append(slices.Clone(objs), examples...) {
		for _, f := range []string{"apiVersion", "kind"} {
			if getStr(o.obj, f) == "" {
				t.Errorf("%s: an object without %s", o.file, f)
			}
		}
		if o.name() == "" {
			t.Errorf("%s: %s without metadata.name", o.file, o.kind())
		}
		if ns := getStr(o.obj, "metadata", "namespace"); ns != "" {
			t.Errorf("%s: %s/%s sets metadata.namespace %q; the kustomization sets it", o.file, o.kind(), o.name(), ns)
		}
		key := o.kind() + "/" + o.name()
		if prev, dup := seen[key]; dup {
			t.Errorf("%s is defined in %s and %s", key, prev, o.file)
		}
		seen[key] = o.file
	}
	for _, kind := range []string{"Namespace", "ServiceAccount", "ConfigMap", "Deployment", "Service",
		"PodDisruptionBudget", "HorizontalPodAutoscaler", "NetworkPolicy"} {
		findObj(t, objs, kind)
	}

	// Every manifest is a resource of the kustomization; the example is not.
	if getStr(kust, "namespace") != "fieldvault" {
		t.Errorf("kustomization namespace = %q, want fieldvault", getStr(kust, "namespace"))
	}
	if getStr(findObj(t, objs, "Namespace"), "metadata", "name") != getStr(kust, "namespace") {
		t.Error("the Namespace object and the kustomization's namespace differ")
	}
	resources := strList(getList(kust, "resources"))
	for _, r := range resources {
		if _, err := os.Stat(filepath.Join("k8s", r)); err != nil {
			t.Errorf("kustomization resource %s: %v", r, err)
		}
	}
	files := map[string]bool{}
	for _, o := range objs {
		files[filepath.Base(o.file)] = true
	}
	for f := range files {
		if !slices.Contains(resources, f) {
			t.Errorf("k8s/%s is not listed in kustomization.yaml resources", f)
		}
	}
	for _, o := range examples {
		if slices.Contains(resources, filepath.Base(o.file)) {
			t.Errorf("%s is an example and must not be a kustomization resource", o.file)
		}
	}
	for _, r := range resources {
		if !files[r] {
			t.Errorf("kustomization resource %s holds no Kubernetes object", r)
		}
	}
	if getList(kust, "secretGenerator") != nil {
		t.Error("the kustomization must not generate Secrets: they are created out of band")
	}
}

// container returns the fieldvault container of the Deployment.
func fieldvaultContainer(t *testing.T, dep map[string]any) map[string]any {
	t.Helper()
	cs := getList(dep, "spec", "template", "spec", "containers")
	if len(cs) != 1 {
		t.Fatalf("Deployment has %d containers, want 1", len(cs))
	}
	return getMap(cs[0])
}

func TestDeployment(t *testing.T) {
	objs, _, _ := loadK8s(t)
	dep := findObj(t, objs, "Deployment")
	cm := findObj(t, objs, "ConfigMap")
	pod := getMap(dep, "spec", "template", "spec")
	c := fieldvaultContainer(t, dep)

	if r := getInt(t, dep, "spec", "replicas"); r < 2 {
		t.Errorf("replicas = %d, want 2 or more", r)
	}
	// The container port, by name and number, and the listen address.
	ports := getList(c, "ports")
	if len(ports) != 1 {
		t.Fatalf("container has %d ports, want 1", len(ports))
	}
	portName := getStr(ports[0], "name")
	portNum := getInt(t, ports[0], "containerPort")
	listen := getStr(cm, "data", "FIELDVAULT_LISTEN")
	_, lport, err := net.SplitHostPort(listen)
	if err != nil || lport != strconv.Itoa(portNum) {
		t.Errorf("FIELDVAULT_LISTEN %q does not listen on the container port %d", listen, portNum)
	}
	if portNum != 8280 {
		t.Errorf("containerPort = %d, want 8280", portNum)
	}
	tls := getStr(cm, "data", "FIELDVAULT_TLS_CERT") != "" && getStr(cm, "data", "FIELDVAULT_TLS_KEY") != ""
	if !tls {
		t.Error("the ConfigMap configures no TLS: plain HTTP is for the compose network only")
	}
	if getStr(cm, "data", "FIELDVAULT_INSECURE_HTTP") != "" || slices.Contains(strList(get(c, "args")), "--insecure-http") {
		t.Error("the Kubernetes Deployment must not use --insecure-http")
	}

	// Probes.
	for probe, wantPath := range map[string]string{"startupProbe": "/healthz", "livenessProbe": "/healthz", "readinessProbe": "/readyz"} {
		p := getMap(c, probe)
		if p == nil {
			t.Errorf("%s is missing", probe)
			continue
		}
		if got := getStr(p, "httpGet", "path"); got != wantPath {
			t.Errorf("%s path = %q, want %q", probe, got, wantPath)
		}
		if port := getStr(p, "httpGet", "port"); port != portName && port != strconv.Itoa(portNum) {
			t.Errorf("%s port = %q, not the container port (%s/%d)", probe, port, portName, portNum)
		}
		wantScheme := "HTTP"
		if tls {
			wantScheme = "HTTPS"
		}
		if got := getStr(p, "httpGet", "scheme"); got != wantScheme && !(got == "" && wantScheme == "HTTP") {
			t.Errorf("%s scheme = %q, want %s", probe, got, wantScheme)
		}
	}
	if st := getMap(c, "startupProbe"); st != nil {
		budget := getInt(t, st, "periodSeconds") * getInt(t, st, "failureThreshold")
		if budget < 30 {
			t.Errorf("the startup probe allows only %ds to open the store, the KEK and the audit log", budget)
		}
	}

	// Security context: pod level or container level.
	either := func(field ...any) string {
		if v := getStr(c, append([]any{"securityContext"}, field...)...); v != "" {
			return v
		}
		return getStr(pod, append([]any{"securityContext"}, field...)...)
	}
	if either("runAsNonRoot") != "true" {
		t.Error("runAsNonRoot is not true")
	}
	if u := either("runAsUser"); u == "0" {
		t.Error("runAsUser is 0")
	}
	if either("seccompProfile", "type") != "RuntimeDefault" {
		t.Errorf("seccompProfile = %q, want RuntimeDefault", either("seccompProfile", "type"))
	}
	for _, sc := range []any{getMap(pod, "securityContext"), getMap(c, "securityContext")} {
		if s := getStr(sc, "seccompProfile", "type"); s != "" && s != "RuntimeDefault" {
			t.Errorf("a securityContext sets seccompProfile %q", s)
		}
	}
	if getStr(c, "securityContext", "readOnlyRootFilesystem") != "true" {
		t.Error("readOnlyRootFilesystem is not true")
	}
	if getStr(c, "securityContext", "allowPrivilegeEscalation") != "false" {
		t.Error("allowPrivilegeEscalation is not false")
	}
	if getStr(c, "securityContext", "privileged") == "true" {
		t.Error("privileged container")
	}
	if !slices.Contains(strList(get(c, "securityContext", "capabilities", "drop")), "ALL") {
		t.Error("capabilities do not drop ALL")
	}
	if add := strList(get(c, "securityContext", "capabilities", "add")); len(add) > 0 {
		t.Errorf("capabilities added: %v", add)
	}
	if getStr(pod, "automountServiceAccountToken") != "false" {
		t.Error("the pod mounts a service-account token it does not need")
	}
	if sa := getStr(pod, "serviceAccountName"); sa == "" || !hasObj(objs, "ServiceAccount", sa) {
		t.Errorf("serviceAccountName %q is not a ServiceAccount here", sa)
	}
	// A read-only root needs writable mounts for the data dir and /tmp.
	mounts := map[string]bool{}
	for _, m := range getList(c, "volumeMounts") {
		mounts[getStr(m, "mountPath")] = true
	}
	if dd := getStr(cm, "data", "FIELDVAULT_DATA_DIR"); !mounts[dd] {
		t.Errorf("the data directory %q is not a volume (the root filesystem is read-only)", dd)
	}
	if !mounts["/tmp"] {
		t.Error("/tmp is not a volume (the root filesystem is read-only)")
	}
	for _, k := range []string{"FIELDVAULT_TLS_CERT", "FIELDVAULT_TLS_KEY"} {
		if p := getStr(cm, "data", k); p != "" && !mounts[path.Dir(p)] {
			t.Errorf("%s = %s is not in a mounted volume", k, p)
		}
	}

	// Resources.
	for _, r := range [][]any{{"requests", "cpu"}, {"requests", "memory"}, {"limits", "memory"}} {
		if getStr(c, append([]any{"resources"}, r...)...) == "" {
			t.Errorf("resources.%s.%s is not set", r[0], r[1])
		}
	}

	// --node from the pod name through the downward API.
	env := map[string]map[string]any{}
	for _, e := range getList(c, "env") {
		env[getStr(e, "name")] = getMap(e)
	}
	node := ""
	for _, a := range strList(get(c, "args")) {
		if v, ok := strings.CutPrefix(a, "--node="); ok {
			node = v
		}
	}
	m := regexp.MustCompile(`^\$\(([A-Z_][A-Z0-9_]*)\)$`).FindStringSubmatch(node)
	if m == nil {
		t.Fatalf("args give no --node=$(VAR): %v", get(c, "args"))
	}
	if fp := getStr(env[m[1]], "valueFrom", "fieldRef", "fieldPath"); fp != "metadata.name" {
		t.Errorf("--node comes from $(%s), whose fieldRef is %q, want metadata.name", m[1], fp)
	}
	if _, ok := env["FIELDVAULT_NODE"]; ok || getStr(cm, "data", "FIELDVAULT_NODE") != "" {
		t.Error("FIELDVAULT_NODE is set: every replica would share one audit chain name")
	}
	if a := strList(get(c, "args")); len(a) == 0 || a[0] != "serve" {
		t.Errorf("args = %v, want serve first", a)
	}

	// VAULT_TOKEN from a Secret, never a literal.
	if getStr(env["VAULT_TOKEN"], "valueFrom", "secretKeyRef", "name") == "" {
		t.Error("VAULT_TOKEN does not come from a secretKeyRef")
	}
	for name, e := range env {
		if strings.Contains(name, "TOKEN") && getStr(e, "value") != "" {
			t.Errorf("%s has a literal value", name)
		}
	}
	for k := range getMap(cm, "data") {
		if strings.Contains(k, "TOKEN") || strings.Contains(k, "PASSWORD") {
			t.Errorf("ConfigMap holds %s: secrets go in a Secret", k)
		}
	}

	// The ConfigMap's variables are real flags; the store, KEK and audit are
	// the production ones.
	var names []string
	for k := range getMap(cm, "data") {
		names = append(names, k)
	}
	for n := range env {
		names = append(names, n)
	}
	checkEnvNames(t, "k8s", names)
	for k, want := range map[string]string{"FIELDVAULT_KEK": "transit", "FIELDVAULT_AUDIT": "redis-stream"} {
		if got := getStr(cm, "data", k); got != want {
			t.Errorf("ConfigMap %s = %q, want %q", k, got, want)
		}
	}
	if !strings.HasPrefix(getStr(cm, "data", "FIELDVAULT_STORE"), "redis") {
		t.Errorf("FIELDVAULT_STORE = %q: replicas need a shared Redis store", getStr(cm, "data", "FIELDVAULT_STORE"))
	}
	if getStr(cm, "data", "VAULT_ADDR") == "" {
		t.Error("VAULT_ADDR is not set")
	}
}

func hasObj(objs []k8sObject, kind, name string) bool {
	for _, o := range objs {
		if o.kind() == kind && o.name() == name {
			return true
		}
	}
	return false
}

// TestSecretsAndConfigMaps: every Secret and ConfigMap the Deployment uses
// exists, Secrets only as placeholders in the example.
func TestSecretsAndConfigMaps(t *testing.T) {
	objs, _, examples := loadK8s(t)
	dep := findObj(t, objs, "Deployment")
	pod := getMap(dep, "spec", "template", "spec")

	secretKeys := map[string]map[string]bool{}
	for _, o := range examples {
		if o.kind() != "Secret" {
			t.Errorf("%s: the example holds a %s", o.file, o.kind())
			continue
		}
		keys := map[string]bool{}
		for _, field := range []string{"stringData", "data"} {
			for k, v := range getMap(o.obj, field) {
				keys[k] = true
				if s := fmt.Sprint(v); !strings.HasPrefix(s, "REPLACE_") {
					t.Errorf("%s: Secret %s key %s holds %q, not a REPLACE_... placeholder", o.file, o.name(), k, s)
				}
			}
		}
		if getStr(o.obj, "metadata", "annotations", "fieldvault.io/example") == "" {
			t.Errorf("%s: Secret %s is not annotated fieldvault.io/example", o.file, o.name())
		}
		secretKeys[o.name()] = keys
	}
	for _, o := range objs {
		if o.kind() == "Secret" {
			t.Errorf("%s: a real Secret manifest among the resources", o.file)
		}
	}
	cmKeys := map[string]map[string]bool{}
	for _, o := range objs {
		if o.kind() == "ConfigMap" {
			keys := map[string]bool{}
			for k := range getMap(o.obj, "data") {
				keys[k] = true
			}
			cmKeys[o.name()] = keys
		}
	}

	type ref struct{ kind, name, key string }
	var refs []ref
	for _, c := range append(getList(pod, "containers"), getList(pod, "initContainers")...) {
		for _, e := range getList(c, "env") {
			if n := getStr(e, "valueFrom", "secretKeyRef", "name"); n != "" {
				refs = append(refs, ref{"Secret", n, getStr(e, "valueFrom", "secretKeyRef", "key")})
			}
			if n := getStr(e, "valueFrom", "configMapKeyRef", "name"); n != "" {
				refs = append(refs, ref{"ConfigMap", n, getStr(e, "valueFrom", "configMapKeyRef", "key")})
			}
		}
		for _, e := range getList(c, "envFrom") {
			if n := getStr(e, "secretRef", "name"); n != "" {
				refs = append(refs, ref{"Secret", n, ""})
			}
			if n := getStr(e, "configMapRef", "name"); n != "" {
				refs = append(refs, ref{"ConfigMap", n, ""})
			}
		}
	}
	for _, v := range getList(pod, "volumes") {
		if n := getStr(v, "secret", "secretName"); n != "" {
			refs = append(refs, ref{"Secret", n, ""})
		}
		if n := getStr(v, "configMap", "name"); n != "" {
			refs = append(refs, ref{"ConfigMap", n, ""})
		}
	}
	for _, s := range getList(pod, "imagePullSecrets") {
		refs = append(refs, ref{"Secret", getStr(s, "name"), ""})
	}
	secrets := 0
	for _, r := range refs {
		keys := secretKeys[r.name]
		if r.kind == "ConfigMap" {
			keys = cmKeys[r.name]
		} else {
			secrets++
		}
		if keys == nil {
			t.Errorf("the Deployment uses %s %q, which is neither a resource nor in the example", r.kind, r.name)
			continue
		}
		if r.key != "" && !keys[r.key] {
			t.Errorf("the Deployment uses key %q of %s %q, which has no such key", r.key, r.kind, r.name)
		}
	}
	if secrets < 2 {
		t.Errorf("found %d Secret references (VAULT_TOKEN and TLS expected): %v", secrets, refs)
	}
}

// TestSelectors: the Service, PDB, HPA and NetworkPolicy find the pods.
func TestSelectors(t *testing.T) {
	objs, _, _ := loadK8s(t)
	dep := findObj(t, objs, "Deployment")
	labels := getMap(dep, "spec", "template", "metadata", "labels")
	if !subset(getMap(dep, "spec", "selector", "matchLabels"), labels) {
		t.Error("the Deployment's selector does not match its pod labels")
	}
	if len(getList(dep, "spec", "selector", "matchExpressions")) > 0 {
		t.Error("matchExpressions are not checked here: use matchLabels")
	}
	svc := findObj(t, objs, "Service")
	if !subset(getMap(svc, "spec", "selector"), labels) {
		t.Error("the Service does not select the Deployment's pods")
	}
	c := fieldvaultContainer(t, dep)
	portName := getStr(getList(c, "ports")[0], "name")
	portNum := getStr(getList(c, "ports")[0], "containerPort")
	for _, p := range getList(svc, "spec", "ports") {
		if tp := getStr(p, "targetPort"); tp != portName && tp != portNum {
			t.Errorf("Service targetPort %q is not the container port", tp)
		}
	}
	pdb := findObj(t, objs, "PodDisruptionBudget")
	if !subset(getMap(pdb, "spec", "selector", "matchLabels"), labels) {
		t.Error("the PodDisruptionBudget does not select the Deployment's pods")
	}
	if ma := getStr(pdb, "spec", "minAvailable"); ma != "" {
		n, err := strconv.Atoi(ma)
		if err == nil && (n < 1 || n >= getInt(t, dep, "spec", "replicas")) {
			t.Errorf("PDB minAvailable %d with %d replicas blocks every drain or protects nothing", n, getInt(t, dep, "spec", "replicas"))
		}
	}
	hpa := findObj(t, objs, "HorizontalPodAutoscaler")
	if getStr(hpa, "spec", "scaleTargetRef", "kind") != "Deployment" || getStr(hpa, "spec", "scaleTargetRef", "name") != getStr(dep, "metadata", "name") {
		t.Error("the HPA does not scale the Deployment")
	}
	if getInt(t, hpa, "spec", "minReplicas") < 2 || getInt(t, hpa, "spec", "maxReplicas") < getInt(t, hpa, "spec", "minReplicas") {
		t.Error("HPA replicas: want minReplicas >= 2 <= maxReplicas")
	}
	cpu := false
	for _, m := range getList(hpa, "spec", "metrics") {
		if getStr(m, "type") == "Resource" && getStr(m, "resource", "name") == "cpu" {
			cpu = true
		}
	}
	if !cpu {
		t.Error("the HPA does not scale on CPU")
	}
	if getStr(c, "resources", "requests", "cpu") == "" {
		t.Error("an HPA on CPU utilisation needs a CPU request")
	}
	np := findObj(t, objs, "NetworkPolicy")
	if !subset(getMap(np, "spec", "podSelector", "matchLabels"), labels) {
		t.Error("the NetworkPolicy does not select the Deployment's pods")
	}
	for _, tsc := range getList(dep, "spec", "template", "spec", "topologySpreadConstraints") {
		if !subset(getMap(tsc, "labelSelector", "matchLabels"), labels) {
			t.Error("a topology spread constraint does not select the pods")
		}
	}
}

func TestNetworkPolicy(t *testing.T) {
	objs, _, _ := loadK8s(t)
	np := findObj(t, objs, "NetworkPolicy")
	types := strList(get(np, "spec", "policyTypes"))
	if !slices.Contains(types, "Ingress") || !slices.Contains(types, "Egress") {
		t.Errorf("policyTypes = %v, want Ingress and Egress", types)
	}
	portsOf := func(rule any) []string {
		var out []string
		for _, p := range getList(rule, "ports") {
			proto := getStr(p, "protocol")
			if proto == "" {
				proto = "TCP"
			}
			out = append(out, getStr(p, "port")+"/"+proto)
		}
		return out
	}
	ingress := getList(np, "spec", "ingress")
	prometheus, clients := false, false
	for i, r := range ingress {
		peers := getList(r, "from")
		if len(peers) == 0 {
			t.Errorf("ingress rule %d admits every source", i)
		}
		if p := portsOf(r); !slices.Equal(p, []string{"8280/TCP"}) {
			t.Errorf("ingress rule %d ports = %v, want only 8280/TCP", i, p)
		}
		for _, peer := range peers {
			if getMap(peer, "ipBlock") == nil && getMap(peer, "podSelector", "matchLabels") == nil && getMap(peer, "namespaceSelector", "matchLabels") == nil {
				t.Errorf("ingress rule %d has a peer with no labels: it admits too much", i)
			}
			if getStr(peer, "podSelector", "matchLabels", "app.kubernetes.io/name") == "prometheus" {
				prometheus = true
			}
			if getStr(peer, "podSelector", "matchLabels", "fieldvault.io/client") == "true" &&
				getStr(peer, "namespaceSelector", "matchLabels", "fieldvault.io/client") == "true" {
				clients = true
			}
		}
	}
	if !prometheus || !clients {
		t.Errorf("ingress: Prometheus admitted %v, labelled clients admitted %v; want both", prometheus, clients)
	}
	allowed := map[string]bool{"53/UDP": true, "53/TCP": true, "6379/TCP": true, "26379/TCP": true, "8200/TCP": true}
	got := map[string]bool{}
	for i, r := range getList(np, "spec", "egress") {
		if len(getList(r, "to")) == 0 {
			t.Errorf("egress rule %d allows every destination", i)
		}
		ps := portsOf(r)
		if len(ps) == 0 {
			t.Errorf("egress rule %d allows every port", i)
		}
		for _, p := range ps {
			if !allowed[p] {
				t.Errorf("egress rule %d allows %s (only Redis, Vault and DNS)", i, p)
			}
			got[p] = true
		}
	}
	for _, p := range []string{"53/UDP", "6379/TCP", "8200/TCP"} {
		if !got[p] {
			t.Errorf("egress does not allow %s", p)
		}
	}
}

// compose loads compose.yaml.
func compose(t *testing.T) map[string]any {
	t.Helper()
	return readYAML(t, "compose.yaml")
}

func composeEnv(svc any) map[string]string {
	env := map[string]string{}
	switch e := get(svc, "environment").(type) {
	case map[string]any:
		for k, v := range e {
			env[k] = fmt.Sprint(v)
		}
	case []any:
		for _, kv := range e {
			k, v, _ := strings.Cut(fmt.Sprint(kv), "=")
			env[k] = v
		}
	}
	return env
}

// interpolate applies compose's ${VAR:-default} with the defaults.
func interpolate(s string) string {
	return regexp.MustCompile(`\$\{[A-Za-z_][A-Za-z0-9_]*(?::?-([^}]*))?\}`).ReplaceAllString(s, "$1")
}

func TestCompose(t *testing.T) {
	c := compose(t)
	services := getMap(c, "services")
	for _, s := range []string{"fieldvault", "redis", "vault", "vault-init", "prometheus", "grafana"} {
		if services[s] == nil {
			t.Errorf("service %s is missing", s)
		}
	}
	volumes := getMap(c, "volumes")

	// Every file a service builds from or mounts exists; named volumes are declared.
	for name, svc := range services {
		if b := get(svc, "build"); b != nil {
			ctx := getStr(b, "context")
			if ctx == "" {
				ctx = fmt.Sprint(b)
			}
			df := getStr(b, "dockerfile")
			if df == "" {
				df = "Dockerfile"
			}
			if _, err := os.Stat(filepath.Join(ctx, df)); err != nil {
				t.Errorf("service %s builds from %s: %v", name, filepath.Join(ctx, df), err)
			}
		}
		for _, v := range getList(svc, "volumes") {
			src, target, _ := strings.Cut(fmt.Sprint(v), ":")
			if strings.HasPrefix(src, ".") || strings.HasPrefix(src, "/") {
				if _, err := os.Stat(src); err != nil {
					t.Errorf("service %s mounts %s: %v", name, src, err)
				}
			} else if _, ok := volumes[src]; !ok {
				t.Errorf("service %s uses volume %q, which is not declared", name, src)
			}
			if target == "" {
				t.Errorf("service %s: volume %q has no target", name, v)
			}
		}
		for dep := range getMap(svc, "depends_on") {
			if services[dep] == nil {
				t.Errorf("service %s depends on unknown service %s", name, dep)
			}
		}
		for _, dep := range getList(svc, "depends_on") {
			if services[fmt.Sprint(dep)] == nil {
				t.Errorf("service %s depends on unknown service %v", name, dep)
			}
		}
		for _, p := range getList(svc, "ports") {
			if !strings.HasPrefix(fmt.Sprint(p), "127.0.0.1:") {
				t.Errorf("service %s publishes %v beyond the host's loopback", name, p)
			}
		}
	}

	// fieldvault: production back ends, real flags, explicit plain HTTP.
	fv := services["fieldvault"]
	env := composeEnv(fv)
	want := map[string]string{
		"FIELDVAULT_STORE": "redis://redis:6379/0",
		"FIELDVAULT_KEK":   "transit",
		"FIELDVAULT_AUDIT": "redis-stream",
	}
	for k, v := range want {
		if env[k] != v {
			t.Errorf("fieldvault %s = %q, want %q", k, env[k], v)
		}
	}
	for _, k := range []string{"VAULT_ADDR", "VAULT_TOKEN"} {
		if interpolate(env[k]) == "" {
			t.Errorf("fieldvault %s is empty", k)
		}
	}
	if u, err := url.Parse(env["VAULT_ADDR"]); err != nil || services[u.Hostname()] == nil {
		t.Errorf("VAULT_ADDR %q does not point at a compose service", env["VAULT_ADDR"])
	}
	if u, err := url.Parse(env["FIELDVAULT_STORE"]); err != nil || services[u.Hostname()] == nil || u.Hostname() != "redis" {
		t.Errorf("FIELDVAULT_STORE %q does not point at the redis service", env["FIELDVAULT_STORE"])
	}
	if interpolate(env["VAULT_TOKEN"]) != interpolate(composeEnv(services["vault-init"])["SERVICE_TOKEN"]) {
		t.Error("fieldvault's VAULT_TOKEN is not the service token vault-init creates")
	}
	var names []string
	for k := range env {
		names = append(names, k)
	}
	checkEnvNames(t, "compose fieldvault", names)
	cmd := strList(get(fv, "command"))
	flags := serveFlags(t)
	for _, a := range cmd[1:] {
		if name, ok := strings.CutPrefix(a, "--"); ok {
			name, _, _ = strings.Cut(name, "=")
			if !flags[name] {
				t.Errorf("fieldvault command: --%s is not a serve flag", name)
			}
		}
	}
	if len(cmd) == 0 || cmd[0] != "serve" {
		t.Fatalf("fieldvault command = %v, want serve ...", cmd)
	}
	i := slices.Index(cmd, "--listen")
	if i < 0 || i+1 >= len(cmd) || cmd[i+1] != "0.0.0.0:8280" {
		t.Errorf("fieldvault command %v does not listen on 0.0.0.0:8280", cmd)
	}
	if !slices.Contains(cmd, "--insecure-http") && env["FIELDVAULT_TLS_CERT"] == "" {
		t.Error("fieldvault has neither TLS nor an explicit --insecure-http: serve would refuse to start")
	}
	if get(fv, "read_only") != true {
		t.Error("fieldvault's root filesystem is not read-only")
	}
	if getStr(fv, "depends_on", "redis", "condition") != "service_healthy" ||
		getStr(fv, "depends_on", "vault-init", "condition") != "service_completed_successfully" {
		t.Error("fieldvault must wait for a healthy redis and a completed vault-init")
	}

	// Healthchecks: fieldvault on /readyz, with a binary the image has.
	hc := strList(get(fv, "healthcheck", "test"))
	if len(hc) < 2 || hc[0] != "CMD" || !strings.HasSuffix(hc[len(hc)-1], "/readyz") {
		t.Errorf("fieldvault healthcheck %v is not a CMD on /readyz", hc)
	} else if img := dockerfileFinalCopies(t); !img[hc[1]] {
		t.Errorf("the healthcheck runs %s, which deploy/Dockerfile does not put in the image (it has %v)", hc[1], img)
	}
	for _, s := range []string{"redis", "vault", "prometheus", "grafana"} {
		if len(strList(get(services[s], "healthcheck", "test"))) == 0 {
			t.Errorf("service %s has no healthcheck", s)
		}
	}

	// Redis durability.
	args := strList(get(services["redis"], "command"))
	if len(args) == 0 || args[0] != "redis-server" {
		t.Fatalf("redis command = %v, want redis-server ...", args)
	}
	opts := map[string]string{}
	for i := 1; i < len(args); i++ {
		if k, ok := strings.CutPrefix(args[i], "--"); ok && i+1 < len(args) {
			opts[k] = args[i+1]
			i++
		}
	}
	for k, v := range map[string]string{"appendonly": "yes", "appendfsync": "always", "maxmemory-policy": "noeviction"} {
		if opts[k] != v {
			t.Errorf("redis --%s = %q, want %q", k, opts[k], v)
		}
	}

	// vault-init runs the Vault setup script of deploy/vault.
	vi := services["vault-init"]
	setup := composeEnv(vi)["SETUP"]
	mounted := false
	for _, v := range getList(vi, "volumes") {
		parts := strings.Split(fmt.Sprint(v), ":")
		if len(parts) >= 2 && strings.HasPrefix(setup, parts[1]+"/") {
			if _, err := os.Stat(filepath.Join(parts[0], strings.TrimPrefix(setup, parts[1]+"/"))); err != nil {
				t.Errorf("vault-init runs %s: %v", setup, err)
			}
			mounted = true
		}
	}
	if !mounted || !strings.HasSuffix(setup, "setup.sh") {
		t.Errorf("vault-init does not run deploy/vault/setup.sh (SETUP=%q)", setup)
	}
	if !strings.Contains(fmt.Sprint(get(services["vault"], "command")), "-dev") {
		t.Error("the vault service is not a dev server")
	}

	// Prometheus scrapes the fieldvault service; Grafana's provisioning is mounted where it is read.
	prom := readYAML(t, "prometheus/prometheus.yml")
	targets := []string{}
	for _, sc := range getList(prom, "scrape_configs") {
		if getStr(sc, "job_name") == "fieldvault" {
			for _, st := range getList(sc, "static_configs") {
				targets = append(targets, strList(get(st, "targets"))...)
			}
		}
	}
	if !slices.Contains(targets, "fieldvault:8280") {
		t.Errorf("Prometheus job fieldvault targets %v, want fieldvault:8280", targets)
	}
	mounts := map[string]string{}
	for _, v := range getList(services["grafana"], "volumes") {
		parts := strings.Split(fmt.Sprint(v), ":")
		if len(parts) >= 2 {
			mounts[filepath.Clean(parts[0])] = parts[1]
		}
	}
	if mounts[filepath.Clean("grafana/provisioning")] != "/etc/grafana/provisioning" {
		t.Error("grafana/provisioning is not mounted at /etc/grafana/provisioning")
	}
	provider := readYAML(t, "grafana/provisioning/dashboards/fieldvault.yml")
	if p := getStr(provider, "providers", 0, "options", "path"); p == "" || mounts[filepath.Clean("grafana/dashboards")] != p {
		t.Errorf("the dashboard provider reads %q, but grafana/dashboards is mounted at %q", p, mounts[filepath.Clean("grafana/dashboards")])
	}
	promMounts := map[string]string{}
	for _, v := range getList(services["prometheus"], "volumes") {
		parts := strings.Split(fmt.Sprint(v), ":")
		if len(parts) >= 2 {
			promMounts[parts[1]] = parts[0]
		}
	}
	cfgPath := ""
	for _, a := range strList(get(services["prometheus"], "command")) {
		if v, ok := strings.CutPrefix(a, "--config.file="); ok {
			cfgPath = v
		}
	}
	if filepath.Clean(promMounts[cfgPath]) != filepath.Clean("prometheus/prometheus.yml") {
		t.Errorf("Prometheus reads %q, which is not deploy/prometheus/prometheus.yml", cfgPath)
	}
	for _, rf := range strList(get(prom, "rule_files")) {
		if promMounts[path.Join(path.Dir(cfgPath), rf)] == "" {
			t.Errorf("Prometheus rule file %s is not mounted beside its config", rf)
		}
	}
	ds := readYAML(t, "grafana/provisioning/datasources/prometheus.yml")
	if u, err := url.Parse(getStr(ds, "datasources", 0, "url")); err != nil || services[u.Hostname()] == nil || u.Port() != "9090" {
		t.Errorf("the Grafana datasource URL %q is not the prometheus service", getStr(ds, "datasources", 0, "url"))
	}
}

// dockerfileFinalCopies returns the destinations of COPY in the final stage.
func dockerfileFinalCopies(t *testing.T) map[string]bool {
	t.Helper()
	stages := dockerfileStages(t)
	out := map[string]bool{}
	for _, l := range stages[len(stages)-1].lines {
		if f := strings.Fields(l); len(f) >= 3 && f[0] == "COPY" {
			out[f[len(f)-1]] = true
		}
	}
	return out
}

type dockerStage struct {
	from, name string
	lines      []string
}

// dockerfileStages splits deploy/Dockerfile into stages, joining continued
// lines and resolving the ARG defaults in FROM.
func dockerfileStages(t *testing.T) []dockerStage {
	t.Helper()
	data, err := os.ReadFile("Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	text := strings.ReplaceAll(string(data), "\\\n", " ")
	args := map[string]string{}
	var stages []dockerStage
	for _, l := range strings.Split(text, "\n") {
		l = strings.TrimSpace(l)
		if l == "" || strings.HasPrefix(l, "#") {
			continue
		}
		f := strings.Fields(l)
		switch {
		case f[0] == "ARG" && len(stages) == 0:
			k, v, _ := strings.Cut(f[1], "=")
			args[k] = v
		case f[0] == "FROM":
			from := os.Expand(f[1], func(k string) string { return args[k] })
			s := dockerStage{from: from}
			if len(f) == 4 && strings.EqualFold(f[2], "AS") {
				s.name = f[3]
			}
			stages = append(stages, s)
		case len(stages) > 0:
			stages[len(stages)-1].lines = append(stages[len(stages)-1].lines, l)
		}
	}
	if len(stages) < 2 {
		t.Fatalf("Dockerfile has %d stages, want a multi-stage build", len(stages))
	}
	return stages
}

func TestDockerfile(t *testing.T) {
	stages := dockerfileStages(t)
	if !strings.HasPrefix(stages[0].from, "golang:1.26") {
		t.Errorf("builder image = %q, want golang:1.26", stages[0].from)
	}
	final := stages[len(stages)-1]
	if !strings.Contains(final.from, "distroless") && !strings.Contains(final.from, "slim") {
		t.Errorf("runtime image = %q, want distroless or debian-slim", final.from)
	}
	var user, entry, cmd string
	for _, l := range final.lines {
		f := strings.Fields(l)
		switch f[0] {
		case "USER":
			user = f[1]
		case "ENTRYPOINT":
			entry = strings.TrimSpace(strings.TrimPrefix(l, "ENTRYPOINT"))
		case "CMD":
			cmd = strings.TrimSpace(strings.TrimPrefix(l, "CMD"))
		}
	}
	uid, _, _ := strings.Cut(user, ":")
	if n, err := strconv.Atoi(uid); err != nil || n == 0 {
		t.Errorf("final USER = %q, want a numeric non-root uid (runAsNonRoot verifies numbers only)", user)
	} else {
		objs, _, _ := loadK8s(t)
		pod := getMap(findObj(t, objs, "Deployment"), "spec", "template", "spec")
		if getStr(pod, "securityContext", "runAsUser") != uid {
			t.Errorf("the Deployment's runAsUser %q is not the image's user %s", getStr(pod, "securityContext", "runAsUser"), uid)
		}
	}
	if !strings.Contains(entry, "/fieldvault\"") {
		t.Errorf("ENTRYPOINT %s is not the fieldvault binary", entry)
	}
	if !strings.Contains(cmd, `"serve"`) || !strings.Contains(cmd, `"0.0.0.0:8280"`) {
		t.Errorf("CMD %s is not serve on 0.0.0.0:8280", cmd)
	}
	build := strings.Join(stages[0].lines, "\n")
	for _, pkg := range []string{"./cmd/fieldvault", "./deploy/healthcheck"} {
		if !strings.Contains(build, pkg) {
			t.Errorf("the builder does not build %s", pkg)
		}
		if _, err := os.Stat(filepath.Join(repoRoot, pkg)); err != nil {
			t.Errorf("%s: %v", pkg, err)
		}
	}
	if !strings.Contains(build, "CGO_ENABLED=0") {
		t.Error("the builder does not disable cgo: the static runtime has no libc")
	}
}
