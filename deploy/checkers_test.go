package deploy

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"go.yaml.in/yaml/v3"
)

// Real checkers run when they are installed. Each missing one is reported as
// a SKIP naming the tool, and the test's final log line lists what ran. Set
// FIELDVAULT_DEPLOY_REQUIRE (comma-separated: promtool,shellcheck,kustomize)
// to make a missing tool a failure.

var (
	checkersMu  sync.Mutex
	checkersRan []string
	checkersNot []string
)

// tool returns the path of a checker, or skips (fails when required).
func tool(t *testing.T, name, install string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	checkersMu.Lock()
	defer checkersMu.Unlock()
	if err != nil {
		checkersNot = append(checkersNot, t.Name())
		for _, r := range strings.Split(os.Getenv("FIELDVAULT_DEPLOY_REQUIRE"), ",") {
			if strings.TrimSpace(r) == name {
				t.Fatalf("%s is required (FIELDVAULT_DEPLOY_REQUIRE) but not installed: %s", name, install)
			}
		}
		t.Skipf("NOT RUN: %s is not installed (%s)", name, install)
	}
	checkersRan = append(checkersRan, t.Name())
	return p
}

func run(t *testing.T, dir, name string, args ...string) string {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", filepath.Base(name), strings.Join(args, " "), err, out)
	}
	return string(out)
}

func TestCheckers(t *testing.T) {
	t.Cleanup(func() {
		t.Logf("real checkers run: %s", strings.Join(checkersRan, ", "))
		if len(checkersNot) > 0 {
			t.Logf("real checkers NOT run (tool missing): %s", strings.Join(checkersNot, ", "))
		}
	})
	scripts := filesUnder(t, ".", ".sh")
	if len(scripts) < 2 {
		t.Fatalf("found %d shell scripts, want vault/setup.sh and compose/vault-init.sh at least", len(scripts))
	}

	t.Run("bash -n", func(t *testing.T) {
		bash := tool(t, "bash", "apt-get install bash")
		for _, s := range scripts {
			run(t, ".", bash, "-n", s)
		}
	})
	t.Run("shellcheck", func(t *testing.T) {
		sc := tool(t, "shellcheck", "apt-get install shellcheck")
		run(t, ".", sc, append([]string{"--shell=bash", "--severity=style"}, scripts...)...)
	})
	t.Run("promtool check rules", func(t *testing.T) {
		pt := tool(t, "promtool", "apt-get install prometheus")
		run(t, ".", pt, "check", "rules", "prometheus/rules.yml")
	})
	t.Run("promtool check config", func(t *testing.T) {
		pt := tool(t, "promtool", "apt-get install prometheus")
		run(t, "prometheus", pt, "check", "config", "prometheus.yml")
	})
	t.Run("promtool check config kubernetes", func(t *testing.T) {
		pt := tool(t, "promtool", "apt-get install prometheus")
		// Some distribution builds of promtool (Debian's) leave out
		// Kubernetes service discovery. Then the rest of the file is
		// checked with static targets in its place, and the discovery
		// block is checked here.
		cfg := readYAML(t, "prometheus/prometheus-kubernetes.yml")
		dir := t.TempDir()
		copyFile(t, "prometheus/rules.yml", filepath.Join(dir, "rules.yml"))
		writeYAML(t, filepath.Join(dir, "prometheus.yml"), cfg)
		cmd := exec.Command(pt, "check", "config", "prometheus.yml")
		cmd.Dir = dir
		out, err := cmd.CombinedOutput()
		if err == nil {
			return
		}
		if !strings.Contains(string(out), "field kubernetes_sd_configs not found") {
			t.Fatalf("promtool check config prometheus-kubernetes.yml: %v\n%s", err, out)
		}
		t.Logf("this promtool has no Kubernetes discovery: checking the rest with static targets")
		for _, sc := range getList(cfg, "scrape_configs") {
			m := getMap(sc)
			sds := getList(m, "kubernetes_sd_configs")
			if len(sds) == 0 {
				continue
			}
			for _, sd := range sds {
				if r := getStr(sd, "role"); !slices.Contains([]string{"pod", "endpoints", "endpointslice", "service"}, r) {
					t.Errorf("kubernetes_sd_configs role %q", r)
				}
			}
			delete(m, "kubernetes_sd_configs")
			m["static_configs"] = []any{map[string]any{"targets": []any{"fieldvault.fieldvault.svc:8280"}}}
		}
		writeYAML(t, filepath.Join(dir, "prometheus.yml"), cfg)
		run(t, dir, pt, "check", "config", "prometheus.yml")
	})
	t.Run("promtool test rules", func(t *testing.T) {
		pt := tool(t, "promtool", "apt-get install prometheus")
		// rules_test.yml pins what fires, when and with which labels; the
		// annotations' wording is left out of the comparison.
		rules := readYAML(t, "prometheus/rules.yml")
		for _, g := range getList(rules, "groups") {
			for _, r := range getList(g, "rules") {
				delete(getMap(r), "annotations")
			}
		}
		dir := t.TempDir()
		writeYAML(t, filepath.Join(dir, "rules.yml"), rules)
		copyFile(t, "prometheus/rules_test.yml", filepath.Join(dir, "rules_test.yml"))
		out := run(t, dir, pt, "test", "rules", "rules_test.yml")
		if !strings.Contains(out, "SUCCESS") {
			t.Fatalf("promtool test rules did not report SUCCESS:\n%s", out)
		}
		tests := getList(readYAML(t, "prometheus/rules_test.yml"), "tests")
		tested := map[string]bool{}
		for _, tc := range tests {
			for _, at := range getList(tc, "alert_rule_test") {
				if len(getList(at, "exp_alerts")) > 0 {
					tested[getStr(at, "alertname")] = true
				}
			}
		}
		for _, g := range getList(rules, "groups") {
			for _, r := range getList(g, "rules") {
				if a := getStr(r, "alert"); a != "" && !tested[a] {
					t.Errorf("rules_test.yml never expects %s to fire", a)
				}
			}
		}
	})
	t.Run("kustomize build", func(t *testing.T) {
		kz := tool(t, "kustomize", "go install sigs.k8s.io/kustomize/kustomize/v5@v5.7.1")
		out := run(t, ".", kz, "build", "k8s")
		docs, err := decodeYAMLDocs([]byte(out))
		if err != nil {
			t.Fatal(err)
		}
		objs, kust, _ := loadK8s(t)
		if len(docs) != len(objs) {
			t.Errorf("kustomize built %d objects from %d manifests", len(docs), len(objs))
		}
		for _, d := range docs {
			if getStr(d, "kind") == "Namespace" {
				continue
			}
			if ns := getStr(d, "metadata", "namespace"); ns != getStr(kust, "namespace") {
				t.Errorf("%s/%s built into namespace %q", getStr(d, "kind"), getStr(d, "metadata", "name"), ns)
			}
		}
	})
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	data, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

func writeYAML(t *testing.T, path string, v any) {
	t.Helper()
	data, err := yaml.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
}
