package store_test

import (
	"bytes"
	"errors"
	"math"
	"reflect"
	"testing"

	"github.com/fieldvault/fieldvault/vault/store"
)

func sampleTokens() []store.Token {
	return []store.Token{
		{},
		{Subject: "s", Category: 1, KeyVersion: 1},
		{
			Subject: "usr_01HZX3K9Q4W5E6R7T8Y9U0I1O2", Category: 7, KeyVersion: 3,
			CreatedAt: 1_764_000_000, ExpiresAt: 1_764_000_000 + 86400*365,
			Ciphertext: bytes.Repeat([]byte{0xAB}, 60),
		},
		{
			Subject: "usr_1", Category: 2, KeyVersion: 9,
			CreatedAt:   1_764_000_000,
			Fingerprint: bytes.Repeat([]byte{0x5A}, 32),
			Ciphertext:  []byte("ct"),
		},
		{
			Subject: "with\x00nul\xff", Category: math.MaxUint16, KeyVersion: math.MaxUint32,
			CreatedAt: math.MinInt64, ExpiresAt: math.MaxInt64,
			Fingerprint: []byte{0}, Ciphertext: make([]byte, 300),
		},
		{CreatedAt: math.MaxInt64, ExpiresAt: math.MinInt64},
		{CreatedAt: -5, ExpiresAt: -1},
	}
}

func TestTokenRoundTrip(t *testing.T) {
	for i, tok := range sampleTokens() {
		enc := store.AppendToken([]byte("prefix"), &tok)
		if !bytes.HasPrefix(enc, []byte("prefix")) {
			t.Fatalf("#%d: AppendToken dropped dst", i)
		}
		enc = enc[len("prefix"):]
		if got := store.EncodedTokenSize(&tok); got != len(enc) {
			t.Errorf("#%d: EncodedTokenSize = %d, len(AppendToken) = %d", i, got, len(enc))
		}
		got := store.Token{Token: "kept"}
		if err := store.DecodeToken(enc, &got); err != nil {
			t.Fatalf("#%d: DecodeToken: %v", i, err)
		}
		want := tok
		want.Token = "kept"
		if !reflect.DeepEqual(normalize(got), normalize(want)) {
			t.Errorf("#%d: round trip\n got %+v\nwant %+v", i, got, want)
		}
		// The decoded slices must not alias the input.
		for j := range enc {
			enc[j] ^= 0xFF
		}
		if !bytes.Equal(got.Ciphertext, tok.Ciphertext) || !bytes.Equal(got.Fingerprint, tok.Fingerprint) {
			t.Errorf("#%d: decoded token aliases its input", i)
		}
	}
}

// normalize maps empty slices to nil: the encoding does not tell them apart.
func normalize(t store.Token) store.Token {
	if len(t.Fingerprint) == 0 {
		t.Fingerprint = nil
	}
	if len(t.Ciphertext) == 0 {
		t.Ciphertext = nil
	}
	return t
}

func TestTokenEncodingIsCompact(t *testing.T) {
	// A typical random token: 30-byte subject, 60-byte AEAD ciphertext, a
	// one-year expiry. The Redis backend's memory budget depends on this
	// size: version and flags, one length byte per field, one byte each for
	// category and key version, five for the creation time and four for the
	// expiry delta.
	tok := sampleTokens()[2]
	want := 2 + 1 + len(tok.Subject) + 1 + 1 + 5 + 4 + 1 + len(tok.Ciphertext)
	if n := len(store.AppendToken(nil, &tok)); n != want {
		t.Errorf("encoded size %d, want %d", n, want)
	}
}

func TestDecodeTokenRejects(t *testing.T) {
	good := store.AppendToken(nil, &store.Token{
		Subject: "s", Category: 1, KeyVersion: 1, CreatedAt: 100, ExpiresAt: 200,
		Fingerprint: []byte("fp"), Ciphertext: []byte("ct"),
	})
	cases := []struct {
		name string
		data []byte
	}{
		{"empty", nil},
		{"version 0", append([]byte{0}, good[1:]...)},
		{"version 2", append([]byte{2}, good[1:]...)},
		{"unknown flag", append([]byte{1, good[1] | 0x80}, good[2:]...)},
		{"trailing byte", append(bytes.Clone(good), 0)},
		{"subject length past end", []byte{1, 0, 0x7F, 's'}},
		{"huge subject length", []byte{1, 0, 0xFF, 0xFF, 0xFF, 0xFF, 0x0F}},
		{"category too big", []byte{1, 0, 0, 0x80, 0x80, 0x04, 0, 0, 0}},
		{"key version too big", []byte{1, 0, 0, 1, 0x80, 0x80, 0x80, 0x80, 0x10, 0, 0}},
		{"non-minimal varint", []byte{1, 0, 0, 0x81, 0x00, 1, 0, 0}},
		{"overflowing varint", []byte{1, 0, 0, 1, 1, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x7F, 0}},
		{"expiry flag, zero expiry", []byte{1, 1, 0, 1, 1, 2, 1 /* -1 */, 0}},
		{"fingerprint flag, empty fingerprint", []byte{1, 2, 0, 1, 1, 0, 0, 0}},
		{"missing ciphertext", []byte{1, 0, 0, 1, 1, 0}},
		{"ciphertext past end", []byte{1, 0, 0, 1, 1, 0, 3, 'a', 'b'}},
	}
	for _, c := range cases {
		var tok store.Token
		if err := store.DecodeToken(c.data, &tok); !errors.Is(err, store.ErrCorrupt) {
			t.Errorf("%s: DecodeToken(%x) = %v, want ErrCorrupt", c.name, c.data, err)
		}
	}
	for n := range len(good) {
		var tok store.Token
		if err := store.DecodeToken(good[:n], &tok); !errors.Is(err, store.ErrCorrupt) {
			t.Errorf("DecodeToken(truncated to %d) = %v, want ErrCorrupt", n, err)
		}
	}
	var tok store.Token
	if err := store.DecodeToken(good, &tok); err != nil {
		t.Fatalf("DecodeToken(good) = %v", err)
	}
}

