package policy_test

import (
	"testing"
	"time"

	"github.com/fieldvault/fieldvault/tokenizer"
	"github.com/fieldvault/fieldvault/vault/consent"
	"github.com/fieldvault/fieldvault/vault/policy"
	"github.com/fieldvault/fieldvault/vault/subject"
)

// Fixtures of pdpa-model §3: clock 2025-06-01T10:00+07:00, U1 an adult, C1
// a regular marketing consent for phone and email.

var ict = subject.ICT

func at(y int, m time.Month, d, hh, mm, ss int) time.Time {
	return time.Date(y, m, d, hh, mm, ss, 0, ict)
}

var clock = at(2025, 6, 1, 10, 0, 0)

func cat(t testing.TB, name string) *tokenizer.Category {
	t.Helper()
	c, ok := tokenizer.Lookup(name)
	if !ok {
		t.Fatalf("tokenizer has no category %q", name)
	}
	return c
}

func engine(t testing.TB, p *policy.Policy) *policy.Engine {
	t.Helper()
	if p == nil {
		p = policy.Default()
	}
	e, err := policy.New(p)
	if err != nil {
		t.Fatalf("policy.New: %v", err)
	}
	return e
}

func person(id, birth string) *subject.Subject {
	return &subject.Subject{ID: id, Type: subject.DataSubject, BirthDate: birth, State: subject.Active}
}

// world holds the fixture records, fresh for each test.
type world struct {
	subjects map[string]*subject.Subject
	consents map[string]*consent.Consent
	evidence map[string]*policy.Evidence
}

func subjGrant() []consent.Grantor { return []consent.Grantor{{Party: consent.PartySubject}} }

func guardianGrant() []consent.Grantor {
	return []consent.Grantor{{Party: consent.PartyGuardian, ID: "G1", Verified: true, VerificationRef: "DOC-77", Relationship: "parent"}}
}

func approvals(role string, principals ...string) []policy.Approval {
	var out []policy.Approval
	for _, p := range principals {
		out = append(out, policy.Approval{Principal: p, Roles: []string{role}, At: at(2025, 5, 1, 9, 0, 0)})
	}
	return out
}

