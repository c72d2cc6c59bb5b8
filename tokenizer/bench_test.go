package tokenizer

import (
	"crypto/rand"
	mrand "math/rand/v2"
	"testing"
)

var benchValues = []struct{ category, raw, normalized string }{
	{"identity.name", "สมชาย ใจดี", "สมชาย ใจดี"},
	{"contact.phone", "081-234-5678", "+66812345678"},
	{"contact.email", "Somchai@Gmail.COM", "Somchai@gmail.com"},
	{"financial.card_pan", "4111 1111 1111 1111", "4111111111111111"},
	{"govid.th_national_id", "1-1017-00230-70-8", "1101700230708"},
	{"financial.bank_account", "123-4-56789-0", "1234567890"},
}

var sink string

func BenchmarkNormalize(b *testing.B) {
	for _, bv := range benchValues {
		c := mustLookup(b, bv.category)
		b.Run(c.Format.String()+"/raw", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				sink, _ = c.Normalize(bv.raw)
			}
		})
		b.Run(c.Format.String()+"/normalized", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				sink, _ = c.Normalize(bv.normalized)
			}
		})
	}
}

// BenchmarkNewToken measures token construction with a fast deterministic
// source (the package's own cost) and with crypto/rand (the real cost).
func BenchmarkNewToken(b *testing.B) {
	for _, bv := range benchValues {
		c := mustLookup(b, bv.category)
		b.Run(c.Format.String()+"/chacha8", func(b *testing.B) {
			r := mrand.NewChaCha8([32]byte{1})
			b.ReportAllocs()
			for b.Loop() {
				sink, _ = c.NewToken(r, bv.normalized, Options{})
			}
		})
		b.Run(c.Format.String()+"/crypto-rand", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				sink, _ = c.NewToken(rand.Reader, bv.normalized, Options{})
			}
		})
	}
}

func BenchmarkParseToken(b *testing.B) {
	for _, tok := range []string{"tok_nm_0123456789ABCDEFGHIJab", "+66012345678", "abcdefghijklmnop@tok.invalid", "4111111111111112"} {
		f, _ := ParseToken(tok)
		b.Run(f.String(), func(b *testing.B) {
			for b.Loop() {
				_, _ = ParseToken(tok)
			}
		})
	}
}

func BenchmarkPartial(b *testing.B) {
	for _, bv := range benchValues {
		c := mustLookup(b, bv.category)
		b.Run(c.Format.String(), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				sink = c.Partial(bv.normalized)
			}
		})
	}
}
