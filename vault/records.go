package vault

import (
	"context"
	"encoding/json"
	"errors"

	"github.com/fieldvault/fieldvault/vault/consent"
	"github.com/fieldvault/fieldvault/vault/policy"
	"github.com/fieldvault/fieldvault/vault/store"
	"github.com/fieldvault/fieldvault/vault/subject"
)

// Record kinds.
const (
	kindSubject   = "subject"
	kindConsent   = "consent"
	kindEvidence  = "evidence"
	kindAPIKey    = "apikey"
	kindTombstone = "tombstone"
	kindErasure   = "erasure"
	kindJob       = "job"
)

// loadRecord reads one JSON record into dst, returning its revision; a
// missing record is (0, store.ErrNotFound).
func (v *Vault) loadRecord(ctx context.Context, kind, id string, dst any) (uint64, error) {
	rec, err := v.store.GetRecord(ctx, kind, id)
	if err != nil {
		return 0, err
	}
	if err := json.Unmarshal(rec.Value, dst); err != nil {
		return 0, wrapErr(KindInternal, CodeInternal, "internal error", err)
	}
	return rec.Rev, nil
}

// saveRecord writes src as JSON with compare-and-set on expectRev.
func (v *Vault) saveRecord(ctx context.Context, kind, id, index string, src any, expectRev uint64) (uint64, error) {
	b, err := json.Marshal(src)
	if err != nil {
		return 0, wrapErr(KindInternal, CodeInternal, "internal error", err)
	}
	rev, err := v.store.PutRecord(ctx, store.Record{Kind: kind, ID: id, Index: index, Value: b}, expectRev)
	if errors.Is(err, store.ErrConflict) {
		return 0, errorf(KindConflict, CodeConflict, "the %s changed concurrently; retry", kind)
	}
	if err != nil {
		return 0, storeErr(err)
	}
	return rev, nil
}

func (v *Vault) getSubject(ctx context.Context, id string) (*subject.Subject, uint64, error) {
	var s subject.Subject
	rev, err := v.loadRecord(ctx, kindSubject, id, &s)
	if errors.Is(err, store.ErrNotFound) {
		return nil, 0, errorf(KindNotFound, CodeSubjectNotFound, "no such subject")
	}
	if err != nil {
		return nil, 0, asStoreErr(err)
	}
	return &s, rev, nil
}

func (v *Vault) getConsent(ctx context.Context, id string) (*consent.Consent, uint64, error) {
	var c consent.Consent
	rev, err := v.loadRecord(ctx, kindConsent, id, &c)
	if errors.Is(err, store.ErrNotFound) {
		return nil, 0, errorf(KindNotFound, CodeConsentNotFound, "no such consent")
	}
	if err != nil {
		return nil, 0, asStoreErr(err)
	}
	return &c, rev, nil
}

func (v *Vault) getEvidence(ctx context.Context, id string) (*policy.Evidence, uint64, error) {
	var e policy.Evidence
	rev, err := v.loadRecord(ctx, kindEvidence, id, &e)
	if errors.Is(err, store.ErrNotFound) {
		return nil, 0, errorf(KindNotFound, CodeEvidenceNotFound, "no such evidence")
	}
	if err != nil {
		return nil, 0, asStoreErr(err)
	}
	return &e, rev, nil
}

// asStoreErr keeps *Error values and turns anything else into a store error.
func asStoreErr(err error) error {
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	return storeErr(err)
}

// validRecordID reports whether id can name a record in a URL path.
func validRecordID(id string) bool {
	if len(id) == 0 || len(id) > store.MaxIDLen {
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
