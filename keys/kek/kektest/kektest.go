// Package kektest is a conformance suite for kek.KEK implementations, in the
// spirit of crypto/internal/cryptotest.TestAEAD: one Run, called from each
// backend's tests, checks the contract every caller relies on.
//
// The suite needs nothing from the backend but the KEK itself. Optional
// interfaces widen it: a kek.Rotator is rotated (old blobs must still
// unwrap), a kek.Versioner must report the new version in new blobs, and a
// kek.Rewrapper must move old blobs to it.
package kektest

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/fieldvault/fieldvault/keys/kek"
)

// Run runs the suite. newKEK is called once per subtest and may return the
// same backend key each time (a real Vault key, say): the subtests only
// assume that blobs they made themselves unwrap.
func Run(t *testing.T, newKEK func(t *testing.T) kek.KEK) {
	t.Run("RoundTrip", func(t *testing.T) { testRoundTrip(t, newKEK(t)) })
	t.Run("EmptyAndLargePlaintext", func(t *testing.T) { testSizes(t, newKEK(t)) })
	t.Run("NilAndEmptyAADAreEqual", func(t *testing.T) { testNilAAD(t, newKEK(t)) })
	t.Run("WrongAAD", func(t *testing.T) { testWrongAAD(t, newKEK(t)) })
	t.Run("Tampered", func(t *testing.T) { testTampered(t, newKEK(t)) })
	t.Run("Truncated", func(t *testing.T) { testTruncated(t, newKEK(t)) })
	t.Run("Garbage", func(t *testing.T) { testGarbage(t, newKEK(t)) })
	t.Run("WrapsDiffer", func(t *testing.T) { testWrapsDiffer(t, newKEK(t)) })
	t.Run("InputNotModified", func(t *testing.T) { testInputNotModified(t, newKEK(t)) })
	t.Run("CanceledContext", func(t *testing.T) { testCanceled(t, newKEK(t)) })
	t.Run("Rotation", func(t *testing.T) { testRotation(t, newKEK(t)) })
	t.Run("Rewrap", func(t *testing.T) { testRewrap(t, newKEK(t)) })
	t.Run("Concurrent", func(t *testing.T) { testConcurrent(t, newKEK(t)) })
	t.Run("NoSecretsInErrors", func(t *testing.T) { testNoSecretsInErrors(t, newKEK(t)) })
}

