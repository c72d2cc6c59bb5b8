package policy_test

import (
	"testing"
	"time"

	"github.com/fieldvault/fieldvault/vault/consent"
	"github.com/fieldvault/fieldvault/vault/policy"
	"github.com/fieldvault/fieldvault/vault/subject"
)

func withRecipient(r policy.Request, id, country string) policy.Request {
	r.Recipient = &policy.Recipient{ID: id, Country: country}
	return r
}

func onBehalf(r policy.Request, who string) policy.Request {
	r.OnBehalfOf = who
	return r
}

func withTransfer(r policy.Request, typ, ref string) policy.Request {
	r.TransferBasis = &policy.Ground{Type: typ, Ref: ref}
	return r
}

func boolp(b bool) *bool { return &b }

// TestDecideReasons reaches every reason code the engine can give, each
// from a request that is otherwise allowed (the control case shows it).
func TestDecideReasons(t *testing.T) {
	mkt := policy.PurposeMarketing
	c1 := req(mkt, policy.GroundConsent, "C1", policy.RevealFull)
	ord := req(policy.PurposeLegalAuthority, policy.GroundAuthorityInstrument, "ORD-1", policy.RevealFull, "legal")
	inc := req(policy.PurposeEmergency, policy.GroundVitalInterest, "INC-5", policy.RevealFull)
	dsr := onBehalf(req(policy.PurposeDataSubjectRequest, policy.GroundDataSubjectRequest, "DSR-1", policy.RevealFull), "U1")
	type tc struct {
		name   string
		setup  func(w *world)
		in     func(in *policy.Input)
		call   call
		code   string // "" = allowed
		reveal string
	}
	cases := []tc{
		{name: "control consent", call: call{tok: tokPhoneU1, req: c1}},
		{name: "token unknown", call: call{tok: tokPhoneU1, req: c1}, in: func(in *policy.Input) { in.Token.Found = false }, code: policy.CodeTokenUnknown},
		{name: "token expired", call: call{tok: tokPhoneU1, req: c1}, in: func(in *policy.Input) { in.Token.Expired = true }, code: policy.CodeTokenExpired},
		{name: "token without category", call: call{tok: tokPhoneU1, req: c1}, in: func(in *policy.Input) { in.Token.Category = nil }, code: policy.CodeTokenUnknown},
		{name: "matching hint", call: call{tok: tokPhoneU1, req: func() policy.Request { r := c1; r.CategoryHint = "contact.phone"; return r }()}},
		{name: "subject not registered", call: call{tok: token{"NOPE", "contact.phone"}, req: c1}, code: policy.CodeSubjectUnknown},
		{name: "subject record of another subject", call: call{tok: tokPhoneU1, req: c1}, in: func(in *policy.Input) { in.Subject = person("U2", "1990-01-01") }, code: policy.CodeSubjectUnknown},
		{name: "subject in an unknown state", setup: func(w *world) { w.subjects["U1"].State = "" }, call: call{tok: tokPhoneU1, req: c1}, code: policy.CodeSubjectUnknown},
		{name: "purpose unknown", call: call{tok: tokPhoneU1, req: req("spam", policy.GroundConsent, "C1", policy.RevealFull)}, code: policy.CodePurposeUnknown},
		{name: "ground unknown", call: call{tok: tokPhoneU1, req: req(mkt, "whim", "C1", policy.RevealFull)}, code: policy.CodeGroundUnknown},
		{name: "purpose not enabled", call: call{tok: tokPhoneU1, req: req(policy.PurposePublicHealth, policy.GroundPublicTask, "M-1", policy.RevealFull)}, code: policy.CodePurposeNotEnabled},
		{name: "reveal unknown", call: call{tok: tokPhoneU1, req: req(mkt, policy.GroundConsent, "C1", "everything")}, code: policy.CodeRevealUnknown},
		{name: "reveal default is masked", call: call{tok: tokPhoneU1, req: req(mkt, policy.GroundConsent, "C1", "")}, reveal: policy.RevealMasked},
		{name: "consent not found", call: call{tok: tokPhoneU1, req: req(mkt, policy.GroundConsent, "C404", policy.RevealFull)}, code: policy.CodeConsentNotFound},
		{name: "consent withdrawn", setup: func(w *world) {
			if err := consent.Withdraw(w.consents["C1"], at(2025, 5, 1, 0, 0, 0), "U1", "app"); err != nil {
				panic(err)
			}
		}, call: call{tok: tokPhoneU1, req: c1}, code: policy.CodeConsentWithdrawn},
		{name: "consent withdrawn later than now", setup: func(w *world) {
			if err := consent.Withdraw(w.consents["C1"], clock.Add(time.Second), "U1", "app"); err != nil {
				panic(err)
			}
		}, call: call{tok: tokPhoneU1, req: c1}},
		{name: "consent invalidated", setup: func(w *world) {
			c := w.consents["C1"]
			c.Events = append(c.Events, consent.Event{Type: consent.EventInvalidated, At: at(2025, 5, 1, 0, 0, 0)})
		}, call: call{tok: tokPhoneU1, req: c1}, code: policy.CodeConsentInvalidated},
		{name: "consent not yet given", setup: func(w *world) { w.consents["C1"].GrantedAt = clock.Add(time.Hour) }, call: call{tok: tokPhoneU1, req: c1}, code: policy.CodeConsentNotYetGiven},
		{name: "consent continued use", setup: func(w *world) { w.consents["C1"].CollectionMethod = consent.MethodContinuedUse }, call: call{tok: tokPhoneU1, req: c1}, code: policy.CodeConsentBundledInvalid},
		{name: "consent unknown method", setup: func(w *world) { w.consents["C1"].CollectionMethod = "telepathy" }, call: call{tok: tokPhoneU1, req: c1}, code: policy.CodeConsentBundledInvalid},
		{name: "recipient not covered", call: call{tok: tokPhoneU1, req: withRecipient(c1, "crm", "TH")}, code: policy.CodeRecipientNotCovered},
		{name: "recipient covered", setup: func(w *world) {
			w.consents["C1"].Recipients = []consent.Recipient{{ID: "crm", Country: "TH"}}
		}, call: call{tok: tokPhoneU1, req: withRecipient(c1, "crm", "TH")}},
		{name: "recipient covered but in another country", setup: func(w *world) {
			w.consents["C1"].Recipients = []consent.Recipient{{ID: "crm", Country: "TH"}}
		}, call: call{tok: tokPhoneU1, req: withRecipient(c1, "crm", "SG")}, code: policy.CodeRecipientNotCovered},
		{name: "regular consent for s.26 data", setup: func(w *world) {
			w.consents["C1"].Categories = append(w.consents["C1"].Categories, "demographic.religion")
		}, call: call{tok: tokRelU1, req: c1}, code: policy.CodeExplicitConsentRequired},
		{name: "explicit consent for s.26 data", setup: func(w *world) {
			w.consents["C1"].Categories = append(w.consents["C1"].Categories, "demographic.religion")
			w.consents["C1"].Explicit = true
		}, call: call{tok: tokRelU1, req: c1}},
		{name: "T1 needs the category named", call: call{tok: tokNidU1, req: c1}, code: policy.CodeCategoryNotCovered},
		{name: "guardian-only consent for an adult", setup: func(w *world) { w.consents["C1"].GrantedBy = guardianGrant() }, call: call{tok: tokPhoneU1, req: c1}, code: policy.CodeSubjectConsentRequired},
		{name: "age unknown", setup: func(w *world) { w.subjects["U1"].BirthDate = "" }, call: call{tok: tokPhoneU1, req: c1}, code: policy.CodeSubjectAgeUnknown},
		{name: "age unknown but married", setup: func(w *world) { w.subjects["U1"].BirthDate = ""; w.subjects["U1"].Married = true }, call: call{tok: tokPhoneU1, req: c1}},
		{name: "incapable adult consenting alone", setup: func(w *world) { w.subjects["U1"].CapableOfConsent = boolp(false) }, call: call{tok: tokPhoneU1, req: c1}, code: policy.CodeGuardianConsentRequired},
		{name: "T2+ consent past retention", setup: func(w *world) {
			c := w.consents["C5"]
			c.GrantedAt = at(2024, 12, 1, 0, 0, 0)
			c.ExpiresAt = at(2027, 1, 1, 0, 0, 0)
		}, call: call{tok: token{"U3", "criminal_record"}, req: req(policy.PurposeProviderVetting, policy.GroundConsent, "C5", policy.RevealFull)}, code: policy.CodeRetentionExpired},
		{name: "retention timer ran out", setup: func(w *world) {
			w.subjects["U3"].Retention = []subject.Retention{{Category: "criminal_record", ShredAt: at(2025, 5, 31, 0, 0, 0)}}
		}, call: call{tok: token{"U3", "criminal_record"}, req: req(policy.PurposeProviderVetting, policy.GroundConsent, "C5", policy.RevealFull)}, code: policy.CodeRetentionExpired},

		// Evidence, common checks.
		{name: "control instrument", call: call{tok: tokNidU1, req: ord}},
		{name: "evidence not found", call: call{tok: tokNidU1, req: req(policy.PurposeLegalAuthority, policy.GroundAuthorityInstrument, "ORD-404", policy.RevealFull, "legal")}, code: policy.CodeEvidenceNotFound},
		{name: "evidence of another kind", call: call{tok: tokNidU1, req: req(policy.PurposeLegalAuthority, policy.GroundAuthorityInstrument, "INC-5", policy.RevealFull, "legal")}, code: policy.CodeEvidenceKindMismatch},
		{name: "instrument without the legal role", call: call{tok: tokNidU1, req: req(policy.PurposeLegalAuthority, policy.GroundAuthorityInstrument, "ORD-1", policy.RevealFull, "service")}, code: policy.CodeRoleNotPermitted},
		{name: "instrument revoked", setup: func(w *world) { w.evidence["ORD-1"].RevokedAt = at(2025, 5, 31, 0, 0, 0) }, call: call{tok: tokNidU1, req: ord}, code: policy.CodeEvidenceRevoked},
		{name: "instrument with one approval", setup: func(w *world) { w.evidence["ORD-1"].Approvals = approvals("legal", "legal-1") }, call: call{tok: tokNidU1, req: ord}, code: policy.CodeInstrumentNotVerified},
		{name: "instrument approved twice by one person", setup: func(w *world) { w.evidence["ORD-1"].Approvals = approvals("legal", "legal-1", "legal-1") }, call: call{tok: tokNidU1, req: ord}, code: policy.CodeInstrumentNotVerified},
		{name: "instrument approved by a non-lawyer", setup: func(w *world) {
			w.evidence["ORD-1"].Approvals = append(approvals("legal", "legal-1"), approvals("service", "svc-9")...)
		}, call: call{tok: tokNidU1, req: ord}, code: policy.CodeInstrumentNotVerified},
		{name: "instrument approval in the future", setup: func(w *world) {
			w.evidence["ORD-1"].Approvals[1].At = clock.Add(time.Minute)
		}, call: call{tok: tokNidU1, req: ord}, code: policy.CodeInstrumentNotVerified},
		{name: "instrument without expiry", setup: func(w *world) { w.evidence["ORD-1"].ValidUntil = time.Time{} }, call: call{tok: tokNidU1, req: ord}, code: policy.CodeInstrumentNotVerified},
		{name: "instrument not yet valid", setup: func(w *world) { w.evidence["ORD-1"].ValidFrom = clock.Add(time.Hour) }, call: call{tok: tokNidU1, req: ord}, code: policy.CodeEvidenceNotYetValid},
		{name: "instrument category scope", call: call{tok: token{"U1", "contact.email"}, req: ord}, code: policy.CodeInstrumentScope},
		{name: "instrument naming a T2 category", setup: func(w *world) {
			w.evidence["ORD-1"].Categories = append(w.evidence["ORD-1"].Categories, "health")
		}, call: call{tok: token{"U1", "health"}, req: ord}},
		{name: "foreign instrument needs a transfer basis", setup: func(w *world) {
			w.evidence["ORD-1"].Attributes["jurisdiction"] = "US"
		}, call: call{tok: tokNidU1, req: ord}, code: policy.CodeTransferBasisMissing},
		{name: "foreign instrument with a Thai statute basis", setup: func(w *world) {
			w.evidence["ORD-1"].Attributes["jurisdiction"] = "US"
			w.evidence["STAT-1"] = &policy.Evidence{ID: "STAT-1", Kind: policy.KindStatute, Categories: []string{"govid.th_national_id"},
				Purposes: []string{policy.PurposeLegalAuthority}, Approvals: approvals("legal", "legal-1")}
		}, call: call{tok: tokNidU1, req: withTransfer(ord, policy.TransferLaw, "STAT-1")}},

		// Incidents.
		{name: "incident closed", setup: func(w *world) { w.evidence["INC-5"].Attributes["status"] = "closed" }, call: call{tok: tokPhoneU1, req: inc}, code: policy.CodeIncidentClosed},
		{name: "incident revoked", setup: func(w *world) { w.evidence["INC-5"].RevokedAt = clock.Add(-time.Minute) }, call: call{tok: tokPhoneU1, req: inc}, code: policy.CodeIncidentClosed},
		{name: "incident not opened by the emergency role", setup: func(w *world) { w.evidence["INC-5"].CreatedByRoles = []string{"service"} }, call: call{tok: tokPhoneU1, req: inc}, code: policy.CodeEvidenceNotApproved},
		{name: "incident about someone else", call: call{tok: token{"U2", "contact.phone"}, req: inc}, code: policy.CodeEvidenceScope},
		{name: "health under vital interest, subject capable", call: call{tok: token{"U1", "health"}, req: inc}, code: policy.CodeVitalCategoryNotAllowed},
		{name: "health under vital interest, subject incapable", setup: func(w *world) { w.evidence["INC-5"].Attributes["subject_incapable_of_consent"] = "true" }, call: call{tok: token{"U1", "health"}, req: inc}},
		{name: "religion never under vital interest", setup: func(w *world) { w.evidence["INC-5"].Attributes["subject_incapable_of_consent"] = "true" }, call: call{tok: tokRelU1, req: inc}, code: policy.CodeVitalCategoryNotAllowed},
		{name: "criminal record never under vital interest", call: call{tok: token{"U1", "criminal_record"}, req: inc}, code: policy.CodeVitalCategoryNotAllowed},

		// DSR.
		{name: "control dsr", call: call{tok: tokNidU1, req: dsr}},
		{name: "dsr not verified", setup: func(w *world) { w.evidence["DSR-1"].Approvals = nil }, call: call{tok: tokNidU1, req: dsr}, code: policy.CodeDSRNotVerified},
		{name: "dsr presented for someone else", call: call{tok: tokNidU1, req: onBehalf(dsr, "U2")}, code: policy.CodeDSRRequesterMismatch},
		{name: "dsr past its 30 days", setup: func(w *world) { w.evidence["DSR-1"].CreatedAt = clock.AddDate(0, 0, -30) }, call: call{tok: tokNidU1, req: dsr}, code: policy.CodeEvidenceExpired},
		{name: "dsr for another subject's data", call: call{tok: token{"U2", "contact.phone"}, req: dsr}, code: policy.CodeEvidenceScope},
		{name: "dsr by a verified guardian of a minor", setup: func(w *world) {
			w.evidence["DSR-1"].Subjects = []string{"M9"}
			w.evidence["DSR-1"].Attributes = map[string]string{"requester": "G1", "requester_link": "guardian", "requester_link_verified": "true"}
		}, call: call{tok: token{"M9", "contact.phone"}, req: onBehalf(dsr, "G1")}},
		{name: "dsr by a guardian of an adult", setup: func(w *world) {
			w.evidence["DSR-1"].Attributes = map[string]string{"requester": "G1", "requester_link": "guardian", "requester_link_verified": "true"}
		}, call: call{tok: tokNidU1, req: onBehalf(dsr, "G1")}, code: policy.CodeDSRRequesterMismatch},
		{name: "dsr by an unverified representative", setup: func(w *world) {
			w.evidence["DSR-1"].Attributes = map[string]string{"requester": "LAW-1", "requester_link": "representative"}
		}, call: call{tok: tokNidU1, req: onBehalf(dsr, "LAW-1")}, code: policy.CodeDSRRequesterMismatch},
		{name: "dsr by a verified representative", setup: func(w *world) {
			w.evidence["DSR-1"].Attributes = map[string]string{"requester": "LAW-1", "requester_link": "representative", "requester_link_verified": "true"}
		}, call: call{tok: tokNidU1, req: onBehalf(dsr, "LAW-1")}},

		// Third parties (step 7).
		{name: "third party by the account holder's consent", call: call{tok: token{"EC1", "third_party.emergency_contact"}, req: c1}, code: policy.CodeSubjectMismatch},
		{name: "third party's own consent for marketing", setup: func(w *world) {
			c := *w.consents["C1"]
			c.ID, c.Subject, c.Categories = "CE", "EC1", []string{"third_party.emergency_contact"}
			w.consents["CE"] = &c
			w.subjects["EC1"].BirthDate = "1970-01-01"
		}, call: call{tok: token{"EC1", "third_party.emergency_contact"}, req: req(mkt, policy.GroundConsent, "CE", policy.RevealFull)}, code: policy.CodeThirdPartySubject},
		{name: "third party's own DSR", setup: func(w *world) {
			w.evidence["DSR-E"] = &policy.Evidence{ID: "DSR-E", Kind: policy.KindDSR, Subjects: []string{"EC1"},
				Attributes: map[string]string{"requester": "EC1"}, Approvals: approvals("dpo", "dpo-1"), CreatedAt: clock.AddDate(0, 0, -1)}
		}, call: call{tok: token{"EC1", "third_party.emergency_contact"}, req: onBehalf(req(policy.PurposeDataSubjectRequest, policy.GroundDataSubjectRequest, "DSR-E", policy.RevealFull), "EC1")}},
		{name: "third party's data by a representative's DSR", setup: func(w *world) {
			w.evidence["DSR-E"] = &policy.Evidence{ID: "DSR-E", Kind: policy.KindDSR, Subjects: []string{"EC1"},
				Attributes: map[string]string{"requester": "LAW-1", "requester_link": "representative", "requester_link_verified": "true"},
				Approvals:  approvals("dpo", "dpo-1"), CreatedAt: clock.AddDate(0, 0, -1)}
		}, call: call{tok: token{"EC1", "third_party.emergency_contact"}, req: onBehalf(req(policy.PurposeDataSubjectRequest, policy.GroundDataSubjectRequest, "DSR-E", policy.RevealFull), "LAW-1")}, code: policy.CodeThirdPartySubject},
		{name: "third-party category on a data-subject record", setup: func(w *world) {
			w.evidence["CASE-1"] = &policy.Evidence{ID: "CASE-1", Kind: policy.KindLegalCase, Subjects: []string{"U1"},
				Categories: []string{"third_party.emergency_contact"}, Approvals: approvals("legal", "legal-1")}
		}, call: call{tok: token{"U1", "third_party.emergency_contact"}, req: req(policy.PurposeDispute, policy.GroundLegalClaims, "CASE-1", policy.RevealFull)}, code: policy.CodeThirdPartySubject},
		{name: "third party under a legal-authority instrument naming it", setup: func(w *world) {
			w.evidence["ORD-1"].Subjects = []string{"EC1"}
			w.evidence["ORD-1"].Categories = []string{"third_party.emergency_contact"}
		}, call: call{tok: token{"EC1", "third_party.emergency_contact"}, req: ord}},

		// Subject states.
		{name: "restricted subject, consent", setup: func(w *world) { w.subjects["U1"].State = subject.Restricted }, call: call{tok: tokPhoneU1, req: c1}, code: policy.CodeSubjectRestricted},
		{name: "restricted subject, instrument", setup: func(w *world) { w.subjects["U1"].State = subject.Restricted }, call: call{tok: tokNidU1, req: ord}},
		{name: "restricted subject, dsr", setup: func(w *world) { w.subjects["U1"].State = subject.Restricted }, call: call{tok: tokNidU1, req: dsr}},
		{name: "restricted category only", setup: func(w *world) {
			w.subjects["U1"].Restriction = &subject.Restriction{Since: clock, Categories: []string{"contact.phone"}}
		}, call: call{tok: tokPhoneU1, req: c1}, code: policy.CodeSubjectRestricted},
		{name: "another category restricted", setup: func(w *world) {
			w.subjects["U1"].Restriction = &subject.Restriction{Since: clock, Categories: []string{"contact.email"}}
		}, call: call{tok: tokPhoneU1, req: c1}},
		{name: "erasure pending, instrument", setup: func(w *world) { w.subjects["U1"].State = subject.ErasurePending }, call: call{tok: tokNidU1, req: ord}, code: policy.CodeErasurePending},
		{name: "erasure pending, dsr", setup: func(w *world) { w.subjects["U1"].State = subject.ErasurePending }, call: call{tok: tokNidU1, req: dsr}},
		{name: "erasure pending, held category, instrument", setup: func(w *world) {
			w.subjects["U1"].State = subject.ErasurePending
			w.subjects["U1"].LegalHolds = []subject.LegalHold{{ID: "H1", Categories: []string{"govid.th_national_id"}, Ref: "ORD-1", Until: at(2026, 1, 1, 0, 0, 0)}}
		}, call: call{tok: tokNidU1, req: ord}},
		{name: "erasure pending, hold expired", setup: func(w *world) {
			w.subjects["U1"].State = subject.ErasurePending
			w.subjects["U1"].LegalHolds = []subject.LegalHold{{ID: "H1", Categories: []string{"govid.th_national_id"}, Ref: "ORD-1", Until: clock}}
		}, call: call{tok: tokNidU1, req: ord}, code: policy.CodeErasurePending},
		{name: "erasure pending, held category, consent", setup: func(w *world) {
			w.subjects["U1"].State = subject.ErasurePending
			w.subjects["U1"].LegalHolds = []subject.LegalHold{{ID: "H1", Categories: []string{"contact.phone"}, Ref: "ORD-1", Until: at(2026, 1, 1, 0, 0, 0)}}
		}, call: call{tok: tokPhoneU1, req: c1}, code: policy.CodeErasurePending},
		{name: "under review is still suspended", setup: func(w *world) { w.subjects["U1"].State = subject.EvidenceUnderReview }, call: call{tok: tokPhoneU1, req: c1}, code: policy.CodeAccountSuspended},
		{name: "suspended, integrity without the role", call: call{tok: token{"U4", "govid.th_national_id"}, req: req(policy.PurposeAccountIntegrity, policy.GroundConsent, "C9", policy.RevealFull, "service"), now: at(2025, 3, 10, 0, 0, 0)}, code: policy.CodeRoleNotPermitted},
		{name: "objection for every purpose blocks legitimate interest", setup: func(w *world) {
			w.subjects["U1"].Objections = []subject.Objection{{UpheldAt: at(2025, 5, 1, 0, 0, 0)}}
		}, call: call{tok: token{"U1", "location.precise"}, req: req(policy.PurposeFraudAML, policy.GroundLegitimateInterest, "LIA-9", policy.RevealFull)}, code: policy.CodeObjectionUpheld},
		{name: "objection for another purpose", setup: func(w *world) {
			w.subjects["U1"].Objections = []subject.Objection{{Purpose: policy.PurposeAnalytics, UpheldAt: at(2025, 5, 1, 0, 0, 0)}}
		}, call: call{tok: token{"U1", "location.precise"}, req: req(policy.PurposeFraudAML, policy.GroundLegitimateInterest, "LIA-9", policy.RevealFull)}},
		{name: "any objection blocks marketing by consent", setup: func(w *world) {
			w.subjects["U1"].Objections = []subject.Objection{{Purpose: policy.PurposeAnalytics, UpheldAt: at(2025, 5, 1, 0, 0, 0)}}
		}, call: call{tok: tokPhoneU1, req: c1}, code: policy.CodeObjectionUpheld},
		{name: "objection upheld later than now", setup: func(w *world) {
			w.subjects["U1"].Objections = []subject.Objection{{Purpose: mkt, UpheldAt: clock.Add(time.Second)}}
		}, call: call{tok: tokPhoneU1, req: c1}},

		// Other grounds.
		{name: "LIA for another category", call: call{tok: token{"U1", "contact.email"}, req: req(policy.PurposeFraudAML, policy.GroundLegitimateInterest, "LIA-9", policy.RevealFull)}, code: policy.CodeEvidenceScope},
		{name: "LIA not approved", setup: func(w *world) { w.evidence["LIA-9"].Approvals = approvals("service", "svc-1") }, call: call{tok: token{"U1", "location.precise"}, req: req(policy.PurposeFraudAML, policy.GroundLegitimateInterest, "LIA-9", policy.RevealFull)}, code: policy.CodeEvidenceNotApproved},
		{name: "LIA expired", setup: func(w *world) { w.evidence["LIA-9"].ValidUntil = clock }, call: call{tok: token{"U1", "location.precise"}, req: req(policy.PurposeFraudAML, policy.GroundLegitimateInterest, "LIA-9", policy.RevealFull)}, code: policy.CodeEvidenceExpired},
		{name: "legitimate interest on T1", call: call{tok: tokNidU1, req: req(policy.PurposeFraudAML, policy.GroundLegitimateInterest, "LIA-9", policy.RevealFull)}, code: policy.CodeGroundNotPermittedForTier},
		{name: "analytics by legitimate interest is masked", setup: func(w *world) {
			w.evidence["LIA-9"].Purposes = []string{policy.PurposeAnalytics}
		}, call: call{tok: token{"U1", "location.precise"}, req: req(policy.PurposeAnalytics, policy.GroundLegitimateInterest, "LIA-9", policy.RevealFull)}, reveal: policy.RevealMasked},
		{name: "contract for a non-party", call: call{tok: token{"U2", "contact.phone"}, req: req(policy.PurposeServiceDelivery, policy.GroundContract, "booking-77", policy.RevealPartial)}, code: policy.CodeEvidenceScope},
		{name: "contract for a purpose it does not name", setup: func(w *world) {
			w.evidence["booking-77"].Purposes = []string{policy.PurposeServiceDelivery}
		}, call: call{tok: tokPhoneU1, req: req(policy.PurposeServiceNotices, policy.GroundContract, "booking-77", policy.RevealFull)}, code: policy.CodeEvidenceScope},
		{name: "contract for own card payment (T1)", setup: func(w *world) {
			w.evidence["PAY-1"] = &policy.Evidence{ID: "PAY-1", Kind: policy.KindContract, Subjects: []string{"U1"},
				Categories: []string{"financial.card_pan"}, Purposes: []string{policy.PurposePayment}}
		}, call: call{tok: token{"U1", "financial.card_pan"}, req: req(policy.PurposePayment, policy.GroundContract, "PAY-1", policy.RevealFull)}},
		{name: "contract for national ID in a payment (T1)", setup: func(w *world) {
			w.evidence["PAY-1"] = &policy.Evidence{ID: "PAY-1", Kind: policy.KindContract, Subjects: []string{"U1"},
				Categories: []string{"govid.th_national_id"}, Purposes: []string{policy.PurposePayment}}
		}, call: call{tok: tokNidU1, req: req(policy.PurposePayment, policy.GroundContract, "PAY-1", policy.RevealFull)}, code: policy.CodeGroundNotPermittedForTier},
		{name: "statute for s.26 data without an s.26(5) item", setup: func(w *world) {
			w.evidence["STAT-1"] = &policy.Evidence{ID: "STAT-1", Kind: policy.KindStatute, Categories: []string{"health"},
				Purposes: []string{policy.PurposeFraudAML}, Approvals: approvals("legal", "legal-1")}
		}, call: call{tok: token{"U1", "health"}, req: req(policy.PurposeFraudAML, policy.GroundLegalObligation, "STAT-1", policy.RevealFull)}, code: policy.CodeGroundNotPermittedForTier},
		{name: "statute for s.26 data with item (e)", setup: func(w *world) {
			w.evidence["STAT-1"] = &policy.Evidence{ID: "STAT-1", Kind: policy.KindStatute, Categories: []string{"health"},
				Purposes: []string{policy.PurposeFraudAML}, Approvals: approvals("legal", "legal-1"), Attributes: map[string]string{"s26_item": "e"}}
		}, call: call{tok: token{"U1", "health"}, req: req(policy.PurposeFraudAML, policy.GroundLegalObligation, "STAT-1", policy.RevealFull)}},
		{name: "statute for a criminal record not requiring the check", setup: func(w *world) {
			w.evidence["STAT-1"] = &policy.Evidence{ID: "STAT-1", Kind: policy.KindStatute, Categories: []string{"criminal_record"},
				Purposes: []string{policy.PurposeProviderVetting}, Approvals: approvals("legal", "legal-1"), Attributes: map[string]string{"s26_item": "e"}}
		}, call: call{tok: token{"U3", "criminal_record"}, req: req(policy.PurposeProviderVetting, policy.GroundLegalObligation, "STAT-1", policy.RevealFull)}, code: policy.CodeGroundNotPermittedForTier},
		{name: "statute requiring the criminal-record check", setup: func(w *world) {
			w.evidence["STAT-1"] = &policy.Evidence{ID: "STAT-1", Kind: policy.KindStatute, Categories: []string{"criminal_record"},
				Purposes: []string{policy.PurposeProviderVetting}, Approvals: approvals("legal", "legal-1"), Attributes: map[string]string{"requires_criminal_record_check": "true"}}
		}, call: call{tok: token{"U3", "criminal_record"}, req: req(policy.PurposeProviderVetting, policy.GroundLegalObligation, "STAT-1", policy.RevealFull)}},
		{name: "research protocol is masked whatever is asked", setup: func(w *world) {
			w.evidence["RP-1"] = &policy.Evidence{ID: "RP-1", Kind: policy.KindResearchProtocol, Categories: []string{"location.precise"},
				Approvals: approvals("dpo", "dpo-1")}
		}, call: call{tok: token{"U1", "location.precise"}, req: req(policy.PurposeAnalytics, policy.GroundResearchStatistics, "RP-1", policy.RevealFull)}, reveal: policy.RevealMasked},
		{name: "legal case for a subject in scope", setup: func(w *world) {
			w.evidence["CASE-1"] = &policy.Evidence{ID: "CASE-1", Kind: policy.KindLegalCase, Subjects: []string{"U1"}, Categories: []string{"health"},
				Approvals: approvals("legal", "legal-1")}
		}, call: call{tok: token{"U1", "health"}, req: req(policy.PurposeDispute, policy.GroundLegalClaims, "CASE-1", policy.RevealFull)}},
		{name: "legal case closed", setup: func(w *world) {
			w.evidence["CASE-1"] = &policy.Evidence{ID: "CASE-1", Kind: policy.KindLegalCase, Subjects: []string{"U1"}, Categories: []string{"health"},
				Approvals: approvals("legal", "legal-1"), Attributes: map[string]string{"status": "closed"}}
		}, call: call{tok: token{"U1", "health"}, req: req(policy.PurposeDispute, policy.GroundLegalClaims, "CASE-1", policy.RevealFull)}, code: policy.CodeEvidenceRevoked},

		// Cross-border.
		{name: "recipient without a country", setup: func(w *world) {
			w.consents["C1"].Recipients = []consent.Recipient{{ID: "crm"}}
		}, call: call{tok: tokPhoneU1, req: withRecipient(c1, "crm", "")}, code: policy.CodeTransferBasisMissing},
		{name: "safeguards alone under require_consent", setup: func(w *world) {
			w.consents["C1"].Recipients = []consent.Recipient{{ID: "crm", Country: "SG"}}
			w.evidence["SCC-1"] = &policy.Evidence{ID: "SCC-1", Kind: policy.KindTransferSafeguard, Approvals: approvals("legal", "legal-1"),
				Attributes: map[string]string{"mechanism": "safeguards", "destinations": "SG,MY"}}
		}, call: call{tok: tokPhoneU1, req: withTransfer(withRecipient(c1, "crm", "SG"), policy.TransferSafeguards, "SCC-1")}, code: policy.CodeTransferBasisInvalid},
		{name: "separate transfer consent", setup: func(w *world) {
			w.consents["C1"].Recipients = []consent.Recipient{{ID: "crm", Country: "SG"}}
			tc := *w.consents["C1"]
			tc.ID, tc.Explicit, tc.InformedOfInadequacy, tc.Destinations = "TC", true, true, []string{"SG"}
			w.consents["TC"] = &tc
		}, call: call{tok: tokPhoneU1, req: withTransfer(withRecipient(c1, "crm", "SG"), policy.TransferConsent, "TC")}},
		{name: "transfer consent for another destination", setup: func(w *world) {
			w.consents["C1"].Recipients = []consent.Recipient{{ID: "crm", Country: "SG"}}
			tc := *w.consents["C1"]
			tc.ID, tc.Explicit, tc.InformedOfInadequacy, tc.Destinations = "TC", true, true, []string{"MY"}
			w.consents["TC"] = &tc
		}, call: call{tok: tokPhoneU1, req: withTransfer(withRecipient(c1, "crm", "SG"), policy.TransferConsent, "TC")}, code: policy.CodeTransferBasisInvalid},
		{name: "transfer consent not informed", setup: func(w *world) {
			w.consents["C1"].Recipients = []consent.Recipient{{ID: "crm", Country: "SG"}}
			w.consents["C1"].Explicit = true
			w.consents["C1"].Destinations = []string{"SG"}
		}, call: call{tok: tokPhoneU1, req: withRecipient(c1, "crm", "SG")}, code: policy.CodeTransferBasisMissing},
		{name: "unknown transfer basis type", setup: func(w *world) {
			w.consents["C1"].Recipients = []consent.Recipient{{ID: "crm", Country: "SG"}}
		}, call: call{tok: tokPhoneU1, req: withTransfer(withRecipient(c1, "crm", "SG"), "vibes", "X")}, code: policy.CodeTransferBasisInvalid},
	}
	e := engine(t, nil)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			w := newWorld()
			if c.setup != nil {
				c.setup(w)
			}
			in := w.input(t, c.call)
			if c.in != nil {
				c.in(in)
			}
			got := e.Decide(in)
			if c.code == "" {
				if got.Decision == policy.Deny {
					t.Fatalf("Decide = DENY %s (%s), want allowed", got.Code, got.Message)
				}
				want := c.reveal
				if want == "" {
					want = policy.RevealFull
				}
				if got.Reveal != want {
					t.Fatalf("Reveal = %q, want %q", got.Reveal, want)
				}
				if (got.Decision == policy.Allow) != (want == policy.RevealFull) {
					t.Fatalf("Decision %s does not match reveal %s", got.Decision, got.Reveal)
				}
				return
			}
			if got.Decision != policy.Deny || got.Code != c.code {
				t.Fatalf("Decide = %s %s (%s), want DENY %s", got.Decision, got.Code, got.Message, c.code)
			}
		})
	}
}

