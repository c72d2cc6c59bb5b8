package kek_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	vaultapi "github.com/hashicorp/vault/api"

	"github.com/fieldvault/fieldvault/keys/kek"
	"github.com/fieldvault/fieldvault/keys/kek/kektest"
	"github.com/fieldvault/fieldvault/keys/kek/transittest"
)

const testKey = "fieldvault"

// newTransitServer starts a test server with the KEK's key created.
func newTransitServer(t testing.TB, opts transittest.Options) *transittest.Server {
	t.Helper()
	s := transittest.New(t, opts)
	if err := s.CreateKey(transittest.DefaultMount, testKey); err != nil {
		t.Fatal(err)
	}
	return s
}

// transitConfig is a config for s: root token, no retries, short timeout.
func transitConfig(s *transittest.Server) kek.TransitConfig {
	return kek.TransitConfig{Address: s.URL, Token: s.RootToken, Key: testKey, MaxRetries: -1, Timeout: 5 * time.Second}
}

func newTransit(t testing.TB, cfg kek.TransitConfig) *kek.Transit {
	t.Helper()
	tr, err := kek.NewTransit(context.Background(), cfg)
	if err != nil {
		t.Fatalf("NewTransit = %v", err)
	}
	t.Cleanup(func() { tr.Close() })
	return tr
}

// clearVaultEnv keeps a developer's VAULT_* settings out of a test.
func clearVaultEnv(t *testing.T) {
	for _, k := range []string{"VAULT_ADDR", "VAULT_TOKEN", "VAULT_NAMESPACE", "VAULT_CACERT", "VAULT_SKIP_VERIFY"} {
		t.Setenv(k, "")
	}
}

func TestTransitConformance(t *testing.T) {
	s := newTransitServer(t, transittest.Options{})
	kektest.Run(t, func(t *testing.T) kek.KEK { return newTransit(t, transitConfig(s)) })
}

// TestTransitConformanceRealVault runs the suite against a real Vault or
// OpenBao when VAULT_ADDR and VAULT_TOKEN are set; see the package
// documentation, "Testing against a real Vault".
func TestTransitConformanceRealVault(t *testing.T) {
	addr, token := os.Getenv("VAULT_ADDR"), os.Getenv("VAULT_TOKEN")
	if addr == "" || token == "" {
		t.Skip("VAULT_ADDR and VAULT_TOKEN are not set")
	}
	mount := envOr("FIELDVAULT_TEST_TRANSIT_MOUNT", "transit")
	key := envOr("FIELDVAULT_TEST_TRANSIT_KEY", "fieldvault-kektest")
	insecure, _ := strconv.ParseBool(os.Getenv("VAULT_SKIP_VERIFY"))
	cfg := kek.TransitConfig{
		Address: addr, Token: token, Namespace: os.Getenv("VAULT_NAMESPACE"),
		Mount: mount, Key: key, CACert: os.Getenv("VAULT_CACERT"), Insecure: insecure,
	}
	ensureRealVaultKey(t, cfg)
	kektest.Run(t, func(t *testing.T) kek.KEK { return newTransit(t, cfg) })
}

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

// ensureRealVaultKey enables the mount and creates the key if needed.
func ensureRealVaultKey(t *testing.T, cfg kek.TransitConfig) {
	t.Helper()
	vc := vaultapi.DefaultConfig()
	if vc.Error != nil {
		t.Fatal(vc.Error)
	}
	vc.Address = cfg.Address
	c, err := vaultapi.NewClient(vc)
	if err != nil {
		t.Fatal(err)
	}
	c.SetToken(cfg.Token)
	if cfg.Namespace != "" {
		c.SetNamespace(cfg.Namespace)
	}
	ctx := context.Background()
	if _, err := c.Sys().GetMountWithContext(ctx, cfg.Mount); err != nil {
		if err := c.Sys().MountWithContext(ctx, cfg.Mount, &vaultapi.MountInput{Type: "transit"}); err != nil {
			t.Fatalf("enabling Transit at %s: %v", cfg.Mount, err)
		}
	}
	if _, err := c.Logical().WriteWithContext(ctx, cfg.Mount+"/keys/"+cfg.Key, map[string]any{"type": "aes256-gcm96"}); err != nil {
		t.Fatalf("creating key %s/%s: %v", cfg.Mount, cfg.Key, err)
	}
}

