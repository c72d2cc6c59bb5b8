// Package store defines fieldvault's storage contract: what the vault keeps, and
// the guarantees every backend must give. Implementations live in subpackages
// (pebble, redis) and must all pass the conformance suite in storetest.
//
// # Durability
//
// Every write method returns only after the backend has made the write durable
// (a synced WAL for Pebble; the AOF policy documented in the Redis package).
// A nil error is an acknowledgement: the vault tells its caller "stored" only
// after it.
//
// # What is stored
//
//   - Token rows: token -> subject, category, key version, timestamps,
//     ciphertext. The ciphertext is opaque to the store.
//   - A fingerprint index: (category, keyed fingerprint) -> token, for
//     deterministic tokens. Fingerprints are HMAC/PRF outputs, never values.
//   - A subject index: subject -> its tokens, so that erasure can find them.
//   - Subject key material: (subject, category, key version) -> wrapped DEK.
//     Deleting it is crypto-shredding; see DeleteSubjectKeys.
//   - Records: small versioned documents (subjects, consents, evidence, API
//     keys, keysets, jobs) with compare-and-set revisions.
//   - Token counters per (category, key version).
//
// The store never sees plaintext values or unwrapped keys.
package store

import (
	"bytes"
	"context"
	"errors"
)

// Sentinel errors. Callers branch on these with errors.Is.
var (
	// ErrNotFound: the record or key does not exist.
	ErrNotFound = errors.New("store: not found")
	// ErrConflict: a compare-and-set failed (the revision moved, or the
	// record already exists when absence was required).
	ErrConflict = errors.New("store: revision conflict")
	// ErrTokenExists: InsertTokens found the token string already in use.
	// The caller generates a new token and retries; rows are never overwritten.
	ErrTokenExists = errors.New("store: token already exists")
	// ErrFingerprintBound: InsertTokens found the fingerprint already bound to
	// another token, returned in InsertResult.Existing.
	ErrFingerprintBound = errors.New("store: fingerprint already bound")
	// ErrUnavailable wraps backend failures (connection refused, timeouts,
	// I/O errors). The HTTP layer answers 503 STORE_UNAVAILABLE.
	ErrUnavailable = errors.New("store: unavailable")
	// ErrClosed: the store was closed.
	ErrClosed = errors.New("store: closed")
	// ErrInvalid: an argument violates the contract (empty token, oversized
	// key, zero category). A programming error upstream, never user input.
	// An invalid argument anywhere in a batch fails the whole call, before
	// anything is written.
	ErrInvalid = errors.New("store: invalid argument")
)

// Limits every backend accepts and every caller must respect.
const (
	MaxTokenLen   = 128
	MaxSubjectLen = 128
	MaxIDLen      = 256 // record kinds, ids and index values
	MaxValueLen   = 1 << 20
)

// Token is one token row.
type Token struct {
	// Token is the token string. Globally unique.
	Token string
	// Subject is the data subject the value belongs to.
	Subject string
	// Category is the stable numeric id of the tokenizer category.
	Category uint16
	// KeyVersion is the category key version whose subject DEK encrypted
	// Ciphertext.
	KeyVersion uint32
	// CreatedAt and ExpiresAt are Unix seconds. ExpiresAt 0 means no expiry.
	CreatedAt int64
	ExpiresAt int64
	// Fingerprint is the keyed fingerprint of the normalised value for
	// deterministic tokens, nil (or empty) for random ones. Kept in the row so erasure
	// can remove the index entry without the plaintext.
	Fingerprint []byte
	// Ciphertext is opaque to the store.
	Ciphertext []byte
}

// InsertResult is the outcome of inserting one token.
type InsertResult struct {
	// Err is nil (stored), ErrTokenExists or ErrFingerprintBound.
	Err error
	// Existing is the token the fingerprint is bound to when Err is
	// ErrFingerprintBound.
	Existing string
}

// KeyUpdate moves one token to a new key version (rewrap).
type KeyUpdate struct {
	Token      string
	OldVersion uint32
	NewVersion uint32
	Ciphertext []byte
	// Expect, if set, is the row as the caller last read it (from
	// ScanTokens or GetTokens; its Token field is ignored). The update then
	// applies only if the stored row is still exactly that row, and fails
	// with ErrConflict otherwise: a caller that re-encrypted Expect's value
	// never writes it over a row that changed or over a token deleted and
	// issued again meanwhile. A store may also use it to skip reading the
	// row.
	Expect *Token
}

// SameRow reports whether a and b are the same stored row: every field but
// Token equal (a nil and an empty Fingerprint are the same).
func SameRow(a, b *Token) bool {
	return a.Subject == b.Subject && a.Category == b.Category && a.KeyVersion == b.KeyVersion &&
		a.CreatedAt == b.CreatedAt && a.ExpiresAt == b.ExpiresAt &&
		bytes.Equal(a.Fingerprint, b.Fingerprint) && bytes.Equal(a.Ciphertext, b.Ciphertext)
}

// SubjectKeyRef names one piece of subject key material.
type SubjectKeyRef struct {
	Subject  string
	Category uint16
	Version  uint32
}

// TokenCount is the number of stored tokens of one category on one key version.
type TokenCount struct {
	Category uint16
	Version  uint32
	Count    int64
}

