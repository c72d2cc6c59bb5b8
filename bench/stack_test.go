package bench

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"net/http/httptest"
	"path/filepath"
	"testing"

	"github.com/fieldvault/fieldvault/keys"
	"github.com/fieldvault/fieldvault/keys/kek"
	"github.com/fieldvault/fieldvault/vault"
	"github.com/fieldvault/fieldvault/vault/audit"
	"github.com/fieldvault/fieldvault/vault/httpapi"
	"github.com/fieldvault/fieldvault/vault/store/pebble"
)

const stackToken = "bench-test-root-token-0123456789"

// stack is a complete in-process fieldvault (Pebble store, local KEK, file
// audit log, built-in policy, HTTP handler), wired as `fieldvault serve`
// wires it, minus metrics.
type stack struct {
	v   *vault.Vault
	url string
	p   *vault.Principal
}

func newStack(tb testing.TB) *stack {
	tb.Helper()
	ctx := context.Background()
	dir := tb.TempDir()
	st, err := pebble.Open(filepath.Join(dir, "store"), pebble.Options{})
	if err != nil {
		tb.Fatal(err)
	}
	k, _, err := kek.LoadOrCreateLocal(filepath.Join(dir, "kek.key"))
	if err != nil {
		tb.Fatal(err)
	}
	ring, err := keys.New(keys.Config{KEK: k, Storage: vault.KeyStorage(st)})
	if err != nil {
		tb.Fatal(err)
	}
	sink, err := audit.OpenFileSink(audit.FileConfig{Dir: filepath.Join(dir, "audit")})
	if err != nil {
		tb.Fatal(err)
	}
	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	refKey := make([]byte, audit.RefKeySize)
	_, _ = rand.Read(refKey)
	al, err := audit.New(audit.Config{Node: "bench", RefKey: refKey, SigningKey: priv, Sink: sink})
	if err != nil {
		tb.Fatal(err)
	}
	v, err := vault.New(vault.Config{Store: st, Keys: ring, Audit: al, AuditSource: sink, Roles: vault.DefaultRoles(),
		Limits: vault.Limits{MaxBatch: 10000}, Node: "bench"})
	if err != nil {
		tb.Fatal(err)
	}
	if _, _, err := v.EnsureAdminKey(ctx, stackToken); err != nil {
		tb.Fatal(err)
	}
	p, err := v.Authenticate(ctx, stackToken)
	if err != nil {
		tb.Fatal(err)
	}
	srv := httptest.NewServer(httpapi.New(httpapi.Config{Vault: v}))
	tb.Cleanup(func() {
		srv.Close()
		v.StopJobs()
		_ = al.Close()
		_ = sink.Close()
		_ = st.Close()
	})
	return &stack{v: v, url: srv.URL, p: p}
}
