package tokenizer

import (
	"bytes"
	"crypto/rand"
	"errors"
	"io"
	mrand "math/rand/v2"
	"regexp"
	"strings"
	"testing"
)

// samples is the number of tokens drawn by each property test (pdpa-model
// §3, F-1 and F-2: 10⁵).
const samples = 100_000

func newToken(t testing.TB, c *Category, r io.Reader, v string, opt Options) string {
	t.Helper()
	tok, err := c.NewToken(r, v, opt)
	if err != nil {
		t.Fatalf("%s.NewToken(%q, %+v): %v", c.Name, v, opt, err)
	}
	return tok
}

// checkDigitsToken checks the shape shared by card, ID and bank tokens.
func checkDigitsToken(t *testing.T, c *Category, v, tok string, keep int) {
	t.Helper()
	if len(tok) != len(v) || !allDigits(tok) || tok[len(tok)-keep:] != v[len(v)-keep:] {
		t.Fatalf("%s token %q of %q: want %d digits ending in %q", c.Name, tok, v, len(v), v[len(v)-keep:])
	}
	if f, err := ParseToken(tok); err != nil || f != FormatDigits {
		t.Fatalf("ParseToken(%q) = %v, %v; want FormatDigits", tok, f, err)
	}
}

// F-1: card tokens keep the length and last 4, are digits only and fail
// Luhn; with LuhnValid they pass it.
func TestCardTokens(t *testing.T) {
	c := mustLookup(t, "financial.card_pan")
	// 13, 15, 16 and 19 digits: the first digit's Luhn weight
	// depends on the parity of the length.
	for _, v := range []string{"4222222222222", "378282246310005", "4111111111111111", "6250941006528599008", "1234567890123456785"} {
		if !LuhnValid(v) {
			t.Fatalf("test value %s is not Luhn-valid", v)
		}
		firstDigits := map[byte]int{}
		for range samples {
			tok := newToken(t, c, rand.Reader, v, Options{})
			checkDigitsToken(t, c, v, tok, 4)
			if LuhnValid(tok) {
				t.Fatalf("card token %q passes Luhn", tok)
			}
			firstDigits[tok[0]]++
		}
		// The first digit is the one redrawn: all ten values must occur.
		if len(firstDigits) != 10 {
			t.Errorf("first digits of %d-digit card tokens: %v, want all ten", len(v), firstDigits)
		}
		for range samples / 10 {
			tok := newToken(t, c, rand.Reader, v, Options{LuhnValid: true})
			checkDigitsToken(t, c, v, tok, 4)
			if !LuhnValid(tok) {
				t.Fatalf("LuhnValid card token %q fails Luhn", tok)
			}
		}
	}
}

// F-2: Thai national ID tokens have 13 digits and fail the checksum; with
// KeepLast4 they keep d10–d13 and still fail it.
func TestThaiIDTokens(t *testing.T) {
	c := mustLookup(t, "govid.th_national_id")
	// d13 = 1 is the value two residues map to: the hardest case.
	for _, v := range []string{"1101700230708", "1234567890121", "0000000000001", "9999999999994"} {
		for range samples {
			tok := newToken(t, c, rand.Reader, v, Options{})
			checkDigitsToken(t, c, v, tok, 0)
			if ThaiIDValid(tok) {
				t.Fatalf("national ID token %q passes the checksum", tok)
			}
			tok = newToken(t, c, rand.Reader, v, Options{KeepLast4: true})
			checkDigitsToken(t, c, v, tok, 4)
			if ThaiIDValid(tok) {
				t.Fatalf("KeepLast4 national ID token %q passes the checksum", tok)
			}
		}
	}
}

// F-3: email tokens end in .invalid.
func TestEmailTokens(t *testing.T) {
	c := mustLookup(t, "contact.email")
	re := regexp.MustCompile(`^[a-z2-7]{16}@tok\.invalid$`)
	reDomain := regexp.MustCompile(`^[a-z2-7]{16}@gmail\.com\.invalid$`)
	for range samples / 10 {
		tok := newToken(t, c, rand.Reader, "Somchai@gmail.com", Options{})
		if !re.MatchString(tok) {
			t.Fatalf("email token %q does not match %v", tok, re)
		}
		tok = newToken(t, c, rand.Reader, "Somchai@gmail.com", Options{KeepDomain: true})
		if !reDomain.MatchString(tok) {
			t.Fatalf("KeepDomain email token %q does not match %v", tok, reDomain)
		}
		if f, err := ParseToken(tok); err != nil || f != FormatEmail {
			t.Fatalf("ParseToken(%q) = %v, %v", tok, f, err)
		}
	}
	long := "a@" + strings.Repeat("b", 100) + ".com"
	if _, err := c.NewToken(rand.Reader, long, Options{KeepDomain: true}); !errors.Is(err, ErrInvalidValue) {
		t.Errorf("KeepDomain with a %d-byte domain: error %v, want ErrInvalidValue", len(long)-2, err)
	}
}

