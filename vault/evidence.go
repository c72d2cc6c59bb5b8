package vault

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/fieldvault/fieldvault/tokenizer"
	"github.com/fieldvault/fieldvault/vault/consent"
	"github.com/fieldvault/fieldvault/vault/policy"
)

// Limits on evidence records.
const (
	maxEvidenceList  = 1000
	maxEvidenceAttrs = 64
	maxAttrKeyLen    = 64
	maxAttrValueLen  = 2048
)

// CreateEvidenceRequest registers the evidence behind a non-consent ground.
type CreateEvidenceRequest struct {
	Kind       string            `json:"kind"`
	Subjects   []string          `json:"subjects,omitempty"`
	Categories []string          `json:"categories,omitempty"`
	Purposes   []string          `json:"purposes,omitempty"`
	ValidFrom  *time.Time        `json:"valid_from,omitempty"`
	ValidUntil *time.Time        `json:"valid_until,omitempty"`
	Attributes map[string]string `json:"attributes,omitempty"`
}

func invalidEvidence(format string, args ...any) *Error {
	return errorf(KindInvalid, CodeInvalidEvidence, format, args...)
}

func validateEvidence(e *policy.Evidence) error {
	if !slices.Contains(policy.EvidenceKinds, e.Kind) {
		return invalidEvidence("kind must be one of the evidence kinds")
	}
	if len(e.Subjects) > maxEvidenceList || len(e.Categories) > maxEvidenceList || len(e.Purposes) > maxEvidenceList {
		return invalidEvidence("subjects, categories and purposes hold at most %d entries each", maxEvidenceList)
	}
	for i, s := range e.Subjects {
		if !validSubjectID(s) {
			return invalidEvidence("subjects[%d] is not a valid subject id", i)
		}
	}
	for i, c := range e.Categories {
		if _, ok := tokenizer.Lookup(c); !ok {
			return invalidEvidence("categories[%d] is not a known category", i)
		}
	}
	for i, p := range e.Purposes {
		if !consent.KnownPurpose(p) {
			return invalidEvidence("purposes[%d] is not a known purpose", i)
		}
	}
	if !e.ValidFrom.IsZero() && !e.ValidUntil.IsZero() && !e.ValidUntil.After(e.ValidFrom) {
		return invalidEvidence("valid_until must be after valid_from")
	}
	if len(e.Attributes) > maxEvidenceAttrs {
		return invalidEvidence("at most %d attributes", maxEvidenceAttrs)
	}
	for k, v := range e.Attributes {
		if k == "" || len(k) > maxAttrKeyLen || len(v) > maxAttrValueLen {
			return invalidEvidence("attribute names are 1-%d bytes and values at most %d bytes", maxAttrKeyLen, maxAttrValueLen)
		}
	}
	switch e.Kind {
	case policy.KindAuthorityInstrument:
		if e.ValidUntil.IsZero() {
			return invalidEvidence("an authority instrument needs valid_until (its expiry)")
		}
		if len(e.Subjects) == 0 || len(e.Categories) == 0 {
			return invalidEvidence("an authority instrument needs its scope: subjects and categories")
		}
	case policy.KindDSR:
		if e.Attributes[policy.AttrRequester] == "" {
			return invalidEvidence("a data-subject request needs the requester attribute")
		}
		if len(e.Subjects) == 0 {
			return invalidEvidence("a data-subject request names its subject")
		}
	case policy.KindIncident:
		if len(e.Subjects) == 0 {
			return invalidEvidence("an incident names the subjects at risk")
		}
	case policy.KindTransferSafeguard:
		if e.Attributes[policy.AttrMechanism] == "" || e.Attributes[policy.AttrDestinations] == "" {
			return invalidEvidence("a transfer safeguard needs the mechanism and destinations attributes")
		}
	}
	return nil
}

