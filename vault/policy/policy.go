package policy

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"maps"
	"slices"

	"github.com/fieldvault/fieldvault/tokenizer"
	"github.com/fieldvault/fieldvault/vault/consent"
)

// Policy is the configurable part of the decision model: the static table
// of pdpa-model §2.3 and §2.4.2 (which ground may serve which purpose for
// which tier, and how much it may reveal), the switches, the allowlists and
// the role names. The law's floor is not configurable: [Load] and [New]
// reject a policy that would permit what the model forbids (see the
// package documentation, "The floor").
//
// A Policy is plain data: build it with [Default] or [Load], change it,
// and hand it to [New], which validates and compiles it. The policy file
// is its JSON encoding ([Policy.Marshal]); together with the audit log it
// is part of the s.39 record.
type Policy struct {
	// Version names this policy; it goes into every audit record with
	// [Policy.SHA256].
	Version string `json:"version"`
	// Purposes is keyed by purpose code. A purpose missing from the map,
	// or with Enabled false, serves no ground.
	Purposes map[string]*PurposeRule `json:"purposes"`
	// Switches are the named policy switches of pdpa-model §2.1 rule 3.
	Switches Switches `json:"switches"`
	// ContractT1Categories are the T1 categories a contract may unlock for
	// the subject's own payment, when Switches.ContractT1OwnPayment is on.
	// Only financial.card_pan and financial.bank_account are allowed.
	ContractT1Categories []string `json:"contract_t1_categories"`
	// Vital is the vital-interest category allowlist.
	Vital VitalRule `json:"vital"`
	// States says what each subject state still allows (pdpa-model §2.6).
	// Every list may only narrow the model's.
	States StateRules `json:"states"`
	// ThirdPartyPurposes are the purposes that may reach a third-party
	// subject's data (step 7; data_subject_request only when the third
	// party is the requester). May only narrow the model's list.
	ThirdPartyPurposes []string `json:"third_party_purposes"`
	// Roles names the roles the engine checks inside grounds.
	Roles RoleNames `json:"roles"`
	// Approvals is keyed by evidence kind: how many approvals, by which
	// roles, a record of that kind needs before it counts.
	Approvals map[string]ApprovalRule `json:"approvals"`
	// MinorsAlonePurposes are the purposes for which a minor of 10-19 may
	// consent alone (an act "suitable to his condition in life", CCC
	// ss.22-24). Empty by default: subject and guardian together.
	MinorsAlonePurposes []string `json:"minors_alone_purposes"`
	// CategoryTiers raises the tier of a category for grounds (never
	// lowers it below the category table's).
	CategoryTiers map[string]string `json:"category_tiers"`
	// ConsentExpiry is the default expiry given at grant time.
	ConsentExpiry ConsentExpiry `json:"consent_expiry"`
	// Holidays are the non-working days (YYYY-MM-DD, ICT) for the
	// suspension deadline when Switches.HolidayExtension is on; Saturdays
	// and Sundays are non-working days too.
	Holidays []string `json:"holidays"`
}

// PurposeRule is one row of the purpose table.
type PurposeRule struct {
	Enabled bool `json:"enabled"`
	// Grounds is keyed by ground.
	Grounds map[string]*GroundRule `json:"grounds"`
}

// GroundRule says at which tiers a ground may serve the purpose and how
// much it may reveal.
type GroundRule struct {
	// Tiers: "T0", "T1", "T2", "T2+".
	Tiers []string `json:"tiers"`
	// MaxReveal is full, partial or masked: the effective reveal level is
	// the lower of this and the requested one.
	MaxReveal string `json:"max_reveal"`
}

