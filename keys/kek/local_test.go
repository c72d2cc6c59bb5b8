package kek_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fieldvault/fieldvault/keys/kek"
	"github.com/fieldvault/fieldvault/keys/kek/kektest"
)

func newLocal(t testing.TB) (*kek.Local, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "kek", "local.key")
	l, created, err := kek.LoadOrCreateLocal(path)
	if err != nil {
		t.Fatalf("LoadOrCreateLocal = %v", err)
	}
	if !created {
		t.Fatal("LoadOrCreateLocal on a fresh path reported created = false")
	}
	return l, path
}

func TestLocalConformance(t *testing.T) {
	kektest.Run(t, func(t *testing.T) kek.KEK {
		l, _ := newLocal(t)
		return l
	})
}

func TestLoadOrCreateLocal(t *testing.T) {
	ctx := context.Background()
	l, path := newLocal(t)

	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if perm := fi.Mode().Perm(); perm != 0o600 {
		t.Errorf("key file mode = %#o, want 0600", perm)
	}
	di, err := os.Stat(filepath.Dir(path))
	if err != nil {
		t.Fatal(err)
	}
	if perm := di.Mode().Perm(); perm != 0o700 {
		t.Errorf("created directory mode = %#o, want 0700", perm)
	}
	entries, err := os.ReadDir(filepath.Dir(path))
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if e.Name() != "local.key" && e.Name() != "local.key.lock" {
			t.Errorf("stray file %s beside the key file (a leftover temporary file?)", e.Name())
		}
	}

	blob, err := l.Wrap(ctx, []byte("keyset"), []byte("aad"))
	if err != nil {
		t.Fatal(err)
	}
	again, created, err := kek.LoadOrCreateLocal(path)
	if err != nil || created {
		t.Fatalf("second LoadOrCreateLocal = created %v, %v; want the existing file", created, err)
	}
	if got, err := again.Unwrap(ctx, blob, []byte("aad")); err != nil || string(got) != "keyset" {
		t.Fatalf("reopened KEK: Unwrap = %q, %v", got, err)
	}
	opened, err := kek.OpenLocal(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := opened.Unwrap(ctx, blob, []byte("aad")); err != nil {
		t.Fatalf("OpenLocal KEK: Unwrap = %v", err)
	}
}

func TestOpenLocalMissing(t *testing.T) {
	_, err := kek.OpenLocal(filepath.Join(t.TempDir(), "nope.key"))
	if !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("OpenLocal(missing) = %v, want fs.ErrNotExist", err)
	}
	if _, err := kek.OpenLocal(""); err == nil {
		t.Fatal("OpenLocal(\"\") succeeded")
	}
}

func TestLocalRefusesLoosePermissions(t *testing.T) {
	_, path := newLocal(t)
	keyB64 := keysInFile(t, path)
	for _, mode := range []os.FileMode{0o640, 0o604, 0o660, 0o644, 0o606, 0o610} {
		if err := os.Chmod(path, mode); err != nil {
			t.Fatal(err)
		}
		for name, open := range map[string]func() error{
			"OpenLocal":         func() error { _, err := kek.OpenLocal(path); return err },
			"LoadOrCreateLocal": func() error { _, _, err := kek.LoadOrCreateLocal(path); return err },
		} {
			err := open()
			if err == nil {
				t.Fatalf("%s accepted a key file with mode %#o", name, mode)
			}
			msg := err.Error()
			if !strings.Contains(msg, "chmod 600") || !strings.Contains(msg, fmt.Sprintf("%#o", mode)) || !strings.Contains(msg, path) {
				t.Errorf("%s(mode %#o) error %q does not name the file, its mode and the fix", name, mode, msg)
			}
			for _, k := range keyB64 {
				if strings.Contains(msg, k) {
					t.Errorf("error contains key material: %q", msg)
				}
			}
		}
	}
	if err := os.Chmod(path, 0o400); err != nil {
		t.Fatal(err)
	}
	if _, err := kek.OpenLocal(path); err != nil {
		t.Fatalf("OpenLocal(mode 0400) = %v; read-only for the owner is fine", err)
	}
}

