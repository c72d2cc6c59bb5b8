package tokenizer

import (
	"bytes"
	"errors"
	"io"
	mrand "math/rand/v2"
	"regexp"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"
)

// reasons is every ValueError.Reason: a message made only of these and the
// category name cannot carry the value.
var reasons = map[string]bool{
	reasonEmpty: true, reasonTooLong: true, reasonUTF8: true, reasonControl: true, reasonChecksum: true,
	reasonNotNormalized: true, reasonPhoneLen: true, "not 13-19 digits": true, "not 13 digits": true,
	"not 6-20 digits": true, "invalid character": true, "no country code or trunk prefix": true,
	"unknown country code": true, "no @": true, "empty local part": true, "local part over 64 bytes": true,
	"address over 254 bytes": true, "domain without a dot": true, "empty domain label": true,
	"space or control character": true, "too short for a phone token": true, "domain too long to keep": true,
}

func checkValueErrorShape(t *testing.T, c *Category, err error) {
	t.Helper()
	var ve *ValueError
	if !errors.As(err, &ve) || !errors.Is(err, ErrInvalidValue) || ve.Category != c.Name || !reasons[ve.Reason] ||
		err.Error() != "tokenizer: invalid "+c.Name+" value: "+ve.Reason {
		t.Fatalf("%s: error %q is not a ValueError with a known reason", c.Name, err)
	}
}

var normalizeSeeds = []string{
	"081-234-5678", "+66 (0)81 234 5678", "0066812345678", "+1 (415) 555-2671", "Somchai@Gmail.COM",
	`"x@y"@Example.org`, "4111 1111 1111 1111", "1-1017-00230-70-8", "123-4-56789-0", "สมชาย ใจดี",
	"\u0e01\u0e48\u0e38", "cafe\u0301", "\u1100\u1161\u11a8", "a\x00b", "\xff", "  ", "user@\u212aelvin.com",
	"a@\u0130.com", "A@ǅ.com",
}

// FuzzNormalize: for every category, Normalize never panics, is idempotent,
// and returns valid NFC UTF-8 within MaxLen that has the format's shape.
func FuzzNormalize(f *testing.F) {
	for _, s := range normalizeSeeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, value string) {
		for _, c := range All() {
			out, err := c.Normalize(value)
			if err != nil {
				checkValueErrorShape(t, c, err)
				continue
			}
			if len(out) > c.MaxLen || !utf8.ValidString(out) || !norm.NFC.IsNormalString(out) || out == "" {
				t.Fatalf("%s.Normalize(%+q) = %+q: not valid non-empty NFC within MaxLen", c.Name, value, out)
			}
			if again, err := c.Normalize(out); err != nil || again != out {
				t.Fatalf("%s: Normalize(%+q) = %+q, but Normalize(%+q) = %+q, %v", c.Name, value, out, out, again, err)
			}
			checkNormalShape(t, c, value, out)
		}
	})
}

func checkNormalShape(t *testing.T, c *Category, in, out string) {
	t.Helper()
	ok := true
	switch c.Format {
	case FormatPhone:
		n := len(out) - 1
		ok = n >= 8 && n <= 15 && out[0] == '+' && allDigits(out[1:]) && callingCodeLen(out[1:]) > 0
	case FormatEmail:
		at := strings.LastIndexByte(out, '@')
		ok = at > 0 && len(out) <= 254 && validDomain(out[at+1:]) && strings.Contains(out[at+1:], ".") &&
			strings.ToLower(out[at+1:]) == out[at+1:] && !strings.ContainsFunc(out, unicode.IsSpace)
	case FormatCard:
		ok = len(out) >= 13 && len(out) <= 19 && LuhnValid(out)
	case FormatThaiNationalID:
		ok = ThaiIDValid(out)
	case FormatBankAccount:
		ok = len(out) >= 6 && len(out) <= 20 && allDigits(out)
	case FormatOpaque:
		ok = out == norm.NFC.String(in) // exactly the value, not trimmed
	}
	if !ok {
		t.Fatalf("%s.Normalize(%+q) = %+q: not the format's normal form", c.Name, in, out)
	}
}

// representatives has one category per token format, with a sample value.
var representatives = []struct{ category, value string }{
	{"identity.name", "x"}, {"contact.phone", "+66812345678"}, {"contact.email", "somchai@gmail.com"},
	{"financial.card_pan", "4111111111111111"}, {"govid.th_national_id", "1101700230708"},
	{"financial.bank_account", "1234567890"},
}

