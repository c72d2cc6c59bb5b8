package policy

import (
	"errors"
	"slices"
	"time"

	"github.com/fieldvault/fieldvault/tokenizer"
	"github.com/fieldvault/fieldvault/vault/consent"
	"github.com/fieldvault/fieldvault/vault/subject"
)

// Indices into the compiled tables.
const (
	numPurposes = 19
	numGrounds  = 11
	numKinds    = 11
)

// Reveal levels, ordered.
const (
	revealNone uint8 = iota
	revealMasked
	revealPartial
	revealFull
)

var revealNames = [...]string{revealMasked: RevealMasked, revealPartial: RevealPartial, revealFull: RevealFull}

func parseReveal(s string) uint8 {
	switch s {
	case RevealFull:
		return revealFull
	case RevealPartial:
		return revealPartial
	case RevealMasked, "":
		// §2.1 rule 7: the default output is masked.
		return revealMasked
	}
	return revealNone
}

func tierBit(t tokenizer.Tier) uint8 { return 1 << t }

// rule is one compiled (purpose, ground) cell.
type rule struct {
	allowed bool
	tiers   uint8 // bit per tokenizer.Tier
	reveal  uint8
}

type approvalRule struct {
	count int
	roles []string
}

// vital allowlist classes.
const (
	vitalNo uint8 = iota
	vitalAlways
	vitalIncapable
)

// Engine decides detokenise requests under one compiled Policy. It is
// immutable and safe for concurrent use; Decide does no I/O and reads the
// clock only from its Input.
type Engine struct {
	pol     *Policy
	sha     string
	version string

	purposeIdx map[string]uint8
	groundIdx  map[string]uint8

	enabled     [numPurposes]bool
	rules       [numPurposes][numGrounds]rule
	suspended   [numPurposes]bool
	restrictedP [numPurposes]bool
	restrictedG [numGrounds]bool
	erasureP    [numPurposes]bool
	holdG       [numGrounds]bool
	thirdP      [numPurposes]bool
	minorsAlone [numPurposes]bool

	vital        map[string]uint8
	contractT1   []string
	tierOverride map[string]tokenizer.Tier
	approvals    [numKinds]approvalRule
	kindIdx      map[string]uint8

	legalRoles, emergencyRoles, integrityRoles []string

	sw             Switches
	contractTail   time.Duration
	incidentWindow time.Duration
	dsrWindow      time.Duration
}

// Indices of the purposes and grounds the engine refers to by name.
var (
	pIdxMarketing, pIdxIntegrity, pIdxVetting, pIdxPayment, pIdxDSR uint8
	gIdx                                                            = map[string]uint8{}
)

func init() {
	if len(Purposes) != numPurposes || len(Grounds) != numGrounds || len(EvidenceKinds) != numKinds {
		panic("policy: vocabulary and engine tables out of step")
	}
	idx := func(p string) uint8 { return uint8(slices.Index(Purposes, p)) }
	pIdxMarketing = idx(PurposeMarketing)
	pIdxIntegrity = idx(PurposeAccountIntegrity)
	pIdxVetting = idx(PurposeProviderVetting)
	pIdxPayment = idx(PurposePayment)
	pIdxDSR = idx(PurposeDataSubjectRequest)
	for i, g := range Grounds {
		gIdx[g] = uint8(i)
	}
}

