package kek_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fieldvault/fieldvault/keys/kek"
	"github.com/fieldvault/fieldvault/keys/kek/transittest"
)

// The deploy/vault artifacts are tested here, against transittest, which
// enforces HCL policies the way Vault does (paths, capabilities, and the
// encrypt existence check).

var deployDir = filepath.Join("..", "..", "deploy", "vault")

func readDeployFile(t *testing.T, name string) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(deployDir, name))
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

// checkServicePolicy checks, with a token holding only policy (no default
// policy), that the service can do its job and nothing more.
func checkServicePolicy(t *testing.T, s *transittest.Server, policy string, mayRotate bool) {
	t.Helper()
	ctx := context.Background()
	tok := s.CreateToken(transittest.TokenOptions{Policies: []string{policy}, NoDefaultPolicy: true, TTL: time.Hour, Renewable: true})
	cfg := transitConfig(s)
	cfg.Token = tok
	tr := newTransit(t, cfg)

	pt, aad := []byte("keyset"), []byte("aad")
	blob, err := tr.Wrap(ctx, pt, aad)
	if err != nil {
		t.Fatalf("%s: Wrap = %v", policy, err)
	}
	if _, err := tr.Unwrap(ctx, blob, aad); err != nil {
		t.Fatalf("%s: Unwrap = %v", policy, err)
	}
	if _, err := tr.Rewrap(ctx, blob); err != nil {
		t.Fatalf("%s: Rewrap = %v", policy, err)
	}
	err = tr.Rotate(ctx)
	switch {
	case mayRotate && err != nil:
		t.Fatalf("%s: Rotate = %v", policy, err)
	case !mayRotate && !errors.Is(err, kek.ErrPermissionDenied):
		t.Fatalf("%s: Rotate = %v, want ErrPermissionDenied", policy, err)
	}

	// Nothing beyond: no other key, no upsert, no config, no delete, no
	// export, no mounts, no policies.
	for _, c := range []struct{ method, path, body string }{
		{"POST", "/v1/transit/encrypt/other-key", `{"plaintext":"aGk="}`},
		{"POST", "/v1/transit/decrypt/other-key", `{"ciphertext":"vault:v1:AAAA"}`},
		{"GET", "/v1/transit/keys/other-key", ``},
		{"POST", "/v1/transit/keys/fieldvault", `{"type":"aes256-gcm96"}`},
		{"POST", "/v1/transit/keys/fieldvault/config", `{"min_decryption_version":1}`},
		{"DELETE", "/v1/transit/keys/fieldvault", ``},
		{"GET", "/v1/transit/export/encryption-key/fieldvault", ``},
		{"POST", "/v1/sys/mounts/other", `{"type":"transit"}`},
		{"PUT", "/v1/sys/policies/acl/" + policy, `{"policy":"path \"*\" {capabilities=[\"sudo\"]}"}`},
	} {
		req, _ := http.NewRequest(c.method, s.URL+c.path, strings.NewReader(c.body))
		req.Header.Set("X-Vault-Token", tok)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusForbidden {
			t.Errorf("%s: %s %s = %d, want 403", policy, c.method, c.path, resp.StatusCode)
		}
	}
}

func TestDeployPolicies(t *testing.T) {
	s := newTransitServer(t, transittest.Options{})
	if err := s.SetPolicy("fieldvault", readDeployFile(t, "fieldvault-policy.hcl")); err != nil {
		t.Fatalf("fieldvault-policy.hcl: %v", err)
	}
	if err := s.SetPolicy("fieldvault-security", readDeployFile(t, "fieldvault-security-policy.hcl")); err != nil {
		t.Fatalf("fieldvault-security-policy.hcl: %v", err)
	}
	t.Run("service", func(t *testing.T) { checkServicePolicy(t, s, "fieldvault", false) })
	t.Run("security", func(t *testing.T) { checkServicePolicy(t, s, "fieldvault-security", true) })

	// With the key gone, neither policy lets encrypt's upsert create it.
	t.Run("no upsert", func(t *testing.T) {
		for _, p := range []string{"fieldvault", "fieldvault-security"} {
			empty := transittest.New(t, transittest.Options{})
			src, _ := s.Policy(p)
			if err := empty.SetPolicy(p, src); err != nil {
				t.Fatal(err)
			}
			tok := empty.CreateToken(transittest.TokenOptions{Policies: []string{p}, NoDefaultPolicy: true})
			req, _ := http.NewRequest(http.MethodPost, empty.URL+"/v1/transit/encrypt/fieldvault", strings.NewReader(`{"plaintext":"aGk="}`))
			req.Header.Set("X-Vault-Token", tok)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusForbidden {
				t.Errorf("%s: encrypt to the missing key = %d, want 403 (the policy allows creating it)", p, resp.StatusCode)
			}
		}
	})
}