// FuzzParseToken: ParseToken never panics, anything it accepts has the
// shape of its format, and every token NewToken makes parses.
func FuzzParseToken(f *testing.F) {
	for _, s := range []string{
		"tok_ph_0123456789ABCDEFGHIJab", "+66012345678", "abcdefghijklmnop@tok.invalid", "4111111111111112",
		"1101700230709", "tok__", "+", "@", "@.invalid", "+39061234",
	} {
		f.Add(s)
	}
	opaque := regexp.MustCompile(`^tok_[a-z]{2,4}_[0-9A-Za-z]{22}$`)
	f.Fuzz(func(t *testing.T, s string) {
		if f, err := ParseToken(s); err == nil {
			var ok bool
			switch f {
			case FormatOpaque:
				_, known := byPrefix[strings.Split(s, "_")[1]]
				ok = opaque.MatchString(s) && known
			case FormatPhone:
				cc := callingCodeLen(s[1:])
				ok = s[0] == '+' && allDigits(s[1:]) && cc > 0 && s[1+cc] == '0' && len(s)-1 >= cc+6 && len(s)-1 <= 15
			case FormatEmail:
				ok = strings.HasSuffix(s, ".invalid") && utf8.ValidString(s) && strings.Count(s, "@") == 1
			case FormatDigits:
				ok = len(s) >= 6 && len(s) <= 20 && allDigits(s)
			}
			if !ok || len(s) > MaxTokenLen {
				t.Fatalf("ParseToken(%+q) = %v: not that format's shape", s, f)
			}
		} else if !errors.Is(err, ErrMalformedToken) {
			t.Fatalf("ParseToken(%+q) error %v, want ErrMalformedToken", s, err)
		}
		// The fuzz input as random bytes: tokens made from it parse.
		for _, rep := range representatives {
			c := mustLookup(t, rep.category)
			tok, err := c.NewToken(strings.NewReader(s), rep.value, Options{})
			if err != nil {
				continue // not enough random bytes
			}
			want := c.Format
			if want == FormatCard || want == FormatThaiNationalID || want == FormatBankAccount {
				want = FormatDigits
			}
			if got, err := ParseToken(tok); err != nil || got != want {
				t.Fatalf("%s token %q: ParseToken = %v, %v; want %v", c.Name, tok, got, err, want)
			}
		}
	})
}

// fuzzReader serves the fuzz input's random bytes first, then an endless
// stream seeded from them, so most inputs make a token.
func fuzzReader(random []byte) io.Reader {
	var seed [32]byte
	copy(seed[:], random)
	return io.MultiReader(bytes.NewReader(random), mrand.NewChaCha8(seed))
}

// FuzzNewToken: for every category and option set, a token made from any
// random bytes parses and keeps exactly the documented parts.
func FuzzNewToken(f *testing.F) {
	for i, s := range normalizeSeeds {
		f.Add(s, bytes.Repeat([]byte{byte(i * 37)}, i*5), uint8(i))
	}
	f.Add("4111111111111111", bytes.Repeat([]byte{0xff}, 200), uint8(0))
	f.Fuzz(func(t *testing.T, value string, random []byte, opts uint8) {
		// Bits 0-2 pick the flags; bits 3-6 a Widen of -1..14.
		opt := Options{LuhnValid: opts&1 != 0, KeepLast4: opts&2 != 0, KeepDomain: opts&4 != 0, Widen: int(opts>>3&15) - 1}
		for _, c := range All() {
			v, err := c.Normalize(value)
			if err != nil {
				continue
			}
			tok, err := c.NewToken(fuzzReader(random), v, opt)
			applies := (!opt.LuhnValid || c.Format == FormatCard) && (!opt.KeepLast4 || c.Format == FormatThaiNationalID) &&
				(!opt.KeepDomain || c.Format == FormatEmail) && (opt.Widen == 0 || c.Format == FormatPhone && opt.Widen > 0)
			switch {
			case !applies:
				if !errors.Is(err, ErrUnsupportedOption) {
					t.Fatalf("%s.NewToken(%+v): error %v, want ErrUnsupportedOption", c.Name, opt, err)
				}
				continue
			case errors.Is(err, ErrInvalidValue):
				checkValueErrorShape(t, c, err)
				continue
			case err != nil:
				t.Fatalf("%s.NewToken(%q, %+v): %v", c.Name, v, opt, err)
			}
			checkToken(t, c, v, tok, opt)
		}
	})
}

