package tokenizer

import (
	"errors"
	"fmt"
	"io"
	"strings"
	"unsafe"
)

// MaxTokenLen is the longest token [Category.NewToken] makes and
// [ParseToken] accepts, in bytes.
const MaxTokenLen = 128

// Options changes how [Category.NewToken] builds a format-preserving token.
// Each field applies to one format; setting it for a category of another
// format is an error wrapping [ErrUnsupportedOption].
type Options struct {
	// LuhnValid makes card tokens pass the Luhn check. It is for legacy
	// validators only: such a token can be mistaken for a real card
	// number. FormatCard only.
	LuhnValid bool
	// KeepLast4 copies d10–d13 of a Thai national ID (the real check digit
	// included) into its token; d1–d9 are then redrawn until the checksum
	// fails. FormatThaiNationalID only. Card, bank account and phone tokens
	// always keep the last 4 digits.
	KeepLast4 bool
	// KeepDomain keeps the email domain: <16 base32>@<domain>.invalid.
	// FormatEmail only.
	KeepDomain bool
	// Widen adds up to Widen random digits to a phone token beyond the
	// value's own length, as far as E.164's 15 digits allow. A phone token
	// keeps the country code and the last 4 digits, so the numbers of one
	// country that share their last 4 compete for few same-length tokens
	// (10^4 for a Thai mobile, 10 for an 8-digit number); the vault widens
	// after repeated collisions so that a crowded group still gets tokens,
	// each wider digit multiplying the space by ten. FormatPhone only;
	// negative values are refused.
	Widen int
}

const (
	tokenPrefix     = "tok_"
	opaqueRandLen   = 22 // base62: 131 bits
	emailRandLen    = 16 // base32: 80 bits
	emailTokenHost  = "tok"
	invalidTLD      = ".invalid"
	decimal         = "0123456789"
	base62          = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
	base32          = "abcdefghijklmnopqrstuvwxyz234567" // RFC 4648, lower case
	phoneMinRandLen = 1

	// randomHeadroom is how many random bytes beyond the expected need are
	// read up front, for rejections and redraws.
	randomHeadroom = 16
	// maxReads bounds the Read calls for one token: a source this far from
	// uniform is broken.
	maxReads = 64
)

// NewToken returns a new random token for normalized, a value returned by
// [Category.Normalize]. r must be a cryptographically secure random source
// (crypto/rand.Reader in production); NewToken usually reads it once.
//
// The token shape depends on the category's Format:
//
//   - opaque: tok_<prefix>_<22 base62>; the value is not used.
//   - phone: "+", the value's country code, "0", random digits, the value's
//     last 4 digits; as many digits as the value, or up to [Options.Widen]
//     more (15 at most). Values too short to leave one random digit are
//     rejected.
//   - email: <16 base32>@tok.invalid, or <16 base32>@<domain>.invalid with
//     [Options.KeepDomain] (the token must fit in [MaxTokenLen]).
//   - card: as many digits as the value, the last 4 kept, the others
//     random; the first digit is redrawn until the Luhn check fails (or
//     computed so that it passes, with [Options.LuhnValid]). Redrawing one
//     digit is enough: for fixed other digits each value of the first digit
//     gives a different Luhn residue, so the result is uniform over all
//     Luhn-invalid tokens with those last 4.
//   - Thai national ID: 12 random digits and a check digit redrawn until it
//     is not the valid one; with [Options.KeepLast4], d10–d13 copied and
//     d1–d9 redrawn until the checksum fails.
//   - bank account: as many digits as the value, the last 4 kept.
//
// Random characters are drawn without modulo bias. Apart from the kept
// parts, the token does not depend on the value. A token is unique only with
// high probability, and phone tokens have few random digits (4 for a Thai
// mobile number): the caller must check a new token against its store.
// Errors never contain the value.
func (c *Category) NewToken(r io.Reader, normalized string, opt Options) (string, error) {
	if err := c.checkOptions(opt); err != nil {
		return "", err
	}
	switch c.Format {
	case FormatOpaque:
		return c.opaqueToken(r)
	case FormatPhone:
		return c.phoneToken(r, normalized, opt.Widen)
	case FormatEmail:
		return c.emailToken(r, normalized, opt.KeepDomain)
	case FormatCard:
		return c.cardToken(r, normalized, opt.LuhnValid)
	case FormatThaiNationalID:
		return c.thaiIDToken(r, normalized, opt.KeepLast4)
	case FormatBankAccount:
		return c.bankToken(r, normalized)
	}
	panic("tokenizer: category " + c.Name + " has no token format")
}

