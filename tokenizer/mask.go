package tokenizer

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

// maskKind is a category's default mask (pdpa-model §2.2). The zero value
// masks everything.
type maskKind uint8

const (
	maskRedacted       maskKind = iota // "none" in the model: Redacted
	maskFirstGrapheme                  // identity.name: first grapheme cluster + •••
	maskPhone                          // +66•••••5678
	maskEmail                          // s•••@gmail.com
	maskCard                           // •••• •••• •••• 1234
	maskBankAccount                    // xxx-x-x1234-x (10 digits), ••••••1234
	maskThaiNationalID                 // x-xxxx-xxxxx-xx-x
)

const (
	// keptDigits is how many trailing digits masks and format-preserving
	// tokens keep.
	keptDigits = 4

	bullet   = "•"
	redacted = "••••••"
)

// Redacted returns a mask that reveals nothing about a value of the
// category, not even its length.
func (c *Category) Redacted() string { return redacted }

// Partial returns the category's default mask of normalized, a value
// returned by [Category.Normalize]. It reveals only:
//
//   - identity.name: the first grapheme cluster (after leading space), so
//     Thai vowel and tone marks stay with their consonant: "สมชาย" gives
//     "ส•••";
//   - contact.phone: the country code, the number of digits and the last 4:
//     "+66•••••5678";
//   - contact.email: the first grapheme cluster of the local part and the
//     domain: "s•••@gmail.com";
//   - financial.card_pan: the last 4, not the length: "•••• •••• •••• 1234";
//   - financial.bank_account: the last 4, which the token keeps anyway (the
//     model's "xxx-x-x1234-x" shows digits 6–9, which together with a token
//     would reveal digits 6–10): in the Thai ddd-d-ddddd-d layout for 10
//     digits, "xxx-x-xx789-0"; for other lengths "••••••7890";
//   - govid.th_national_id: nothing: "x-xxxx-xxxxx-xx-x".
//
// Every other category, and any value without the expected shape, gives
// [Category.Redacted].
func (c *Category) Partial(normalized string) string {
	v := normalized
	switch c.mask {
	case maskFirstGrapheme:
		if g := firstGrapheme(strings.TrimLeftFunc(v, unicode.IsSpace)); g != "" {
			return g + bullet + bullet + bullet
		}
	case maskPhone:
		if len(v)-1 >= phoneMinDigits && len(v)-1 <= phoneMaxDigits && v[0] == '+' && allDigits(v[1:]) {
			if cc := callingCodeLen(v[1:]); cc > 0 && len(v)-1-cc > keptDigits {
				hidden := len(v) - 1 - cc - keptDigits
				return v[:1+cc] + strings.Repeat(bullet, hidden) + v[len(v)-keptDigits:]
			}
		}
	case maskEmail:
		if at := strings.LastIndexByte(v, '@'); at > 0 && utf8.ValidString(v) {
			return firstGrapheme(v[:at]) + bullet + bullet + bullet + v[at:]
		}
	case maskCard:
		if len(v) >= 13 && len(v) <= 19 && allDigits(v) {
			return "•••• •••• •••• " + v[len(v)-keptDigits:]
		}
	case maskBankAccount:
		if len(v) == 10 && allDigits(v) {
			return "xxx-x-xx" + v[6:9] + "-" + v[9:]
		}
		if len(v) >= 6 && len(v) <= 20 && allDigits(v) {
			return redacted + v[len(v)-keptDigits:]
		}
	case maskThaiNationalID:
		return "x-xxxx-xxxxx-xx-x"
	}
	return redacted
}

// firstGrapheme returns the first extended grapheme cluster of s, by a
// simplified UAX #29: a rune followed by any extending runes (nonspacing,
// spacing and enclosing marks, Thai and Lao SARA AM, ZWNJ, ZWJ, variation
// selectors, emoji modifiers and tags), CR LF, a pair of regional
// indicators, and emoji ZWJ sequences (a symbol after a ZWJ). It returns ""
// for an empty or invalid string.
func firstGrapheme(s string) string {
	r, n := utf8.DecodeRuneInString(s)
	if r == utf8.RuneError {
		return ""
	}
	if r == '\r' && strings.HasPrefix(s[n:], "\n") {
		return s[:n+1]
	}
	if isRegionalIndicator(r) {
		if r2, m := utf8.DecodeRuneInString(s[n:]); isRegionalIndicator(r2) {
			return s[:n+m]
		}
		return s[:n]
	}
	prev := r
	for n < len(s) {
		r, m := utf8.DecodeRuneInString(s[n:])
		if !isGraphemeExtend(r) && (prev != zwj || !unicode.Is(unicode.So, r)) {
			break
		}
		prev = r
		n += m
	}
	return s[:n]
}

const zwj = '\u200D'

func isRegionalIndicator(r rune) bool { return 0x1F1E6 <= r && r <= 0x1F1FF }

func isGraphemeExtend(r rune) bool {
	switch {
	case r < 0x300:
		return false
	case r == 0x0E33, r == 0x0EB3: // THAI/LAO CHARACTER SARA AM: SpacingMark
		return true
	case r == 0x200C, r == zwj:
		return true
	case 0xFE00 <= r && r <= 0xFE0F, 0xE0100 <= r && r <= 0xE01EF: // variation selectors
		return true
	case 0x1F3FB <= r && r <= 0x1F3FF: // emoji modifiers
		return true
	case 0xE0020 <= r && r <= 0xE007F: // tags
		return true
	}
	return unicode.In(r, unicode.Mn, unicode.Mc, unicode.Me)
}
