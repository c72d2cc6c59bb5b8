package subject

import (
	"errors"
	"time"
)

// ErrInvalid is wrapped by every validation error (a *FieldError).
var ErrInvalid = errors.New("subject: invalid")

// FieldError names the field of a subject record (or of a lifecycle call)
// that is invalid and why. Its message never contains the field's value.
type FieldError struct {
	Field  string
	Reason string
}

func (e *FieldError) Error() string { return "subject: " + e.Field + ": " + e.Reason }

// Unwrap returns [ErrInvalid].
func (e *FieldError) Unwrap() error { return ErrInvalid }

func fieldErr(field, reason string) error { return &FieldError{Field: field, Reason: reason} }

// MaxIDLen is the longest subject id accepted (the store's limit).
const MaxIDLen = 128

// oldestBirthDate bounds plausible birth dates.
var oldestBirthDate = time.Date(1900, 1, 1, 0, 0, 0, 0, ICT)

// validID reports whether id can name a subject: 1 to MaxIDLen printable
// ASCII bytes, no space and no '/'.
func validID(id string) bool {
	if len(id) == 0 || len(id) > MaxIDLen {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if c <= 0x20 || c >= 0x7f || c == '/' {
			return false
		}
	}
	return true
}

// Validate checks the profile fields a client may set (the PUT
// /v1/subjects/{id} body plus the id): id, type, birth_date (YYYY-MM-DD, a
// real date, not after today in ICT, not before 1900), linked_to (required
// for a third party, refused for a data subject, never the subject itself).
// Lifecycle fields (state, suspension, holds, ...) are not the client's and
// are not checked here. Errors are *FieldError values wrapping [ErrInvalid].
func Validate(s *Subject, now time.Time) error {
	if s == nil {
		return fieldErr("subject", "missing")
	}
	if !validID(s.ID) {
		return fieldErr("id", "must be 1 to 128 printable ASCII characters without spaces or '/'")
	}
	switch s.Type {
	case DataSubject, ThirdParty:
	case "":
		return fieldErr("type", "required (data_subject or third_party)")
	default:
		return fieldErr("type", "must be data_subject or third_party")
	}
	if s.BirthDate != "" {
		b, ok := parseDate(s.BirthDate)
		if !ok {
			return fieldErr("birth_date", "must be a calendar date YYYY-MM-DD")
		}
		y, m, d := now.In(ICT).Date()
		if b.After(time.Date(y, m, d, 0, 0, 0, 0, ICT)) {
			return fieldErr("birth_date", "is in the future")
		}
		if b.Before(oldestBirthDate) {
			return fieldErr("birth_date", "is before 1900-01-01")
		}
	}
	switch s.Type {
	case ThirdParty:
		if s.LinkedTo == "" {
			return fieldErr("linked_to", "required for a third party (the account holder who gave the data)")
		}
		if !validID(s.LinkedTo) {
			return fieldErr("linked_to", "must be a subject id")
		}
		if s.LinkedTo == s.ID {
			return fieldErr("linked_to", "must name another subject")
		}
	case DataSubject:
		if s.LinkedTo != "" {
			return fieldErr("linked_to", "only a third party is linked to an account holder")
		}
	}
	return nil
}

// validState reports whether st is a known state.
func validState(st State) bool {
	switch st {
	case Active, SuspendedPendingEvidence, EvidenceUnderReview, Restricted, ErasurePending, Erased:
		return true
	}
	return false
}