func (c *Category) checkOptions(opt Options) error {
	var bad string
	switch {
	case opt.LuhnValid && c.Format != FormatCard:
		bad = "LuhnValid"
	case opt.KeepLast4 && c.Format != FormatThaiNationalID:
		bad = "KeepLast4"
	case opt.KeepDomain && c.Format != FormatEmail:
		bad = "KeepDomain"
	case opt.Widen != 0 && c.Format != FormatPhone:
		bad = "Widen"
	case opt.Widen < 0:
		bad = "negative Widen"
	default:
		return nil
	}
	return fmt.Errorf("%w: %s for %s (format %v)", ErrUnsupportedOption, bad, c.Name, c.Format)
}

// tokenBuf is a token under construction. Its random bytes are read into the
// spare capacity of the token's own buffer, so a token costs one allocation
// and, almost always, one Read.
type tokenBuf struct {
	out  []byte // the token
	rand []byte // random bytes: the spare capacity after out
	rest []byte // the unused tail of rand
	r    io.Reader
	n    int   // Read calls so far
	err  error // sticky: the first Read error
}

// errBadRandom stops a token when the random source keeps producing bytes
// that are rejected (a constant 0xFF stream, say), instead of looping.
var errBadRandom = errors.New("random source is not uniform")

// newTokenBuf starts a token of n bytes that will draw about draws random
// bytes. head is copied to its start.
func newTokenBuf(r io.Reader, n, draws int, head string) *tokenBuf {
	b := make([]byte, n, n+draws+randomHeadroom)
	copy(b, head)
	rand := b[n:cap(b)]
	return &tokenBuf{out: b, rand: rand, r: r}
}

// draw fills dst with characters of alphabet, uniformly: a random byte b
// gives alphabet[b mod n] when b is below the largest multiple of n that
// fits in a byte, and is rejected otherwise (so no modulo bias). Once a Read
// has failed, draw fills dst with alphabet[0] and t.err is set.
func (t *tokenBuf) draw(dst []byte, alphabet string) {
	n := len(alphabet)
	limit := 256 - 256%n
	for i := 0; i < len(dst); {
		if len(t.rest) == 0 && !t.refill() {
			for ; i < len(dst); i++ {
				dst[i] = alphabet[0]
			}
			return
		}
		b := int(t.rest[0])
		t.rest = t.rest[1:]
		if b < limit {
			dst[i] = alphabet[b%n]
			i++
		}
	}
}

// refill reads a fresh batch of random bytes into rest.
func (t *tokenBuf) refill() bool {
	if t.err != nil {
		return false
	}
	if t.n++; t.n > maxReads {
		t.err = errBadRandom
		return false
	}
	if _, err := io.ReadFull(t.r, t.rand); err != nil {
		t.err = err
		return false
	}
	t.rest = t.rand
	return true
}

// finish returns the token as a string sharing out's memory, or the Read
// error. The spare random bytes stay in the allocation, unreachable; they
// tell nothing the token does not.
func (t *tokenBuf) finish() (string, error) {
	if t.err != nil {
		return "", fmt.Errorf("tokenizer: reading randomness: %w", t.err)
	}
	// out is never written again, and no other reference to it escapes.
	return unsafe.String(unsafe.SliceData(t.out), len(t.out)), nil
}

func (c *Category) opaqueToken(r io.Reader) (string, error) {
	head := len(tokenPrefix) + len(c.Prefix) + 1
	t := newTokenBuf(r, head+opaqueRandLen, opaqueRandLen, tokenPrefix)
	copy(t.out[len(tokenPrefix):], c.Prefix)
	t.out[head-1] = '_'
	t.draw(t.out[head:], base62)
	return t.finish()
}