// assertNamesVault checks the error names Vault and the address and leaks
// neither the token nor any of the secrets.
func assertNamesVault(t *testing.T, err error, addr string, secrets ...string) {
	t.Helper()
	msg := err.Error()
	if !strings.Contains(msg, "vault at "+addr) {
		t.Errorf("error %q does not name Vault at %s", msg, addr)
	}
	for _, s := range secrets {
		if s != "" && strings.Contains(msg, s) {
			t.Errorf("error %q contains a secret", msg)
		}
	}
}

func TestTransitMissingKeyAtStart(t *testing.T) {
	s := transittest.New(t, transittest.Options{})
	_, err := kek.NewTransit(context.Background(), transitConfig(s))
	if !errors.Is(err, kek.ErrKeyNotFound) {
		t.Fatalf("NewTransit without the key = %v, want ErrKeyNotFound", err)
	}
	assertNamesVault(t, err, s.URL, s.RootToken)
	if !strings.Contains(err.Error(), "deploy/vault/setup.sh") {
		t.Errorf("error %q lacks the setup.sh hint", err)
	}
	// It must not have created the key through encrypt's upsert.
	if n := s.Calls("/v1/transit/encrypt/" + testKey); n != 0 {
		t.Errorf("NewTransit called encrypt %d times", n)
	}
	if _, err := kek.NewTransit(context.Background(), transitConfig(s)); !errors.Is(err, kek.ErrKeyNotFound) {
		t.Fatalf("second NewTransit = %v; the key appeared", err)
	}

	noMount := transittest.New(t, transittest.Options{NoMount: true})
	if _, err := kek.NewTransit(context.Background(), transitConfig(noMount)); !errors.Is(err, kek.ErrKeyNotFound) {
		t.Fatalf("NewTransit without the mount = %v, want ErrKeyNotFound", err)
	}
}

func TestTransitPermissionDenied(t *testing.T) {
	ctx := context.Background()
	s := newTransitServer(t, transittest.Options{})

	cfg := transitConfig(s)
	cfg.Token = "hvs.wrong-token-0123456789"
	_, err := kek.NewTransit(ctx, cfg)
	if !errors.Is(err, kek.ErrPermissionDenied) {
		t.Fatalf("NewTransit with a wrong token = %v, want ErrPermissionDenied", err)
	}
	assertNamesVault(t, err, s.URL, cfg.Token)

	// A token that may encrypt but not decrypt.
	if err := s.SetPolicy("encrypt-only", `
path "transit/encrypt/fieldvault" { capabilities = ["update"] }
path "transit/keys/fieldvault"    { capabilities = ["read"] }
`); err != nil {
		t.Fatal(err)
	}
	cfg.Token = s.CreateToken(transittest.TokenOptions{Policies: []string{"encrypt-only"}})
	tr := newTransit(t, cfg)
	pt := []byte("keyset-plaintext-for-denial")
	blob, err := tr.Wrap(ctx, pt, nil)
	if err != nil {
		t.Fatal(err)
	}
	_, err = tr.Unwrap(ctx, blob, nil)
	if !errors.Is(err, kek.ErrPermissionDenied) {
		t.Fatalf("Unwrap without decrypt rights = %v, want ErrPermissionDenied", err)
	}
	assertNamesVault(t, err, s.URL, cfg.Token, string(pt))
	if err := tr.Rotate(ctx); !errors.Is(err, kek.ErrPermissionDenied) {
		t.Fatalf("Rotate without rights = %v, want ErrPermissionDenied", err)
	}
	// A revoked token.
	s.RevokeToken(cfg.Token)
	if _, err := tr.Wrap(ctx, pt, nil); !errors.Is(err, kek.ErrPermissionDenied) {
		t.Fatalf("Wrap with a revoked token = %v, want ErrPermissionDenied", err)
	}
}