func randomBytes(t *testing.T, n int) []byte {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

func wrap(t *testing.T, k kek.KEK, pt, aad []byte) []byte {
	t.Helper()
	w, err := k.Wrap(context.Background(), pt, aad)
	if err != nil {
		t.Fatalf("Wrap(%d bytes) = %v", len(pt), err)
	}
	return w
}

func mustUnwrap(t *testing.T, k kek.KEK, w, aad, want []byte) {
	t.Helper()
	got, err := k.Unwrap(context.Background(), w, aad)
	if err != nil {
		t.Fatalf("Unwrap = %v, want the plaintext", err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("Unwrap = %d bytes %x..., want %d bytes", len(got), head(got), len(want))
	}
}

// mustReject checks that Unwrap fails with kek.ErrInvalidCiphertext.
func mustReject(t *testing.T, k kek.KEK, w, aad []byte, what string) {
	t.Helper()
	got, err := k.Unwrap(context.Background(), w, aad)
	if err == nil {
		t.Fatalf("Unwrap(%s) succeeded (%d bytes), want kek.ErrInvalidCiphertext", what, len(got))
	}
	if !errors.Is(err, kek.ErrInvalidCiphertext) {
		t.Fatalf("Unwrap(%s) = %v, want kek.ErrInvalidCiphertext", what, err)
	}
	if got != nil {
		t.Fatalf("Unwrap(%s) returned %d bytes beside its error", what, len(got))
	}
}

func head(b []byte) []byte { return b[:min(len(b), 8)] }

func testRoundTrip(t *testing.T, k kek.KEK) {
	for _, n := range []int{1, 16, 32, 200, 1500} {
		for _, aad := range [][]byte{nil, []byte("fieldvault/keyset/v1/aead/contact.phone"), randomBytes(t, 64)} {
			pt := randomBytes(t, n)
			w := wrap(t, k, pt, aad)
			if n >= 16 && bytes.Contains(w, pt) {
				t.Fatalf("a %d-byte plaintext appears in its blob", n)
			}
			mustUnwrap(t, k, w, aad, pt)
		}
	}
}

func testSizes(t *testing.T, k kek.KEK) {
	aad := []byte("sizes")
	for _, pt := range [][]byte{{}, nil, randomBytes(t, 64<<10)} {
		w := wrap(t, k, pt, aad)
		got, err := k.Unwrap(context.Background(), w, aad)
		if err != nil {
			t.Fatalf("Unwrap of a %d-byte plaintext = %v", len(pt), err)
		}
		if !bytes.Equal(got, pt) || got == nil {
			t.Fatalf("Unwrap of a %d-byte plaintext = %d bytes (nil: %v), want %d non-nil", len(pt), len(got), got == nil, len(pt))
		}
	}
}

func testNilAAD(t *testing.T, k kek.KEK) {
	pt := randomBytes(t, 32)
	mustUnwrap(t, k, wrap(t, k, pt, nil), []byte{}, pt)
	mustUnwrap(t, k, wrap(t, k, pt, []byte{}), nil, pt)
}

func testWrongAAD(t *testing.T, k kek.KEK) {
	pt := randomBytes(t, 32)
	aad := []byte("fieldvault/keyset/v1/aead/contact.phone")
	w := wrap(t, k, pt, aad)
	for _, bad := range [][]byte{
		nil,
		[]byte("fieldvault/keyset/v1/aead/contact.email"),
		append(bytes.Clone(aad), 0),
		aad[:len(aad)-1],
		bytes.ToUpper(aad),
	} {
		mustReject(t, k, w, bad, fmt.Sprintf("aad %q", bad))
	}
	mustUnwrap(t, k, w, aad, pt)
}

func testTampered(t *testing.T, k kek.KEK) {
	pt := randomBytes(t, 32)
	aad := []byte("tamper")
	w := wrap(t, k, pt, aad)
	// Every byte, one bit at a time: the low bit and the high bit.
	for i := range w {
		for _, bit := range []byte{0x01, 0x80} {
			bad := bytes.Clone(w)
			bad[i] ^= bit
			mustReject(t, k, bad, aad, fmt.Sprintf("blob with byte %d ^ %#x", i, bit))
		}
	}
	mustReject(t, k, append(bytes.Clone(w), 0), aad, "blob with a byte appended")
	mustReject(t, k, append(bytes.Clone(w), w...), aad, "blob repeated")
	mustUnwrap(t, k, w, aad, pt)
}

func testTruncated(t *testing.T, k kek.KEK) {
	pt := randomBytes(t, 32)
	aad := []byte("truncate")
	w := wrap(t, k, pt, aad)
	for n := 0; n < len(w); n++ {
		mustReject(t, k, w[:n], aad, fmt.Sprintf("blob truncated to %d of %d bytes", n, len(w)))
	}
	mustReject(t, k, w[1:], aad, "blob without its first byte")
}

func testGarbage(t *testing.T, k kek.KEK) {
	aad := []byte("garbage")
	for _, g := range [][]byte{
		nil,
		{},
		{0},
		randomBytes(t, 1),
		randomBytes(t, 64),
		[]byte("vault:v1:"),
		[]byte("vault:v1:" + base64.StdEncoding.EncodeToString(randomBytes(t, 60))),
		[]byte("garbage"),
		bytes.Repeat([]byte{0xff}, 100),
	} {
		mustReject(t, k, g, aad, fmt.Sprintf("%q", g))
	}
}

func testWrapsDiffer(t *testing.T, k kek.KEK) {
	pt := randomBytes(t, 32)
	aad := []byte("differ")
	a, b := wrap(t, k, pt, aad), wrap(t, k, pt, aad)
	if bytes.Equal(a, b) {
		t.Fatal("two wraps of the same plaintext and aad are equal; the KEK is deterministic")
	}
	mustUnwrap(t, k, a, aad, pt)
	mustUnwrap(t, k, b, aad, pt)
}

func testInputNotModified(t *testing.T, k kek.KEK) {
	pt, aad := randomBytes(t, 48), randomBytes(t, 16)
	ptCopy, aadCopy := bytes.Clone(pt), bytes.Clone(aad)
	w := wrap(t, k, pt, aad)
	wCopy := bytes.Clone(w)
	if _, err := k.Unwrap(context.Background(), w, aad); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(pt, ptCopy) || !bytes.Equal(aad, aadCopy) || !bytes.Equal(w, wCopy) {
		t.Fatal("Wrap or Unwrap modified its input")
	}
}

func testCanceled(t *testing.T, k kek.KEK) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	w := wrap(t, k, []byte("x"), nil)
	if _, err := k.Wrap(ctx, []byte("x"), nil); !errors.Is(err, context.Canceled) {
		t.Errorf("Wrap with a canceled context = %v, want context.Canceled", err)
	}
	if _, err := k.Unwrap(ctx, w, nil); !errors.Is(err, context.Canceled) {
		t.Errorf("Unwrap with a canceled context = %v, want context.Canceled", err)
	}
}

func testRotation(t *testing.T, k kek.KEK) {
	r, ok := k.(kek.Rotator)
	if !ok {
		t.Skipf("%T is not a kek.Rotator", k)
	}
	ctx := context.Background()
	pt, aad := randomBytes(t, 32), []byte("rotation")
	old := wrap(t, k, pt, aad)
	if err := r.Rotate(ctx); err != nil {
		t.Fatalf("Rotate = %v", err)
	}
	mustUnwrap(t, k, old, aad, pt)
	mustReject(t, k, old, []byte("other"), "an old blob with the wrong aad")
	fresh := wrap(t, k, pt, aad)
	mustUnwrap(t, k, fresh, aad, pt)

	if err := r.Rotate(ctx); err != nil {
		t.Fatalf("second Rotate = %v", err)
	}
	mustUnwrap(t, k, old, aad, pt)
	mustUnwrap(t, k, fresh, aad, pt)
	newest := wrap(t, k, pt, aad)

	v, ok := k.(kek.Versioner)
	if !ok {
		t.Logf("%T is not a kek.Versioner; blob versions not checked", k)
		return
	}
	vOld, vFresh, vNewest := version(t, v, old), version(t, v, fresh), version(t, v, newest)
	if !(vOld < vFresh && vFresh < vNewest) {
		t.Fatalf("blob versions before and after two rotations = %d, %d, %d; want strictly increasing", vOld, vFresh, vNewest)
	}
}

func version(t *testing.T, v kek.Versioner, w []byte) uint32 {
	t.Helper()
	n, err := v.WrappedVersion(w)
	if err != nil {
		t.Fatalf("WrappedVersion = %v", err)
	}
	if n == 0 {
		t.Fatal("WrappedVersion = 0; versions start at 1")
	}
	return n
}

func testRewrap(t *testing.T, k kek.KEK) {
	rw, ok := k.(kek.Rewrapper)
	if !ok {
		t.Skipf("%T is not a kek.Rewrapper", k)
	}
	ctx := context.Background()
	pt, aad := randomBytes(t, 32), []byte("rewrap")
	old := wrap(t, k, pt, aad)
	if r, ok := k.(kek.Rotator); ok {
		if err := r.Rotate(ctx); err != nil {
			t.Fatalf("Rotate = %v", err)
		}
	}
	moved, err := rw.Rewrap(ctx, old)
	if err != nil {
		t.Fatalf("Rewrap = %v", err)
	}
	mustUnwrap(t, k, moved, aad, pt)
	mustReject(t, k, moved, []byte("other"), "a rewrapped blob with the wrong aad")
	if v, ok := k.(kek.Versioner); ok {
		if _, isRotator := k.(kek.Rotator); isRotator {
			fresh := wrap(t, k, pt, aad)
			if got, want := version(t, v, moved), version(t, v, fresh); got != want || got <= version(t, v, old) {
				t.Fatalf("rewrapped blob has version %d, want the current %d (old blob: %d)", got, want, version(t, v, old))
			}
		}
	}
	for _, bad := range [][]byte{nil, []byte("garbage"), old[:len(old)-1]} {
		if _, err := rw.Rewrap(ctx, bad); !errors.Is(err, kek.ErrInvalidCiphertext) {
			t.Errorf("Rewrap(%q) = %v, want kek.ErrInvalidCiphertext", bad, err)
		}
	}
	tampered := bytes.Clone(old)
	tampered[len(tampered)-3] ^= 0x01
	if _, err := rw.Rewrap(ctx, tampered); !errors.Is(err, kek.ErrInvalidCiphertext) {
		t.Errorf("Rewrap(tampered) = %v, want kek.ErrInvalidCiphertext", err)
	}
}

func testConcurrent(t *testing.T, k kek.KEK) {
	const workers, rounds = 8, 16
	ctx := context.Background()
	var wg sync.WaitGroup
	errs := make(chan error, workers+1)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			aad := fmt.Appendf(nil, "worker-%d", w)
			for i := range rounds {
				pt := fmt.Appendf(nil, "plaintext %d/%d", w, i)
				blob, err := k.Wrap(ctx, pt, aad)
				if err != nil {
					errs <- fmt.Errorf("worker %d: Wrap: %w", w, err)
					return
				}
				got, err := k.Unwrap(ctx, blob, aad)
				if err != nil || !bytes.Equal(got, pt) {
					errs <- fmt.Errorf("worker %d: Unwrap = %q, %v", w, got, err)
					return
				}
			}
		}()
	}
	if r, ok := k.(kek.Rotator); ok {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 2 {
				if err := r.Rotate(ctx); err != nil {
					errs <- fmt.Errorf("rotating: %w", err)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// testNoSecretsInErrors makes every kind of failure it can and checks that
// no error, nor the KEK's printed forms, contains the plaintext in any
// common encoding.
func testNoSecretsInErrors(t *testing.T, k kek.KEK) {
	ctx := context.Background()
	pt := []byte("SECRET-PLAINTEXT-4f1c9a7e2b6d8035")
	aad := []byte("no-secrets")
	w := wrap(t, k, pt, aad)
	forms := secretForms(pt)

	var errs []error
	_, err := k.Unwrap(ctx, w, []byte("wrong"))
	errs = append(errs, err)
	bad := bytes.Clone(w)
	bad[len(bad)-2] ^= 0x01
	_, err = k.Unwrap(ctx, bad, aad)
	errs = append(errs, err)
	_, err = k.Unwrap(ctx, w[:len(w)-1], aad)
	errs = append(errs, err)
	_, err = k.Unwrap(ctx, pt, aad) // the plaintext itself offered as a blob
	errs = append(errs, err)
	canceled, cancel := context.WithCancel(ctx)
	cancel()
	_, err = k.Wrap(canceled, pt, aad)
	errs = append(errs, err)

	for i, err := range errs {
		if err == nil {
			t.Errorf("failure %d: no error", i)
			continue
		}
		for _, f := range forms {
			if strings.Contains(err.Error(), f) || strings.Contains(fmt.Sprintf("%+v", err), f) {
				t.Errorf("failure %d: error %q contains the plaintext", i, err)
			}
		}
	}
	for _, printed := range []string{fmt.Sprint(k), fmt.Sprintf("%+v", k), fmt.Sprintf("%#v", k)} {
		for _, f := range forms {
			if strings.Contains(printed, f) {
				t.Errorf("printing the KEK shows the plaintext: %q", printed)
			}
		}
	}
}

// secretForms returns s and its hex and base64 encodings (every alignment).
func secretForms(s []byte) []string {
	forms := []string{string(s), hex.EncodeToString(s), strings.ToUpper(hex.EncodeToString(s))}
	for off := range 3 {
		padded := append(make([]byte, off), s...)
		enc := base64.StdEncoding.EncodeToString(padded)
		// Drop the characters that straddle the padding and the ends.
		if len(enc) > 8 {
			forms = append(forms, enc[4:len(enc)-4])
		}
	}
	return forms
}