// checkToken checks the kept parts of tok, a token of v.
func checkToken(t *testing.T, c *Category, v, tok string, opt Options) {
	t.Helper()
	f, err := ParseToken(tok)
	if err != nil {
		t.Fatalf("%s token %q of %q does not parse: %v", c.Name, tok, v, err)
	}
	last4 := func() bool { return len(tok) == len(v) && tok[len(tok)-4:] == v[len(v)-4:] }
	ok := true
	switch c.Format {
	case FormatOpaque:
		ok = f == FormatOpaque && strings.HasPrefix(tok, "tok_"+c.Prefix+"_")
	case FormatPhone:
		cc := callingCodeLen(v[1:])
		wantLen := max(len(v), min(len(v)+opt.Widen, 1+15))
		ok = f == FormatPhone && len(tok) == wantLen && tok[len(tok)-4:] == v[len(v)-4:] &&
			tok[:1+cc] == v[:1+cc] && tok[1+cc] == '0'
	case FormatEmail:
		suffix := "@tok.invalid"
		if opt.KeepDomain {
			suffix = v[strings.LastIndexByte(v, '@'):] + ".invalid"
		}
		ok = f == FormatEmail && strings.HasSuffix(tok, suffix) && len(tok) == 16+len(suffix)
	case FormatCard:
		ok = f == FormatDigits && last4() && LuhnValid(tok) == opt.LuhnValid
	case FormatThaiNationalID:
		ok = f == FormatDigits && len(tok) == 13 && !ThaiIDValid(tok) && (!opt.KeepLast4 || last4())
	case FormatBankAccount:
		ok = f == FormatDigits && last4()
	}
	if !ok {
		t.Fatalf("%s token %q of %q (%+v): kept parts wrong", c.Name, tok, v, opt)
	}
}

// FuzzPartial: Partial never panics and shows no more than its category's
// documented parts, for normalised and raw values alike.
func FuzzPartial(f *testing.F) {
	for _, s := range normalizeSeeds {
		f.Add(s)
	}
	for _, s := range []string{"+66812345678", "a@b@c.d", "👩‍💻x", "🇹🇭🇹🇭", "ที่ดิน", "น้ำ", "\r\n", "1234567890"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, value string) {
		for _, c := range All() {
			checkPartial(t, c, value)
			if v, err := c.Normalize(value); err == nil {
				checkPartial(t, c, v)
			}
		}
	})
}

var phoneMask = regexp.MustCompile(`^\+([0-9]{1,3})((?:•)+)([0-9]{4})$`)

func checkPartial(t *testing.T, c *Category, v string) {
	t.Helper()
	p := c.Partial(v)
	if p == redacted {
		return
	}
	ok := false
	switch c.Name {
	case "identity.name":
		g, found := strings.CutSuffix(p, "•••")
		ok = found && strings.HasPrefix(strings.TrimLeftFunc(v, unicode.IsSpace), g) && revealsOneCharacter(g)
	case "contact.phone":
		if m := phoneMask.FindStringSubmatch(p); m != nil {
			cc, hidden, last := m[1], utf8.RuneCountInString(m[2]), m[3]
			ok = strings.HasPrefix(v, "+"+cc) && callingCodeLen(cc) == len(cc) && strings.HasSuffix(v, last) &&
				len(v) == 1+len(cc)+hidden+4
		}
	case "contact.email":
		at := strings.LastIndexByte(v, '@')
		g, found := strings.CutSuffix(p, "•••"+v[max(at, 0):])
		ok = at > 0 && found && strings.HasPrefix(v[:at], g) && revealsOneCharacter(g)
	case "financial.card_pan":
		ok = p == "•••• •••• •••• "+v[max(len(v)-4, 0):] && len(v) >= 13 && allDigits(v)
	case "financial.bank_account":
		ok = allDigits(v) && (len(v) == 10 && p == "xxx-x-xx"+v[6:9]+"-"+v[9:] || len(v) >= 6 && p == redacted+v[len(v)-4:])
	case "govid.th_national_id":
		ok = p == "x-xxxx-xxxxx-xx-x"
	}
	if !ok {
		t.Fatalf("%s.Partial(%+q) = %+q reveals more than documented", c.Name, v, p)
	}
}

// revealsOneCharacter reports whether g is one user-perceived character: a
// non-empty string with at most one letter, number, punctuation or space;
// the rest marks, format characters, symbols (emoji) or controls.
func revealsOneCharacter(g string) bool {
	n := 0
	for _, r := range g {
		if r != 0x0E33 && r != 0x0EB3 && unicode.In(r, unicode.L, unicode.N, unicode.P, unicode.Zs) {
			n++
		}
	}
	return g != "" && n <= 1
}