// Switches are the named policy switches.
type Switches struct {
	// TransferRequireConsent (seed §11, on by default): a transfer abroad
	// needs an explicit, informed transfer consent; adequacy, BCRs and
	// safeguards alone are not enough.
	TransferRequireConsent bool `json:"transfer_require_consent"`
	// NoticeElevatedTier (seed §4.2, on by default): T1 categories are
	// decided as T1; off, they are decided as T0.
	NoticeElevatedTier bool `json:"notice_elevated_tier"`
	// ContractT1OwnPayment (on by default): a contract unlocks the
	// ContractT1Categories for the payment purpose.
	ContractT1OwnPayment bool `json:"contract_t1_own_payment"`
	// ContractTailDays: a contract stays usable this many days after it
	// ended (default 90).
	ContractTailDays int `json:"contract_tail_days"`
	// VitalIncidentHours: an incident is usable this many hours after it
	// was opened (default 24, at most 24).
	VitalIncidentHours int `json:"vital_incident_validity_hours"`
	// CriminalRecordRetentionMonths: a criminal-record consent is usable
	// this many months after it was granted, and the retention timer runs
	// this long (default 6, at most 6).
	CriminalRecordRetentionMonths int `json:"criminal_record_retention_months"`
	// DSRValidityDays: a DSR ticket without valid_until is usable this
	// many days after it was opened (default 30, s.30 ¶4; at most 30).
	DSRValidityDays int `json:"dsr_validity_days"`
	// HolidayExtension (off by default): a suspension deadline falling on
	// a non-working day moves to the next working day (CCC s.193/8).
	HolidayExtension bool `json:"holiday_extension"`
}

// VitalRule is the vital-interest allowlist.
type VitalRule struct {
	// Categories may always be revealed under vital interest (T0 only).
	Categories []string `json:"categories"`
	// IncapableOnly may be revealed only when the subject is incapable of
	// consenting (s.26(1)); T2 categories only.
	IncapableOnly []string `json:"incapable_only"`
}

// StateRules is what subject states allow.
type StateRules struct {
	// SuspendedPurposes: SUSPENDED_PENDING_EVIDENCE and
	// EVIDENCE_UNDER_REVIEW (seed §4.6).
	SuspendedPurposes []string `json:"suspended_purposes"`
	// RestrictedPurposes and RestrictedGrounds: RESTRICTED (s.34).
	RestrictedPurposes []string `json:"restricted_purposes"`
	RestrictedGrounds  []string `json:"restricted_grounds"`
	// ErasurePendingPurposes: ERASURE_PENDING.
	ErasurePendingPurposes []string `json:"erasure_pending_purposes"`
	// LegalHoldGrounds: a category under a legal hold (in ERASURE_PENDING,
	// or past its retention).
	LegalHoldGrounds []string `json:"legal_hold_grounds"`
}

// RoleNames are the role names the engine checks. A requester qualifies
// when it holds any one of the listed roles.
type RoleNames struct {
	// Legal: the legal-response role; required to use an authority
	// instrument.
	Legal []string `json:"legal"`
	// Emergency: the role that opens incidents; an incident opened by
	// anyone else is not evidence.
	Emergency []string `json:"emergency"`
	// Integrity: the integrity-review role; required for
	// account_integrity while the subject is suspended.
	Integrity []string `json:"integrity"`
}

// ApprovalRule is the approval requirement of an evidence kind: Count
// approvals by distinct principals, each holding one of Roles (any role
// when Roles is empty), given at or before the decision time.
type ApprovalRule struct {
	Count int      `json:"count"`
	Roles []string `json:"roles"`
}

// ConsentExpiry is the default consent expiry (pdpa-model §2.5).
type ConsentExpiry struct {
	Months   int      `json:"months"`
	Purposes []string `json:"purposes"`
}