// Record is a small versioned document.
type Record struct {
	Kind string
	ID   string
	// Index is an optional secondary key (for example the subject of a
	// consent); ListByIndex finds records by it. Empty means not indexed.
	Index string
	// Rev is the revision, assigned by the store: 1 on creation, +1 on
	// every successful PutRecord.
	Rev   uint64
	Value []byte
}

// AnyRev makes PutRecord unconditional.
const AnyRev = ^uint64(0)

// Tokens is the token-row part of the store.
type Tokens interface {
	// InsertTokens stores each row whose token is absent. When a row has a
	// Fingerprint, the row and its index entry are written together, and
	// only if the fingerprint is unbound; otherwise nothing is written for
	// that row and the result carries ErrFingerprintBound and the bound
	// token. Existing rows are never overwritten. The subject index and the
	// counters are updated with the rows. One result per row, in order; a
	// non-nil error means nothing was acknowledged.
	InsertTokens(ctx context.Context, rows []Token) ([]InsertResult, error)
	// GetTokens returns one entry per token, nil where absent.
	GetTokens(ctx context.Context, tokens []string) ([]*Token, error)
	// LookupFingerprints returns the token bound to each fingerprint of the
	// category, "" where none.
	LookupFingerprints(ctx context.Context, category uint16, fps [][]byte) ([]string, error)
	// UpdateTokenKeys replaces ciphertext and key version of each row whose
	// current KeyVersion equals OldVersion. Per update: nil, ErrNotFound (row
	// gone) or ErrConflict (version moved).
	UpdateTokenKeys(ctx context.Context, updates []KeyUpdate) ([]error, error)
	// DeleteTokens removes rows, their fingerprint entries and subject index
	// entries, and decrements counters. Absent tokens are skipped. Returns
	// how many rows were removed.
	DeleteTokens(ctx context.Context, tokens []string) (int, error)
	// SubjectTokens lists the tokens of one subject, in no particular order.
	SubjectTokens(ctx context.Context, subject string) ([]string, error)
	// ScanTokens walks every row, at most limit (> 0) per call. Start with
	// cursor ""; a returned cursor "" means the walk is done. A cursor is
	// printable ASCII and stays valid across restarts, so a job can persist
	// it and resume; a cursor this store did not return is ErrInvalid. Rows
	// inserted during a walk may or may not be seen.
	ScanTokens(ctx context.Context, cursor string, limit int) (rows []Token, next string, err error)
	// TokenCounts returns the number of rows per (category, key version),
	// omitting zero counts.
	TokenCounts(ctx context.Context) ([]TokenCount, error)
}

// SubjectKeys is the subject key material part of the store.
type SubjectKeys interface {
	// GetSubjectKeys returns one wrapped key per ref, nil where absent.
	GetSubjectKeys(ctx context.Context, refs []SubjectKeyRef) ([][]byte, error)
	// InsertSubjectKeys stores each wrapped key whose ref is absent, as one
	// durable write, and returns, per ref, what is stored afterwards: the
	// given key, or the key another writer stored first (never overwritten).
	// Duplicate refs within one call resolve to the first. refs and wrapped
	// have the same length, and wrapped keys are non-empty.
	InsertSubjectKeys(ctx context.Context, refs []SubjectKeyRef, wrapped [][]byte) ([][]byte, error)
	// DeleteSubjectKeys deletes the subject's key material for the given
	// categories (all categories when nil; none when empty), every version. This is the
	// crypto-shredding step: once it returns, no copy of the key material
	// remains in the live store. Returns how many keys were deleted.
	DeleteSubjectKeys(ctx context.Context, subject string, categories []uint16) (int, error)
	// ScanSubjectKeys walks every subject key ref (not the material), with
	// the same cursor contract as ScanTokens.
	ScanSubjectKeys(ctx context.Context, cursor string, limit int) (refs []SubjectKeyRef, next string, err error)
}

// Records is the document part of the store.
type Records interface {
	// GetRecord returns ErrNotFound when absent.
	GetRecord(ctx context.Context, kind, id string) (*Record, error)
	// GetRecords returns one entry per id, nil where absent.
	GetRecords(ctx context.Context, kind string, ids []string) ([]*Record, error)
	// PutRecord writes rec if the stored revision equals expectRev (0: must
	// be absent; AnyRev: unconditional) and returns the new revision, or
	// ErrConflict. rec.Rev is ignored.
	PutRecord(ctx context.Context, rec Record, expectRev uint64) (uint64, error)
	// DeleteRecord deletes a record; absent is not an error.
	DeleteRecord(ctx context.Context, kind, id string) error
	// ListRecords returns every record of a kind, ordered by id.
	ListRecords(ctx context.Context, kind string) ([]*Record, error)
	// ListByIndex returns the records of a kind whose Index equals index
	// (non-empty), ordered by id.
	ListByIndex(ctx context.Context, kind, index string) ([]*Record, error)
}

// Store is everything fieldvault keeps. Implementations are safe for
// concurrent use.
type Store interface {
	Tokens
	SubjectKeys
	Records
	// Ping reports whether the backend is reachable and writable enough to
	// serve; readiness uses it.
	Ping(ctx context.Context) error
	Close() error
}
