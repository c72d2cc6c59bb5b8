package vault

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/fieldvault/fieldvault/vault/consent"
	"github.com/fieldvault/fieldvault/vault/subject"
)

// PutSubjectRequest registers or updates a subject's attributes. State
// changes go through the lifecycle operations, not through PUT.
type PutSubjectRequest struct {
	Type             subject.Type `json:"type"`
	BirthDate        string       `json:"birth_date,omitempty"`
	Married          bool         `json:"married,omitempty"`
	CapableOfConsent *bool        `json:"capable_of_consent,omitempty"`
	LinkedTo         string       `json:"linked_to,omitempty"`
}

// PutSubject creates or updates a subject and returns it with created=true
// when it is new.
func (v *Vault) PutSubject(ctx context.Context, p *Principal, id string, req *PutSubjectRequest) (*subject.Subject, bool, error) {
	if !v.authz.Can(p, OpSubjectWrite) {
		return nil, false, errorf(KindForbidden, CodeForbidden, "this API key may not write subjects")
	}
	if !validSubjectID(id) {
		return nil, false, errorf(KindInvalid, CodeInvalidSubject, "subject id must be 1-128 printable ASCII characters without spaces or '/'")
	}
	now := v.now().UTC()
	profile := subject.Subject{ID: id, Type: req.Type, BirthDate: req.BirthDate, Married: req.Married,
		CapableOfConsent: req.CapableOfConsent, LinkedTo: req.LinkedTo}
	cur, rev, err := v.getSubject(ctx, id)
	created := false
	var next *subject.Subject
	switch {
	case err == nil:
		if err := subject.Update(cur, profile, now); err != nil {
			return nil, false, subjectErr(err)
		}
		next = cur
	default:
		var e *Error
		if !errors.As(err, &e) || e.Kind != KindNotFound {
			return nil, false, err
		}
		if next, err = subject.New(profile, now); err != nil {
			return nil, false, subjectErr(err)
		}
		created = true
	}
	if _, err := v.saveRecord(ctx, kindSubject, id, subjectIndex(next), next, rev); err != nil {
		return nil, false, err
	}
	action := "subject.update"
	if created {
		action = "subject.create"
	}
	if err := v.adminAudit(ctx, action, "", id, map[string]string{"by": p.Name, "type": string(next.Type)}); err != nil {
		return nil, false, err
	}
	return next, created, nil
}

// GetSubject returns a subject record.
func (v *Vault) GetSubject(ctx context.Context, p *Principal, id string) (*subject.Subject, error) {
	if !v.authz.Can(p, OpSubjectRead) {
		return nil, errorf(KindForbidden, CodeForbidden, "this API key may not read subjects")
	}
	if !validSubjectID(id) {
		return nil, errorf(KindInvalid, CodeInvalidSubject, "invalid subject id")
	}
	s, _, err := v.getSubject(ctx, id)
	return s, err
}

// GrantConsentRequest is the body of POST /v1/consents.
type GrantConsentRequest struct {
	Subject              string              `json:"subject"`
	GrantedBy            []consent.Grantor   `json:"granted_by"`
	Explicit             bool                `json:"explicit"`
	Categories           []string            `json:"categories"`
	Purposes             []string            `json:"purposes"`
	Recipients           []consent.Recipient `json:"recipients,omitempty"`
	Destinations         []string            `json:"destinations,omitempty"`
	InformedOfInadequacy bool                `json:"informed_of_inadequacy,omitempty"`
	NoticeVersion        string              `json:"notice_version"`
	NoticeSHA256         string              `json:"notice_sha256,omitempty"`
	Language             string              `json:"language,omitempty"`
	CollectionMethod     string              `json:"collection_method"`
	EvidenceSHA256       string              `json:"evidence_sha256,omitempty"`
	GrantedAt            *time.Time          `json:"granted_at,omitempty"`
	ExpiresAt            *time.Time          `json:"expires_at,omitempty"`
	Channel              string              `json:"channel,omitempty"`
}

