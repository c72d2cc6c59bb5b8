// Package tokenizer holds fieldvault's data categories (pdpa-model §2.2) and
// everything about a value and its token that needs no key and no I/O:
// tiers, normalisation, token formats, masks and checksums.
//
// # Security properties
//
// Tokens are random: a token never encodes its value. [Category.NewToken]
// draws every character that is not a documented kept part from the
// caller's CSPRNG, without modulo bias, so two tokens of the same value are
// independent and a token of one value is distributed exactly like a token of
// any other value with the same kept parts. The kept parts are:
//
//   - phone: the country calling code, the digit count and the last 4 digits;
//   - card: the length and the last 4 digits (the BIN is never kept);
//   - bank account: the length and the last 4 digits;
//   - Thai national ID: nothing, or d10–d13 with [Options.KeepLast4];
//   - email: the domain, only with [Options.KeepDomain];
//   - opaque: the category prefix only.
//
// Format-preserving tokens only look like values, and are built so they can
// never be mistaken for a real one:
//
//   - card tokens fail the Luhn check (unless [Options.LuhnValid] is set for
//     a legacy validator);
//   - Thai national ID tokens fail the national ID checksum;
//   - phone tokens have a 0 right after the country code. E.164 national
//     significant numbers do not start with 0, so the token is not dialable.
//     A few numbering plans are exceptions (Italy's fixed lines, +39 0…, and,
//     to our knowledge, Côte d'Ivoire +225 and the Republic of the Congo
//     +242): there a phone token has the shape of a real number, and only
//     the vault's records tell them apart;
//   - email tokens end in .invalid (RFC 2606), so they are never deliverable.
//
// # Determinism
//
// This package only makes random tokens. Deterministic tokens (same
// normalised value, same token) are the vault's job: it computes a keyed
// fingerprint (a PRF of the normalised value under a per-category key) and
// maps it to a random token made here. [Category.Deterministic] says where
// that is allowed. Normalise with [Category.Normalize] first, so that equal
// values have equal fingerprints.
//
// # Errors
//
// Errors never contain the value being tokenised or its token: a
// [*ValueError] names the category and a reason only.
//
// # Compatibility
//
// Category IDs and prefixes are stored with every token and are never
// changed or reused; the category table only grows.
package tokenizer

import (
	"fmt"
	"strconv"
)

// Tier is a sensitivity tier. The zero value is invalid.
type Tier uint8

const (
	TierInvalid Tier = iota
	T0               // general
	T1               // notice-elevated (seed §4.2): national ID, financial, marital status
	T2               // PDPA s.26 sensitive
	T2Plus           // criminal record
)

var tierNames = [...]string{T0: "T0", T1: "T1", T2: "T2", T2Plus: "T2+"}

// String returns "T0", "T1", "T2" or "T2+", and "Tier(n)" for anything else.
func (t Tier) String() string {
	if t > TierInvalid && int(t) < len(tierNames) {
		return tierNames[t]
	}
	return "Tier(" + strconv.Itoa(int(t)) + ")"
}

// ParseTier is the inverse of [Tier.String].
func ParseTier(s string) (Tier, error) {
	for t := T0; int(t) < len(tierNames); t++ {
		if tierNames[t] == s {
			return t, nil
		}
	}
	return TierInvalid, fmt.Errorf("tokenizer: unknown tier %q", s)
}

// Format is a token format. The zero value is invalid.
type Format uint8

const (
	FormatInvalid        Format = iota
	FormatOpaque                // tok_<prefix>_<22 base62>
	FormatPhone                 // E.164 shape, country code and last 4 kept, not dialable
	FormatEmail                 // <16 base32>@tok.invalid
	FormatCard                  // same length, last 4 kept, Luhn-invalid by default
	FormatThaiNationalID        // 13 digits, wrong check digit
	FormatBankAccount           // same length digits, last 4 kept
	// FormatDigits is never a category's format: [ParseToken] returns it for
	// a digits-only token, which may be a card, national ID or bank account
	// token (a 13-digit token may be any of the three).
	FormatDigits
)

var formatNames = [...]string{
	FormatOpaque:         "opaque",
	FormatPhone:          "phone",
	FormatEmail:          "email",
	FormatCard:           "card",
	FormatThaiNationalID: "th_national_id",
	FormatBankAccount:    "bank_account",
	FormatDigits:         "digits",
}

func (f Format) String() string {
	if f > FormatInvalid && int(f) < len(formatNames) {
		return formatNames[f]
	}
	return "Format(" + strconv.Itoa(int(f)) + ")"
}

// Determinism says whether a category may use deterministic tokens.
type Determinism uint8

const (
	DeterminismInvalid Determinism = iota
	// Never: random tokens only (low-cardinality or sensitive categories).
	Never
	// Optional: random by default; deterministic when the caller asks.
	Optional
	// Default: deterministic unless the caller asks for random.
	Default
)

// Category is one data category. Categories are values from a fixed table;
// compare them by pointer or by ID. The table is shared: never modify a
// *Category you get from [Lookup], [ByID] or [All].
type Category struct {
	// ID is stable forever: it is stored in token rows. Never reuse one.
	ID   uint16
	Name string
	Tier Tier
	// Prefix is the short code in opaque tokens: tok_<Prefix>_...
	Prefix        string
	Format        Format
	Deterministic Determinism
	// ThirdParty marks categories whose subject is always a third party
	// (the emergency contact).
	ThirdParty bool
	// MaxLen is the largest normalised value accepted, in bytes.
	MaxLen int
	// mask is the category's default mask (pdpa-model §2.2).
	mask maskKind
}

// String returns the category's name.
func (c *Category) String() string { return c.Name }