func TestDeploySetupScriptSyntax(t *testing.T) {
	bash, err := exec.LookPath("bash")
	if err != nil {
		t.Skip("no bash")
	}
	script := filepath.Join(deployDir, "setup.sh")
	if out, err := exec.Command(bash, "-n", script).CombinedOutput(); err != nil {
		t.Fatalf("bash -n setup.sh: %v\n%s", err, out)
	}
	fi, err := os.Stat(script)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm()&0o100 == 0 {
		t.Errorf("setup.sh is not executable (mode %v)", fi.Mode())
	}
	if sc, err := exec.LookPath("shellcheck"); err == nil {
		if out, err := exec.Command(sc, script).CombinedOutput(); err != nil {
			t.Fatalf("shellcheck setup.sh: %v\n%s", err, out)
		}
	} else {
		t.Log("shellcheck not installed; only bash -n was run")
	}
}

// runSetup runs setup.sh against s with extra environment.
func runSetup(t *testing.T, s *transittest.Server, env ...string) (string, error) {
	t.Helper()
	cmd := exec.Command("bash", filepath.Join(deployDir, "setup.sh"))
	cmd.Env = append([]string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir(), "VAULT_ADDR=" + s.URL, "VAULT_TOKEN=" + s.RootToken}, env...)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func TestDeploySetupScript(t *testing.T) {
	for _, tool := range []string{"bash", "curl"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("no %s", tool)
		}
	}
	ctx := context.Background()
	s := transittest.New(t, transittest.Options{NoMount: true})

	out, err := runSetup(t, s)
	if err != nil {
		t.Fatalf("setup.sh: %v\n%s", err, out)
	}
	for _, want := range []string{"enabled Transit at transit/", "created key transit/fieldvault", "deletion_allowed=false", "wrote policy fieldvault ", "wrote policy fieldvault-security", "token create"} {
		if !strings.Contains(out, want) {
			t.Errorf("setup.sh output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, s.RootToken) {
		t.Fatal("setup.sh printed the token")
	}

	// What it built: the key, its settings, the policies that work.
	tr := newTransit(t, transitConfig(s))
	blob, err := tr.Wrap(ctx, []byte("x"), nil)
	if err != nil {
		t.Fatal(err)
	}
	keyInfo := getJSON(t, s, "/v1/transit/keys/fieldvault")
	for _, want := range []string{`"type":"aes256-gcm96"`, `"exportable":false`, `"deletion_allowed":false`, `"allow_plaintext_backup":false`, `"latest_version":1`} {
		if !strings.Contains(keyInfo, want) {
			t.Errorf("key after setup.sh lacks %s: %s", want, keyInfo)
		}
	}
	t.Run("service policy", func(t *testing.T) { checkServicePolicy(t, s, "fieldvault", false) })
	t.Run("security policy", func(t *testing.T) { checkServicePolicy(t, s, "fieldvault-security", true) })

	// Idempotent: a second run changes nothing and the key is not replaced.
	out, err = runSetup(t, s)
	if err != nil {
		t.Fatalf("second setup.sh: %v\n%s", err, out)
	}
	if !strings.Contains(out, "already enabled") || !strings.Contains(out, "already exists") {
		t.Errorf("second run output:\n%s", out)
	}
	if _, err := tr.Unwrap(ctx, blob, nil); err != nil {
		t.Fatalf("blob made before the second run: %v", err)
	}

	// Other names: the policies follow.
	out, err = runSetup(t, s, "FIELDVAULT_TRANSIT_MOUNT=kek/transit", "FIELDVAULT_TRANSIT_KEY=svc-kek", "FIELDVAULT_POLICY=svc")
	if err != nil {
		t.Fatalf("setup.sh with other names: %v\n%s", err, out)
	}
	src, ok := s.Policy("svc")
	if !ok || !strings.Contains(src, `path "kek/transit/encrypt/svc-kek"`) || strings.Contains(src, `path "transit/`) {
		t.Fatalf("policy svc was not rendered for kek/transit/svc-kek:\n%s", src)
	}
	cfg := transitConfig(s)
	cfg.Mount, cfg.Key = "kek/transit", "svc-kek"
	cfg.Token = s.CreateToken(transittest.TokenOptions{Policies: []string{"svc"}, NoDefaultPolicy: true})
	if _, err := newTransit(t, cfg).Wrap(ctx, []byte("x"), nil); err != nil {
		t.Fatalf("Wrap with the rendered policy: %v", err)
	}

	// Refusals.
	if out, err := runSetup(t, s, "FIELDVAULT_TRANSIT_KEY=bad/name"); err == nil || !strings.Contains(out, "invalid Transit key name") {
		t.Errorf("setup.sh with a bad key name: %v\n%s", err, out)
	}
	wrong := exec.Command("bash", filepath.Join(deployDir, "setup.sh"))
	wrong.Env = []string{"PATH=" + os.Getenv("PATH"), "VAULT_ADDR=" + s.URL, "VAULT_TOKEN=hvs.wrong"}
	if out, err := wrong.CombinedOutput(); err == nil || !strings.Contains(string(out), "refused VAULT_TOKEN") || strings.Contains(string(out), "hvs.wrong") {
		t.Errorf("setup.sh with a wrong token: %v\n%s", err, out)
	}
	s.Seal()
	if out, err := runSetup(t, s); err == nil || !strings.Contains(out, "sealed") {
		t.Errorf("setup.sh against a sealed Vault: %v\n%s", err, out)
	}
}

func getJSON(t *testing.T, s *transittest.Server, path string) string {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, s.URL+path, nil)
	req.Header.Set("X-Vault-Token", s.RootToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}