// TestPhoneTokenWiden: Widen adds random digits, never beyond 15, and keeps
// the country code, the trunk 0 and the last 4; it is refused elsewhere.
func TestPhoneTokenWiden(t *testing.T) {
	c := mustLookup(t, "contact.phone")
	for _, tc := range []struct {
		v       string
		widen   int
		wantLen int
	}{
		{"+66812345678", 0, 12}, {"+66812345678", 1, 13}, {"+66812345678", 4, 16},
		{"+66812345678", 9, 16}, {"+123456789012345", 5, 16}, {"+66125678", 2, 11},
	} {
		seen := map[string]bool{}
		for range 200 {
			tok := newToken(t, c, rand.Reader, tc.v, Options{Widen: tc.widen})
			if len(tok) != tc.wantLen || tok[:4] != tc.v[:3]+"0" && tok[:3] != tc.v[:2]+"0" ||
				tok[len(tok)-4:] != tc.v[len(tc.v)-4:] || !allDigits(tok[1:]) {
				t.Fatalf("Widen %d of %q: token %q, want %d characters, the country code, 0, the last 4", tc.widen, tc.v, tok, tc.wantLen)
			}
			if f, err := ParseToken(tok); err != nil || f != FormatPhone {
				t.Fatalf("ParseToken(%q) = %v, %v", tok, f, err)
			}
			seen[tok] = true
		}
		if random := tc.wantLen - 1 - callingCodeLen(tc.v[1:]) - 1 - 4; random >= 3 && len(seen) < 150 {
			t.Errorf("Widen %d of %q: %d distinct tokens in 200", tc.widen, tc.v, len(seen))
		}
	}
	if _, err := c.NewToken(rand.Reader, "+66812345678", Options{Widen: -1}); !errors.Is(err, ErrUnsupportedOption) {
		t.Errorf("negative Widen: %v, want ErrUnsupportedOption", err)
	}
	card := mustLookup(t, "financial.card_pan")
	if _, err := card.NewToken(rand.Reader, "4111111111111111", Options{Widen: 1}); !errors.Is(err, ErrUnsupportedOption) {
		t.Errorf("Widen on a card: %v, want ErrUnsupportedOption", err)
	}
}

func TestPhoneTokens(t *testing.T) {
	c := mustLookup(t, "contact.phone")
	for _, tc := range []struct{ v, cc string }{
		{"+66812345678", "66"}, {"+6621234567", "66"}, {"+14155552671", "1"},
		{"+85512345678", "855"}, {"+390669821234", "39"}, {"+123456789012345", "1"},
	} {
		seen := map[string]bool{}
		for range samples / 10 {
			tok := newToken(t, c, rand.Reader, tc.v, Options{})
			if len(tok) != len(tc.v) || !strings.HasPrefix(tok, "+"+tc.cc+"0") || !allDigits(tok[1:]) ||
				tok[len(tok)-4:] != tc.v[len(tc.v)-4:] {
				t.Fatalf("phone token %q of %q: want +%s0, random digits, %s", tok, tc.v, tc.cc, tc.v[len(tc.v)-4:])
			}
			if f, err := ParseToken(tok); err != nil || f != FormatPhone {
				t.Fatalf("ParseToken(%q) = %v, %v", tok, f, err)
			}
			seen[tok] = true
		}
		// Distinct tokens: at least half of min(possible, drawn).
		random := len(tc.v) - 1 - len(tc.cc) - 1 - 4
		possible := 1
		for range min(random, 6) {
			possible *= 10
		}
		if want := min(possible, samples/10) / 2; len(seen) < want {
			t.Errorf("%q: %d distinct tokens in %d, want at least %d", tc.v, len(seen), samples/10, want)
		}
	}
	for _, v := range []string{"+85512345", "+1234567"} {
		if _, err := c.NewToken(rand.Reader, v, Options{Widen: 3}); !errors.Is(err, ErrInvalidValue) {
			t.Errorf("phone token of %q (no digit left to randomise): error %v, want ErrInvalidValue", v, err)
		}
	}
}

func TestBankTokens(t *testing.T) {
	c := mustLookup(t, "financial.bank_account")
	for _, v := range []string{"123456", "1234567890", "12345678901234567890"} {
		for range samples / 10 {
			checkDigitsToken(t, c, v, newToken(t, c, rand.Reader, v, Options{}), 4)
		}
	}
}

