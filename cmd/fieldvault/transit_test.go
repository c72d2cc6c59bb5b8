package main

import (
	"context"
	"fmt"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/fieldvault/fieldvault/keys/kek/transittest"
	"github.com/fieldvault/fieldvault/vault"
	"github.com/fieldvault/fieldvault/vault/client"
)

// transitLaunch starts `serve --dev --kek transit` against a Transit server.
func transitLaunch(t *testing.T, dir string, ts *transittest.Server) func() launch {
	return func() launch {
		p := freePort(t)
		return launch{
			args: []string{"--dev", "--dev-root-token=" + e2eRootToken, "--data-dir", dir,
				"--listen", fmt.Sprintf("127.0.0.1:%d", p), "--kek", "transit", "--transit-key", "fieldvault"},
			env:  []string{"VAULT_ADDR=" + ts.URL, "VAULT_TOKEN=" + ts.RootToken},
			port: p,
		}
	}
}

// TestTransitKEKOutage runs the vault with its KEK in a Transit server:
// serving goes on while Vault is down (keysets are cached), rotation fails
// with an error that names Vault, start-up with Vault down fails clearly,
// and everything works again once Vault is back.
func TestTransitKEKOutage(t *testing.T) {
	t.Parallel()
	ts := transittest.New(t, transittest.Options{})
	if err := ts.CreateKey("transit", "fieldvault"); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	s := startServer(t, dir, transitLaunch(t, dir, ts), nil)
	ctx := context.Background()
	root := s.root()
	putAdult(t, root, "tv1")
	values := tokenizeNames(t, root, "tv1", 20)
	consentID := grantMarketing(t, root, "tv1", false, "identity.name")
	if ts.Calls("/v1/transit/encrypt/fieldvault") == 0 {
		t.Fatal("the vault never used the Transit KEK")
	}

	ts.Stop()
	// Serving continues: tokenise (a category whose keyset is cached) and
	// detokenise both work with Vault down.
	more := tokenizeNames(t, root, "tv1", 5)
	toks := make([]string, 0, len(values)+len(more))
	for tok := range values {
		toks = append(toks, tok)
	}
	for tok, v := range more {
		toks = append(toks, tok)
		values[tok] = v
	}
	got := detokenizeAll(t, root, consentID, toks)
	for tok, want := range values {
		if got[tok] != want {
			t.Fatalf("with Vault down: got %q, want %q", got[tok], want)
		}
	}
	// Rotation needs the KEK: it fails, and the error names Vault.
	_, err := root.RotateKeys(ctx, "identity.name")
	if !client.IsCode(err, vault.CodeKEKUnavailable) || !strings.Contains(err.Error(), "Vault") {
		t.Fatalf("rotation with Vault down: %v, want 503 %s naming Vault", err, vault.CodeKEKUnavailable)
	}

	// Start-up with Vault down fails with a clear error naming Vault.
	s.stop(syscall.SIGTERM, 20*time.Second)
	l := transitLaunch(t, dir, ts)()
	cmd := exec.Command(fieldvaultBin(t), append([]string{"serve"}, l.args...)...)
	cmd.Env = childEnv(l.env...)
	out, err := cmd.CombinedOutput()
	if err == nil {
		t.Fatalf("start-up with Vault down succeeded:\n%s", out)
	}
	if !strings.Contains(string(out), "Vault") && !strings.Contains(string(out), "vault") {
		t.Fatalf("start-up error does not name Vault:\n%s", out)
	}

	// Vault back: start-up and rotation work, old values still read.
	if err := ts.Start(); err != nil {
		t.Fatal(err)
	}
	s2 := startServer(t, dir, transitLaunch(t, dir, ts), nil)
	root = s2.root()
	if _, err := root.RotateKeys(ctx, "identity.name"); err != nil {
		t.Fatalf("rotation with Vault back: %v", err)
	}
	got = detokenizeAll(t, root, consentID, toks)
	for tok, want := range values {
		if got[tok] != want {
			t.Fatalf("after Vault came back: got %q, want %q", got[tok], want)
		}
	}
}