// Default returns the built-in policy: the model's tables and switches.
// The result is the caller's to change.
func Default() *Policy {
	all := []string{"T0", "T1", "T2", "T2+"}
	g := func(max string, tiers ...string) *GroundRule {
		return &GroundRule{Tiers: tiers, MaxReveal: max}
	}
	consentTiers := []string{"T0", "T1", "T2"}
	p := &Policy{
		Version: "2025.06-default",
		Purposes: map[string]*PurposeRule{
			PurposeIdentityVerification: {Enabled: true, Grounds: map[string]*GroundRule{
				GroundContract:        g(RevealFull, "T0"),
				GroundLegalObligation: g(RevealFull, "T0", "T1", "T2"),
				GroundConsent:         g(RevealFull, consentTiers...),
			}},
			PurposeProviderVetting: {Enabled: true, Grounds: map[string]*GroundRule{
				GroundContract:        g(RevealFull, "T0"),
				GroundConsent:         g(RevealFull, all...),
				GroundLegalObligation: g(RevealFull, all...),
			}},
			PurposeServiceDelivery: {Enabled: true, Grounds: map[string]*GroundRule{
				GroundContract: g(RevealPartial, "T0"),
			}},
			PurposePayment: {Enabled: true, Grounds: map[string]*GroundRule{
				GroundContract: g(RevealFull, "T0", "T1"),
			}},
			PurposeSupport: {Enabled: true, Grounds: map[string]*GroundRule{
				GroundContract:           g(RevealFull, "T0"),
				GroundLegitimateInterest: g(RevealFull, "T0"),
			}},
			PurposeServiceNotices: {Enabled: true, Grounds: map[string]*GroundRule{
				GroundContract: g(RevealFull, "T0"),
			}},
			PurposeMarketing: {Enabled: true, Grounds: map[string]*GroundRule{
				GroundConsent: g(RevealFull, consentTiers...),
			}},
			PurposeAnalytics: {Enabled: true, Grounds: map[string]*GroundRule{
				GroundLegitimateInterest: g(RevealMasked, "T0"),
				GroundConsent:            g(RevealFull, consentTiers...),
				GroundResearchStatistics: g(RevealMasked, "T0", "T2"),
			}},
			PurposePartnerFinancialOffers: {Enabled: true, Grounds: map[string]*GroundRule{
				GroundConsent: g(RevealFull, consentTiers...),
			}},
			PurposePartnerInsuranceOffers: {Enabled: true, Grounds: map[string]*GroundRule{
				GroundConsent: g(RevealFull, consentTiers...),
			}},
			PurposeCorporateTransaction: {Enabled: false, Grounds: map[string]*GroundRule{
				GroundLegitimateInterest: g(RevealMasked, "T0"),
				GroundConsent:            g(RevealFull, consentTiers...),
			}},
			PurposeEmergency: {Enabled: true, Grounds: map[string]*GroundRule{
				GroundVitalInterest: g(RevealFull, "T0", "T2"),
			}},
			PurposePublicHealth: {Enabled: false, Grounds: map[string]*GroundRule{
				GroundPublicTask:      g(RevealFull, "T0", "T2"),
				GroundLegalObligation: g(RevealFull, "T0", "T1", "T2"),
			}},
			PurposeFraudAML: {Enabled: true, Grounds: map[string]*GroundRule{
				GroundLegitimateInterest: g(RevealFull, "T0"),
				GroundLegalObligation:    g(RevealFull, "T0", "T1", "T2"),
			}},
			PurposeLegalAuthority: {Enabled: true, Grounds: map[string]*GroundRule{
				GroundAuthorityInstrument: g(RevealFull, all...),
				GroundLegalObligation:     g(RevealFull, all...),
			}},
			PurposeDispute: {Enabled: true, Grounds: map[string]*GroundRule{
				GroundLegalClaims: g(RevealFull, all...),
				GroundContract:    g(RevealFull, "T0"),
			}},
			PurposeHarmPrevention: {Enabled: true, Grounds: map[string]*GroundRule{
				GroundLegitimateInterest: g(RevealFull, "T0"),
				GroundVitalInterest:      g(RevealFull, "T0"),
			}},
			PurposeAccountIntegrity: {Enabled: true, Grounds: map[string]*GroundRule{
				GroundContract:           g(RevealFull, "T0"),
				GroundLegitimateInterest: g(RevealFull, "T0"),
				GroundConsent:            g(RevealFull, consentTiers...),
			}},
			PurposeDataSubjectRequest: {Enabled: true, Grounds: map[string]*GroundRule{
				GroundDataSubjectRequest: g(RevealFull, all...),
			}},
		},
		Switches: Switches{
			TransferRequireConsent:        true,
			NoticeElevatedTier:            true,
			ContractT1OwnPayment:          true,
			ContractTailDays:              90,
			VitalIncidentHours:            24,
			CriminalRecordRetentionMonths: 6,
			DSRValidityDays:               30,
			HolidayExtension:              false,
		},
		ContractT1Categories: []string{"financial.bank_account", "financial.card_pan"},
		Vital: VitalRule{
			Categories:    []string{"contact.phone", "identity.name", "location.precise", "third_party.emergency_contact"},
			IncapableOnly: []string{"disability", "health"},
		},
		States:             modelStates(),
		ThirdPartyPurposes: []string{PurposeDataSubjectRequest, PurposeEmergency, PurposeLegalAuthority},
		Roles: RoleNames{
			Legal:     []string{"legal"},
			Emergency: []string{"emergency"},
			Integrity: []string{"trust-safety"},
		},
		Approvals: map[string]ApprovalRule{
			KindAuthorityInstrument: {Count: 2, Roles: []string{"legal"}},
			KindContract:            {Count: 0, Roles: []string{}},
			KindDSR:                 {Count: 1, Roles: []string{"dpo"}},
			KindIncident:            {Count: 0, Roles: []string{}},
			KindLIA:                 {Count: 1, Roles: []string{"dpo"}},
			KindLegalCase:           {Count: 1, Roles: []string{"legal"}},
			KindMadePublic:          {Count: 1, Roles: []string{"dpo"}},
			KindMandate:             {Count: 1, Roles: []string{"dpo"}},
			KindResearchProtocol:    {Count: 1, Roles: []string{"dpo"}},
			KindStatute:             {Count: 1, Roles: []string{"legal"}},
			KindTransferSafeguard:   {Count: 1, Roles: []string{"dpo", "legal"}},
		},
		MinorsAlonePurposes: []string{},
		CategoryTiers:       map[string]string{},
		ConsentExpiry: ConsentExpiry{
			Months:   24,
			Purposes: []string{PurposeMarketing, PurposePartnerFinancialOffers, PurposePartnerInsuranceOffers},
		},
		Holidays: []string{},
	}
	return p
}