func TestTransitSealed(t *testing.T) {
	ctx := context.Background()
	s := newTransitServer(t, transittest.Options{})
	tr := newTransit(t, transitConfig(s))
	pt := []byte("sealed-vault-plaintext")
	blob, err := tr.Wrap(ctx, pt, nil)
	if err != nil {
		t.Fatal(err)
	}

	s.Seal()
	_, err = tr.Wrap(ctx, pt, nil)
	if !errors.Is(err, kek.ErrUnavailable) {
		t.Fatalf("Wrap while sealed = %v, want ErrUnavailable", err)
	}
	assertNamesVault(t, err, s.URL, s.RootToken, string(pt))
	if !strings.Contains(err.Error(), "Vault is sealed") {
		t.Errorf("error %q does not say Vault is sealed", err)
	}
	if _, err := tr.Unwrap(ctx, blob, nil); !errors.Is(err, kek.ErrUnavailable) {
		t.Fatalf("Unwrap while sealed = %v, want ErrUnavailable", err)
	}
	if _, err := kek.NewTransit(ctx, transitConfig(s)); !errors.Is(err, kek.ErrUnavailable) {
		t.Fatalf("NewTransit while sealed = %v, want ErrUnavailable", err)
	}

	s.Unseal()
	got, err := tr.Unwrap(ctx, blob, nil)
	if err != nil || !bytes.Equal(got, pt) {
		t.Fatalf("Unwrap after unseal = %q, %v", got, err)
	}
}

func TestTransitOutageAndRecovery(t *testing.T) {
	ctx := context.Background()
	s := newTransitServer(t, transittest.Options{})
	tr := newTransit(t, transitConfig(s))
	pt := []byte("outage-plaintext")
	blob, err := tr.Wrap(ctx, pt, nil)
	if err != nil {
		t.Fatal(err)
	}

	s.Stop()
	_, err = tr.Unwrap(ctx, blob, nil)
	if !errors.Is(err, kek.ErrUnavailable) {
		t.Fatalf("Unwrap during an outage = %v, want ErrUnavailable", err)
	}
	assertNamesVault(t, err, s.URL, s.RootToken, string(pt))
	// A connection kept alive from before gives EOF; a new one is refused.
	if msg := err.Error(); !strings.Contains(msg, "connection refused") && !strings.Contains(msg, "EOF") && !strings.Contains(msg, "connection reset") {
		t.Errorf("error %q does not say why", err)
	}
	if _, err := kek.NewTransit(ctx, transitConfig(s)); !errors.Is(err, kek.ErrUnavailable) {
		t.Fatalf("NewTransit during an outage = %v, want ErrUnavailable", err)
	}

	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	if got, err := tr.Unwrap(ctx, blob, nil); err != nil || !bytes.Equal(got, pt) {
		t.Fatalf("Unwrap after recovery = %q, %v", got, err)
	}
	if _, err := tr.Wrap(ctx, pt, nil); err != nil {
		t.Fatalf("Wrap after recovery = %v", err)
	}
}

// With retries on (the default), a short outage is ridden out.
func TestTransitRetriesRideOutShortOutage(t *testing.T) {
	if testing.Short() {
		t.Skip("waits for Vault's client backoff (1 s)")
	}
	ctx := context.Background()
	s := newTransitServer(t, transittest.Options{})
	cfg := transitConfig(s)
	cfg.MaxRetries = 0 // the default: 2 retries
	tr := newTransit(t, cfg)
	s.Stop()
	restarted := make(chan error, 1)
	go func() {
		time.Sleep(300 * time.Millisecond)
		restarted <- s.Start()
	}()
	if _, err := tr.Wrap(ctx, []byte("x"), nil); err != nil {
		t.Fatalf("Wrap across a 300 ms outage = %v", err)
	}
	if err := <-restarted; err != nil {
		t.Fatal(err)
	}
}

func TestTransitTimeout(t *testing.T) {
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		<-r.Context().Done() // hang until the client gives up
	}))
	defer slow.Close()
	cfg := kek.TransitConfig{Address: slow.URL, Token: "hvs.x", MaxRetries: -1, Timeout: 200 * time.Millisecond}
	start := time.Now()
	_, err := kek.NewTransit(context.Background(), cfg)
	if !errors.Is(err, kek.ErrUnavailable) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("NewTransit against a hung server = %v, want ErrUnavailable and DeadlineExceeded", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("Timeout 200ms took %v", d)
	}
}

