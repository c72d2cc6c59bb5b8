package tokenizer

import (
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"
)

// maxNFCShrink bounds how much NFC can shrink a value (a decomposed Hangul
// syllable, 9 bytes, composes to 3). Inputs longer than MaxLen times this
// cannot normalise to MaxLen bytes or fewer and are rejected before any work.
const maxNFCShrink = 4

// Normalize returns the canonical form of value for the category, the form
// that is encrypted, fingerprinted and masked. Every category rejects invalid
// UTF-8, empty values and values longer than MaxLen after normalisation, and
// applies Unicode NFC. Then, by format:
//
//   - phone: E.164, "+" and 8–15 digits. Spaces, dashes, dots and
//     parentheses are removed. "+CC…" and "00CC…" are international; a
//     number starting with a single 0 is Thai (the trunk 0 is replaced by
//     +66). A trunk "(0)" right after the country code is dropped, and so is
//     any 0 after +66 (Thai national numbers never start with 0). Numbers
//     with neither a country code nor a trunk prefix are rejected rather
//     than guessed.
//   - email: surrounding space trimmed, domain (after the last @) lower-cased,
//     local part kept as typed; the local part must be 1–64 bytes, the domain
//     must have a dot and no empty label, the address at most 254 bytes,
//     with no space or control character.
//   - card: spaces and dashes removed, 13–19 digits, Luhn-valid.
//   - Thai national ID: dashes and spaces removed, 13 digits, valid check
//     digit.
//   - bank account: dashes, spaces and dots removed, 6–20 digits.
//   - opaque (free text): the value exactly, in NFC, not trimmed; C0 control
//     characters other than tab, newline and carriage return are rejected.
//
// Normalize is idempotent. The error is a [*ValueError] wrapping
// [ErrInvalidValue] (and [ErrEmpty] or [ErrTooLong] where they apply).
func (c *Category) Normalize(value string) (string, error) {
	if len(value) > c.MaxLen*maxNFCShrink {
		return "", c.invalid(reasonTooLong)
	}
	if !utf8.ValidString(value) {
		return "", c.invalid(reasonUTF8)
	}
	// norm.NFC.String returns value itself, without allocating, when it is
	// already NFC: its quick check is the one IsNormalString runs.
	value = norm.NFC.String(value)
	var out, reason string
	switch c.Format {
	case FormatPhone:
		out, reason = normalizePhone(value)
	case FormatEmail:
		out, reason = normalizeEmail(value)
	case FormatCard:
		out, reason = normalizeCard(value)
	case FormatThaiNationalID:
		out, reason = normalizeThaiID(value)
	case FormatBankAccount:
		out, reason = normalizeBankAccount(value)
	default:
		out, reason = normalizeText(value)
	}
	if reason == "" && len(out) > c.MaxLen {
		reason = reasonTooLong
	}
	if reason != "" {
		return "", c.invalid(reason)
	}
	return out, nil
}

func normalizeText(s string) (string, string) {
	if s == "" {
		return "", reasonEmpty
	}
	// C0 bytes never occur inside a multi-byte UTF-8 sequence.
	for i := 0; i < len(s); i++ {
		if b := s[i]; b < 0x20 && b != '\t' && b != '\n' && b != '\r' {
			return "", reasonControl
		}
	}
	return s, ""
}

// digitBuf collects the digits of a structured value. 24 bytes hold more
// than the longest accepted value (20 digits); beyond that digits are only
// counted.
type digitBuf struct {
	b [24]byte
	n int // digits seen, possibly more than len(b)
}

func (d *digitBuf) add(c byte) {
	if d.n < len(d.b) {
		d.b[d.n] = c
	}
	d.n++
}

// bytes returns the digits, valid only when d.n <= len(d.b).
func (d *digitBuf) bytes() []byte { return d.b[:d.n] }

// collect appends the digits of s to d, skipping the bytes in seps. It
// reports false if s holds anything else.
func (d *digitBuf) collect(s, seps string) bool {
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case isDigit(c):
			d.add(c)
		case strings.IndexByte(seps, c) < 0:
			return false
		}
	}
	return true
}

// result returns the digits as a string, reusing orig when it is already
// exactly those digits.
func result(b []byte, orig string) string {
	if string(b) == orig {
		return orig
	}
	return string(b)
}

// normalizeDigits collects the digits of s into d, skipping seps, and checks
// their count. It returns s trimmed, and a reason if s is rejected.
func normalizeDigits(d *digitBuf, s, seps string, minLen, maxLen int, what string) (string, string) {
	s = strings.TrimSpace(s)
	switch {
	case !d.collect(s, seps):
		return s, what
	case d.n == 0:
		return s, reasonEmpty
	case d.n < minLen || d.n > maxLen:
		return s, what
	}
	return s, ""
}

