package kek_test

import (
	"context"
	"crypto/rand"
	"fmt"
	"testing"

	"github.com/fieldvault/fieldvault/keys/kek"
	"github.com/fieldvault/fieldvault/keys/kek/transittest"
)

// A serialized Tink keyset with a few AES-GCM keys is a few hundred bytes.
var benchSizes = []int{256, 4096}

func benchWrapUnwrap(b *testing.B, k kek.KEK) {
	ctx := context.Background()
	aad := []byte("fieldvault/keyset/v1/aead/contact.phone")
	for _, n := range benchSizes {
		pt := make([]byte, n)
		if _, err := rand.Read(pt); err != nil {
			b.Fatal(err)
		}
		b.Run(fmt.Sprintf("Wrap/%dB", n), func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(n))
			for b.Loop() {
				if _, err := k.Wrap(ctx, pt, aad); err != nil {
					b.Fatal(err)
				}
			}
		})
		blob, err := k.Wrap(ctx, pt, aad)
		if err != nil {
			b.Fatal(err)
		}
		b.Run(fmt.Sprintf("Unwrap/%dB", n), func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(n))
			for b.Loop() {
				if _, err := k.Unwrap(ctx, blob, aad); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkLocal(b *testing.B) {
	l, _ := newLocal(b)
	benchWrapUnwrap(b, l)
}

// BenchmarkTransit measures the client against transittest over loopback
// HTTP: the KEK's own cost plus an HTTP round trip, not a real Vault's.
func BenchmarkTransit(b *testing.B) {
	s := newTransitServer(b, transittest.Options{})
	benchWrapUnwrap(b, newTransit(b, transitConfig(s)))
}