func TestTransitTokenRenewal(t *testing.T) {
	ctx := context.Background()
	s := newTransitServer(t, transittest.Options{})
	var logs syncBuffer
	cfg := transitConfig(s)
	cfg.Token = s.CreateToken(transittest.TokenOptions{Policies: []string{"root"}, TTL: 2 * time.Second, Renewable: true})
	cfg.Logger = slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	tr := newTransit(t, cfg)

	// Past the original TTL: without renewal the token would be gone.
	time.Sleep(3500 * time.Millisecond)
	renewals := s.Calls("/v1/auth/token/renew-self")
	if renewals < 2 {
		t.Fatalf("%d renewals in 3.5 s of a 2 s token, want at least 2", renewals)
	}
	if _, err := tr.Wrap(ctx, []byte("still alive"), nil); err != nil {
		t.Fatalf("Wrap after the original TTL = %v; renewal did not keep the token alive", err)
	}
	if !strings.Contains(logs.String(), "token renewed") {
		t.Errorf("no renewal logged: %s", logs.String())
	}
	if strings.Contains(logs.String(), cfg.Token) {
		t.Fatalf("the token appears in the log: %s", logs.String())
	}

	tr.Close()
	after := s.Calls("/v1/auth/token/renew-self")
	time.Sleep(2 * time.Second)
	if n := s.Calls("/v1/auth/token/renew-self"); n != after {
		t.Errorf("%d renewals after Close", n-after)
	}
	if _, err := tr.Wrap(ctx, []byte("x"), nil); err == nil {
		t.Error("Wrap after Close succeeded")
	}
}

func TestTransitNoRenewalForNonRenewableToken(t *testing.T) {
	s := newTransitServer(t, transittest.Options{})
	cfg := transitConfig(s)
	cfg.Token = s.CreateToken(transittest.TokenOptions{Policies: []string{"root"}, TTL: time.Second})
	newTransit(t, cfg)
	time.Sleep(1200 * time.Millisecond)
	if n := s.Calls("/v1/auth/token/renew-self"); n != 0 {
		t.Fatalf("%d renewals of a non-renewable token", n)
	}
}

