package vault

import (
	"errors"
	"fmt"
)

// Kind classifies an error for the API boundary. Lower layers never pick
// HTTP status codes; the HTTP layer maps a Kind to one.
type Kind uint8

const (
	KindInternal     Kind = iota // 500: a bug or corrupt state; details logged, not returned
	KindInvalid                  // 400: the request is malformed or violates a rule
	KindUnauthorized             // 401: no or unknown credentials
	KindForbidden                // 403: the principal may not do this, or a decision denied it
	KindNotFound                 // 404
	KindConflict                 // 409: state conflict (already withdrawn, revision moved)
	KindTooLarge                 // 413
	KindUnavailable              // 503: store, KEK or audit unavailable
)

// Error is an error the API returns to callers: a stable code and a message
// that never contains a value, a token, a key or a subject's data.
type Error struct {
	Kind    Kind
	Code    string
	Message string
	// Items carries per-item errors of a batch rejected as a whole.
	Items []*ItemError
	err   error // the cause, for logs; never shown to callers
}

func (e *Error) Error() string { return e.Code + ": " + e.Message }
func (e *Error) Unwrap() error { return e.err }

// ItemError is the error of one item of a batch.
type ItemError struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

func errorf(kind Kind, code, format string, args ...any) *Error {
	return &Error{Kind: kind, Code: code, Message: fmt.Sprintf(format, args...)}
}

func wrapErr(kind Kind, code, msg string, cause error) *Error {
	return &Error{Kind: kind, Code: code, Message: msg, err: cause}
}

// Stable error codes of the API (request-level).
const (
	CodeInvalidRequest    = "INVALID_REQUEST"
	CodeInvalidItems      = "INVALID_ITEMS"
	CodeBatchTooLarge     = "BATCH_TOO_LARGE"
	CodeEmptyBatch        = "EMPTY_BATCH"
	CodeMissingPurpose    = "MISSING_PURPOSE"
	CodeMissingGround     = "MISSING_GROUND"
	CodeInvalidReveal     = "INVALID_REVEAL"
	CodeUnauthorized      = "UNAUTHORIZED"
	CodeForbidden         = "FORBIDDEN"
	CodeDenied            = "DENIED"
	CodeNotFound          = "NOT_FOUND"
	CodeSubjectNotFound   = "SUBJECT_NOT_FOUND"
	CodeConsentNotFound   = "CONSENT_NOT_FOUND"
	CodeEvidenceNotFound  = "EVIDENCE_NOT_FOUND"
	CodeConflict          = "CONFLICT"
	CodeStoreUnavailable  = "STORE_UNAVAILABLE"
	CodeKEKUnavailable    = "KEK_UNAVAILABLE"
	CodeAuditUnavailable  = "AUDIT_UNAVAILABLE"
	CodeInternal          = "INTERNAL"
	CodeInvalidSubject    = "INVALID_SUBJECT"
	CodeInvalidConsent    = "INVALID_CONSENT"
	CodeInvalidEvidence   = "INVALID_EVIDENCE"
	CodeInvalidTransition = "INVALID_TRANSITION"
	CodeAlreadyWithdrawn  = "ALREADY_WITHDRAWN"
	CodeUnknownCategory   = "UNKNOWN_CATEGORY"
	CodeLegalHold         = "LEGAL_HOLD"
	CodeAlreadyApproved   = "ALREADY_APPROVED"
	CodeDeadlinePassed    = "DEADLINE_PASSED"
)

// Item-level codes of tokenize.
const (
	CodeEmptyValue                   = "EMPTY_VALUE"
	CodeValueTooLong                 = "VALUE_TOO_LONG"
	CodeInvalidValue                 = "INVALID_VALUE"
	CodeMissingSubject               = "MISSING_SUBJECT"
	CodeMissingCategory              = "MISSING_CATEGORY"
	CodeDeterministicNotAllowed      = "DETERMINISTIC_NOT_ALLOWED"
	CodeDeterministicSubjectConflict = "DETERMINISTIC_SUBJECT_CONFLICT"
	CodeInvalidOption                = "INVALID_OPTION"
	CodeTokenSpaceExhausted          = "TOKEN_SPACE_EXHAUSTED"
	CodeRoleNotPermitted             = "ROLE_NOT_PERMITTED"
	CodeTokenMalformed               = "TOKEN_MALFORMED"
	CodeSubjectErased                = "SUBJECT_ERASED"
	// CodeValueUnreadable denies a token whose stored value fails to
	// decrypt (corruption); it is logged as an error.
	CodeValueUnreadable = "VALUE_UNREADABLE"
)

// AsError returns err as an *Error, turning unknown errors into an internal
// error that hides the cause.
func AsError(err error) *Error {
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	return wrapErr(KindInternal, CodeInternal, "internal error", err)
}