// TestSafeguardsWithoutRequireConsent: with the seed §11 switch off, an SCC
// record covering the destination is a transfer basis.
func TestSafeguardsWithoutRequireConsent(t *testing.T) {
	p := policy.Default()
	p.Switches.TransferRequireConsent = false
	e := engine(t, p)
	w := newWorld()
	w.consents["C1"].Recipients = []consent.Recipient{{ID: "crm", Country: "SG"}}
	w.evidence["SCC-1"] = &policy.Evidence{ID: "SCC-1", Kind: policy.KindTransferSafeguard, Approvals: approvals("legal", "legal-1"),
		Attributes: map[string]string{"mechanism": "safeguards", "destinations": "MY, SG"}}
	r := withTransfer(withRecipient(req(policy.PurposeMarketing, policy.GroundConsent, "C1", policy.RevealFull), "crm", "SG"), policy.TransferSafeguards, "SCC-1")
	if got := e.Decide(w.input(t, call{tok: tokPhoneU1, req: r})); got.Decision != policy.Allow {
		t.Fatalf("SCC covering SG: %+v", got)
	}
	w.evidence["SCC-1"].Attributes["destinations"] = "MY"
	if got := e.Decide(w.input(t, call{tok: tokPhoneU1, req: r})); got.Code != policy.CodeTransferBasisInvalid {
		t.Fatalf("SCC not covering SG: %+v", got)
	}
	w.evidence["SCC-1"].Attributes["destinations"] = "SG"
	w.evidence["SCC-1"].Attributes["mechanism"] = "bcr"
	if got := e.Decide(w.input(t, call{tok: tokPhoneU1, req: r})); got.Code != policy.CodeTransferBasisInvalid {
		t.Fatalf("BCR record used as SCC: %+v", got)
	}
}

