package vault

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/fieldvault/fieldvault/tokenizer"
	"github.com/fieldvault/fieldvault/vault/audit"
	"github.com/fieldvault/fieldvault/vault/store"
	"github.com/fieldvault/fieldvault/vault/subject"
)

// Erasure triggers (pdpa-model §2.6 erasure certificate).
var erasureTriggers = []string{"s33_request", "seed_4_6_deadline", "retention", "consent_withdrawn", "objection", "other"}

// EraseRequest erases a subject (crypto-shredding).
type EraseRequest struct {
	// Categories to erase while the subject lives on; empty erases every
	// category not under a legal hold.
	Categories []string `json:"categories,omitempty"`
	// Trigger: s33_request, seed_4_6_deadline, retention,
	// consent_withdrawn, objection or other.
	Trigger  string `json:"trigger"`
	Approver string `json:"approver,omitempty"`
}

// ErasureCertificate is the vault's record of one erasure. It holds no
// subject id in clear: SubjectRef is the audit HMAC of it.
type ErasureCertificate struct {
	ID                string    `json:"erasure_id"`
	SubjectRef        audit.Ref `json:"subject_ref"`
	Categories        []string  `json:"categories_erased"`
	LegalHoldExcluded []string  `json:"legal_hold_exclusions,omitempty"`
	KeysDestroyed     int       `json:"keys_destroyed"`
	TokensRemoved     int       `json:"tokens_removed"`
	Trigger           string    `json:"trigger"`
	Operator          string    `json:"operator"`
	Approver          string    `json:"approver,omitempty"`
	StartedAt         time.Time `json:"started_at"`
	CompletedAt       time.Time `json:"completed_at"`
	SubjectState      string    `json:"subject_state"`
	// Method states how the data was made unrecoverable.
	Method string `json:"method"`
}

// tombstone replaces an erased token's row: the token answers TOKEN_ERASED
// and later decisions about it are still attributed to the subject in the
// audit log (by Ref, never in clear).
type tombstone struct {
	Category   string    `json:"category"`
	SubjectRef audit.Ref `json:"subject_ref"`
	ErasedAt   time.Time `json:"erased_at"`
}

// Erase crypto-shreds a subject's data: it marks the subject (so decisions
// deny at once), deletes the subject's data keys for the categories erased
// (every copy of their ciphertext, backups included, becomes unreadable),
// replaces the token rows and their fingerprint entries by tombstones (so
// the tokens answer TOKEN_ERASED and the same value tokenises to a new
// token), and writes an erasure certificate. Categories under a legal hold
// are kept. Erase is idempotent: running it again after a crash completes
// the work.
func (v *Vault) Erase(ctx context.Context, p *Principal, id string, req *EraseRequest) (*ErasureCertificate, error) {
	if !v.authz.Can(p, OpSubjectErase) {
		return nil, errorf(KindForbidden, CodeForbidden, "this API key may not erase subjects")
	}
	if !slices.Contains(erasureTriggers, req.Trigger) {
		return nil, errorf(KindInvalid, CodeInvalidRequest, "trigger must be one of %s", strings.Join(erasureTriggers, ", "))
	}
	for _, c := range req.Categories {
		if _, ok := tokenizer.Lookup(c); !ok {
			return nil, errorf(KindInvalid, CodeUnknownCategory, "unknown category in categories")
		}
	}
	return v.erase(ctx, p.Name, id, req)
}