func TestOpaqueTokens(t *testing.T) {
	for _, c := range All() {
		if c.Format != FormatOpaque {
			continue
		}
		re := regexp.MustCompile(`^tok_` + c.Prefix + `_[0-9A-Za-z]{22}$`)
		n := samples / 10
		if c.Name == "identity.name" {
			n = samples
		}
		seen := make(map[string]bool, n)
		for range n {
			tok := newToken(t, c, rand.Reader, "ignored", Options{})
			if !re.MatchString(tok) || seen[tok] {
				t.Fatalf("%s token %q: does not match %v or is a repeat", c.Name, tok, re)
			}
			seen[tok] = true
			if f, err := ParseToken(tok); err != nil || f != FormatOpaque {
				t.Fatalf("ParseToken(%q) = %v, %v", tok, f, err)
			}
		}
	}
}

// TestTokenIndependence: with the same random bytes, two values that share
// the kept parts get the same token. So nothing else of the value is in it.
func TestTokenIndependence(t *testing.T) {
	for _, tc := range []struct {
		category string
		a, b     string
		opt      Options
	}{
		{"contact.phone", "+66812345678", "+66998765678", Options{}},
		{"contact.email", "somchai@gmail.com", "x@y.org", Options{}},
		{"contact.email", "somchai@gmail.com", "x@gmail.com", Options{KeepDomain: true}},
		{"financial.card_pan", "4111111111111111", "5500000000001111"[:12] + "1111", Options{}},
		{"financial.card_pan", "4111111111111111", "5500000000001111", Options{LuhnValid: true}},
		{"govid.th_national_id", "1101700230708", "1234567890121", Options{}},
		{"govid.th_national_id", "1101700230708", "3101001230708", Options{KeepLast4: true}},
		{"financial.bank_account", "1234567890", "9876547890", Options{}},
		{"identity.name", "Somchai", "Somying", Options{}},
	} {
		c := mustLookup(t, tc.category)
		for seed := range uint64(200) {
			ta := newToken(t, c, mrand.NewChaCha8(seedOf(seed)), tc.a, tc.opt)
			tb := newToken(t, c, mrand.NewChaCha8(seedOf(seed)), tc.b, tc.opt)
			if ta != tb {
				t.Fatalf("%s %+v: same random bytes, tokens %q for %q and %q for %q", tc.category, tc.opt, ta, tc.a, tb, tc.b)
			}
		}
	}
}

func seedOf(n uint64) (s [32]byte) {
	for i := range 8 {
		s[i] = byte(n >> (8 * i))
	}
	return s
}

// TestSamplingRejects: bytes that would bias digits (250–255) and base62
// characters (248–255) are skipped, not folded.
func TestSamplingRejects(t *testing.T) {
	for _, tc := range []struct {
		alphabet string
		stream   []byte
		want     string
	}{
		{decimal, []byte{250, 251, 252, 253, 254, 255, 7, 249, 255, 10}, "790"},
		{base62, []byte{248, 255, 61, 247, 0, 62}, "zz00"}, // 247 = 3·62+61
		{base32, []byte{255, 0, 32, 31}, "7aa7"},
	} {
		tb := &tokenBuf{rand: make([]byte, len(tc.stream)), r: bytes.NewReader(tc.stream)}
		got := make([]byte, len(tc.want))
		tb.draw(got, tc.alphabet)
		if string(got) != tc.want || tb.err != nil {
			t.Errorf("draw(%v, %q) = %q, %v; want %q", tc.stream, tc.alphabet, got, tb.err, tc.want)
		}
	}
}

type countingReader struct {
	r     io.Reader
	reads int
}

func (c *countingReader) Read(p []byte) (int, error) {
	c.reads++
	return c.r.Read(p)
}

// TestReadsPerToken: the headroom makes one Read enough almost always.
func TestReadsPerToken(t *testing.T) {
	for _, tc := range []struct{ category, v string }{
		{"identity.name", "x"}, {"contact.phone", "+66812345678"}, {"contact.email", "a@b.co"},
		{"financial.card_pan", "4111111111111111"}, {"govid.th_national_id", "1101700230708"},
		{"financial.bank_account", "1234567890"},
	} {
		c := mustLookup(t, tc.category)
		cr := &countingReader{r: rand.Reader}
		const n = 10_000
		for range n {
			newToken(t, c, cr, tc.v, Options{})
		}
		if cr.reads > n+n/100 {
			t.Errorf("%s: %d Read calls for %d tokens, want at most 1%% extra", tc.category, cr.reads, n)
		}
	}
	c := mustLookup(t, "govid.th_national_id")
	cr := &countingReader{r: rand.Reader}
	for range 10_000 {
		newToken(t, c, cr, "1234567890121", Options{KeepLast4: true})
	}
	if cr.reads > 10_100 {
		t.Errorf("KeepLast4 national ID: %d Read calls for 10000 tokens", cr.reads)
	}
}