func (c *Category) phoneToken(r io.Reader, v string, widen int) (string, error) {
	n := len(v) - 1 // digits
	if len(v) == 0 || v[0] != '+' || !allDigits(v[1:]) || n < phoneMinDigits || n > phoneMaxDigits {
		return "", c.invalid(reasonNotNormalized)
	}
	cc := callingCodeLen(v[1:])
	if cc == 0 {
		return "", c.invalid(reasonNotNormalized)
	}
	if n-cc-1-keptDigits < phoneMinRandLen {
		return "", c.invalid("too short for a phone token")
	}
	n = max(n, min(n+widen, phoneMaxDigits)) // widen ≥ 0 (checkOptions)
	randLen := n - cc - 1 - keptDigits
	t := newTokenBuf(r, 1+n, randLen, v[:1+cc])
	t.out[1+cc] = '0'
	t.draw(t.out[2+cc:1+n-keptDigits], decimal)
	copy(t.out[1+n-keptDigits:], v[len(v)-keptDigits:])
	return t.finish()
}

func (c *Category) emailToken(r io.Reader, v string, keepDomain bool) (string, error) {
	host := emailTokenHost
	if keepDomain {
		at := strings.LastIndexByte(v, '@')
		if at <= 0 || !validDomain(v[at+1:]) {
			return "", c.invalid(reasonNotNormalized)
		}
		host = v[at+1:]
	}
	n := emailRandLen + 1 + len(host) + len(invalidTLD)
	if n > MaxTokenLen {
		return "", c.invalid("domain too long to keep")
	}
	t := newTokenBuf(r, n, emailRandLen, "")
	t.draw(t.out[:emailRandLen], base32) // 256 is a multiple of 32: no rejection
	t.out[emailRandLen] = '@'
	copy(t.out[emailRandLen+1:], host)
	copy(t.out[n-len(invalidTLD):], invalidTLD)
	return t.finish()
}

func (c *Category) cardToken(r io.Reader, v string, luhnValid bool) (string, error) {
	if len(v) < 13 || len(v) > 19 || !allDigits(v) {
		return "", c.invalid(reasonNotNormalized)
	}
	t := newTokenBuf(r, len(v), len(v), v)
	t.draw(t.out[1:len(v)-keptDigits], decimal)
	// want is the first digit that makes the token Luhn-valid.
	t.out[0] = '0'
	sum := luhnSum(t.out)
	want := byte(0)
	for (sum+luhnFirst(want, len(v)))%10 != 0 {
		want++
	}
	want += '0'
	if luhnValid {
		t.out[0] = want
	} else {
		for t.draw(t.out[:1], decimal); t.out[0] == want && t.err == nil; {
			t.draw(t.out[:1], decimal)
		}
	}
	return t.finish()
}

// luhnFirst is the Luhn contribution of digit d in the first place of an
// n-digit number: doubled when n is even.
func luhnFirst(d byte, n int) int {
	if n%2 == 0 {
		return luhnDouble[d]
	}
	return int(d)
}

func (c *Category) thaiIDToken(r io.Reader, v string, keepLast4 bool) (string, error) {
	if !keepLast4 {
		t := newTokenBuf(r, 13, 13, "")
		t.draw(t.out[:12], decimal)
		valid := thaiCheck(t.out[:12])
		for t.draw(t.out[12:], decimal); t.out[12] == valid && t.err == nil; {
			t.draw(t.out[12:], decimal)
		}
		return t.finish()
	}
	if len(v) != 13 || !allDigits(v) {
		return "", c.invalid(reasonNotNormalized)
	}
	// The checksum passes for about 1 draw in 11 (2 in 11 when d13 is 1).
	t := newTokenBuf(r, 13, 2*9, v)
	for t.draw(t.out[:9], decimal); thaiCheck(t.out[:12]) == t.out[12] && t.err == nil; {
		t.draw(t.out[:9], decimal)
	}
	return t.finish()
}

func (c *Category) bankToken(r io.Reader, v string) (string, error) {
	if len(v) < 6 || len(v) > 20 || !allDigits(v) {
		return "", c.invalid(reasonNotNormalized)
	}
	t := newTokenBuf(r, len(v), len(v)-keptDigits, v)
	t.draw(t.out[:len(v)-keptDigits], decimal)
	return t.finish()
}
