package policy_test

import (
	"slices"
	"testing"

	"github.com/fieldvault/fieldvault/vault/policy"
	"github.com/fieldvault/fieldvault/vault/subject"
)

// TestModelExamples runs every example decision of pdpa-model §3 (T-01 …
// T-37, with their sub-cases) against the default policy.
func TestModelExamples(t *testing.T) {
	type tc struct {
		name     string
		setup    func(w *world) // changes to the fixtures
		call     call
		decision string
		code     string
		reveal   string
		alerts   []string
		iri      string
	}
	mkt := policy.PurposeMarketing
	cases := []tc{
		{name: "T-01 consent covers category and purpose",
			call:     call{tok: tokPhoneU1, req: req(mkt, policy.GroundConsent, "C1", policy.RevealFull, "crm-sender")},
			decision: policy.Allow, reveal: policy.RevealFull, iri: policy.IRIConsent},
		{name: "T-03 marketing consent does not cover partner offers",
			call:     call{tok: tokPhoneU1, req: req(policy.PurposePartnerFinancialOffers, policy.GroundConsent, "C1", policy.RevealFull)},
			decision: policy.Deny, code: policy.CodePurposeNotCovered},
		{name: "T-04 consent for phone/email used for religion",
			call:     call{tok: tokRelU1, req: req(mkt, policy.GroundConsent, "C1", policy.RevealFull)},
			decision: policy.Deny, code: policy.CodeCategoryNotCovered},
		{name: "T-07 consent expired",
			call:     call{tok: tokPhoneU1, req: req(mkt, policy.GroundConsent, "C1", policy.RevealFull), now: at(2027, 1, 1, 0, 0, 1)},
			decision: policy.Deny, code: policy.CodeConsentExpired},
		{name: "T-08 consent of another subject",
			call:     call{tok: token{"U2", "contact.phone"}, req: req(mkt, policy.GroundConsent, "C1", policy.RevealFull)},
			decision: policy.Deny, code: policy.CodeSubjectMismatch},
		{name: "T-09 category hint does not match the token",
			call: call{tok: tokRelU1, req: func() policy.Request {
				r := req(mkt, policy.GroundConsent, "C1", policy.RevealFull)
				r.CategoryHint = "contact.phone"
				return r
			}()},
			decision: policy.Deny, code: policy.CodeCategoryMismatch},
		{name: "T-10a terms acceptance is not consent",
			call:     call{tok: tokPhoneU1, req: req(mkt, policy.GroundConsent, "C0", policy.RevealFull)},
			decision: policy.Deny, code: policy.CodeConsentBundledInvalid},
		{name: "T-10b a minor's deemed consent is not consent",
			call:     call{tok: token{"M9", "contact.phone"}, req: req(mkt, policy.GroundConsent, "CD", policy.RevealFull)},
			decision: policy.Deny, code: policy.CodeConsentBundledInvalid},
		{name: "T-12a counterparty gets the provider's phone masked",
			call:     call{tok: token{"P1", "contact.phone"}, req: req(policy.PurposeServiceDelivery, policy.GroundContract, "booking-77", policy.RevealPartial, "counterparty-app")},
			decision: policy.AllowMasked, reveal: policy.RevealPartial, iri: policy.IRIContract},
		{name: "T-12a' full asked, partial given",
			call:     call{tok: token{"P1", "contact.phone"}, req: req(policy.PurposeServiceDelivery, policy.GroundContract, "booking-77", policy.RevealFull)},
			decision: policy.AllowMasked, reveal: policy.RevealPartial},
		{name: "T-12b contract ended 200 days ago (tail 90)",
			setup: func(w *world) {
				ev := w.evidence["booking-77"]
				ev.ValidFrom = clock.AddDate(0, 0, -260)
				ev.ValidUntil = clock.AddDate(0, 0, -200)
			},
			call:     call{tok: token{"P1", "contact.phone"}, req: req(policy.PurposeServiceDelivery, policy.GroundContract, "booking-77", policy.RevealPartial)},
			decision: policy.Deny, code: policy.CodeContractInactive},
		{name: "T-13 contract never unlocks a criminal record",
			call:     call{tok: token{"U3", "criminal_record"}, req: req(policy.PurposeProviderVetting, policy.GroundContract, "provider-agreement-U3", policy.RevealFull)},
			decision: policy.Deny, code: policy.CodeGroundNotPermittedForTier},
		{name: "T-14a explicit consent for vetting",
			call:     call{tok: token{"U3", "criminal_record"}, req: req(policy.PurposeProviderVetting, policy.GroundConsent, "C5", policy.RevealFull, "trust-safety-vetting")},
			decision: policy.Allow, reveal: policy.RevealFull, iri: policy.IRIExplicitConsent},
		{name: "T-14b same consent for marketing",
			call:     call{tok: token{"U3", "criminal_record"}, req: req(mkt, policy.GroundConsent, "C5", policy.RevealFull, "trust-safety-vetting")},
			decision: policy.Deny, code: policy.CodePurposeNotCovered},
		{name: "T-16 legitimate interest for fraud on precise location",
			call:     call{tok: token{"U1", "location.precise"}, req: req(policy.PurposeFraudAML, policy.GroundLegitimateInterest, "LIA-9", policy.RevealFull)},
			decision: policy.Allow, reveal: policy.RevealFull, iri: policy.IRILegitimateInterest},
		{name: "T-17 legitimate interest never reaches health",
			call:     call{tok: token{"U1", "health"}, req: req(policy.PurposeFraudAML, policy.GroundLegitimateInterest, "LIA-9", policy.RevealFull)},
			decision: policy.Deny, code: policy.CodeGroundNotPermittedForTier},
		{name: "T-19 upheld marketing objection",
			setup: func(w *world) {
				w.subjects["U1"].Objections = []subject.Objection{{Purpose: mkt, UpheldAt: at(2025, 5, 1, 0, 0, 0)}}
			},
			call:     call{tok: token{"U1", "contact.email"}, req: req(mkt, policy.GroundLegitimateInterest, "LIA-4", policy.RevealFull)},
			decision: policy.Deny, code: policy.CodeObjectionUpheld},
		{name: "T-20 court order, two approvals",
			call:     call{tok: tokNidU1, req: req(policy.PurposeLegalAuthority, policy.GroundAuthorityInstrument, "ORD-1", policy.RevealFull, "legal")},
			decision: policy.Allow, reveal: policy.RevealFull, alerts: []string{policy.AlertDPO}, iri: policy.IRILegalObligation},
		{name: "T-21a court order expired",
			call:     call{tok: tokNidU1, req: req(policy.PurposeLegalAuthority, policy.GroundAuthorityInstrument, "ORD-1", policy.RevealFull, "legal"), now: at(2026, 1, 1, 0, 0, 1)},
			decision: policy.Deny, code: policy.CodeInstrumentExpired},
		{name: "T-21b subject outside the order's scope",
			call:     call{tok: token{"U2", "contact.phone"}, req: req(policy.PurposeLegalAuthority, policy.GroundAuthorityInstrument, "ORD-1", policy.RevealFull, "legal")},
			decision: policy.Deny, code: policy.CodeInstrumentScope},
		{name: "T-23 phone under an open incident",
			call:     call{tok: tokPhoneU1, req: req(policy.PurposeEmergency, policy.GroundVitalInterest, "INC-5", policy.RevealFull, "emergency")},
			decision: policy.Allow, reveal: policy.RevealFull, alerts: []string{policy.AlertIncident}, iri: policy.IRIVitalInterest},
		{name: "T-23 emergency contact (third party) under the same incident",
			call:     call{tok: token{"EC1", "third_party.emergency_contact"}, req: req(policy.PurposeEmergency, policy.GroundVitalInterest, "INC-5", policy.RevealFull, "emergency")},
			decision: policy.Allow, reveal: policy.RevealFull, alerts: []string{policy.AlertIncident}},
		{name: "T-25a bank account is not needed to avert a danger",
			call:     call{tok: token{"U1", "financial.bank_account"}, req: req(policy.PurposeEmergency, policy.GroundVitalInterest, "INC-5", policy.RevealFull)},
			decision: policy.Deny, code: policy.CodeVitalCategoryNotAllowed},
		{name: "T-25b vital interest cannot serve marketing",
			call:     call{tok: tokPhoneU1, req: req(mkt, policy.GroundVitalInterest, "INC-5", policy.RevealFull)},
			decision: policy.Deny, code: policy.CodeGroundNotPermittedForPurpose},
		{name: "T-26 child under 10 consenting alone",
			call:     call{tok: token{"M9", "contact.phone"}, req: req(mkt, policy.GroundConsent, "C6", policy.RevealFull)},
			decision: policy.Deny, code: policy.CodeGuardianConsentRequired},
		{name: "T-27 verified guardian for a child under 10",
			call:     call{tok: token{"M9", "contact.phone"}, req: req(mkt, policy.GroundConsent, "C7", policy.RevealFull)},
			decision: policy.Allow, reveal: policy.RevealFull},
		{name: "T-30 partner in SG, no transfer basis",
			call: call{tok: tokPhoneU1, req: func() policy.Request {
				r := req(policy.PurposePartnerFinancialOffers, policy.GroundConsent, "C8", policy.RevealFull)
				r.Recipient = &policy.Recipient{ID: "BankSG", Country: "SG"}
				return r
			}()},
			decision: policy.Deny, code: policy.CodeTransferBasisMissing},
		{name: "T-31 explicit consent listing SG, informed of inadequacy",
			setup: func(w *world) {
				c := w.consents["C8"]
				c.Explicit = true
				c.Destinations = []string{"SG"}
				c.InformedOfInadequacy = true
			},
			call: call{tok: tokPhoneU1, req: func() policy.Request {
				r := req(policy.PurposePartnerFinancialOffers, policy.GroundConsent, "C8", policy.RevealFull)
				r.Recipient = &policy.Recipient{ID: "BankSG", Country: "SG"}
				return r
			}()},
			decision: policy.Allow, reveal: policy.RevealFull},
		{name: "T-33a suspended account, service delivery",
			setup: func(w *world) {
				w.evidence["booking-77"].Subjects = []string{"U4"}
			},
			call:     call{tok: token{"U4", "contact.phone"}, req: req(policy.PurposeServiceDelivery, policy.GroundContract, "booking-77", policy.RevealPartial), now: at(2025, 3, 10, 12, 0, 0)},
			decision: policy.Deny, code: policy.CodeAccountSuspended},
		{name: "T-33b suspended account, integrity review",
			call:     call{tok: token{"U4", "govid.th_national_id"}, req: req(policy.PurposeAccountIntegrity, policy.GroundConsent, "C9", policy.RevealFull, "trust-safety"), now: at(2025, 3, 10, 12, 0, 0)},
			decision: policy.Allow, reveal: policy.RevealFull},
		{name: "T-35 erased token, even with a valid instrument",
			setup: func(w *world) {
				u := w.subjects["U4"]
				u.State = subject.Erased
				w.evidence["ORD-1"].Subjects = []string{"U4"}
			},
			call:     call{tok: token{"U4", "contact.phone"}, req: req(policy.PurposeLegalAuthority, policy.GroundAuthorityInstrument, "ORD-1", policy.RevealFull, "legal")},
			decision: policy.Deny, code: policy.CodeTokenErased},
		{name: "T-37a verified DSR by the subject",
			call: call{tok: tokRelU1, req: func() policy.Request {
				r := req(policy.PurposeDataSubjectRequest, policy.GroundDataSubjectRequest, "DSR-1", policy.RevealFull)
				r.OnBehalfOf = "U1"
				return r
			}()},
			decision: policy.Allow, reveal: policy.RevealFull, iri: policy.IRIDataSubjectRight},
		{name: "T-37b DSR by someone without a link",
			call: call{tok: tokRelU1, req: func() policy.Request {
				r := req(policy.PurposeDataSubjectRequest, policy.GroundDataSubjectRequest, "DSR-2", policy.RevealFull)
				r.OnBehalfOf = "X9"
				return r
			}()},
			decision: policy.Deny, code: policy.CodeDSRRequesterMismatch},
	}
	e := engine(t, nil)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			w := newWorld()
			if c.setup != nil {
				c.setup(w)
			}
			got := e.Decide(w.input(t, c.call))
			if got.Decision != c.decision || got.Code != c.code {
				t.Fatalf("Decide = %s %s (%s), want %s %s", got.Decision, got.Code, got.Message, c.decision, c.code)
			}
			if c.decision != policy.Deny && got.Reveal != c.reveal {
				t.Errorf("Reveal = %q, want %q", got.Reveal, c.reveal)
			}
			if c.decision == policy.Deny && got.Reveal != "" {
				t.Errorf("denied with Reveal = %q", got.Reveal)
			}
			if !slices.Equal(got.Alerts, c.alerts) {
				t.Errorf("Alerts = %v, want %v", got.Alerts, c.alerts)
			}
			if c.iri != "" && got.GroundIRI != c.iri {
				t.Errorf("GroundIRI = %q, want %q", got.GroundIRI, c.iri)
			}
			if got.Decision != policy.Deny && (got.GroundIRI == "" || got.Section == "") {
				t.Errorf("allow without ground IRI/section: %+v", got)
			}
		})
	}
}

// TestModelTokenErasedRow: T-35 when the vault marks the token row itself.
func TestModelTokenErasedRow(t *testing.T) {
	e := engine(t, nil)
	w := newWorld()
	in := w.input(t, call{tok: tokNidU1, req: req(policy.PurposeLegalAuthority, policy.GroundAuthorityInstrument, "ORD-1", policy.RevealFull, "legal")})
	if got := e.Decide(in); got.Decision != policy.Allow {
		t.Fatalf("control: %+v", got)
	}
	in.Token.Erased = true
	if got := e.Decide(in); got.Code != policy.CodeTokenErased {
		t.Fatalf("erased row: %+v", got)
	}
	in.Token.Found = false // a tombstone: no row left
	if got := e.Decide(in); got.Code != policy.CodeTokenErased {
		t.Fatalf("erased tombstone: %+v", got)
	}
	in.Token.Found, in.Token.Erased = true, false
	w.subjects["U1"].ErasedCategories = []string{"govid.th_national_id"}
	if got := e.Decide(in); got.Code != policy.CodeTokenErased {
		t.Fatalf("category shredded: %+v", got)
	}
}
