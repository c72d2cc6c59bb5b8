package keys_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fieldvault/fieldvault/keys"
	"github.com/fieldvault/fieldvault/keys/kek"
	"github.com/fieldvault/fieldvault/tokenizer"
	"github.com/fieldvault/fieldvault/vault"
	"github.com/fieldvault/fieldvault/vault/store"
	"github.com/fieldvault/fieldvault/vault/store/pebble"
)

type env struct {
	store store.Store
	kek   *kek.Local
	dir   string
}

func newEnv(t *testing.T) *env {
	t.Helper()
	dir := t.TempDir()
	st, err := pebble.Open(filepath.Join(dir, "store"), pebble.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	k, _, err := kek.LoadOrCreateLocal(filepath.Join(dir, "kek.key"))
	if err != nil {
		t.Fatal(err)
	}
	return &env{store: st, kek: k, dir: dir}
}

func (e *env) ring(t *testing.T, cfg keys.Config) *keys.Keyring {
	t.Helper()
	cfg.KEK = e.kek
	cfg.Storage = vault.KeyStorage(e.store)
	r, err := keys.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func cat(t *testing.T, name string) *tokenizer.Category {
	t.Helper()
	c, ok := tokenizer.Lookup(name)
	if !ok {
		t.Fatalf("no category %s", name)
	}
	return c
}

func dek(t *testing.T, r *keys.Keyring, ref keys.DEKRef, create bool) *keys.DEK {
	t.Helper()
	d, err := r.DEKs(context.Background(), []keys.DEKRef{ref}, create)
	if err != nil {
		t.Fatalf("DEKs(%v, %v): %v", ref.Category, create, err)
	}
	return d[0]
}

func TestSealOpenBindsTokenCategorySubject(t *testing.T) {
	e := newEnv(t)
	r := e.ring(t, keys.Config{})
	ctx := context.Background()
	phone := cat(t, "contact.phone")
	v, err := r.Primary(ctx, phone)
	if err != nil || v != 1 {
		t.Fatalf("Primary = %d, %v; want 1", v, err)
	}
	d1 := dek(t, r, keys.DEKRef{Subject: "u1", Category: phone.ID, Version: v}, true)
	d2 := dek(t, r, keys.DEKRef{Subject: "u2", Category: phone.ID, Version: v}, true)
	sealed := d1.Seal(nil, "tok-a", []byte("+66812345678"))
	if bytes.Contains(sealed, []byte("812345678")) {
		t.Fatal("sealed value contains the plaintext")
	}
	got, err := d1.Open(nil, "tok-a", sealed)
	if err != nil || string(got) != "+66812345678" {
		t.Fatalf("Open = %q, %v", got, err)
	}
	if ver, err := keys.SealedVersion(sealed); err != nil || ver != v {
		t.Fatalf("SealedVersion = %d, %v", ver, err)
	}
	// Another token, another subject's key, a flipped bit: all one opaque error.
	cases := map[string]func() ([]byte, error){
		"other token":   func() ([]byte, error) { return d1.Open(nil, "tok-b", sealed) },
		"other subject": func() ([]byte, error) { return d2.Open(nil, "tok-a", sealed) },
		"tampered": func() ([]byte, error) {
			bad := bytes.Clone(sealed)
			bad[len(bad)-1] ^= 1
			return d1.Open(nil, "tok-a", bad)
		},
		"truncated": func() ([]byte, error) { return d1.Open(nil, "tok-a", sealed[:5]) },
		"empty":     func() ([]byte, error) { return d1.Open(nil, "tok-a", nil) },
		"header version changed": func() ([]byte, error) {
			bad := bytes.Clone(sealed)
			bad[1] = 2
			return d1.Open(nil, "tok-a", bad)
		},
	}
	for name, f := range cases {
		if out, err := f(); !errors.Is(err, keys.ErrDecrypt) || out != nil {
			t.Errorf("%s: Open = %q, %v; want ErrDecrypt", name, out, err)
		}
	}
	// Two seals of one value differ (random nonce).
	if bytes.Equal(sealed, d1.Seal(nil, "tok-a", []byte("+66812345678"))) {
		t.Error("two seals are equal")
	}
	if s := fmt.Sprint(d1); strings.Contains(s, "\\x") || !strings.Contains(s, "REDACTED") {
		t.Errorf("DEK prints as %q", s)
	}
}

func TestDEKsCreateOnlyWhenAsked(t *testing.T) {
	e := newEnv(t)
	r := e.ring(t, keys.Config{})
	c := cat(t, "identity.name")
	ref := keys.DEKRef{Subject: "u1", Category: c.ID, Version: 1}
	if _, err := r.Primary(context.Background(), c); err != nil {
		t.Fatal(err)
	}
	if d := dek(t, r, ref, false); d != nil {
		t.Fatal("DEKs(create=false) made a key")
	}
	d := dek(t, r, ref, true)
	if d == nil {
		t.Fatal("DEKs(create=true) returned nil")
	}
	// A second keyring on the same storage reads the same key.
	r2 := e.ring(t, keys.Config{})
	d2 := dek(t, r2, ref, false)
	if d2 == nil {
		t.Fatal("second keyring does not see the key")
	}
	if got, err := d2.Open(nil, "t", d.Seal(nil, "t", []byte("x"))); err != nil || string(got) != "x" {
		t.Fatalf("cross-keyring Open = %q, %v", got, err)
	}
	// Batches with repeats resolve to one key per ref.
	ds, err := r.DEKs(context.Background(), []keys.DEKRef{ref, ref, {Subject: "u9", Category: c.ID, Version: 1}}, true)
	if err != nil || ds[0] != ds[1] || ds[2] == nil || ds[2] == ds[0] {
		t.Fatalf("batch DEKs = %v, %v", ds, err)
	}
	// Non-primary versions cannot be created.
	if _, err := r.DEKs(context.Background(), []keys.DEKRef{{Subject: "u2", Category: c.ID, Version: 7}}, true); !errors.Is(err, keys.ErrVersionNotUsable) {
		t.Fatalf("creating a non-primary DEK: %v", err)
	}
}

func TestConcurrentKeyringsAgreeOnOneDEK(t *testing.T) {
	e := newEnv(t)
	c := cat(t, "contact.email")
	const n = 8
	rings := make([]*keys.Keyring, n)
	for i := range rings {
		rings[i] = e.ring(t, keys.Config{})
	}
	ref := keys.DEKRef{Subject: "race", Category: c.ID, Version: 1}
	deks := make([]*keys.DEK, n)
	var wg sync.WaitGroup
	for i := range rings {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			d, err := rings[i].DEKs(context.Background(), []keys.DEKRef{ref}, true)
			if err != nil {
				t.Error(err)
				return
			}
			deks[i] = d[0]
		}(i)
	}
	wg.Wait()
	sealed := deks[0].Seal(nil, "t", []byte("v"))
	for i := 1; i < n; i++ {
		if got, err := deks[i].Open(nil, "t", sealed); err != nil || string(got) != "v" {
			t.Fatalf("keyring %d has a different DEK: %v", i, err)
		}
	}
}

func TestRotateDisableEnableDestroy(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	r := e.ring(t, keys.Config{})
	c := cat(t, "identity.name")
	old := dek(t, r, keys.DEKRef{Subject: "u1", Category: c.ID, Version: 1}, true)
	sealed := old.Seal(nil, "t1", []byte("Somchai"))
	v2, err := r.Rotate(ctx, c)
	if err != nil || v2 != 2 {
		t.Fatalf("Rotate = %d, %v", v2, err)
	}
	if p, _ := r.Primary(ctx, c); p != 2 {
		t.Fatalf("primary after rotate = %d", p)
	}
	// Old version still decrypts, through a fresh keyring as well.
	r2 := e.ring(t, keys.Config{})
	d := dek(t, r2, keys.DEKRef{Subject: "u1", Category: c.ID, Version: 1}, false)
	if got, err := d.Open(nil, "t1", sealed); err != nil || string(got) != "Somchai" {
		t.Fatalf("old version after rotation: %q, %v", got, err)
	}
	if dek(t, r, keys.DEKRef{Subject: "u1", Category: c.ID, Version: 2}, true) == nil {
		t.Fatal("no DEK for the new primary")
	}
	if err := r.Disable(ctx, c, 2); !errors.Is(err, keys.ErrPrimary) {
		t.Fatalf("disabling the primary: %v", err)
	}
	if err := r.Destroy(ctx, c, 1); !errors.Is(err, keys.ErrState) {
		t.Fatalf("destroying an enabled version: %v", err)
	}
	if err := r.Disable(ctx, c, 1); err != nil {
		t.Fatal(err)
	}
	r3 := e.ring(t, keys.Config{})
	if _, err := r3.DEKs(ctx, []keys.DEKRef{{Subject: "u1", Category: c.ID, Version: 1}}, false); !errors.Is(err, keys.ErrVersionNotUsable) {
		t.Fatalf("DEK of a disabled version: %v", err)
	}
	if err := r.Enable(ctx, c, 1); err != nil {
		t.Fatal(err)
	}
	if d := dek(t, e.ring(t, keys.Config{}), keys.DEKRef{Subject: "u1", Category: c.ID, Version: 1}, false); d == nil {
		t.Fatal("re-enabled version does not unwrap")
	}
	if err := r.Disable(ctx, c, 1); err != nil {
		t.Fatal(err)
	}
	if err := r.Destroy(ctx, c, 1); err != nil {
		t.Fatal(err)
	}
	info, _, err := r.Describe(ctx, c)
	if err != nil || info.Versions[0].State != keys.StateDestroyed || info.Primary != 2 {
		t.Fatalf("Describe after destroy = %+v, %v", info, err)
	}
	if _, err := e.ring(t, keys.Config{}).DEKs(ctx, []keys.DEKRef{{Subject: "u1", Category: c.ID, Version: 1}}, false); !errors.Is(err, keys.ErrVersionNotUsable) {
		t.Fatalf("DEK of a destroyed version: %v", err)
	}
	if err := r.Enable(ctx, c, 1); !errors.Is(err, keys.ErrState) {
		t.Fatalf("enabling a destroyed version: %v", err)
	}
}

func TestRefreshSeesOtherReplicasRotation(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	a, b := e.ring(t, keys.Config{}), e.ring(t, keys.Config{})
	c := cat(t, "contact.phone")
	if p, _ := b.Primary(ctx, c); p != 1 {
		t.Fatal("primary != 1")
	}
	if _, err := a.Rotate(ctx, c); err != nil {
		t.Fatal(err)
	}
	if p, _ := b.Primary(ctx, c); p != 1 {
		t.Fatalf("b saw the rotation before refreshing: %d", p)
	}
	if err := b.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	if p, _ := b.Primary(ctx, c); p != 2 {
		t.Fatalf("b's primary after refresh = %d, want 2", p)
	}
}

func TestFingerprints(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	r := e.ring(t, keys.Config{})
	phone, email := cat(t, "contact.phone"), cat(t, "contact.email")
	f1, _ := r.Fingerprint(ctx, phone, "+66812345678")
	f2, _ := e.ring(t, keys.Config{}).Fingerprint(ctx, phone, "+66812345678")
	f3, _ := r.Fingerprint(ctx, phone, "+66812345679")
	f4, _ := r.Fingerprint(ctx, email, "+66812345678")
	if len(f1) != keys.FingerprintLen || !bytes.Equal(f1, f2) {
		t.Fatal("fingerprints of one value differ across keyrings")
	}
	if bytes.Equal(f1, f3) || bytes.Equal(f1, f4) {
		t.Fatal("fingerprints collide across values or categories")
	}
	// Rotation leaves fingerprints alone (deterministic tokens stay equal).
	if _, err := r.Rotate(ctx, phone); err != nil {
		t.Fatal(err)
	}
	f5, _ := e.ring(t, keys.Config{}).Fingerprint(ctx, phone, "+66812345678")
	if !bytes.Equal(f1, f5) {
		t.Fatal("rotation changed fingerprints")
	}
}

func TestKEKRotationRewrapsKeysets(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	r := e.ring(t, keys.Config{})
	c := cat(t, "govid.th_national_id")
	d := dek(t, r, keys.DEKRef{Subject: "u1", Category: c.ID, Version: 1}, true)
	sealed := d.Seal(nil, "t", []byte("1103702071838"))
	before, _ := e.store.GetRecord(ctx, "keyset", c.Name)
	if err := e.kek.Rotate(ctx); err != nil {
		t.Fatal(err)
	}
	n, err := r.RewrapKeysets(ctx)
	if err != nil || n != 1 {
		t.Fatalf("RewrapKeysets = %d, %v", n, err)
	}
	after, _ := e.store.GetRecord(ctx, "keyset", c.Name)
	if bytes.Equal(before.Value, after.Value) {
		t.Fatal("keyset was not re-wrapped")
	}
	// A restart (new KEK handle from the file, new keyring) reads everything.
	k2, err := kek.OpenLocal(filepath.Join(e.dir, "kek.key"))
	if err != nil {
		t.Fatal(err)
	}
	r2, _ := keys.New(keys.Config{KEK: k2, Storage: vault.KeyStorage(e.store)})
	d2 := dek(t, r2, keys.DEKRef{Subject: "u1", Category: c.ID, Version: 1}, false)
	if got, err := d2.Open(nil, "t", sealed); err != nil || string(got) != "1103702071838" {
		t.Fatalf("after KEK rotation and restart: %q, %v", got, err)
	}
}

func TestCacheTTLForgetsShreddedKeys(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	now := time.Unix(1_700_000_000, 0)
	var mu sync.Mutex
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	r := e.ring(t, keys.Config{CacheTTL: time.Minute, Now: clock})
	c := cat(t, "health")
	ref := keys.DEKRef{Subject: "u1", Category: c.ID, Version: 1}
	dek(t, r, ref, true)
	// Another replica shreds the subject's keys.
	if _, err := e.store.DeleteSubjectKeys(ctx, "u1", nil); err != nil {
		t.Fatal(err)
	}
	if dek(t, r, ref, false) == nil {
		t.Fatal("cache emptied early (test premise)")
	}
	mu.Lock()
	now = now.Add(2 * time.Minute)
	mu.Unlock()
	if dek(t, r, ref, false) != nil {
		t.Fatal("a shredded key is still usable after the cache TTL")
	}
	// Forget drops it at once on the replica that shreds.
	dek(t, r, ref, true)
	r.Forget("u1", nil)
	if _, err := e.store.DeleteSubjectKeys(ctx, "u1", nil); err != nil {
		t.Fatal(err)
	}
	if dek(t, r, ref, false) != nil {
		t.Fatal("Forget did not drop the cached key")
	}
}

func benchEnv(b *testing.B) (*keys.Keyring, *tokenizer.Category) {
	dir := b.TempDir()
	st, err := pebble.Open(filepath.Join(dir, "store"), pebble.Options{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { st.Close() })
	k, _, err := kek.LoadOrCreateLocal(filepath.Join(dir, "kek.key"))
	if err != nil {
		b.Fatal(err)
	}
	r, err := keys.New(keys.Config{KEK: k, Storage: vault.KeyStorage(st)})
	if err != nil {
		b.Fatal(err)
	}
	c, _ := tokenizer.Lookup("contact.phone")
	return r, c
}

func BenchmarkSealOpen(b *testing.B) {
	r, c := benchEnv(b)
	ds, err := r.DEKs(context.Background(), []keys.DEKRef{{Subject: "u1", Category: c.ID, Version: 1}}, true)
	if err != nil {
		b.Fatal(err)
	}
	d := ds[0]
	v := []byte("+66812345678")
	buf := make([]byte, 0, 64)
	out := make([]byte, 0, 64)
	b.ReportAllocs()
	for b.Loop() {
		buf = d.Seal(buf[:0], "+66043595678", v)
		if _, err := d.Open(out[:0], "+66043595678", buf); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkDEKsCached1000 is the per-batch key lookup of a 1000-field
// batch whose subject keys are cached.
func BenchmarkDEKsCached1000(b *testing.B) {
	r, c := benchEnv(b)
	refs := make([]keys.DEKRef, 1000)
	for i := range refs {
		refs[i] = keys.DEKRef{Subject: fmt.Sprintf("subject-%d", i), Category: c.ID, Version: 1}
	}
	if _, err := r.DEKs(context.Background(), refs, true); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := r.DEKs(context.Background(), refs, false); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/1000, "ns/field")
}

func BenchmarkFingerprint(b *testing.B) {
	r, c := benchEnv(b)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := r.Fingerprint(ctx, c, "+66812345678"); err != nil {
			b.Fatal(err)
		}
	}
}

// FuzzOpenSealed opens arbitrary bytes as a sealed value: never a panic,
// never a plaintext, and SealedVersion agrees with what Open accepts.
func FuzzOpenSealed(f *testing.F) {
	dir := f.TempDir()
	st, err := pebble.Open(filepath.Join(dir, "store"), pebble.Options{})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { st.Close() })
	k, _, err := kek.LoadOrCreateLocal(filepath.Join(dir, "kek.key"))
	if err != nil {
		f.Fatal(err)
	}
	r, _ := keys.New(keys.Config{KEK: k, Storage: vault.KeyStorage(st)})
	c, _ := tokenizer.Lookup("contact.phone")
	ds, err := r.DEKs(context.Background(), []keys.DEKRef{{Subject: "u1", Category: c.ID, Version: 1}}, true)
	if err != nil {
		f.Fatal(err)
	}
	d := ds[0]
	good := d.Seal(nil, "tok", []byte("+66812345678"))
	f.Add(good)
	f.Add(good[:len(good)-1])
	f.Add([]byte{1})
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		out, err := d.Open(nil, "tok", b)
		if bytes.Equal(b, good) {
			if err != nil || string(out) != "+66812345678" {
				t.Fatalf("the genuine value does not open: %v", err)
			}
			return
		}
		if err == nil {
			t.Fatalf("forged value opened to %q", out)
		}
		if !errors.Is(err, keys.ErrDecrypt) || out != nil {
			t.Fatalf("Open = %q, %v; want nil, ErrDecrypt", out, err)
		}
		_, _ = keys.SealedVersion(b)
	})
}