// New validates p ([Policy.Validate]) and compiles it. The engine keeps its
// own copy: later changes to p do not affect it.
func New(p *Policy) (*Engine, error) {
	if err := p.Validate(); err != nil {
		return nil, err
	}
	pol := p.canonical()
	e := &Engine{
		pol:          pol,
		sha:          pol.SHA256(),
		version:      pol.Version,
		purposeIdx:   make(map[string]uint8, numPurposes),
		groundIdx:    gIdx,
		vital:        make(map[string]uint8),
		contractT1:   slices.Clone(pol.ContractT1Categories),
		tierOverride: make(map[string]tokenizer.Tier),
		kindIdx:      make(map[string]uint8, numKinds),
		sw:           pol.Switches,
	}
	for i, name := range Purposes {
		e.purposeIdx[name] = uint8(i)
		r := pol.Purposes[name]
		if r == nil {
			continue
		}
		e.enabled[i] = r.Enabled
		for g, gr := range r.Grounds {
			cell := rule{allowed: true, reveal: parseReveal(gr.MaxReveal)}
			for _, ts := range gr.Tiers {
				cell.tiers |= tierBit(parseTier(ts))
			}
			e.rules[i][gIdx[g]] = cell
		}
	}
	set := func(dst []bool, xs []string, vocab []string) {
		for _, x := range xs {
			dst[slices.Index(vocab, x)] = true
		}
	}
	set(e.suspended[:], pol.States.SuspendedPurposes, Purposes)
	set(e.restrictedP[:], pol.States.RestrictedPurposes, Purposes)
	set(e.restrictedG[:], pol.States.RestrictedGrounds, Grounds)
	set(e.erasureP[:], pol.States.ErasurePendingPurposes, Purposes)
	set(e.holdG[:], pol.States.LegalHoldGrounds, Grounds)
	set(e.thirdP[:], pol.ThirdPartyPurposes, Purposes)
	set(e.minorsAlone[:], pol.MinorsAlonePurposes, Purposes)
	for _, c := range pol.Vital.Categories {
		e.vital[c] = vitalAlways
	}
	for _, c := range pol.Vital.IncapableOnly {
		e.vital[c] = vitalIncapable
	}
	for name, ts := range pol.CategoryTiers {
		e.tierOverride[name] = parseTier(ts)
	}
	for i, k := range EvidenceKinds {
		e.kindIdx[k] = uint8(i)
		if r, ok := pol.Approvals[k]; ok {
			e.approvals[i] = approvalRule{count: r.Count, roles: slices.Clone(r.Roles)}
		}
	}
	e.legalRoles = slices.Clone(pol.Roles.Legal)
	e.emergencyRoles = slices.Clone(pol.Roles.Emergency)
	e.integrityRoles = slices.Clone(pol.Roles.Integrity)
	e.contractTail = time.Duration(pol.Switches.ContractTailDays) * 24 * time.Hour
	e.incidentWindow = time.Duration(pol.Switches.VitalIncidentHours) * time.Hour
	e.dsrWindow = time.Duration(pol.Switches.DSRValidityDays) * 24 * time.Hour
	return e, nil
}

// Policy returns a copy of the policy in force (canonical form).
func (e *Engine) Policy() *Policy { return e.pol.Clone() }

// SHA256 returns the policy's [Policy.SHA256], for audit records.
func (e *Engine) SHA256() string { return e.sha }

// Version returns the policy's version, for audit records.
func (e *Engine) Version() string { return e.version }

// tierOf is the tier the grounds are decided at: the category's tier,
// raised by the policy's overrides, with T1 decided as T0 when the
// notice-elevated switch is off.
func (e *Engine) tierOf(cat *tokenizer.Category) tokenizer.Tier {
	t := cat.Tier
	if len(e.tierOverride) > 0 {
		if o, ok := e.tierOverride[cat.Name]; ok && o > t {
			t = o
		}
	}
	if t == tokenizer.T1 && !e.sw.NoticeElevatedTier {
		t = tokenizer.T0
	}
	return t
}

func deny(code, msg string) Outcome { return Outcome{Decision: Deny, Code: code, Message: msg} }

func hasAnyRole(have, want []string) bool {
	for _, h := range have {
		for _, w := range want {
			if h == w {
				return true
			}
		}
	}
	return false
}

// Shared alert slices (Outcome.Alerts is read-only).
var (
	alertsDPO      = []string{AlertDPO}
	alertsIncident = []string{AlertIncident}
	alertsLegal    = []string{AlertLegal}
)