func TestLocalRotatePersists(t *testing.T) {
	ctx := context.Background()
	l, path := newLocal(t)
	old, err := l.Wrap(ctx, []byte("old"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := l.Rotate(ctx); err != nil {
		t.Fatal(err)
	}
	fresh, err := l.Wrap(ctx, []byte("new"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if v, _ := l.WrappedVersion(fresh); v != 2 {
		t.Fatalf("blob after one rotation has version %d, want 2", v)
	}
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("key file after rotation: %v, %v; want mode 0600", fi.Mode(), err)
	}

	reopened, err := kek.OpenLocal(path)
	if err != nil {
		t.Fatal(err)
	}
	for blob, want := range map[string]string{string(old): "old", string(fresh): "new"} {
		if got, err := reopened.Unwrap(ctx, []byte(blob), nil); err != nil || string(got) != want {
			t.Fatalf("reopened Unwrap = %q, %v; want %q", got, err, want)
		}
	}
	again, err := reopened.Wrap(ctx, []byte("x"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if v, _ := reopened.WrappedVersion(again); v != 2 {
		t.Fatalf("reopened KEK wraps with version %d, want the primary 2", v)
	}
	if n := len(keysInFile(t, path)); n != 2 {
		t.Fatalf("key file holds %d versions, want 2", n)
	}
}

// Two processes sharing a key file: one rotates, the other must unwrap the
// new blobs and, rotating in turn, keep every version.
func TestLocalRotateSharedFile(t *testing.T) {
	ctx := context.Background()
	a, path := newLocal(t)
	b, err := kek.OpenLocal(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Rotate(ctx); err != nil {
		t.Fatal(err)
	}
	blobV2, err := a.Wrap(ctx, []byte("v2"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := b.Unwrap(ctx, blobV2, nil); err != nil || string(got) != "v2" {
		t.Fatalf("the other KEK cannot unwrap a blob made after rotation: %q, %v", got, err)
	}
	if err := b.Rotate(ctx); err != nil {
		t.Fatal(err)
	}
	blobV3, err := b.Wrap(ctx, []byte("v3"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if v, _ := b.WrappedVersion(blobV3); v != 3 {
		t.Fatalf("second rotation made version %d, want 3 (a version was lost)", v)
	}
	c, err := kek.OpenLocal(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, blob := range [][]byte{blobV2, blobV3} {
		if _, err := c.Unwrap(ctx, blob, nil); err != nil {
			t.Fatalf("fresh KEK: Unwrap = %v", err)
		}
	}
}

func TestLocalRotateRefusesLostVersion(t *testing.T) {
	ctx := context.Background()
	a, path := newLocal(t)
	if err := a.Rotate(ctx); err != nil {
		t.Fatal(err)
	}
	// Someone restores an older key file: version 2 is gone.
	var kf map[string]any
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(data, &kf); err != nil {
		t.Fatal(err)
	}
	kf["versions"] = kf["versions"].([]any)[:1]
	kf["primary"] = 1
	out, _ := json.Marshal(kf)
	if err := os.WriteFile(path, out, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := a.Rotate(ctx); err == nil || !strings.Contains(err.Error(), "version 2") {
		t.Fatalf("Rotate over a key file that lost version 2 = %v, want a refusal", err)
	}
}

func TestLocalStrictKeyFile(t *testing.T) {
	key := base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{0x42}, 32))
	short := base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{0x42}, 31))
	v := func(n int, k string) string {
		return fmt.Sprintf(`{"version":%d,"created":"2026-01-01T00:00:00Z","key":%q}`, n, k)
	}
	file := func(primary int, versions ...string) string {
		return fmt.Sprintf(`{"format":"fieldvault-local-kek/v1","primary":%d,"versions":[%s]}`, primary, strings.Join(versions, ","))
	}
	for name, content := range map[string]string{
		"empty":                 "",
		"not JSON":              "AES key please",
		"array":                 "[]",
		"wrong format":          strings.Replace(file(1, v(1, key)), "kek/v1", "kek/v2", 1),
		"unknown field":         strings.Replace(file(1, v(1, key)), `"primary"`, `"extra":1,"primary"`, 1),
		"trailing data":         file(1, v(1, key)) + "{}",
		"no versions":           file(1),
		"version 0":             file(0, v(0, key)),
		"duplicate version":     file(1, v(1, key), v(1, key)),
		"primary missing":       file(2, v(1, key)),
		"short key":             file(1, v(1, short)),
		"key with line break":   file(1, v(1, key[:20]+`\n`+key[20:])),
		"unpadded key":          file(1, v(1, strings.TrimRight(key, "="))),
		"URL-safe base64":       file(1, v(1, strings.ReplaceAll(key, "+", "-")+"-")),
		"key is a number":       strings.Replace(file(1, v(1, key)), `"key":"`+key+`"`, `"key":42`, 1),
		"version is a string":   strings.Replace(file(1, v(1, key)), `"version":1`, `"version":"1"`, 1),
		"negative version":      file(1, v(1, key), v(-1, key)),
		"version over 2^32":     file(1, v(1, key), v(1<<32, key)),
		"truncated":             file(1, v(1, key))[:60],
		"created is not a time": strings.Replace(file(1, v(1, key)), "2026-01-01T00:00:00Z", "yesterday", 1),
	} {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "k")
			if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
				t.Fatal(err)
			}
			_, err := kek.OpenLocal(path)
			if err == nil {
				t.Fatal("OpenLocal accepted a malformed key file")
			}
			if strings.Contains(err.Error(), key[:16]) {
				t.Fatalf("error quotes the key: %v", err)
			}
			_, _, err = kek.LoadOrCreateLocal(path)
			if err == nil {
				t.Fatal("LoadOrCreateLocal accepted (or replaced) a malformed key file")
			}
			if got, _ := os.ReadFile(path); string(got) != content {
				t.Fatal("LoadOrCreateLocal overwrote a malformed key file")
			}
		})
	}
	// The well-formed version of the same file loads.
	path := filepath.Join(t.TempDir(), "k")
	if err := os.WriteFile(path, []byte(file(1, v(1, key))), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := kek.OpenLocal(path); err != nil {
		t.Fatalf("OpenLocal(well-formed) = %v", err)
	}
}

func TestLocalBlobFormat(t *testing.T) {
	ctx := context.Background()
	l, _ := newLocal(t)
	pt, aad := []byte("0123456789"), []byte("aad")
	blob, err := l.Wrap(ctx, pt, aad)
	if err != nil {
		t.Fatal(err)
	}
	if blob[0] != 0xF1 || blob[1] != 1 || len(blob) != 2+12+len(pt)+16 {
		t.Fatalf("blob = %x; want F1 01, a 12-byte nonce, %d bytes of ciphertext and a 16-byte tag", blob, len(pt))
	}
	if err := l.Rotate(ctx); err != nil {
		t.Fatal(err)
	}
	// The header is authenticated: relabelling a v1 blob as v2 fails even
	// though version 2 exists.
	relabelled := bytes.Clone(blob)
	relabelled[1] = 2
	if _, err := l.Unwrap(ctx, relabelled, aad); !errors.Is(err, kek.ErrInvalidCiphertext) {
		t.Fatalf("Unwrap(relabelled) = %v, want ErrInvalidCiphertext", err)
	}
	// A non-minimal uvarint for version 1 (0x81 0x00) is refused.
	padded := append([]byte{0xF1, 0x81, 0x00}, blob[2:]...)
	if _, err := l.Unwrap(ctx, padded, aad); !errors.Is(err, kek.ErrInvalidCiphertext) {
		t.Fatalf("Unwrap(non-minimal version) = %v, want ErrInvalidCiphertext", err)
	}
	unknown := append([]byte{0xF1, 99}, blob[2:]...)
	_, err = l.Unwrap(ctx, unknown, aad)
	if !errors.Is(err, kek.ErrInvalidCiphertext) || !strings.Contains(err.Error(), "version 99") {
		t.Fatalf("Unwrap(version 99) = %v, want ErrInvalidCiphertext naming the version", err)
	}
	if _, err := l.WrappedVersion([]byte{0xF1}); !errors.Is(err, kek.ErrInvalidCiphertext) {
		t.Fatalf("WrappedVersion(short) = %v", err)
	}
}

func TestLocalPrintsNoKeyMaterial(t *testing.T) {
	l, path := newLocal(t)
	if err := l.Rotate(context.Background()); err != nil {
		t.Fatal(err)
	}
	keys := keysInFile(t, path)
	var logged bytes.Buffer
	slog.New(slog.NewJSONHandler(&logged, nil)).Info("kek", "kek", l)
	printed := []string{
		fmt.Sprint(l), fmt.Sprintf("%v|%+v|%#v|%s|%x|%X|%q|%d", l, l, l, l, l, l, l, l),
		l.String(), logged.String(),
	}
	for _, p := range printed {
		if !strings.Contains(p, "kek/local") && !strings.Contains(p, "local") {
			t.Errorf("printed form %q does not describe the KEK", p)
		}
		for _, k := range keys {
			raw, _ := base64.StdEncoding.DecodeString(k)
			for _, secret := range []string{k, fmt.Sprintf("%x", raw), string(raw)} {
				if strings.Contains(p, secret) {
					t.Fatalf("printed form contains key material: %q", p)
				}
			}
		}
	}
	if !strings.Contains(logged.String(), `"primary":2`) {
		t.Errorf("log line %s lacks the primary version", logged.String())
	}
}

// keysInFile returns the base64 keys in a key file.
func keysInFile(t *testing.T, path string) []string {
	t.Helper()
	if err := os.Chmod(path, 0o600); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var kf struct {
		Versions []struct {
			Key string `json:"key"`
		} `json:"versions"`
	}
	if err := json.Unmarshal(data, &kf); err != nil {
		t.Fatal(err)
	}
	var keys []string
	for _, v := range kf.Versions {
		keys = append(keys, v.Key)
	}
	return keys
}
