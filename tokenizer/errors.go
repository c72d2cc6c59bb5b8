package tokenizer

import "errors"

var (
	// ErrInvalidValue reports a value that a category does not accept. Every
	// error returned by [Category.Normalize] wraps it, [ErrEmpty] and
	// [ErrTooLong] included.
	ErrInvalidValue = errors.New("tokenizer: invalid value")
	// ErrEmpty reports an empty value (after trimming, for structured
	// formats). It comes wrapped together with ErrInvalidValue.
	ErrEmpty = errors.New("tokenizer: empty value")
	// ErrTooLong reports a value longer than the category's MaxLen. It comes
	// wrapped together with ErrInvalidValue.
	ErrTooLong = errors.New("tokenizer: value too long")

	// ErrUnsupportedOption reports an [Options] field that the category's
	// token format does not use.
	ErrUnsupportedOption = errors.New("tokenizer: option not supported by this format")
	// ErrMalformedToken reports a string that has the shape of no token.
	ErrMalformedToken = errors.New("tokenizer: malformed token")
)

// Reasons, as they appear in [ValueError.Reason].
const (
	reasonEmpty         = "empty"
	reasonTooLong       = "too long"
	reasonUTF8          = "invalid UTF-8"
	reasonControl       = "control character"
	reasonChecksum      = "checksum mismatch"
	reasonNotNormalized = "not normalized"
)

// ValueError describes why a value was rejected. It names the category and
// the reason, never the value.
type ValueError struct {
	Category string // the category name
	Reason   string // for example "not 13 digits", "checksum mismatch"
	kind     error  // ErrEmpty, ErrTooLong or nil
}

func (e *ValueError) Error() string {
	return "tokenizer: invalid " + e.Category + " value: " + e.Reason
}

// Unwrap returns ErrInvalidValue and, for empty or too long values,
// ErrEmpty or ErrTooLong.
func (e *ValueError) Unwrap() []error {
	if e.kind != nil {
		return []error{ErrInvalidValue, e.kind}
	}
	return []error{ErrInvalidValue}
}

func (c *Category) invalid(reason string) error {
	var kind error
	switch reason {
	case reasonEmpty:
		kind = ErrEmpty
	case reasonTooLong:
		kind = ErrTooLong
	}
	return &ValueError{Category: c.Name, Reason: reason, kind: kind}
}