func newWorld() *world {
	w := &world{
		subjects: map[string]*subject.Subject{},
		consents: map[string]*consent.Consent{},
		evidence: map[string]*policy.Evidence{},
	}
	for _, s := range []*subject.Subject{
		person("U1", "1990-04-01"),
		person("U2", "1985-12-24"),
		person("U3", "1979-07-07"),
		person("P1", "1992-02-02"),
		person("M9", "2016-01-15"),
	} {
		w.subjects[s.ID] = s
	}
	u4 := person("U4", "1988-08-08")
	if err := subject.Suspend(u4, at(2025, 3, 1, 10, 0, 0), at(2025, 3, 1, 10, 0, 0), "false ID data"); err != nil {
		panic(err)
	}
	w.subjects["U4"] = u4
	w.subjects["EC1"] = &subject.Subject{ID: "EC1", Type: subject.ThirdParty, LinkedTo: "U1", State: subject.Active}

	base := func(id, subj string, cats, purposes []string) *consent.Consent {
		return &consent.Consent{
			ID: id, Subject: subj, GrantedBy: subjGrant(), Categories: cats, Purposes: purposes,
			NoticeVersion: "2020-09-15", CollectionMethod: consent.MethodInApp,
			GrantedAt: at(2025, 1, 1, 0, 0, 0), ExpiresAt: at(2027, 1, 1, 0, 0, 0),
			Events: []consent.Event{{Type: consent.EventGiven, At: at(2025, 1, 1, 0, 0, 0), Actor: "subj", Channel: "app"}},
		}
	}
	w.consents["C1"] = base("C1", "U1", []string{"contact.phone", "contact.email"}, []string{policy.PurposeMarketing})
	c0 := base("C0", "U1", []string{"contact.phone", "contact.email"}, []string{policy.PurposeMarketing})
	c0.CollectionMethod = consent.MethodTOSAcceptance
	w.consents["C0"] = c0
	cd := base("CD", "M9", []string{"contact.phone"}, []string{policy.PurposeMarketing})
	cd.CollectionMethod = consent.MethodDeemed
	cd.GrantedBy = guardianGrant()
	w.consents["CD"] = cd
	c5 := base("C5", "U3", []string{"criminal_record"}, []string{policy.PurposeProviderVetting})
	c5.Explicit = true
	c5.GrantedAt = at(2025, 5, 1, 0, 0, 0)
	c5.ExpiresAt = at(2025, 11, 1, 0, 0, 0)
	w.consents["C5"] = c5
	w.consents["C6"] = base("C6", "M9", []string{"contact.phone"}, []string{policy.PurposeMarketing})
	c7 := base("C7", "M9", []string{"contact.phone"}, []string{policy.PurposeMarketing})
	c7.GrantedBy = guardianGrant()
	w.consents["C7"] = c7
	c8 := base("C8", "U1", []string{"contact.phone"}, []string{policy.PurposePartnerFinancialOffers})
	c8.Recipients = []consent.Recipient{{ID: "BankSG", Country: "SG"}}
	w.consents["C8"] = c8
	w.consents["C9"] = base("C9", "U4", []string{"govid.th_national_id"},
		[]string{policy.PurposeIdentityVerification, policy.PurposeAccountIntegrity})

	w.evidence["booking-77"] = &policy.Evidence{
		ID: "booking-77", Kind: policy.KindContract, Subjects: []string{"U1", "P1"},
		Categories: []string{"contact.phone"}, Purposes: []string{policy.PurposeServiceDelivery},
		ValidFrom: at(2025, 5, 20, 0, 0, 0), ValidUntil: at(2025, 6, 30, 0, 0, 0),
		CreatedBy: "booking-svc", CreatedAt: at(2025, 5, 20, 0, 0, 0),
	}
	w.evidence["provider-agreement-U3"] = &policy.Evidence{
		ID: "provider-agreement-U3", Kind: policy.KindContract, Subjects: []string{"U3"},
		Categories: []string{"criminal_record", "contact.phone"}, Purposes: []string{policy.PurposeProviderVetting},
		ValidFrom: at(2025, 1, 1, 0, 0, 0), CreatedBy: "onboarding", CreatedAt: at(2025, 1, 1, 0, 0, 0),
	}
	w.evidence["LIA-9"] = &policy.Evidence{
		ID: "LIA-9", Kind: policy.KindLIA, Categories: []string{"location.precise", "health"},
		Purposes: []string{policy.PurposeFraudAML}, ValidUntil: at(2026, 1, 1, 0, 0, 0),
		Approvals: approvals("dpo", "dpo-1"), CreatedBy: "dpo-1", CreatedAt: at(2025, 1, 1, 0, 0, 0),
	}
	w.evidence["LIA-4"] = &policy.Evidence{
		ID: "LIA-4", Kind: policy.KindLIA, Categories: []string{"contact.email"},
		Purposes: []string{policy.PurposeMarketing}, Approvals: approvals("dpo", "dpo-1"),
		CreatedBy: "dpo-1", CreatedAt: at(2025, 1, 1, 0, 0, 0),
	}
	w.evidence["ORD-1"] = &policy.Evidence{
		ID: "ORD-1", Kind: policy.KindAuthorityInstrument, Subjects: []string{"U1"},
		Categories: []string{"govid.th_national_id", "contact.phone"},
		ValidFrom:  at(2025, 5, 30, 0, 0, 0), ValidUntil: at(2026, 1, 1, 0, 0, 0), // through 2025-12-31 ICT
		Attributes: map[string]string{"authority": "Thai court", "jurisdiction": "TH", "reference": "Or. 123/2568"},
		Approvals:  approvals("legal", "legal-1", "legal-2"), CreatedBy: "legal-1", CreatedAt: at(2025, 5, 30, 0, 0, 0),
	}
	w.evidence["INC-5"] = &policy.Evidence{
		ID: "INC-5", Kind: policy.KindIncident, Subjects: []string{"U1"},
		ValidFrom:  at(2025, 6, 1, 9, 0, 0),
		Attributes: map[string]string{"danger": "life", "person_at_risk": "subject"},
		CreatedBy:  "er-1", CreatedByRoles: []string{"emergency"}, CreatedAt: at(2025, 6, 1, 9, 0, 0),
	}
	w.evidence["DSR-1"] = &policy.Evidence{
		ID: "DSR-1", Kind: policy.KindDSR, Subjects: []string{"U1"},
		Attributes: map[string]string{"requester": "U1"}, Approvals: approvals("dpo", "dpo-1"),
		CreatedBy: "support-1", CreatedAt: at(2025, 5, 28, 0, 0, 0),
	}
	w.evidence["DSR-2"] = &policy.Evidence{
		ID: "DSR-2", Kind: policy.KindDSR, Subjects: []string{"U1"},
		Attributes: map[string]string{"requester": "X9"}, Approvals: approvals("dpo", "dpo-1"),
		CreatedBy: "support-1", CreatedAt: at(2025, 5, 28, 0, 0, 0),
	}
	return w
}

// token describes a token row.
type token struct {
	subject, category string
}

var (
	tokPhoneU1 = token{"U1", "contact.phone"}
	tokRelU1   = token{"U1", "demographic.religion"}
	tokNidU1   = token{"U1", "govid.th_national_id"}
)

// call is one decision to make against the world.
type call struct {
	tok token
	req policy.Request
	now time.Time
}

// input resolves the call as the vault would: the token row, the subject
// record, the linked account holder, and the records the refs name.
func (w *world) input(t testing.TB, c call) *policy.Input {
	t.Helper()
	now := c.now
	if now.IsZero() {
		now = clock
	}
	req := c.req
	in := &policy.Input{
		Now:     now,
		Request: &req,
		Token:   policy.TokenFacts{Found: true, Category: cat(t, c.tok.category), Subject: c.tok.subject},
		Subject: w.subjects[c.tok.subject],
	}
	if s := in.Subject; s != nil && s.LinkedTo != "" {
		in.Linked = w.subjects[s.LinkedTo]
	}
	ref := req.Ground.Ref
	if req.Ground.Type == policy.GroundConsent {
		in.Consent = w.consents[ref]
	} else if ref != "" {
		in.Evidence = w.evidence[ref]
	}
	if tb := req.TransferBasis; tb != nil {
		if tb.Type == policy.TransferConsent {
			in.TransferConsent = w.consents[tb.Ref]
		} else {
			in.TransferEvidence = w.evidence[tb.Ref]
		}
	}
	return in
}

func req(purpose, ground, ref, reveal string, roles ...string) policy.Request {
	return policy.Request{
		Principal: "svc", Roles: roles, Purpose: purpose,
		Ground: policy.Ground{Type: ground, Ref: ref}, Reveal: reveal,
	}
}