// modelStates are the state rules of pdpa-model §2.4.3 step 3 and §2.6, the
// widest a policy may set.
func modelStates() StateRules {
	return StateRules{
		SuspendedPurposes: []string{
			PurposeAccountIntegrity, PurposeDataSubjectRequest, PurposeDispute,
			PurposeEmergency, PurposeFraudAML, PurposeLegalAuthority,
		},
		RestrictedPurposes:     []string{PurposeDataSubjectRequest},
		RestrictedGrounds:      []string{GroundAuthorityInstrument, GroundLegalClaims},
		ErasurePendingPurposes: []string{PurposeDataSubjectRequest},
		LegalHoldGrounds:       []string{GroundAuthorityInstrument, GroundLegalClaims},
	}
}

// Clone returns a deep copy.
func (p *Policy) Clone() *Policy {
	q := *p
	if p.Purposes != nil {
		q.Purposes = make(map[string]*PurposeRule, len(p.Purposes))
		for k, v := range p.Purposes {
			if v == nil {
				q.Purposes[k] = nil
				continue
			}
			r := &PurposeRule{Enabled: v.Enabled}
			if v.Grounds != nil {
				r.Grounds = make(map[string]*GroundRule, len(v.Grounds))
				for gk, gv := range v.Grounds {
					if gv == nil {
						r.Grounds[gk] = nil
						continue
					}
					r.Grounds[gk] = &GroundRule{Tiers: slices.Clone(gv.Tiers), MaxReveal: gv.MaxReveal}
				}
			}
			q.Purposes[k] = r
		}
	}
	q.ContractT1Categories = slices.Clone(p.ContractT1Categories)
	q.Vital.Categories = slices.Clone(p.Vital.Categories)
	q.Vital.IncapableOnly = slices.Clone(p.Vital.IncapableOnly)
	q.States.SuspendedPurposes = slices.Clone(p.States.SuspendedPurposes)
	q.States.RestrictedPurposes = slices.Clone(p.States.RestrictedPurposes)
	q.States.RestrictedGrounds = slices.Clone(p.States.RestrictedGrounds)
	q.States.ErasurePendingPurposes = slices.Clone(p.States.ErasurePendingPurposes)
	q.States.LegalHoldGrounds = slices.Clone(p.States.LegalHoldGrounds)
	q.ThirdPartyPurposes = slices.Clone(p.ThirdPartyPurposes)
	q.Roles.Legal = slices.Clone(p.Roles.Legal)
	q.Roles.Emergency = slices.Clone(p.Roles.Emergency)
	q.Roles.Integrity = slices.Clone(p.Roles.Integrity)
	if p.Approvals != nil {
		q.Approvals = make(map[string]ApprovalRule, len(p.Approvals))
		for k, v := range p.Approvals {
			q.Approvals[k] = ApprovalRule{Count: v.Count, Roles: slices.Clone(v.Roles)}
		}
	}
	q.MinorsAlonePurposes = slices.Clone(p.MinorsAlonePurposes)
	q.CategoryTiers = maps.Clone(p.CategoryTiers)
	q.ConsentExpiry.Purposes = slices.Clone(p.ConsentExpiry.Purposes)
	q.Holidays = slices.Clone(p.Holidays)
	return &q
}