func TestSubjectKeyRef(t *testing.T) {
	refs := []store.SubjectKeyRef{
		{},
		{Subject: "a", Category: 1, Version: 1},
		{Subject: "a\x00b", Category: 0xFFFF, Version: 0xFFFFFFFF},
		{Subject: string(bytes.Repeat([]byte{'x'}, 200)), Category: 3, Version: 70000},
	}
	for _, ref := range refs {
		enc := store.AppendSubjectKeyRef(nil, ref)
		if !bytes.HasPrefix(enc, store.AppendSubjectKeyPrefix(nil, ref.Subject)) {
			t.Errorf("%q: encoding does not start with the subject prefix", ref.Subject)
		}
		got, err := store.DecodeSubjectKeyRef(enc)
		if err != nil || got != ref {
			t.Errorf("DecodeSubjectKeyRef(AppendSubjectKeyRef(%+v)) = %+v, %v", ref, got, err)
		}
		if _, err := store.DecodeSubjectKeyRef(append(enc, 0)); !errors.Is(err, store.ErrCorrupt) {
			t.Errorf("trailing byte accepted: %v", err)
		}
		if _, err := store.DecodeSubjectKeyRef(enc[:len(enc)-1]); !errors.Is(err, store.ErrCorrupt) {
			t.Errorf("truncated key accepted: %v", err)
		}
	}
	// One subject's prefix must not be a prefix of another subject's keys.
	a := store.AppendSubjectKeyPrefix(nil, "a")
	ab := store.AppendSubjectKeyRef(nil, store.SubjectKeyRef{Subject: "a\x00b", Category: 1, Version: 1})
	if bytes.HasPrefix(ab, a) {
		t.Errorf("prefix of subject %q matches a key of subject %q", "a", "a\x00b")
	}
}

func FuzzDecodeToken(f *testing.F) {
	for _, tok := range sampleTokens() {
		f.Add(store.AppendToken(nil, &tok))
	}
	f.Add([]byte{1, 3, 0, 1, 1, 0, 2, 1, 'f', 0})
	f.Fuzz(func(t *testing.T, data []byte) {
		var tok store.Token
		if err := store.DecodeToken(data, &tok); err != nil {
			if !errors.Is(err, store.ErrCorrupt) {
				t.Fatalf("error %v is not ErrCorrupt", err)
			}
			return
		}
		// Canonical: anything accepted re-encodes to the same bytes.
		if re := store.AppendToken(nil, &tok); !bytes.Equal(re, data) {
			t.Fatalf("re-encoding differs:\n in %x\nout %x", data, re)
		}
	})
}

func FuzzTokenRoundTrip(f *testing.F) {
	f.Add("usr_1", uint16(1), uint32(1), int64(1_764_000_000), int64(0), []byte(nil), []byte("ct"))
	f.Add("", uint16(0), uint32(0), int64(math.MinInt64), int64(math.MaxInt64), []byte("fp"), []byte(nil))
	f.Fuzz(func(t *testing.T, subject string, cat uint16, ver uint32, created, expires int64, fp, ct []byte) {
		in := store.Token{
			Subject: subject, Category: cat, KeyVersion: ver,
			CreatedAt: created, ExpiresAt: expires, Fingerprint: fp, Ciphertext: ct,
		}
		enc := store.AppendToken(nil, &in)
		if len(enc) != store.EncodedTokenSize(&in) {
			t.Fatalf("EncodedTokenSize = %d, encoded %d bytes", store.EncodedTokenSize(&in), len(enc))
		}
		var out store.Token
		if err := store.DecodeToken(enc, &out); err != nil {
			t.Fatalf("DecodeToken: %v", err)
		}
		if !reflect.DeepEqual(normalize(out), normalize(in)) {
			t.Fatalf("round trip\n got %+v\nwant %+v", out, in)
		}
	})
}

func FuzzDecodeSubjectKeyRef(f *testing.F) {
	f.Add(store.AppendSubjectKeyRef(nil, store.SubjectKeyRef{Subject: "s", Category: 1, Version: 2}))
	f.Add([]byte{0x80})
	f.Fuzz(func(t *testing.T, data []byte) {
		ref, err := store.DecodeSubjectKeyRef(data)
		if err != nil {
			if !errors.Is(err, store.ErrCorrupt) {
				t.Fatalf("error %v is not ErrCorrupt", err)
			}
			return
		}
		if re := store.AppendSubjectKeyRef(nil, ref); !bytes.Equal(re, data) {
			t.Fatalf("re-encoding differs:\n in %x\nout %x", data, re)
		}
	})
}