func (v *Vault) erase(ctx context.Context, operator, id string, req *EraseRequest) (*ErasureCertificate, error) {
	if !validSubjectID(id) {
		return nil, errorf(KindInvalid, CodeInvalidSubject, "invalid subject id")
	}
	started := v.now().UTC()
	full := len(req.Categories) == 0
	var targets, held []string

	// 1. Mark the subject first: from here on decisions deny.
	_, err := v.updateSubjectRecord(ctx, id, func(s *subject.Subject, now time.Time) error {
		if s.State == subject.Erased {
			return errorf(KindConflict, CodeInvalidTransition, "the subject was already erased")
		}
		held = subject.HeldCategories(s, now)
		if full {
			targets = targets[:0]
			for _, c := range tokenizer.All() {
				if !slices.Contains(held, c.Name) {
					targets = append(targets, c.Name)
				}
			}
			if s.State != subject.ErasurePending {
				if err := subject.MarkErasurePending(s, now); err != nil {
					return err
				}
			}
			if len(held) > 0 {
				return subject.EraseCategories(s, now, targets)
			}
			return nil
		}
		targets = slices.Clone(req.Categories)
		return subject.EraseCategories(s, now, targets)
	})
	if err != nil {
		return nil, err
	}

	// 2. Shred the keys.
	var catIDs []uint16
	if !full || len(held) > 0 {
		for _, name := range targets {
			c, _ := tokenizer.Lookup(name)
			catIDs = append(catIDs, c.ID)
		}
	}
	nkeys, err := v.store.DeleteSubjectKeys(ctx, id, catIDs)
	if err != nil {
		return nil, storeErr(err)
	}
	v.keys.Forget(id, catIDs)

	// 3. Tombstones, then token rows and fingerprints.
	toks, err := v.store.SubjectTokens(ctx, id)
	if err != nil {
		return nil, storeErr(err)
	}
	removed := 0
	for start := 0; start < len(toks); start += 1000 {
		chunk := toks[start:min(start+1000, len(toks))]
		rows, err := v.store.GetTokens(ctx, chunk)
		if err != nil {
			return nil, storeErr(err)
		}
		var del []string
		for _, r := range rows {
			if r == nil {
				continue
			}
			c, ok := tokenizer.ByID(r.Category)
			if !ok || (catIDs != nil && !slices.Contains(catIDs, r.Category)) {
				continue
			}
			b, _ := json.Marshal(tombstone{Category: c.Name, SubjectRef: v.audit.Ref(id), ErasedAt: started})
			if _, err := v.store.PutRecord(ctx, store.Record{Kind: kindTombstone, ID: r.Token, Value: b}, store.AnyRev); err != nil {
				return nil, storeErr(err)
			}
			del = append(del, r.Token)
		}
		n, err := v.store.DeleteTokens(ctx, del)
		if err != nil {
			return nil, storeErr(err)
		}
		removed += n
	}

	// 4. Record the outcome.
	s, err := v.updateSubjectRecord(ctx, id, func(s *subject.Subject, now time.Time) error {
		if full && len(held) == 0 && s.State != subject.Erased {
			return subject.MarkErased(s, now)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	cert := &ErasureCertificate{
		ID:                newID("x_", started),
		SubjectRef:        v.audit.Ref(id),
		Categories:        targets,
		LegalHoldExcluded: held,
		KeysDestroyed:     nkeys,
		TokensRemoved:     removed,
		Trigger:           req.Trigger,
		Operator:          operator,
		Approver:          req.Approver,
		StartedAt:         started,
		CompletedAt:       v.now().UTC(),
		SubjectState:      string(s.State),
		Method: "crypto-shredding: the subject's data keys were deleted from the live store; " +
			"token rows and fingerprint entries were removed",
	}
	if _, err := v.saveRecord(ctx, kindErasure, cert.ID, string(cert.SubjectRef), cert, 0); err != nil {
		return nil, err
	}
	if err := v.adminAudit(ctx, "subject.erase", cert.ID, id, map[string]string{
		"by": operator, "trigger": req.Trigger, "categories": strings.Join(targets, ","),
		"keys_destroyed": fmt.Sprint(nkeys), "tokens_removed": fmt.Sprint(removed)}); err != nil {
		return nil, err
	}
	return cert, nil
}

// updateSubjectRecord applies fn with compare-and-set (no permission check,
// no audit: callers do both).
func (v *Vault) updateSubjectRecord(ctx context.Context, id string, fn func(s *subject.Subject, now time.Time) error) (*subject.Subject, error) {
	for attempt := 0; ; attempt++ {
		s, rev, err := v.getSubject(ctx, id)
		if err != nil {
			return nil, err
		}
		if err := fn(s, v.now().UTC()); err != nil {
			var ae *Error
			if errors.As(err, &ae) {
				return nil, ae
			}
			return nil, subjectErr(err)
		}
		_, err = v.saveRecord(ctx, kindSubject, id, subjectIndex(s), s, rev)
		var ae *Error
		if errors.As(err, &ae) && ae.Code == CodeConflict && attempt < 3 {
			continue
		}
		if err != nil {
			return nil, err
		}
		return s, nil
	}
}

// ErasureCertificates lists the certificates of a subject.
func (v *Vault) ErasureCertificates(ctx context.Context, p *Principal, id string) ([]*ErasureCertificate, error) {
	if !v.authz.Can(p, OpSubjectRead) {
		return nil, errorf(KindForbidden, CodeForbidden, "this API key may not read subjects")
	}
	if !validSubjectID(id) {
		return nil, errorf(KindInvalid, CodeInvalidSubject, "invalid subject id")
	}
	if _, _, err := v.getSubject(ctx, id); err != nil {
		return nil, err
	}
	recs, err := v.store.ListByIndex(ctx, kindErasure, string(v.audit.Ref(id)))
	if err != nil {
		return nil, storeErr(err)
	}
	out := make([]*ErasureCertificate, 0, len(recs))
	for _, r := range recs {
		var c ErasureCertificate
		if err := json.Unmarshal(r.Value, &c); err != nil {
			return nil, wrapErr(KindInternal, CodeInternal, "internal error", err)
		}
		out = append(out, &c)
	}
	return out, nil
}

// RunRetention shreds every category whose retention timer ran out, and
// returns how many (subject, category) pairs it shredded. The server runs it
// periodically; it is safe to run concurrently on several replicas.
func (v *Vault) RunRetention(ctx context.Context) (int, error) {
	recs, err := v.store.ListByIndex(ctx, kindSubject, indexTimers)
	if err != nil {
		return 0, storeErr(err)
	}
	now := v.now()
	n := 0
	for _, r := range recs {
		var s subject.Subject
		if err := json.Unmarshal(r.Value, &s); err != nil {
			continue
		}
		var due []string
		for _, t := range subject.DueRetention(&s, now) {
			if !slices.Contains(s.ErasedCategories, t.Category) && !subject.CategoryHeld(&s, t.Category, now) {
				due = append(due, t.Category)
			}
		}
		if len(due) == 0 || s.State == subject.Erased {
			continue
		}
		if _, err := v.erase(ctx, "retention-timer", s.ID, &EraseRequest{Categories: due, Trigger: "retention"}); err != nil {
			v.log.Error("retention erasure failed", "error", err)
			continue
		}
		n += len(due)
	}
	return n, nil
}
