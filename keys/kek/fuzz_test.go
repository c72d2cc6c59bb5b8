package kek

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"testing"
)

// FuzzLocalUnwrap feeds arbitrary blobs to a Local KEK holding two
// versions. Unwrap must never panic, must fail with ErrInvalidCiphertext on
// anything it did not make itself, and the header parser must round-trip.
func FuzzLocalUnwrap(f *testing.F) {
	ctx := context.Background()
	l, _, err := LoadOrCreateLocal(filepath.Join(f.TempDir(), "fuzz.key"))
	if err != nil {
		f.Fatal(err)
	}
	aad := []byte("fuzz-aad")
	valid := map[string][]byte{}
	add := func(pt []byte) {
		blob, err := l.Wrap(ctx, pt, aad)
		if err != nil {
			f.Fatal(err)
		}
		valid[string(blob)] = pt
		f.Add(blob)
	}
	add(nil)
	add([]byte("a keyset"))
	if err := l.Rotate(ctx); err != nil {
		f.Fatal(err)
	}
	add(bytes.Repeat([]byte{7}, 300))
	for _, seed := range [][]byte{
		{}, {localMagic}, {localMagic, 0}, {localMagic, 1}, {localMagic, 0x81, 0x00},
		{localMagic, 0xff, 0xff, 0xff, 0xff, 0x0f}, {localMagic, 0xff, 0xff, 0xff, 0xff, 0x10},
		append([]byte{localMagic, 1}, make([]byte, gcmNonceSize+gcmTagSize)...),
		[]byte("vault:v1:AAAA"),
	} {
		f.Add(seed)
	}

	f.Fuzz(func(t *testing.T, data []byte) {
		if v, hdrLen, err := parseLocalBlob(data); err == nil {
			if hdr := appendLocalHeader(nil, v); !bytes.Equal(hdr, data[:hdrLen]) {
				t.Fatalf("header %x parses as version %d, which formats as %x", data[:hdrLen], v, hdr)
			}
		} else if !errors.Is(err, ErrInvalidCiphertext) {
			t.Fatalf("parseLocalBlob error %v does not wrap ErrInvalidCiphertext", err)
		}
		pt, err := l.Unwrap(ctx, data, aad)
		want, isValid := valid[string(data)]
		switch {
		case err == nil && !isValid:
			t.Fatalf("Unwrap accepted a blob it never made: %x", data)
		case err == nil && !bytes.Equal(pt, want):
			t.Fatalf("Unwrap returned the wrong plaintext")
		case err != nil && isValid:
			t.Fatalf("Unwrap refused its own blob: %v", err)
		case err != nil && !errors.Is(err, ErrInvalidCiphertext):
			t.Fatalf("Unwrap error %v does not wrap ErrInvalidCiphertext", err)
		case err != nil && pt != nil:
			t.Fatal("Unwrap returned bytes beside an error")
		}
	})
}

var recordedCiphertextRe = regexp.MustCompile(`vault:v[0-9]+:[A-Za-z0-9+/=]*`)

// FuzzTransitCiphertext checks the strict Transit ciphertext parser: it
// never panics, accepts only what formatTransitCiphertext writes (so parse
// then format gives back the input), and reports ErrInvalidCiphertext.
func FuzzTransitCiphertext(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join("transittest", "testdata", "exchanges", "*.json"))
	for _, file := range files {
		data, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		for _, m := range recordedCiphertextRe.FindAll(data, -1) {
			f.Add(m)
		}
	}
	for _, s := range []string{
		"", "vault:v", "vault:v1", "vault:v1:", "vault:v0:AAAA", "vault:v01:AAAA", "vault:v-1:AAAA",
		"vault:v+1:AAAA", "vault:v4294967296:AAAA", "vault:v1:" + base64.StdEncoding.EncodeToString(make([]byte, 28)),
		"vault:v1:" + base64.StdEncoding.EncodeToString(make([]byte, 27)), "garbage", "vault:v9:AAAA",
		"vault:v1:QUFB\nQUFB", "vault:v1:QQ==QQ==",
	} {
		f.Add([]byte(s))
	}

	f.Fuzz(func(t *testing.T, data []byte) {
		v, err := parseTransitCiphertext(data)
		if err != nil {
			if !errors.Is(err, ErrInvalidCiphertext) {
				t.Fatalf("error %v does not wrap ErrInvalidCiphertext", err)
			}
			return
		}
		if v == 0 {
			t.Fatal("accepted version 0")
		}
		i := bytes.IndexByte(data[len(transitPrefix):], ':') + len(transitPrefix)
		payload, err := base64.StdEncoding.Strict().DecodeString(string(data[i+1:]))
		if err != nil {
			t.Fatalf("accepted a payload that does not decode: %v", err)
		}
		if len(payload) < transitMinPayload {
			t.Fatalf("accepted a %d-byte payload", len(payload))
		}
		if got := formatTransitCiphertext(v, payload); !bytes.Equal(got, data) {
			t.Fatalf("%q parses as v%d but formats as %q", data, v, got)
		}
	})
}