type errReader struct{ err error }

func (e errReader) Read([]byte) (int, error) { return 0, e.err }

type constReader byte

func (c constReader) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = byte(c)
	}
	return len(p), nil
}

func TestNewTokenErrors(t *testing.T) {
	boom := errors.New("boom")
	values := map[Format]string{
		FormatOpaque: "x", FormatPhone: "+66812345678", FormatEmail: "a@b.co", FormatCard: "4111111111111111",
		FormatThaiNationalID: "1101700230708", FormatBankAccount: "1234567890",
	}
	for _, c := range All() {
		v := values[c.Format]
		if _, err := c.NewToken(errReader{boom}, v, Options{}); !errors.Is(err, boom) {
			t.Errorf("%s: failing reader: error %v, want it wrapped", c.Name, err)
		}
		if _, err := c.NewToken(bytes.NewReader(make([]byte, 5)), v, Options{}); !errors.Is(err, io.ErrUnexpectedEOF) {
			t.Errorf("%s: short reader: error %v, want io.ErrUnexpectedEOF", c.Name, err)
		}
		// Every byte rejected, or every draw landing on the one value a
		// redraw loop avoids: the token fails instead of looping.
		for _, b := range []byte{0xff, 0x00, 0x07} {
			tok, err := c.NewToken(constReader(b), v, Options{})
			mustFail := b == 0xff && c.Format != FormatEmail // base32 rejects nothing
			if err != nil && !errors.Is(err, errBadRandom) || mustFail && err == nil {
				t.Errorf("%s: constant reader %#x: %q, %v", c.Name, b, tok, err)
			}
		}
		for _, opt := range []Options{{LuhnValid: true}, {KeepLast4: true}, {KeepDomain: true}} {
			applies := opt.LuhnValid && c.Format == FormatCard || opt.KeepLast4 && c.Format == FormatThaiNationalID ||
				opt.KeepDomain && c.Format == FormatEmail
			_, err := c.NewToken(rand.Reader, v, opt)
			if applies != (err == nil) || !applies && !errors.Is(err, ErrUnsupportedOption) {
				t.Errorf("%s.NewToken(%+v): error %v, option applies: %v", c.Name, opt, err, applies)
			}
		}
	}
	for _, tc := range []struct {
		category, v string
		opt         Options
	}{
		{"contact.phone", "0812345678", Options{}},
		{"contact.phone", "+66", Options{}},
		{"contact.phone", "+2101234567", Options{}},
		{"contact.email", "nodomain", Options{KeepDomain: true}},
		{"contact.email", "a@", Options{KeepDomain: true}},
		{"contact.email", "a@b c.com", Options{KeepDomain: true}},
		{"financial.card_pan", "4111 1111 1111 1111", Options{}},
		{"financial.card_pan", "411111111111", Options{}},
		{"govid.th_national_id", "110170023070", Options{KeepLast4: true}},
		{"financial.bank_account", "12345", Options{}},
		{"financial.bank_account", "12345x", Options{}},
	} {
		c := mustLookup(t, tc.category)
		tok, err := c.NewToken(rand.Reader, tc.v, tc.opt)
		if !errors.Is(err, ErrInvalidValue) {
			t.Errorf("%s.NewToken(%q, %+v) = %q, %v; want ErrInvalidValue", tc.category, tc.v, tc.opt, tok, err)
		} else if strings.Contains(err.Error(), tc.v) {
			t.Errorf("error %q contains the value", err)
		}
	}
}

// TestNewTokenAllocs: one allocation per token, the token itself.
func TestNewTokenAllocs(t *testing.T) {
	r := mrand.NewChaCha8([32]byte{})
	for _, tc := range []struct{ category, v string }{
		{"identity.name", "x"}, {"contact.phone", "+66812345678"}, {"contact.email", "a@b.co"},
		{"financial.card_pan", "4111111111111111"}, {"govid.th_national_id", "1101700230708"},
		{"financial.bank_account", "1234567890"},
	} {
		c := mustLookup(t, tc.category)
		if n := testing.AllocsPerRun(1000, func() { _, _ = c.NewToken(r, tc.v, Options{}) }); n > 1 {
			t.Errorf("%s.NewToken: %v allocations, want 1", tc.category, n)
		}
	}
}