func normalizeCard(s string) (string, string) {
	var d digitBuf
	s, reason := normalizeDigits(&d, s, " -", 13, 19, "not 13-19 digits")
	if reason != "" {
		return "", reason
	}
	if luhnSum(d.bytes())%10 != 0 {
		return "", reasonChecksum
	}
	return result(d.bytes(), s), ""
}

func normalizeThaiID(s string) (string, string) {
	var d digitBuf
	s, reason := normalizeDigits(&d, s, " -", 13, 13, "not 13 digits")
	if reason != "" {
		return "", reason
	}
	if thaiCheck(d.b[:12]) != d.b[12] {
		return "", reasonChecksum
	}
	return result(d.bytes(), s), ""
}

func normalizeBankAccount(s string) (string, string) {
	var d digitBuf
	s, reason := normalizeDigits(&d, s, " -.", 6, 20, "not 6-20 digits")
	if reason != "" {
		return "", reason
	}
	return result(d.bytes(), s), ""
}

const (
	phoneMinDigits = 8
	phoneMaxDigits = 15
	homeCC         = "66" // region TH: national numbers are Thai
	reasonPhoneLen = "not 8-15 digits"
)

func normalizePhone(s string) (string, string) {
	s = strings.TrimSpace(s)
	rest, intl := strings.CutPrefix(s, "+")
	var d digitBuf
	zeroAt := -1 // index in d of the 0 of the first "(0)" group
	for i := 0; i < len(rest); i++ {
		switch c := rest[i]; {
		case isDigit(c):
			if c == '0' && zeroAt < 0 && i > 0 && rest[i-1] == '(' && strings.HasPrefix(rest[i:], "0)") {
				zeroAt = d.n
			}
			d.add(c)
		case strings.IndexByte(" -.()", c) < 0:
			return "", "invalid character"
		}
	}
	if d.n == 0 {
		return "", reasonEmpty
	}
	if d.n > len(d.b) {
		return "", reasonPhoneLen
	}
	digits := d.bytes()
	pre := "" // the country code a national number gets
	switch {
	case intl:
	case len(digits) >= 2 && digits[0] == '0' && digits[1] == '0':
		intl, digits, zeroAt = true, digits[2:], zeroAt-2
	case digits[0] == '0':
		pre, digits = homeCC, digits[1:]
	default:
		return "", "no country code or trunk prefix"
	}
	var buf [1 + len(homeCC) + len(d.b)]byte
	buf[0] = '+'
	n := 1 + copy(buf[1:], pre)
	n += copy(buf[n:], digits)
	out := buf[:n]
	cc := callingCodeLen(out[1:])
	if cc == 0 {
		return "", "unknown country code"
	}
	// A "(0)" right after the country code is a trunk prefix, as is any 0
	// after +66: Thai national numbers never start with 0.
	if len(out) > 1+cc && (intl && zeroAt == cc || string(out[1:1+cc]) == homeCC && out[1+cc] == '0') {
		out = append(out[:1+cc], out[2+cc:]...)
	}
	if len(out)-1 < phoneMinDigits || len(out)-1 > phoneMaxDigits {
		return "", reasonPhoneLen
	}
	return result(out, s), ""
}

const (
	emailMaxLen      = 254
	emailMaxLocalLen = 64
)

func normalizeEmail(s string) (string, string) {
	s = strings.TrimSpace(s)
	if s == "" {
		return "", reasonEmpty
	}
	at := strings.LastIndexByte(s, '@')
	if at < 0 {
		return "", "no @"
	}
	// strings.ToLower returns its argument, without allocating, when
	// nothing changes.
	if domain, lower := s[at+1:], strings.ToLower(s[at+1:]); lower != domain {
		// Lower-casing can leave a string that is not NFC.
		s = norm.NFC.String(s[:at+1] + lower)
		at = strings.LastIndexByte(s, '@')
	}
	local, domain := s[:at], s[at+1:]
	switch {
	case local == "":
		return "", "empty local part"
	case len(local) > emailMaxLocalLen:
		return "", "local part over 64 bytes"
	case len(s) > emailMaxLen:
		return "", "address over 254 bytes"
	case !strings.Contains(domain, "."):
		return "", "domain without a dot"
	case domain[0] == '.' || domain[len(domain)-1] == '.' || strings.Contains(domain, ".."):
		return "", "empty domain label"
	}
	// With the checks above, this makes validDomain(domain) hold, as
	// NewToken with KeepDomain requires.
	for _, r := range s {
		if unicode.IsSpace(r) || unicode.IsControl(r) {
			return "", "space or control character"
		}
	}
	return s, ""
}