func TestTransitTokenFileReloaded(t *testing.T) {
	ctx := context.Background()
	s := newTransitServer(t, transittest.Options{})
	first := s.CreateToken(transittest.TokenOptions{Policies: []string{"root"}})
	file := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(file, []byte(first+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := transitConfig(s)
	cfg.Token, cfg.TokenFile = "", file
	tr := newTransit(t, cfg)
	if _, err := tr.Wrap(ctx, []byte("x"), nil); err != nil {
		t.Fatal(err)
	}
	// The agent re-authenticates: a new token in the file, the old revoked.
	second := s.CreateToken(transittest.TokenOptions{Policies: []string{"root"}})
	if err := os.WriteFile(file, []byte(second), 0o600); err != nil {
		t.Fatal(err)
	}
	s.RevokeToken(first)
	if _, err := tr.Wrap(ctx, []byte("x"), nil); err != nil {
		t.Fatalf("Wrap after the token file changed = %v", err)
	}
	// No usable token anywhere: denied, and the error quotes neither.
	s.RevokeToken(second)
	_, err := tr.Wrap(ctx, []byte("x"), nil)
	if !errors.Is(err, kek.ErrPermissionDenied) {
		t.Fatalf("Wrap with a revoked token file = %v", err)
	}
	assertNamesVault(t, err, s.URL, first, second)

	cfg.TokenFile = filepath.Join(t.TempDir(), "missing")
	if _, err := kek.NewTransit(ctx, cfg); err == nil || !strings.Contains(err.Error(), cfg.TokenFile) {
		t.Fatalf("NewTransit with a missing token file = %v, want an error naming it", err)
	}
}

func TestTransitRewrapMovesToNewVersion(t *testing.T) {
	ctx := context.Background()
	s := newTransitServer(t, transittest.Options{})
	tr := newTransit(t, transitConfig(s))
	pt, aad := []byte("keyset bytes"), []byte("fieldvault/keyset/v1/aead/health")
	old, err := tr.Wrap(ctx, pt, aad)
	if err != nil {
		t.Fatal(err)
	}
	if err := tr.Rotate(ctx); err != nil {
		t.Fatal(err)
	}
	moved, err := tr.Rewrap(ctx, old)
	if err != nil {
		t.Fatal(err)
	}
	if v, _ := tr.WrappedVersion(old); v != 1 {
		t.Fatalf("old blob version %d, want 1", v)
	}
	if v, _ := tr.WrappedVersion(moved); v != 2 {
		t.Fatalf("rewrapped blob version %d, want 2", v)
	}
	if got, err := tr.Unwrap(ctx, moved, aad); err != nil || !bytes.Equal(got, pt) {
		t.Fatalf("Unwrap(rewrapped) = %q, %v", got, err)
	}
	// Retire version 1, as an operator would once the rewrap job is done.
	req, _ := http.NewRequest(http.MethodPost, s.URL+"/v1/transit/keys/"+testKey+"/config", strings.NewReader(`{"min_decryption_version":2}`))
	req.Header.Set("X-Vault-Token", s.RootToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("config: %v %v", resp, err)
	}
	resp.Body.Close()
	_, err = tr.Unwrap(ctx, old, aad)
	if !errors.Is(err, kek.ErrInvalidCiphertext) || !strings.Contains(err.Error(), "too old") {
		t.Fatalf("Unwrap(retired version) = %v, want ErrInvalidCiphertext saying too old", err)
	}
	if _, err := tr.Unwrap(ctx, moved, aad); err != nil {
		t.Fatalf("Unwrap(rewrapped) after retiring v1 = %v", err)
	}
}

// The blob is a Transit ciphertext of SHA-256(aad) || plaintext, so that
// the vault CLI can inspect it and aad is bound although Transit ignores
// context for non-derived keys.
func TestTransitBlobFormat(t *testing.T) {
	ctx := context.Background()
	s := newTransitServer(t, transittest.Options{})
	tr := newTransit(t, transitConfig(s))
	pt, aad := []byte("plaintext"), []byte("aad")
	blob, err := tr.Wrap(ctx, pt, aad)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(string(blob), "vault:v1:") {
		t.Fatalf("blob %q is not a Transit ciphertext", blob)
	}
	body, _ := json.Marshal(map[string]string{"ciphertext": string(blob)})
	req, _ := http.NewRequest(http.MethodPost, s.URL+"/v1/transit/decrypt/"+testKey, bytes.NewReader(body))
	req.Header.Set("X-Vault-Token", s.RootToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out struct {
		Data struct {
			Plaintext string `json:"plaintext"`
		} `json:"data"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		t.Fatal(err)
	}
	digest := sha256.Sum256(aad)
	want := base64.StdEncoding.EncodeToString(append(digest[:], pt...))
	if out.Data.Plaintext != want {
		t.Fatalf("Transit holds %s, want SHA-256(aad) || plaintext = %s", out.Data.Plaintext, want)
	}
}

func TestTransitTLS(t *testing.T) {
	ctx := context.Background()
	s := newTransitServer(t, transittest.Options{TLS: true})
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	pemBytes := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: s.Certificate().Raw})
	if err := os.WriteFile(caFile, pemBytes, 0o600); err != nil {
		t.Fatal(err)
	}

	cfg := transitConfig(s)
	cfg.CACert = caFile
	tr := newTransit(t, cfg)
	blob, err := tr.Wrap(ctx, []byte("over TLS"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := tr.Unwrap(ctx, blob, nil); err != nil || string(got) != "over TLS" {
		t.Fatalf("Unwrap over TLS = %q, %v", got, err)
	}

	// httptest's certificate is valid for example.com and 127.0.0.1.
	cfg.ServerName = "example.com"
	newTransit(t, cfg)

	cfg.ServerName = "vault.wrong.example"
	_, err = kek.NewTransit(ctx, cfg)
	if err == nil || errors.Is(err, kek.ErrUnavailable) || !strings.Contains(err.Error(), "TLS certificate verification failed") {
		t.Fatalf("NewTransit with a wrong ServerName = %v, want a TLS verification error (not ErrUnavailable)", err)
	}

	noCA := transitConfig(s)
	_, err = kek.NewTransit(ctx, noCA)
	if err == nil || !strings.Contains(err.Error(), "TLS certificate verification failed") {
		t.Fatalf("NewTransit without the CA = %v, want a TLS verification error", err)
	}
	assertNamesVault(t, err, s.URL, s.RootToken)

	var logs syncBuffer
	insecure := transitConfig(s)
	insecure.Insecure = true
	insecure.Logger = slog.New(slog.NewTextHandler(&logs, nil))
	newTransit(t, insecure)
	if !strings.Contains(logs.String(), "verification is disabled") {
		t.Errorf("Insecure logged no warning: %q", logs.String())
	}

	badCA := transitConfig(s)
	badCA.CACert = filepath.Join(t.TempDir(), "missing.pem")
	if _, err := kek.NewTransit(ctx, badCA); err == nil || !strings.Contains(err.Error(), "TLS configuration") {
		t.Fatalf("NewTransit with a missing CA file = %v", err)
	}
}

func TestTransitConfigValidation(t *testing.T) {
	clearVaultEnv(t)
	ctx := context.Background()
	const password = "hunter2-secret"
	for name, c := range map[string]struct {
		cfg  kek.TransitConfig
		want string
	}{
		"no address":          {kek.TransitConfig{Token: "t"}, "no Vault address"},
		"bad scheme":          {kek.TransitConfig{Address: "ftp://vault:8200", Token: "t"}, "http:// or https://"},
		"no host":             {kek.TransitConfig{Address: "https://", Token: "t"}, "http:// or https://"},
		"credentials in URL":  {kek.TransitConfig{Address: "https://admin:" + password + "@vault:8200", Token: "t"}, "must not contain credentials"},
		"query":               {kek.TransitConfig{Address: "https://vault:8200/?token=" + password, Token: "t"}, "query"},
		"token and file":      {kek.TransitConfig{Address: "https://vault:8200", Token: "t", TokenFile: "/f"}, "not both"},
		"TLS options on http": {kek.TransitConfig{Address: "http://vault:8200", Token: "t", CACert: "/ca.pem"}, "plain http"},
		"client cert alone":   {kek.TransitConfig{Address: "https://vault:8200", Token: "t", ClientCert: "/c.pem"}, "together"},
		"bad mount":           {kek.TransitConfig{Address: "https://vault:8200", Token: "t", Mount: "a/../b"}, "invalid Transit mount"},
		"bad key":             {kek.TransitConfig{Address: "https://vault:8200", Token: "t", Key: "a/b"}, "invalid Transit key name"},
		"no token":            {kek.TransitConfig{Address: "https://vault:8200"}, "no Vault token"},
		"token with newline":  {kek.TransitConfig{Address: "https://vault:8200", Token: "ab\ncd" + password}, "control characters"},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := kek.NewTransit(ctx, c.cfg)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("NewTransit = %v, want an error containing %q", err, c.want)
			}
			if strings.Contains(err.Error(), password) {
				t.Fatalf("error %q contains a secret", err)
			}
		})
	}
}

func TestTransitEnvironmentFallback(t *testing.T) {
	clearVaultEnv(t)
	s := newTransitServer(t, transittest.Options{})
	t.Setenv("VAULT_ADDR", s.URL)
	t.Setenv("VAULT_TOKEN", s.RootToken)
	tr := newTransit(t, kek.TransitConfig{Key: testKey})
	if _, err := tr.Wrap(context.Background(), []byte("x"), nil); err != nil {
		t.Fatal(err)
	}
	// An explicit token wins over VAULT_TOKEN.
	t.Setenv("VAULT_TOKEN", "hvs.stale")
	newTransit(t, kek.TransitConfig{Token: s.RootToken, Key: testKey})
}

func TestTransitPrintsNoToken(t *testing.T) {
	s := newTransitServer(t, transittest.Options{})
	tr := newTransit(t, transitConfig(s))
	var logged bytes.Buffer
	slog.New(slog.NewJSONHandler(&logged, nil)).Info("kek", "kek", tr)
	for _, p := range []string{fmt.Sprint(tr), fmt.Sprintf("%+v %#v %s %x %d", tr, tr, tr, tr, tr), logged.String()} {
		if strings.Contains(p, s.RootToken) {
			t.Fatalf("printed form contains the token: %q", p)
		}
		if !strings.Contains(p, "transit") {
			t.Errorf("printed form %q does not describe the KEK", p)
		}
	}
}

// fakeVault answers lookup-self and the key read with canned bodies, and
// everything else with handler.
func fakeVault(t *testing.T, keyJSON string, handler http.HandlerFunc) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/v1/auth/token/lookup-self":
			fmt.Fprint(w, `{"data":{"renewable":false,"ttl":0}}`)
		case "/v1/transit/keys/fieldvault":
			fmt.Fprint(w, keyJSON)
		default:
			handler(w, r)
		}
	}))
	t.Cleanup(srv.Close)
	return srv
}

const goodKey = `{"data":{"type":"aes256-gcm96","derived":false,"supports_encryption":true,"supports_decryption":true,"latest_version":1}}`

func TestTransitRefusesUnsuitableKey(t *testing.T) {
	for name, keyJSON := range map[string]string{
		"derived": `{"data":{"type":"aes256-gcm96","derived":true,"supports_encryption":true,"supports_decryption":true}}`,
		"signing": `{"data":{"type":"ed25519","derived":false,"supports_encryption":false,"supports_decryption":false}}`,
		"rsa":     `{"data":{"type":"rsa-4096","derived":false,"supports_encryption":true,"supports_decryption":true}}`,
		"no data": `{"data":null}`,
		"garbage": `not json`,
		"typed":   `{"data":{"type":42}}`,
	} {
		t.Run(name, func(t *testing.T) {
			srv := fakeVault(t, keyJSON, nil)
			_, err := kek.NewTransit(context.Background(), kek.TransitConfig{Address: srv.URL, Token: "hvs.x", MaxRetries: -1})
			if err == nil {
				t.Fatal("NewTransit accepted the key")
			}
			assertNamesVault(t, err, srv.URL, "hvs.x")
		})
	}
}

func TestTransitMalformedResponses(t *testing.T) {
	ctx := context.Background()
	var body string
	var status int
	var namespace string
	var mu sync.Mutex
	srv := fakeVault(t, goodKey, func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		namespace = r.Header.Get("X-Vault-Namespace")
		w.WriteHeader(status)
		fmt.Fprint(w, body)
	})
	tr := newTransit(t, kek.TransitConfig{Address: srv.URL, Token: "hvs.x", MaxRetries: -1, Namespace: "team-a"})
	blob := []byte("vault:v1:" + base64.StdEncoding.EncodeToString(make([]byte, 60)))
	for _, c := range []struct {
		name     string
		status   int
		body     string
		op       func() error
		sentinel error
		want     string
	}{
		{"ciphertext not Transit's", 200, `{"data":{"ciphertext":"plain","key_version":1}}`, func() error { _, err := tr.Wrap(ctx, []byte("p"), nil); return err }, nil, "malformed response"},
		{"version mismatch", 200, `{"data":{"ciphertext":"` + string(blob) + `","key_version":2}}`, func() error { _, err := tr.Wrap(ctx, []byte("p"), nil); return err }, nil, "does not match"},
		{"no data", 200, `{}`, func() error { _, err := tr.Wrap(ctx, []byte("p"), nil); return err }, nil, "no data"},
		{"plaintext not base64", 200, `{"data":{"plaintext":"!!"}}`, func() error { _, err := tr.Unwrap(ctx, blob, nil); return err }, nil, "malformed response"},
		{"plaintext too short", 200, `{"data":{"plaintext":"aGk="}}`, func() error { _, err := tr.Unwrap(ctx, blob, nil); return err }, kek.ErrInvalidCiphertext, "associated data"},
		{"proxy error page", 502, `<html>SECRET-PROXY-PAGE</html>`, func() error { _, err := tr.Unwrap(ctx, blob, nil); return err }, kek.ErrUnavailable, "HTTP 502"},
		{"internal error", 500, `{"errors":["internal error"]}`, func() error { _, err := tr.Unwrap(ctx, blob, nil); return err }, nil, "internal error"},
	} {
		t.Run(c.name, func(t *testing.T) {
			mu.Lock()
			status, body = c.status, c.body
			mu.Unlock()
			err := c.op()
			if err == nil {
				t.Fatal("no error")
			}
			if c.sentinel != nil && !errors.Is(err, c.sentinel) {
				t.Errorf("error %v, want %v", err, c.sentinel)
			}
			if !strings.Contains(err.Error(), c.want) || strings.Contains(err.Error(), "SECRET-PROXY-PAGE") {
				t.Errorf("error %q, want it to contain %q and no response body", err, c.want)
			}
			assertNamesVault(t, err, srv.URL, "hvs.x")
		})
	}
	mu.Lock()
	defer mu.Unlock()
	if namespace != "team-a" {
		t.Errorf("X-Vault-Namespace = %q, want team-a", namespace)
	}
}

// syncBuffer is a bytes.Buffer safe for the renewal goroutine's logging.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// Large responses must be read in full: Vault's client once cancelled the
// request context before the body was read (see newVaultClient).
func TestTransitLargeKeysets(t *testing.T) {
	ctx := context.Background()
	s := newTransitServer(t, transittest.Options{})
	tr := newTransit(t, transitConfig(s))
	pt := bytes.Repeat([]byte("0123456789abcdef"), 16<<10) // 256 KiB
	for range 20 {
		blob, err := tr.Wrap(ctx, pt, nil)
		if err != nil {
			t.Fatalf("Wrap = %v", err)
		}
		got, err := tr.Unwrap(ctx, blob, nil)
		if err != nil || !bytes.Equal(got, pt) {
			t.Fatalf("Unwrap = %d bytes, %v", len(got), err)
		}
	}
}
