// Package tokenizer holds fieldvault's data categories (pdpa-model §2.2) and
// everything about a value and its token that needs no key and no I/O:
// tiers, normalisation, token formats, masks and checksums.
//
// Tokens are random: a token never encodes its value. Format-preserving
// tokens only look like values, and are built so they can never be mistaken
// for a real one (card tokens fail Luhn, Thai national ID tokens fail the
// checksum, phone tokens are not dialable, email tokens end in .invalid).
package tokenizer

// Tier is a sensitivity tier. The zero value is invalid.
type Tier uint8

const (
	TierInvalid Tier = iota
	T0               // general
	T1               // notice-elevated (seed §4.2): national ID, financial, marital status
	T2               // PDPA s.26 sensitive
	T2Plus           // criminal record
)

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
)

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
// compare them by pointer or by ID.
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
}
