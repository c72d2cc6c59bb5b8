package consent

import (
	"errors"

	"github.com/fieldvault/fieldvault/vault/subject"
)

// Guardian-rule errors (s.20, pdpa-model §2.5).
var (
	// ErrGuardianRequired: the subject cannot consent alone (under 10,
	// 10-19 for an act the minor may not do alone, or incapable) and no
	// verified guardian granted the consent.
	ErrGuardianRequired = errors.New("consent: a verified guardian's consent is required")
	// ErrSubjectRequired: the subject's own consent is missing (a minor of
	// 10-19 must consent together with the guardian; an adult consents
	// personally).
	ErrSubjectRequired = errors.New("consent: the subject's own consent is required")
	// ErrAgeUnknown: the rule depends on an age the vault does not know.
	ErrAgeUnknown = errors.New("consent: subject age unknown")
)

// Capacity is what the guardian rule needs to know about the subject at
// decision time.
type Capacity struct {
	// Band is the age band now (subject.AgeBandAt).
	Band subject.AgeBand
	// Married: sui juris by marriage (CCC s.20), an adult for consent.
	Married bool
	// Incapable: an incompetent person; the custodian consents
	// (s.20 ¶3, applied like the under-10 rule).
	Incapable bool
	// MinorMayActAlone: the purpose is on the policy's allowlist of acts a
	// minor of 10-19 may do alone (CCC ss.22-24, "suitable to his
	// condition in life").
	MinorMayActAlone bool
}

// GuardianRule applies the s.20 rule with the default (no per-purpose
// allowlist): see [CheckGrantors].
func GuardianRule(c *Consent, band subject.AgeBand, married bool) error {
	return CheckGrantors(c, Capacity{Band: band, Married: married})
}

// CheckGrantors applies s.20 to the record's grantors:
//
//   - under 10, or incapable: a verified guardian is required; the
//     subject's own consent is ignored ([ErrGuardianRequired]);
//   - 10-19, not married: the subject and a verified guardian together
//     (default [Inference, conservative]); the subject alone when
//     MinorMayActAlone ([ErrGuardianRequired], [ErrSubjectRequired]);
//   - 20 and over, or married: the subject ([ErrSubjectRequired] when only
//     a guardian granted it);
//   - age unknown and not married: [ErrAgeUnknown].
//
// A guardian is verified when Verified is set and VerificationRef names the
// document check. Seed §4.3's "deemed" consent never gets here: it does not
// count as consent at all ([CountsAsConsent]).
func CheckGrantors(c *Consent, cp Capacity) error {
	hasSubject, hasGuardian := false, false
	for i := range c.GrantedBy {
		g := &c.GrantedBy[i]
		switch g.Party {
		case PartySubject:
			if g.ID == "" || g.ID == c.Subject {
				hasSubject = true
			}
		case PartyGuardian:
			if g.Verified && g.VerificationRef != "" && g.ID != "" && g.ID != c.Subject {
				hasGuardian = true
			}
		}
	}
	if cp.Incapable || cp.Band == subject.AgeUnder10 {
		if !hasGuardian {
			return ErrGuardianRequired
		}
		return nil
	}
	switch {
	case cp.Married || cp.Band == subject.AgeAdult:
		if !hasSubject {
			return ErrSubjectRequired
		}
	case cp.Band == subject.Age10To19:
		if !hasSubject {
			return ErrSubjectRequired
		}
		if !hasGuardian && !cp.MinorMayActAlone {
			return ErrGuardianRequired
		}
	default:
		return ErrAgeUnknown
	}
	return nil
}

// NeedsRenewal reports whether a guardian took part in the consent and the
// subject can now consent alone (turned 20 or married): such consents are
// flagged for renewal by the subject [Inference, pdpa-model §2.5].
func NeedsRenewal(c *Consent, cp Capacity) bool {
	if cp.Incapable || !(cp.Married || cp.Band == subject.AgeAdult) {
		return false
	}
	for _, g := range c.GrantedBy {
		if g.Party == PartyGuardian {
			return true
		}
	}
	return false
}
