package vault

import (
	"context"
	"errors"
	"slices"
	"time"

	"github.com/fieldvault/fieldvault/tokenizer"
	"github.com/fieldvault/fieldvault/vault/policy"
	"github.com/fieldvault/fieldvault/vault/subject"
)

// indexTimers marks subject records that carry a retention timer, so the
// retention sweeper finds them without reading every subject.
const indexTimers = "timers"

func subjectIndex(s *subject.Subject) string {
	if len(s.Retention) > 0 {
		return indexTimers
	}
	return ""
}

// mutateSubject applies fn to a subject with compare-and-set, retrying on
// concurrent changes, and audits the action.
func (v *Vault) mutateSubject(ctx context.Context, p *Principal, op, id, action string,
	fn func(s *subject.Subject, now time.Time) error, details map[string]string) (*subject.Subject, error) {
	if !v.authz.Can(p, op) {
		return nil, errorf(KindForbidden, CodeForbidden, "this API key may not change subjects")
	}
	if !validSubjectID(id) {
		return nil, errorf(KindInvalid, CodeInvalidSubject, "invalid subject id")
	}
	for attempt := 0; ; attempt++ {
		s, rev, err := v.getSubject(ctx, id)
		if err != nil {
			return nil, err
		}
		now := v.now().UTC()
		if err := fn(s, now); err != nil {
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
		if details == nil {
			details = map[string]string{}
		}
		details["by"] = p.Name
		details["state"] = string(s.State)
		if err := v.adminAudit(ctx, action, "", id, details); err != nil {
			return nil, err
		}
		return s, nil
	}
}

// SuspendRequest is seed §4.6: false data detected at DetectedAt.
type SuspendRequest struct {
	DetectedAt *time.Time `json:"detected_at,omitempty"`
	Reason     string     `json:"reason,omitempty"`
}

// Suspend suspends a subject pending evidence; the deadline is the end of
// the 15th day after detection, in Asia/Bangkok.
func (v *Vault) Suspend(ctx context.Context, p *Principal, id string, req *SuspendRequest) (*subject.Subject, error) {
	return v.mutateSubject(ctx, p, OpSubjectWrite, id, "subject.suspend", func(s *subject.Subject, now time.Time) error {
		detected := now
		if req.DetectedAt != nil {
			detected = req.DetectedAt.UTC()
		}
		if len(req.Reason) > 512 {
			return errorf(KindInvalid, CodeInvalidRequest, "reason is longer than 512 bytes")
		}
		pol := v.Policy()
		return subject.SuspendWithCalendar(s, now, detected, req.Reason, pol.NonWorkingDay())
	}, nil)
}

// ProofRequest records the proof a suspended subject sent in.
type ProofRequest struct {
	ReceivedAt *time.Time `json:"received_at,omitempty"`
}

// ReceiveProof moves a suspended subject to evidence under review.
func (v *Vault) ReceiveProof(ctx context.Context, p *Principal, id string, req *ProofRequest) (*subject.Subject, error) {
	return v.mutateSubject(ctx, p, OpSubjectWrite, id, "subject.proof", func(s *subject.Subject, now time.Time) error {
		at := now
		if req.ReceivedAt != nil {
			at = req.ReceivedAt.UTC()
		}
		err := subject.ProofReceived(s, now, at)
		if errors.Is(err, subject.ErrDeadlinePassed) {
			return errorf(KindConflict, CodeDeadlinePassed, "the evidence window closed before the proof was received")
		}
		return err
	}, nil)
}

// Reinstate ends a suspension.
func (v *Vault) Reinstate(ctx context.Context, p *Principal, id string) (*subject.Subject, error) {
	return v.mutateSubject(ctx, p, OpSubjectWrite, id, "subject.reinstate", func(s *subject.Subject, now time.Time) error {
		return subject.Reinstate(s, now)
	}, nil)
}

// RestrictRequest is an s.34 restriction, of the whole subject or of some
// categories.
type RestrictRequest struct {
	Reason     string   `json:"reason,omitempty"`
	Categories []string `json:"categories,omitempty"`
}

// Restrict restricts a subject (s.34).
func (v *Vault) Restrict(ctx context.Context, p *Principal, id string, req *RestrictRequest) (*subject.Subject, error) {
	if !v.authz.Can(p, OpSubjectWrite) {
		return nil, errorf(KindForbidden, CodeForbidden, "this API key may not change subjects")
	}
	for _, c := range req.Categories {
		if _, ok := tokenizer.Lookup(c); !ok {
			return nil, errorf(KindInvalid, CodeUnknownCategory, "unknown category in categories")
		}
	}
	return v.mutateSubject(ctx, p, OpSubjectWrite, id, "subject.restrict", func(s *subject.Subject, now time.Time) error {
		return subject.Restrict(s, now, req.Reason, req.Categories)
	}, nil)
}

// Unrestrict lifts a restriction.
func (v *Vault) Unrestrict(ctx context.Context, p *Principal, id string) (*subject.Subject, error) {
	return v.mutateSubject(ctx, p, OpSubjectWrite, id, "subject.unrestrict", func(s *subject.Subject, now time.Time) error {
		return subject.Unrestrict(s, now)
	}, nil)
}

// ObjectionRequest records an upheld s.32 objection.
type ObjectionRequest struct {
	// Purpose objected to; "" objects to every purpose based on legitimate
	// interest or public task. Any objection blocks direct marketing.
	Purpose string `json:"purpose,omitempty"`
}

// UpholdObjection records an upheld objection.
func (v *Vault) UpholdObjection(ctx context.Context, p *Principal, id string, req *ObjectionRequest) (*subject.Subject, error) {
	if !v.authz.Can(p, OpSubjectWrite) {
		return nil, errorf(KindForbidden, CodeForbidden, "this API key may not change subjects")
	}
	if req.Purpose != "" && !slices.Contains(policy.Purposes, req.Purpose) {
		return nil, errorf(KindInvalid, CodeInvalidRequest, "unknown purpose")
	}
	return v.mutateSubject(ctx, p, OpSubjectWrite, id, "subject.objection", func(s *subject.Subject, now time.Time) error {
		return subject.UpholdObjection(s, now, req.Purpose)
	}, map[string]string{"purpose": req.Purpose})
}

// LegalHoldRequest keeps categories from erasure while a case or an
// instrument (Ref, an evidence id) needs them.
type LegalHoldRequest struct {
	Categories []string  `json:"categories"`
	Ref        string    `json:"ref"`
	Until      time.Time `json:"until"`
}

// AddLegalHold adds a legal hold; the ref must be a registered legal case or
// authority instrument.
func (v *Vault) AddLegalHold(ctx context.Context, p *Principal, id string, req *LegalHoldRequest) (*subject.Subject, error) {
	if !v.authz.Can(p, OpSubjectWrite) {
		return nil, errorf(KindForbidden, CodeForbidden, "this API key may not change subjects")
	}
	if !validRecordID(req.Ref) {
		return nil, errorf(KindInvalid, CodeInvalidRequest, "ref must name a registered legal case or authority instrument")
	}
	ev, _, err := v.getEvidence(ctx, req.Ref)
	if err != nil {
		return nil, err
	}
	if ev.Kind != policy.KindLegalCase && ev.Kind != policy.KindAuthorityInstrument {
		return nil, errorf(KindInvalid, CodeInvalidRequest, "a legal hold rests on a legal case or an authority instrument")
	}
	for _, c := range req.Categories {
		if _, ok := tokenizer.Lookup(c); !ok {
			return nil, errorf(KindInvalid, CodeUnknownCategory, "unknown category in categories")
		}
	}
	return v.mutateSubject(ctx, p, OpSubjectWrite, id, "subject.legal_hold", func(s *subject.Subject, now time.Time) error {
		return subject.AddLegalHold(s, now, subject.LegalHold{ID: newID("h_", now), Categories: req.Categories,
			Ref: req.Ref, Until: req.Until.UTC(), CreatedAt: now})
	}, nil)
}

// ReleaseLegalHold removes a legal hold.
func (v *Vault) ReleaseLegalHold(ctx context.Context, p *Principal, id, hold string) (*subject.Subject, error) {
	return v.mutateSubject(ctx, p, OpSubjectWrite, id, "subject.legal_hold_release", func(s *subject.Subject, now time.Time) error {
		if !slices.ContainsFunc(s.LegalHolds, func(h subject.LegalHold) bool { return h.ID == hold }) {
			return errorf(KindNotFound, CodeNotFound, "no such legal hold")
		}
		return subject.ReleaseLegalHold(s, now, hold)
	}, nil)
}

// RetentionRequest starts a retention timer: Category is shredded Period
// after From (for a criminal record: the vetting decision, with the
// policy's retention period when Period is empty).
type RetentionRequest struct {
	Category string     `json:"category"`
	From     *time.Time `json:"from,omitempty"`
	ShredAt  *time.Time `json:"shred_at,omitempty"`
	Reason   string     `json:"reason,omitempty"`
}

// SetRetention sets a retention timer. The retention sweeper shreds the
// category when it runs out.
func (v *Vault) SetRetention(ctx context.Context, p *Principal, id string, req *RetentionRequest) (*subject.Subject, error) {
	if !v.authz.Can(p, OpSubjectWrite) {
		return nil, errorf(KindForbidden, CodeForbidden, "this API key may not change subjects")
	}
	if _, ok := tokenizer.Lookup(req.Category); !ok {
		return nil, errorf(KindInvalid, CodeUnknownCategory, "unknown category")
	}
	return v.mutateSubject(ctx, p, OpSubjectWrite, id, "subject.retention", func(s *subject.Subject, now time.Time) error {
		var at time.Time
		switch {
		case req.ShredAt != nil:
			at = req.ShredAt.UTC()
		case req.Category == "criminal_record":
			from := now
			if req.From != nil {
				from = req.From.UTC()
			}
			at = from.AddDate(0, v.Policy().Switches.CriminalRecordRetentionMonths, 0)
		default:
			return errorf(KindInvalid, CodeInvalidRequest, "shred_at is required for this category")
		}
		return subject.AddRetention(s, now, subject.Retention{Category: req.Category, ShredAt: at, Reason: req.Reason})
	}, map[string]string{"category": req.Category})
}
