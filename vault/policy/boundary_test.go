package policy_test

import (
	"testing"
	"time"

	"github.com/fieldvault/fieldvault/vault/consent"
	"github.com/fieldvault/fieldvault/vault/policy"
	"github.com/fieldvault/fieldvault/vault/subject"
)

// boundary decides the same call at the last allowed instant and the first
// denied one.
func boundary(t *testing.T, name string, w *world, c call, last, first time.Time, code string) {
	t.Helper()
	e := engine(t, nil)
	c.now = last
	if got := e.Decide(w.input(t, c)); got.Decision == policy.Deny {
		t.Errorf("%s: at the last allowed instant %v: DENY %s (%s)", name, last, got.Code, got.Message)
	}
	c.now = first
	if got := e.Decide(w.input(t, c)); got.Decision != policy.Deny || got.Code != code {
		t.Errorf("%s: at the first denied instant %v: %s %s, want DENY %s", name, first, got.Decision, got.Code, code)
	}
}

func TestBoundaries(t *testing.T) {
	mkt := policy.PurposeMarketing
	t.Run("consent expiry", func(t *testing.T) {
		w := newWorld()
		exp := w.consents["C1"].ExpiresAt
		boundary(t, "C1", w, call{tok: tokPhoneU1, req: req(mkt, policy.GroundConsent, "C1", policy.RevealFull)},
			exp.Add(-time.Nanosecond), exp, policy.CodeConsentExpired)
	})
	t.Run("consent granted", func(t *testing.T) {
		w := newWorld()
		g := w.consents["C1"].GrantedAt
		c := call{tok: tokPhoneU1, req: req(mkt, policy.GroundConsent, "C1", policy.RevealFull)}
		e := engine(t, nil)
		c.now = g
		if got := e.Decide(w.input(t, c)); got.Decision != policy.Allow {
			t.Errorf("at granted_at: %+v", got)
		}
		c.now = g.Add(-time.Nanosecond)
		if got := e.Decide(w.input(t, c)); got.Code != policy.CodeConsentNotYetGiven {
			t.Errorf("just before granted_at: %+v", got)
		}
	})
	t.Run("withdrawal", func(t *testing.T) {
		w := newWorld()
		wd := at(2025, 6, 1, 9, 0, 0)
		if err := consent.Withdraw(w.consents["C1"], wd, "U1", "helpdesk-email"); err != nil {
			t.Fatal(err)
		}
		boundary(t, "withdrawn C1", w, call{tok: tokPhoneU1, req: req(mkt, policy.GroundConsent, "C1", policy.RevealFull)},
			wd.Add(-time.Nanosecond), wd, policy.CodeConsentWithdrawn)
	})
	t.Run("instrument expiry", func(t *testing.T) {
		w := newWorld()
		boundary(t, "ORD-1", w, call{tok: tokNidU1, req: req(policy.PurposeLegalAuthority, policy.GroundAuthorityInstrument, "ORD-1", policy.RevealFull, "legal")},
			at(2025, 12, 31, 23, 59, 59).Add(999999999), at(2026, 1, 1, 0, 0, 0), policy.CodeInstrumentExpired)
	})
	t.Run("incident 24 h", func(t *testing.T) {
		w := newWorld()
		opened := w.evidence["INC-5"].ValidFrom
		boundary(t, "INC-5", w, call{tok: tokPhoneU1, req: req(policy.PurposeEmergency, policy.GroundVitalInterest, "INC-5", policy.RevealFull)},
			opened.Add(24*time.Hour-time.Nanosecond), opened.Add(24*time.Hour), policy.CodeEvidenceExpired)
	})
	t.Run("incident opened from created_at", func(t *testing.T) {
		w := newWorld()
		w.evidence["INC-5"].ValidFrom = time.Time{}
		opened := w.evidence["INC-5"].CreatedAt
		boundary(t, "INC-5", w, call{tok: tokPhoneU1, req: req(policy.PurposeEmergency, policy.GroundVitalInterest, "INC-5", policy.RevealFull)},
			opened.Add(24*time.Hour-time.Nanosecond), opened.Add(24*time.Hour), policy.CodeEvidenceExpired)
	})
	t.Run("contract tail", func(t *testing.T) {
		w := newWorld()
		end := w.evidence["booking-77"].ValidUntil
		boundary(t, "booking-77", w, call{tok: token{"P1", "contact.phone"}, req: req(policy.PurposeServiceDelivery, policy.GroundContract, "booking-77", policy.RevealPartial)},
			end.AddDate(0, 0, 90).Add(-time.Nanosecond), end.AddDate(0, 0, 90), policy.CodeContractInactive)
	})
	t.Run("criminal-record retention", func(t *testing.T) {
		w := newWorld()
		c5 := w.consents["C5"]
		c5.ExpiresAt = time.Time{}
		end := c5.GrantedAt.AddDate(0, 6, 0)
		boundary(t, "C5", w, call{tok: token{"U3", "criminal_record"}, req: req(policy.PurposeProviderVetting, policy.GroundConsent, "C5", policy.RevealFull)},
			end.Add(-time.Nanosecond), end, policy.CodeRetentionExpired)
	})
	t.Run("15-day window", func(t *testing.T) {
		// U4 was suspended on 2025-03-01 10:00 ICT. Proof at the last
		// second of 2025-03-16 puts the account under review; at the first
		// second of 03-17 it is refused and the vault may erase.
		w := newWorld()
		u4 := w.subjects["U4"]
		last := at(2025, 3, 16, 23, 59, 59)
		first := at(2025, 3, 17, 0, 0, 0)
		if subject.DeadlinePassed(u4, last) || !subject.DeadlinePassed(u4, first) {
			t.Fatalf("deadline %v", u4.Suspension.Deadline)
		}
		late := *u4
		susp := *u4.Suspension
		late.Suspension = &susp
		if err := subject.ProofReceived(&late, first, first); err == nil {
			t.Fatal("proof after the window accepted")
		}
		if err := subject.ProofReceived(u4, last, last); err != nil {
			t.Fatalf("proof at the last second: %v", err)
		}
		e := engine(t, nil)
		integrity := call{tok: token{"U4", "govid.th_national_id"}, req: req(policy.PurposeAccountIntegrity, policy.GroundConsent, "C9", policy.RevealFull, "trust-safety"), now: first}
		if got := e.Decide(w.input(t, integrity)); got.Decision != policy.Allow {
			t.Fatalf("under review, integrity: %+v", got)
		}
		if err := subject.MarkErasurePending(&late, first); err != nil {
			t.Fatal(err)
		}
		w.subjects["U4"] = &late
		if got := e.Decide(w.input(t, integrity)); got.Code != policy.CodeErasurePending {
			t.Fatalf("after the window, erasure pending: %+v", got)
		}
	})
	t.Run("20th birthday", func(t *testing.T) {
		// Born 2005-06-01: adult from 00:00 ICT on 2025-06-01, which is
		// 17:00 UTC on 05-31. Consent by the subject alone.
		w := newWorld()
		w.subjects["Y"] = person("Y", "2005-06-01")
		c := *w.consents["C1"]
		c.ID, c.Subject = "CY", "Y"
		w.consents["CY"] = &c
		boundaryRev(t, engine(t, nil), w, call{tok: token{"Y", "contact.phone"}, req: req(mkt, policy.GroundConsent, "CY", policy.RevealFull)},
			time.Date(2025, 5, 31, 16, 59, 59, 999999999, time.UTC), time.Date(2025, 5, 31, 17, 0, 0, 0, time.UTC),
			policy.CodeGuardianConsentRequired)
	})
	t.Run("10th birthday", func(t *testing.T) {
		// Born 2015-06-01, consent by the subject and a verified guardian:
		// under 10 the guardian's consent suffices, and the subject's is
		// ignored; at 10 both are needed, so a guardian-only consent fails.
		w := newWorld()
		w.subjects["K"] = person("K", "2015-06-01")
		c := *w.consents["C1"]
		c.ID, c.Subject, c.GrantedBy = "CK", "K", guardianGrant()
		w.consents["CK"] = &c
		boundary(t, "guardian only", w, call{tok: token{"K", "contact.phone"}, req: req(mkt, policy.GroundConsent, "CK", policy.RevealFull)},
			at(2025, 5, 31, 23, 59, 59).Add(999999999), at(2025, 6, 1, 0, 0, 0), policy.CodeSubjectConsentRequired)
		c2 := c
		c2.ID, c2.GrantedBy = "CK2", subjGrant()
		w.consents["CK2"] = &c2
		// With marketing on the minors' allowlist, the subject alone is
		// enough from the 10th birthday on, never before.
		p := policy.Default()
		p.MinorsAlonePurposes = []string{mkt}
		boundaryRev(t, engine(t, p), w, call{tok: token{"K", "contact.phone"}, req: req(mkt, policy.GroundConsent, "CK2", policy.RevealFull)},
			at(2025, 5, 31, 23, 59, 59).Add(999999999), at(2025, 6, 1, 0, 0, 0), policy.CodeGuardianConsentRequired)
		// Under the default policy the subject alone is never enough
		// before 20.
		for _, now := range []time.Time{at(2025, 5, 31, 23, 59, 59), at(2025, 6, 1, 0, 0, 0)} {
			in := w.input(t, call{tok: token{"K", "contact.phone"}, req: req(mkt, policy.GroundConsent, "CK2", policy.RevealFull), now: now})
			if got := engine(t, nil).Decide(in); got.Code != policy.CodeGuardianConsentRequired {
				t.Errorf("subject alone at %v: %+v", now, got)
			}
		}
	})
}

// boundaryRev: denied up to the last instant, allowed from the first.
func boundaryRev(t *testing.T, e *policy.Engine, w *world, c call, lastDenied, firstAllowed time.Time, code string) {
	t.Helper()
	c.now = lastDenied
	if got := e.Decide(w.input(t, c)); got.Code != code {
		t.Errorf("at %v: %s %s, want DENY %s", lastDenied, got.Decision, got.Code, code)
	}
	c.now = firstAllowed
	if got := e.Decide(w.input(t, c)); got.Decision == policy.Deny {
		t.Errorf("at %v: DENY %s (%s)", firstAllowed, got.Code, got.Message)
	}
}