// Decide decides one token. It applies pdpa-model §2.4.3 steps 2 to 9 in
// order (step 1, the role's permission for the category, is the vault's;
// steps 10 and 11, audit and release, too) and the first failing check
// decides. It never allocates on the allow path or the deny path.
//
// The vault fills in: Now, Request, Token (from its own token row), Subject
// (the token's subject record), Linked (for a third party, the record of
// the account holder it is linked to), Consent (the record named by a
// consent ground's ref), Evidence (the record named by any other ground's
// ref), and TransferConsent or TransferEvidence (the record named by the
// transfer basis's ref). A record not found is nil.
func (e *Engine) Decide(in *Input) Outcome {
	if in == nil || in.Request == nil {
		return deny(CodePurposeUnknown, "no request")
	}
	req := in.Request
	now := in.Now

	// Step 2: the token, authoritative.
	t := &in.Token
	switch {
	case t.Erased:
		// Before Found: an erased token may have no row left, only a
		// tombstone (Found false, Erased true).
		return deny(CodeTokenErased, "token erased")
	case !t.Found:
		return deny(CodeTokenUnknown, "token not found")
	case t.Expired:
		return deny(CodeTokenExpired, "token expired")
	case t.Category == nil:
		return deny(CodeTokenUnknown, "token has no known category")
	}
	cat := t.Category
	if req.CategoryHint != "" && req.CategoryHint != cat.Name {
		return deny(CodeCategoryMismatch, "the category hint does not match the token's category")
	}

	// Step 3: the subject's state.
	s := in.Subject
	if s == nil || s.ID != t.Subject {
		return deny(CodeSubjectUnknown, "the token's subject is not registered")
	}
	if s.State == subject.Erased || slices.Contains(s.ErasedCategories, cat.Name) {
		return deny(CodeTokenErased, "the subject's data in this category was erased")
	}
	pi, pok := e.purposeIdx[req.Purpose]
	gi, gok := e.groundIdx[req.Ground.Type]
	g := req.Ground.Type
	holdGround := gok && e.holdG[gi]
	switch s.State {
	case subject.Active, subject.Restricted:
	case subject.SuspendedPendingEvidence, subject.EvidenceUnderReview:
		if !pok || !e.suspended[pi] {
			return deny(CodeAccountSuspended, "the account is suspended pending evidence; this purpose is not allowed")
		}
		if pi == pIdxIntegrity && !hasAnyRole(req.Roles, e.integrityRoles) {
			return deny(CodeRoleNotPermitted, "only the integrity-review role may read a suspended account")
		}
	case subject.ErasurePending:
		if !(pok && e.erasureP[pi]) && !(holdGround && subject.CategoryHeld(s, cat.Name, now)) {
			return deny(CodeErasurePending, "the subject's data is pending erasure")
		}
	default:
		return deny(CodeSubjectUnknown, "the subject record is in an unknown state")
	}
	if subject.CategoryRestricted(s, cat.Name) && !(pok && e.restrictedP[pi]) && !(gok && e.restrictedG[gi]) {
		return deny(CodeSubjectRestricted, "processing of this data is restricted (s.34)")
	}
	if subject.RetentionDue(s, cat.Name, now) && !(holdGround && subject.CategoryHeld(s, cat.Name, now)) {
		return deny(CodeRetentionExpired, "the retention period for this data has ended")
	}
	if len(s.Objections) > 0 {
		if pok && pi == pIdxMarketing && subject.AnyObjectionUpheld(s, now) {
			return deny(CodeObjectionUpheld, "the subject objected (s.32); direct marketing is blocked")
		}
		if objectionable(g) && subject.ObjectionUpheld(s, req.Purpose, now) {
			return deny(CodeObjectionUpheld, "the subject's objection (s.32) was upheld for this purpose")
		}
	}

	// Step 4: purpose x ground x tier, from the static policy.
	if !pok {
		return deny(CodePurposeUnknown, "unknown purpose")
	}
	if !gok {
		return deny(CodeGroundUnknown, "unknown ground")
	}
	if !e.enabled[pi] {
		return deny(CodePurposeNotEnabled, "this purpose is not enabled by the policy")
	}
	want := parseReveal(req.Reveal)
	if want == revealNone {
		return deny(CodeRevealUnknown, "unknown reveal level")
	}
	r := e.rules[pi][gi]
	if !r.allowed {
		return deny(CodeGroundNotPermittedForPurpose, "this ground cannot serve this purpose")
	}
	tier := e.tierOf(cat)
	var out Outcome
	out.GroundIRI, out.Section = legalBasis(g, tier, "")
	fail := func(code, msg string) Outcome {
		out.Decision, out.Code, out.Message = Deny, code, msg
		return out
	}
	vitalClass := vitalNo
	if g == GroundVitalInterest {
		vitalClass = e.vital[cat.Name]
		if vitalClass == vitalNo {
			return fail(CodeVitalCategoryNotAllowed, "this category is not needed to avert a danger (vital allowlist)")
		}
	}
	if r.tiers&tierBit(tier) == 0 {
		if g == GroundConsent {
			return fail(CodePurposeNotCovered, "no consent can cover this purpose for this category's tier")
		}
		return fail(CodeGroundNotPermittedForTier, "this ground cannot unlock this category's tier")
	}
	if g == GroundContract && tier == tokenizer.T1 &&
		(!e.sw.ContractT1OwnPayment || pi != pIdxPayment || !slices.Contains(e.contractT1, cat.Name)) {
		return fail(CodeGroundNotPermittedForTier, "a contract unlocks T1 data only for card or bank data in the subject's own payment")
	}

	// Step 5: the evidence.
	var alerts []string
	var code, msg string
	switch g {
	case GroundConsent:
		code, msg = e.checkConsent(in, cat, tier, pi)
	case GroundContract:
		code, msg = e.checkContract(in, cat)
	case GroundLegalObligation:
		code, msg = e.checkStatute(in, cat, tier)
		if code == "" {
			out.GroundIRI, out.Section = legalBasis(g, tier, in.Evidence.Attributes[AttrS26Item])
		}
	case GroundAuthorityInstrument:
		code, msg = e.checkInstrument(in, cat)
		alerts = alertsDPO
	case GroundVitalInterest:
		code, msg = e.checkIncident(in, cat, vitalClass)
		alerts = alertsIncident
	case GroundPublicTask:
		code, msg = e.checkMandate(in, cat, tier)
		if code == "" {
			out.GroundIRI, out.Section = legalBasis(g, tier, in.Evidence.Attributes[AttrS26Item])
		}
	case GroundLegitimateInterest:
		code, msg = e.checkScoped(in, cat, KindLIA, scopeAny, scopeRequired, scopeRequired)
	case GroundResearchStatistics:
		code, msg = e.checkResearch(in, cat, tier)
	case GroundLegalClaims:
		code, msg = e.checkScoped(in, cat, KindLegalCase, scopeRequired, scopeRequired, scopeAny)
		alerts = alertsLegal
	case GroundMadePublic:
		code, msg = e.checkScoped(in, cat, KindMadePublic, scopeRequired, scopeRequired, scopeAny)
	case GroundDataSubjectRequest:
		code, msg = e.checkDSR(in, cat)
	}
	if code != "" {
		return fail(code, msg)
	}

	// Step 6: minors (s.20), for consent.
	if g == GroundConsent {
		cp := consent.Capacity{
			Band:             subject.AgeBandAt(s, now),
			Married:          s.Married,
			Incapable:        subject.Incapable(s),
			MinorMayActAlone: e.minorsAlone[pi],
		}
		switch err := consent.CheckGrantors(in.Consent, cp); {
		case err == nil:
		case errors.Is(err, consent.ErrGuardianRequired):
			return fail(CodeGuardianConsentRequired, "a verified guardian's consent is required (s.20)")
		case errors.Is(err, consent.ErrSubjectRequired):
			return fail(CodeSubjectConsentRequired, "the subject's own consent is required (s.20)")
		default:
			return fail(CodeSubjectAgeUnknown, "the subject's age is needed for the guardian rule (s.20)")
		}
	}

	// Step 7: third-party subjects.
	if s.Type == subject.ThirdParty || cat.ThirdParty {
		ok := e.thirdP[pi]
		if ok && pi == pIdxDSR && req.OnBehalfOf != s.ID {
			ok = false
		}
		if !ok {
			return fail(CodeThirdPartySubject, "a third party's data is reachable only for emergencies, legal authorities and the third party's own request")
		}
	}

	// Step 8: cross-border.
	if code, msg := e.checkTransfer(in, cat); code != "" {
		return fail(code, msg)
	}

	// Step 9: shape the output.
	level := want
	if r.reveal < level {
		level = r.reveal
	}
	if g == GroundResearchStatistics {
		level = revealMasked
	}
	out.Reveal = revealNames[level]
	if level == revealFull {
		out.Decision = Allow
	} else {
		out.Decision = AllowMasked
	}
	out.Alerts = alerts
	return out
}

// objectionable reports whether an upheld s.32 objection blocks the ground:
// processing based on s.24(4)/(5) and research (s.32).
func objectionable(g string) bool {
	switch g {
	case GroundLegitimateInterest, GroundPublicTask, GroundResearchStatistics:
		return true
	}
	return false
}
