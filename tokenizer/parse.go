package tokenizer

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

// ParseToken checks that s has the shape of a token made by
// [Category.NewToken] and returns its format:
//
//   - FormatOpaque: tok_<prefix>_<22 base62>, with a known category prefix;
//   - FormatPhone: "+", 8–15 digits, a known country code followed by 0 and
//     at least 5 more digits;
//   - FormatEmail: <16 lower-case base32>@<domain>.invalid;
//   - FormatDigits: 6–20 digits. Card (13–19 digits), Thai national ID (13)
//     and bank account (6–20) tokens overlap, so ParseToken does not guess:
//     the store lookup decides which category a token belongs to.
//
// ParseToken only rejects garbage cheaply, before a store lookup; a token
// that parses need not exist. Anything else, or anything longer than
// [MaxTokenLen], is ErrMalformedToken. The error never contains s.
func ParseToken(s string) (Format, error) {
	if len(s) == 0 || len(s) > MaxTokenLen {
		return FormatInvalid, ErrMalformedToken
	}
	var ok bool
	var f Format
	switch {
	case strings.HasPrefix(s, tokenPrefix):
		f, ok = FormatOpaque, isOpaqueToken(s[len(tokenPrefix):])
	case s[0] == '+':
		f, ok = FormatPhone, isPhoneToken(s[1:])
	case strings.IndexByte(s, '@') >= 0:
		f, ok = FormatEmail, isEmailToken(s)
	default:
		f, ok = FormatDigits, len(s) >= 6 && len(s) <= 20 && allDigits(s)
	}
	if !ok {
		return FormatInvalid, ErrMalformedToken
	}
	return f, nil
}

// isOpaqueToken checks <prefix>_<22 base62>.
func isOpaqueToken(s string) bool {
	prefix, random, ok := strings.Cut(s, "_")
	if !ok || len(random) != opaqueRandLen {
		return false
	}
	if _, ok := byPrefix[prefix]; !ok {
		return false
	}
	for i := 0; i < len(random); i++ {
		if c := random[i]; !isDigit(c) && !('A' <= c && c <= 'Z') && !('a' <= c && c <= 'z') {
			return false
		}
	}
	return true
}

// isPhoneToken checks the digits after the "+".
func isPhoneToken(digits string) bool {
	if len(digits) < phoneMinDigits || len(digits) > phoneMaxDigits || !allDigits(digits) {
		return false
	}
	cc := callingCodeLen(digits)
	return cc > 0 && len(digits) >= cc+1+phoneMinRandLen+keptDigits && digits[cc] == '0'
}

func isEmailToken(s string) bool {
	local, host, ok := strings.Cut(s, "@")
	if !ok || len(local) != emailRandLen {
		return false
	}
	for i := 0; i < len(local); i++ {
		if c := local[i]; !('a' <= c && c <= 'z') && !('2' <= c && c <= '7') {
			return false
		}
	}
	domain, ok := strings.CutSuffix(host, invalidTLD)
	return ok && validDomain(domain)
}

// validDomain reports whether d is a plausible domain: non-empty labels, and
// no '@', space or control character. It does not require a dot.
func validDomain(d string) bool {
	if d == "" || d[0] == '.' || d[len(d)-1] == '.' || strings.Contains(d, "..") || !utf8.ValidString(d) {
		return false
	}
	for _, r := range d {
		if r == '@' || unicode.IsSpace(r) || unicode.IsControl(r) {
			return false
		}
	}
	return true
}