// TestNoticeElevatedSwitch: with the switch off, T1 categories are decided
// as T0 (legitimate interest may reach the national ID).
func TestNoticeElevatedSwitch(t *testing.T) {
	w := newWorld()
	w.evidence["LIA-9"].Categories = []string{"govid.th_national_id"}
	c := call{tok: tokNidU1, req: req(policy.PurposeFraudAML, policy.GroundLegitimateInterest, "LIA-9", policy.RevealFull)}
	if got := engine(t, nil).Decide(w.input(t, c)); got.Code != policy.CodeGroundNotPermittedForTier {
		t.Fatalf("switch on: %+v", got)
	}
	p := policy.Default()
	p.Switches.NoticeElevatedTier = false
	if got := engine(t, p).Decide(w.input(t, c)); got.Decision != policy.Allow {
		t.Fatalf("switch off: %+v", got)
	}
}

// TestMinorsAllowlist: a minor of 10-19 consents alone only for allowlisted
// purposes; a guardian alone is not enough.
func TestMinorsAllowlist(t *testing.T) {
	w := newWorld()
	w.subjects["T15"] = person("T15", "2010-03-03")
	c := *w.consents["C1"]
	c.ID, c.Subject = "CT", "T15"
	w.consents["CT"] = &c
	call := call{tok: token{"T15", "contact.phone"}, req: req(policy.PurposeMarketing, policy.GroundConsent, "CT", policy.RevealFull)}
	if got := engine(t, nil).Decide(w.input(t, call)); got.Code != policy.CodeGuardianConsentRequired {
		t.Fatalf("minor alone, default: %+v", got)
	}
	p := policy.Default()
	p.MinorsAlonePurposes = []string{policy.PurposeMarketing}
	if got := engine(t, p).Decide(w.input(t, call)); got.Decision != policy.Allow {
		t.Fatalf("minor alone, allowlisted: %+v", got)
	}
	c.GrantedBy = guardianGrant()
	if got := engine(t, nil).Decide(w.input(t, call)); got.Code != policy.CodeSubjectConsentRequired {
		t.Fatalf("guardian alone for a minor of 15: %+v", got)
	}
	c.GrantedBy = append(subjGrant(), guardianGrant()...)
	if got := engine(t, nil).Decide(w.input(t, call)); got.Decision != policy.Allow {
		t.Fatalf("subject and guardian: %+v", got)
	}
	c.GrantedBy[1].Verified = false
	if got := engine(t, nil).Decide(w.input(t, call)); got.Code != policy.CodeGuardianConsentRequired {
		t.Fatalf("unverified guardian: %+v", got)
	}
	w.subjects["T15"].Married = true
	c.GrantedBy = subjGrant()
	if got := engine(t, nil).Decide(w.input(t, call)); got.Decision != policy.Allow {
		t.Fatalf("married minor alone: %+v", got)
	}
}

// TestDecideNilInput: a nil input or request is denied, not a panic.
func TestDecideNilInput(t *testing.T) {
	e := engine(t, nil)
	if got := e.Decide(nil); got.Decision != policy.Deny {
		t.Fatalf("nil input: %+v", got)
	}
	if got := e.Decide(&policy.Input{Now: clock}); got.Decision != policy.Deny {
		t.Fatalf("nil request: %+v", got)
	}
}