// CreateEvidence registers evidence. The creator's roles are recorded: an
// incident counts only if it was opened by the emergency role.
func (v *Vault) CreateEvidence(ctx context.Context, p *Principal, req *CreateEvidenceRequest) (*policy.Evidence, error) {
	if !v.authz.Can(p, OpEvidenceWrite) {
		return nil, errorf(KindForbidden, CodeForbidden, "this API key may not register evidence")
	}
	now := v.now().UTC()
	e := &policy.Evidence{
		ID:             newID("e_", now),
		Kind:           req.Kind,
		Subjects:       req.Subjects,
		Categories:     req.Categories,
		Purposes:       req.Purposes,
		Attributes:     req.Attributes,
		CreatedBy:      p.Name,
		CreatedByRoles: slices.Clone(p.Roles),
		CreatedAt:      now,
	}
	if req.ValidFrom != nil {
		e.ValidFrom = req.ValidFrom.UTC()
	}
	if req.ValidUntil != nil {
		e.ValidUntil = req.ValidUntil.UTC()
	}
	if err := validateEvidence(e); err != nil {
		return nil, err
	}
	if _, err := v.saveRecord(ctx, kindEvidence, e.ID, "", e, 0); err != nil {
		return nil, err
	}
	if err := v.adminAudit(ctx, "evidence.create", e.ID, "", map[string]string{"by": p.Name, "kind": e.Kind}); err != nil {
		return nil, err
	}
	return e, nil
}

// GetEvidence returns an evidence record.
func (v *Vault) GetEvidence(ctx context.Context, p *Principal, id string) (*policy.Evidence, error) {
	if !v.authz.Can(p, OpEvidenceRead) {
		return nil, errorf(KindForbidden, CodeForbidden, "this API key may not read evidence")
	}
	if !validRecordID(id) {
		return nil, errorf(KindInvalid, CodeInvalidRequest, "invalid evidence id")
	}
	e, _, err := v.getEvidence(ctx, id)
	return e, err
}

// mutateEvidence applies fn to an evidence record with compare-and-set.
func (v *Vault) mutateEvidence(ctx context.Context, id string, fn func(e *policy.Evidence) error) (*policy.Evidence, error) {
	if !validRecordID(id) {
		return nil, errorf(KindInvalid, CodeInvalidRequest, "invalid evidence id")
	}
	for attempt := 0; ; attempt++ {
		e, rev, err := v.getEvidence(ctx, id)
		if err != nil {
			return nil, err
		}
		if err := fn(e); err != nil {
			return nil, err
		}
		_, err = v.saveRecord(ctx, kindEvidence, id, "", e, rev)
		var ae *Error
		if errors.As(err, &ae) && ae.Code == CodeConflict && attempt < 3 {
			continue
		}
		if err != nil {
			return nil, err
		}
		return e, nil
	}
}

// ApproveEvidence adds the caller's approval. A principal approves a record
// once; revoked records cannot be approved. Authority instruments need two
// approvals by distinct principals with the legal role (checked at decision
// time by the policy).
func (v *Vault) ApproveEvidence(ctx context.Context, p *Principal, id string) (*policy.Evidence, error) {
	if !v.authz.Can(p, OpEvidenceApprove) {
		return nil, errorf(KindForbidden, CodeForbidden, "this API key may not approve evidence")
	}
	now := v.now().UTC()
	e, err := v.mutateEvidence(ctx, id, func(e *policy.Evidence) error {
		if !e.RevokedAt.IsZero() {
			return errorf(KindConflict, CodeInvalidTransition, "the evidence was revoked")
		}
		for _, a := range e.Approvals {
			if a.Principal == p.Name {
				return errorf(KindConflict, CodeAlreadyApproved, "this principal already approved the evidence")
			}
		}
		e.Approvals = append(e.Approvals, policy.Approval{Principal: p.Name, Roles: slices.Clone(p.Roles), At: now})
		return nil
	})
	if err != nil {
		return nil, err
	}
	if err := v.adminAudit(ctx, "evidence.approve", id, "", map[string]string{
		"by": p.Name, "kind": e.Kind, "approvals": fmt.Sprint(len(e.Approvals))}); err != nil {
		return nil, err
	}
	return e, nil
}

// RevokeEvidence revokes a record (an instrument withdrawn, an incident
// closed, a contract ended): decisions from now on deny it.
func (v *Vault) RevokeEvidence(ctx context.Context, p *Principal, id string) (*policy.Evidence, error) {
	if !v.authz.Can(p, OpEvidenceWrite) {
		return nil, errorf(KindForbidden, CodeForbidden, "this API key may not revoke evidence")
	}
	now := v.now().UTC()
	e, err := v.mutateEvidence(ctx, id, func(e *policy.Evidence) error {
		if !e.RevokedAt.IsZero() {
			return errorf(KindConflict, CodeInvalidTransition, "the evidence was already revoked")
		}
		e.RevokedAt, e.RevokedBy = now, p.Name
		return nil
	})
	if err != nil {
		return nil, err
	}
	if err := v.adminAudit(ctx, "evidence.revoke", id, "", map[string]string{"by": p.Name, "kind": e.Kind}); err != nil {
		return nil, err
	}
	return e, nil
}