// GrantConsent records a consent. The subject must be registered (its age
// band at grant is recorded). Consents collected by sign-up acceptance,
// continued use or deemed consent are stored for history but never count.
func (v *Vault) GrantConsent(ctx context.Context, p *Principal, req *GrantConsentRequest) (*consent.Consent, error) {
	if !v.authz.Can(p, OpConsentWrite) {
		return nil, errorf(KindForbidden, CodeForbidden, "this API key may not write consents")
	}
	if !validSubjectID(req.Subject) {
		return nil, errorf(KindInvalid, CodeInvalidConsent, "subject must be a valid subject id")
	}
	subj, _, err := v.getSubject(ctx, req.Subject)
	if err != nil {
		return nil, err
	}
	if subj.State == subject.Erased {
		return nil, errorf(KindConflict, CodeInvalidTransition, "the subject was erased")
	}
	now := v.now().UTC()
	c := &consent.Consent{
		ID:                   newID("c_", now),
		Subject:              req.Subject,
		GrantedBy:            req.GrantedBy,
		Explicit:             req.Explicit,
		Categories:           req.Categories,
		Purposes:             req.Purposes,
		Recipients:           req.Recipients,
		Destinations:         req.Destinations,
		InformedOfInadequacy: req.InformedOfInadequacy,
		NoticeVersion:        req.NoticeVersion,
		NoticeSHA256:         req.NoticeSHA256,
		Language:             req.Language,
		CollectionMethod:     req.CollectionMethod,
		EvidenceSHA256:       req.EvidenceSHA256,
		GrantedAt:            now,
	}
	if req.GrantedAt != nil {
		if req.GrantedAt.After(now) {
			return nil, errorf(KindInvalid, CodeInvalidConsent, "granted_at is in the future")
		}
		c.GrantedAt = req.GrantedAt.UTC()
	}
	if req.ExpiresAt != nil {
		c.ExpiresAt = req.ExpiresAt.UTC()
	} else {
		consent.ApplyDefaultExpiry(c, consent.DefaultExpiryRules())
	}
	c.SubjectAgeBandAtGrant = string(subject.AgeBandAt(subj, c.GrantedAt))
	c.Events = []consent.Event{{Type: consent.EventGiven, At: c.GrantedAt, Actor: p.Name, Channel: req.Channel}}
	if err := consent.Validate(c); err != nil {
		return nil, wrapErr(KindInvalid, CodeInvalidConsent, err.Error(), err)
	}
	if _, err := v.saveRecord(ctx, kindConsent, c.ID, c.Subject, c, 0); err != nil {
		return nil, err
	}
	if err := v.adminAudit(ctx, "consent.grant", c.ID, c.Subject, map[string]string{
		"by": p.Name, "purposes": strings.Join(c.Purposes, ","), "categories": strings.Join(c.Categories, ","),
		"collection_method": c.CollectionMethod, "notice_version": c.NoticeVersion}); err != nil {
		return nil, err
	}
	return c, nil
}

// ConsentStatus is the DPV status of c now.
func (v *Vault) ConsentStatus(c *consent.Consent) string { return consent.Status(c, v.now()) }

// GetConsent returns a consent record with its current status.
func (v *Vault) GetConsent(ctx context.Context, p *Principal, id string) (*consent.Consent, string, error) {
	if !v.authz.Can(p, OpConsentRead) {
		return nil, "", errorf(KindForbidden, CodeForbidden, "this API key may not read consents")
	}
	if !validRecordID(id) {
		return nil, "", errorf(KindInvalid, CodeInvalidRequest, "invalid consent id")
	}
	c, _, err := v.getConsent(ctx, id)
	if err != nil {
		return nil, "", err
	}
	return c, consent.Status(c, v.now()), nil
}

// WithdrawConsentRequest says who withdrew and through which channel.
type WithdrawConsentRequest struct {
	Actor   string `json:"actor,omitempty"`
	Channel string `json:"channel,omitempty"`
}

// WithdrawConsent withdraws a consent. The WITHDRAWN event is durable when
// this returns, and every later decision on any replica reads it.
func (v *Vault) WithdrawConsent(ctx context.Context, p *Principal, id string, req *WithdrawConsentRequest) (*consent.Consent, error) {
	if !v.authz.Can(p, OpConsentWrite) {
		return nil, errorf(KindForbidden, CodeForbidden, "this API key may not write consents")
	}
	if !validRecordID(id) {
		return nil, errorf(KindInvalid, CodeInvalidRequest, "invalid consent id")
	}
	for attempt := 0; ; attempt++ {
		c, rev, err := v.getConsent(ctx, id)
		if err != nil {
			return nil, err
		}
		actor := req.Actor
		if actor == "" {
			actor = p.Name
		}
		channel := req.Channel
		if channel == "" {
			channel = "api"
		}
		if err := consent.Withdraw(c, v.now().UTC(), actor, channel); err != nil {
			if errors.Is(err, consent.ErrAlreadyWithdrawn) {
				return nil, errorf(KindConflict, CodeAlreadyWithdrawn, "the consent was already withdrawn")
			}
			return nil, wrapErr(KindInvalid, CodeInvalidConsent, err.Error(), err)
		}
		_, err = v.saveRecord(ctx, kindConsent, c.ID, c.Subject, c, rev)
		var e *Error
		if errors.As(err, &e) && e.Code == CodeConflict && attempt < 3 {
			continue
		}
		if err != nil {
			return nil, err
		}
		if err := v.adminAudit(ctx, "consent.withdraw", c.ID, c.Subject, map[string]string{
			"by": p.Name, "channel": req.Channel}); err != nil {
			return nil, err
		}
		return c, nil
	}
}

// subjectErr maps subject lifecycle errors to API errors.
func subjectErr(err error) error {
	switch {
	case errors.Is(err, subject.ErrErased):
		return wrapErr(KindConflict, CodeInvalidTransition, "the subject was erased", err)
	case errors.Is(err, subject.ErrInvalidTransition):
		return wrapErr(KindConflict, CodeInvalidTransition, err.Error(), err)
	case errors.Is(err, subject.ErrLegalHold):
		return wrapErr(KindConflict, CodeLegalHold, err.Error(), err)
	}
	return wrapErr(KindInvalid, CodeInvalidSubject, err.Error(), err)
}
