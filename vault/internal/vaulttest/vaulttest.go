// Package vaulttest builds a complete in-process fieldvault for tests: a real
// Pebble store in a temporary directory, a local KEK file, a file audit log,
// the built-in policy, the HTTP handler, and a clock the test controls. No
// part is faked.
package vaulttest

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"net/http/httptest"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/fieldvault/fieldvault/keys"
	"github.com/fieldvault/fieldvault/keys/kek"
	"github.com/fieldvault/fieldvault/vault"
	"github.com/fieldvault/fieldvault/vault/audit"
	"github.com/fieldvault/fieldvault/vault/client"
	"github.com/fieldvault/fieldvault/vault/httpapi"
	"github.com/fieldvault/fieldvault/vault/policy"
	"github.com/fieldvault/fieldvault/vault/store"
	"github.com/fieldvault/fieldvault/vault/store/pebble"
)

// RootToken is the admin API key of every test server.
const RootToken = "test-root-token-0123456789"

// Clock is a settable clock, safe for concurrent use.
type Clock struct {
	mu sync.Mutex
	t  time.Time
}

// NewClock starts a clock at t.
func NewClock(t time.Time) *Clock { return &Clock{t: t} }

// Now returns the clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

// Set moves the clock.
func (c *Clock) Set(t time.Time) {
	c.mu.Lock()
	c.t = t
	c.mu.Unlock()
}

// Add moves the clock forward by d.
func (c *Clock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// Options adjust the stack.
type Options struct {
	// Clock defaults to a real-time clock.
	Clock *Clock
	// Policy defaults to policy.Default().
	Policy *policy.Policy
	// Roles are added to the default roles.
	Roles vault.Roles
	// Dir is the data directory; default t.TempDir().
	Dir string
	// Store replaces the Pebble store (for example a Redis store).
	Store store.Store
	// WrapStore, when set, wraps the store the vault uses (for example
	// to count calls).
	WrapStore func(store.Store) store.Store
	// MaxBatch defaults to 10000.
	MaxBatch int
	// AuditChains, when set, is given the stack's own audit chain and
	// returns what access reports read (default: that chain alone).
	AuditChains func(own audit.Source) vault.AuditChains
}

// Stack is a running in-process vault.
type Stack struct {
	Vault    *vault.Vault
	Store    store.Store
	Keys     *keys.Keyring
	Audit    *audit.Log
	AuditDir string
	KEK      *kek.Local
	Dir      string
	Clock    *Clock
	Server   *httptest.Server
	// Root is a client with the admin key.
	Root *client.Client
}

// New builds and starts a stack; everything is closed when the test ends.
func New(t testing.TB, opt Options) *Stack {
	t.Helper()
	ctx := context.Background()
	dir := opt.Dir
	if dir == "" {
		dir = t.TempDir()
	}
	st := opt.Store
	if st == nil {
		ps, err := pebble.Open(filepath.Join(dir, "store"), pebble.Options{})
		if err != nil {
			t.Fatalf("vaulttest: pebble: %v", err)
		}
		st = ps
	}
	k, _, err := kek.LoadOrCreateLocal(filepath.Join(dir, "kek.key"))
	if err != nil {
		t.Fatalf("vaulttest: kek: %v", err)
	}
	clock := opt.Clock
	if clock == nil {
		clock = NewClock(time.Now())
	}
	now := func() time.Time {
		if opt.Clock == nil {
			return time.Now()
		}
		return clock.Now()
	}
	vs := st
	if opt.WrapStore != nil {
		vs = opt.WrapStore(st)
	}
	ring, err := keys.New(keys.Config{KEK: k, Storage: vault.KeyStorage(vs), Now: now})
	if err != nil {
		t.Fatalf("vaulttest: keys: %v", err)
	}
	auditDir := filepath.Join(dir, "audit")
	sink, err := audit.OpenFileSink(audit.FileConfig{Dir: auditDir})
	if err != nil {
		t.Fatalf("vaulttest: audit sink: %v", err)
	}
	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	refKey := make([]byte, audit.RefKeySize)
	_, _ = rand.Read(refKey)
	al, err := audit.New(audit.Config{Node: "test", RefKey: refKey, SigningKey: priv, Sink: sink, Clock: now})
	if err != nil {
		t.Fatalf("vaulttest: audit: %v", err)
	}
	roles := vault.DefaultRoles()
	for n, r := range opt.Roles {
		roles[n] = r
	}
	var chains vault.AuditChains
	if opt.AuditChains != nil {
		chains = opt.AuditChains(sink)
	}
	v, err := vault.New(vault.Config{Store: vs, Keys: ring, Policy: opt.Policy, Audit: al, AuditSource: sink,
		AuditChains: chains, Roles: roles, Limits: vault.Limits{MaxBatch: opt.MaxBatch}, Node: "test", Now: now})
	if err != nil {
		t.Fatalf("vaulttest: vault: %v", err)
	}
	if _, _, err := v.EnsureAdminKey(ctx, RootToken); err != nil {
		t.Fatalf("vaulttest: admin key: %v", err)
	}
	srv := httptest.NewServer(httpapi.New(httpapi.Config{Vault: v}))
	root, err := client.New(srv.URL, RootToken)
	if err != nil {
		t.Fatal(err)
	}
	s := &Stack{Vault: v, Store: st, Keys: ring, Audit: al, AuditDir: auditDir, KEK: k, Dir: dir, Clock: clock,
		Server: srv, Root: root}
	t.Cleanup(func() {
		srv.Close()
		_ = al.Close()
		_ = sink.Close()
		_ = st.Close()
	})
	return s
}

// Client returns a client for a new principal with the given roles.
func (s *Stack) Client(t testing.TB, principal string, roles ...string) *client.Client {
	t.Helper()
	res, err := s.Root.CreateAPIKey(context.Background(), principal, roles...)
	if err != nil {
		t.Fatalf("vaulttest: create API key for %s: %v", principal, err)
	}
	c, err := client.New(s.Server.URL, res.Key)
	if err != nil {
		t.Fatal(err)
	}
	return c
}