// canonical returns a deep copy in canonical form: every list sorted (tiers
// in tier order), nil lists and maps made empty, and every purpose present
// (a missing purpose becomes a disabled one without grounds, which is what
// it means). Two policies that decide alike in every case have the same
// canonical form when they differ only in these respects.
func (p *Policy) canonical() *Policy {
	q := p.Clone()
	if q.Purposes == nil {
		q.Purposes = map[string]*PurposeRule{}
	}
	for _, name := range Purposes {
		if q.Purposes[name] == nil {
			q.Purposes[name] = &PurposeRule{}
		}
	}
	for _, r := range q.Purposes {
		if r.Grounds == nil {
			r.Grounds = map[string]*GroundRule{}
		}
		for _, gr := range r.Grounds {
			if gr != nil {
				gr.Tiers = sortTiers(gr.Tiers)
			}
		}
	}
	for _, xs := range []*[]string{
		&q.ContractT1Categories, &q.Vital.Categories, &q.Vital.IncapableOnly,
		&q.States.SuspendedPurposes, &q.States.RestrictedPurposes, &q.States.RestrictedGrounds,
		&q.States.ErasurePendingPurposes, &q.States.LegalHoldGrounds, &q.ThirdPartyPurposes,
		&q.Roles.Legal, &q.Roles.Emergency, &q.Roles.Integrity, &q.MinorsAlonePurposes,
		&q.ConsentExpiry.Purposes, &q.Holidays,
	} {
		*xs = sortStrings(*xs)
	}
	if q.Approvals == nil {
		q.Approvals = map[string]ApprovalRule{}
	}
	for k, v := range q.Approvals {
		v.Roles = sortStrings(v.Roles)
		q.Approvals[k] = v
	}
	if q.CategoryTiers == nil {
		q.CategoryTiers = map[string]string{}
	}
	return q
}

func sortStrings(xs []string) []string {
	if xs == nil {
		return []string{}
	}
	slices.Sort(xs)
	return xs
}

func sortTiers(xs []string) []string {
	if xs == nil {
		return []string{}
	}
	slices.SortFunc(xs, func(a, b string) int {
		return int(parseTier(a)) - int(parseTier(b))
	})
	return xs
}

// parseTier returns the tier named s, or TierInvalid.
func parseTier(s string) tokenizer.Tier {
	switch s {
	case "T0":
		return tokenizer.T0
	case "T1":
		return tokenizer.T1
	case "T2":
		return tokenizer.T2
	case "T2+":
		return tokenizer.T2Plus
	}
	return tokenizer.TierInvalid
}

// Marshal returns the policy file: the canonical form as indented JSON,
// ending in a newline. [Load] reads it back to an equal policy with the
// same [Policy.SHA256].
func (p *Policy) Marshal() ([]byte, error) {
	b, err := json.MarshalIndent(p.canonical(), "", "  ")
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
}

// SHA256 returns the hex SHA-256 of the canonical encoding (compact JSON of
// the canonical form; encoding/json sorts map keys). It goes into every
// audit record with Version.
func (p *Policy) SHA256() string {
	b, err := json.Marshal(p.canonical())
	if err != nil {
		// Only strings, ints, bools, maps and slices: cannot fail.
		panic("policy: canonical encoding failed: " + err.Error())
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// ConsentExpiryRules returns the default-expiry rules for consent grants:
// the policy's months and purposes, and the criminal-record retention.
func (p *Policy) ConsentExpiryRules() consent.ExpiryRules {
	return consent.ExpiryRules{
		Months:               p.ConsentExpiry.Months,
		Purposes:             slices.Clone(p.ConsentExpiry.Purposes),
		CriminalRecordMonths: p.Switches.CriminalRecordRetentionMonths,
	}
}
