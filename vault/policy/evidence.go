package policy

import (
	"slices"
	"strings"
	"time"

	"github.com/fieldvault/fieldvault/tokenizer"
	"github.com/fieldvault/fieldvault/vault/consent"
	"github.com/fieldvault/fieldvault/vault/subject"
)

// scopeMode says what an empty scope list of an evidence record means.
type scopeMode uint8

const (
	// scopeRequired: the list must name the item; empty covers nothing.
	scopeRequired scopeMode = iota
	// scopeAny: empty covers everything the policy table allows.
	scopeAny
)

func inScope(list []string, x string, mode scopeMode) bool {
	if len(list) == 0 {
		return mode == scopeAny
	}
	return slices.Contains(list, x)
}

func kindIndex(kind string) int {
	switch kind {
	case KindContract:
		return 0
	case KindAuthorityInstrument:
		return 1
	case KindLIA:
		return 2
	case KindIncident:
		return 3
	case KindDSR:
		return 4
	case KindResearchProtocol:
		return 5
	case KindLegalCase:
		return 6
	case KindMandate:
		return 7
	case KindStatute:
		return 8
	case KindTransferSafeguard:
		return 9
	case KindMadePublic:
		return 10
	}
	return -1
}

func attrTrue(ev *Evidence, key string) bool { return ev.Attributes[key] == "true" }

// approved reports whether ev carries the approvals its kind needs at now:
// Count approvals given at or before now by distinct principals, each
// holding one of the rule's roles.
func (e *Engine) approved(ev *Evidence, now time.Time) bool {
	k := kindIndex(ev.Kind)
	if k < 0 {
		return false
	}
	r := &e.approvals[k]
	if r.count == 0 {
		return true
	}
	qualifies := func(a *Approval) bool {
		return a.Principal != "" && !a.At.After(now) && (len(r.roles) == 0 || hasAnyRole(a.Roles, r.roles))
	}
	n := 0
	for i := range ev.Approvals {
		a := &ev.Approvals[i]
		if !qualifies(a) {
			continue
		}
		dup := false
		for j := 0; j < i; j++ {
			if b := &ev.Approvals[j]; b.Principal == a.Principal && qualifies(b) {
				dup = true
				break
			}
		}
		if !dup {
			n++
			if n >= r.count {
				return true
			}
		}
	}
	return false
}

// revoked reports whether ev was revoked (or closed) at now.
func revoked(ev *Evidence, now time.Time) bool {
	return (!ev.RevokedAt.IsZero() && !now.Before(ev.RevokedAt)) || ev.Attributes[AttrStatus] == "closed"
}

// codes are the reason codes a ground uses for the common checks.
type codes struct {
	revoked, notApproved, expired, scope string
}

var (
	genericCodes    = codes{CodeEvidenceRevoked, CodeEvidenceNotApproved, CodeEvidenceExpired, CodeEvidenceScope}
	instrumentCodes = codes{CodeEvidenceRevoked, CodeInstrumentNotVerified, CodeInstrumentExpired, CodeInstrumentScope}
	incidentCodes   = codes{CodeIncidentClosed, CodeEvidenceNotApproved, CodeEvidenceExpired, CodeEvidenceScope}
	dsrCodes        = codes{CodeEvidenceRevoked, CodeDSRNotVerified, CodeEvidenceExpired, CodeEvidenceScope}
	contractCodes   = codes{CodeEvidenceRevoked, CodeEvidenceNotApproved, CodeContractInactive, CodeEvidenceScope}
)

// base runs the checks every evidence record goes through: present, of the
// ground's kind, not revoked or closed, approved, already valid.
func (e *Engine) base(ev *Evidence, kind string, c *codes, now time.Time) (string, string) {
	switch {
	case ev == nil:
		return CodeEvidenceNotFound, "evidence not found"
	case ev.Kind != kind:
		return CodeEvidenceKindMismatch, "the evidence is not of the kind this ground needs"
	case revoked(ev, now):
		return c.revoked, "the evidence was revoked or closed"
	case !e.approved(ev, now):
		return c.notApproved, "the evidence lacks the approvals it needs"
	case now.Before(ev.ValidFrom):
		return CodeEvidenceNotYetValid, "the evidence is not valid yet"
	}
	return "", ""
}

// scope checks the subject, category and purpose against the record.
func scope(ev *Evidence, subj, cat, purpose string, sm, cm, pm scopeMode, code string) (string, string) {
	switch {
	case !inScope(ev.Subjects, subj, sm):
		return code, "the subject is outside the evidence's scope"
	case !inScope(ev.Categories, cat, cm):
		return code, "the category is outside the evidence's scope"
	case !inScope(ev.Purposes, purpose, pm):
		return code, "the purpose is outside the evidence's scope"
	}
	return "", ""
}

func expired(ev *Evidence, now time.Time) bool {
	return !ev.ValidUntil.IsZero() && !now.Before(ev.ValidUntil)
}

// checkScoped is the plain evidence check: base, valid_until, scope.
func (e *Engine) checkScoped(in *Input, cat *tokenizer.Category, kind string, sm, cm, pm scopeMode) (string, string) {
	ev := in.Evidence
	if code, msg := e.base(ev, kind, &genericCodes, in.Now); code != "" {
		return code, msg
	}
	if expired(ev, in.Now) {
		return CodeEvidenceExpired, "the evidence has expired"
	}
	return scope(ev, in.Subject.ID, cat.Name, in.Request.Purpose, sm, cm, pm, CodeEvidenceScope)
}

// checkConsent: pdpa-model §2.4.1 CONSENT and EXPLICIT_CONSENT (the guardian
// rule is step 6).
func (e *Engine) checkConsent(in *Input, cat *tokenizer.Category, tier tokenizer.Tier, pi uint8) (string, string) {
	c := in.Consent
	now := in.Now
	if c == nil {
		return CodeConsentNotFound, "consent not found"
	}
	if c.Subject != in.Subject.ID {
		return CodeSubjectMismatch, "the consent belongs to another subject"
	}
	switch consent.Status(c, now) {
	case consent.StatusInvalid:
		return CodeConsentInvalidated, "the consent was invalidated"
	case consent.StatusWithdrawn:
		return CodeConsentWithdrawn, "the consent was withdrawn"
	case consent.StatusExpired:
		return CodeConsentExpired, "the consent has expired"
	case consent.StatusUnknown:
		return CodeConsentNotYetGiven, "the consent was not yet given at this time"
	}
	if !consent.CountsAsConsent(c) {
		return CodeConsentBundledInvalid, "the record's collection method (terms acceptance, continued use, deemed) is not consent"
	}
	if !slices.Contains(c.Purposes, in.Request.Purpose) {
		return CodePurposeNotCovered, "the consent does not cover this purpose"
	}
	if !slices.Contains(c.Categories, cat.Name) {
		return CodeCategoryNotCovered, "the consent does not cover this category"
	}
	if tier >= tokenizer.T2 && !c.Explicit {
		return CodeExplicitConsentRequired, "s.26 data needs explicit consent"
	}
	if tier == tokenizer.T2Plus {
		if pi != pIdxVetting {
			return CodePurposeNotCovered, "a criminal-record consent covers only provider vetting"
		}
		if !now.Before(c.GrantedAt.AddDate(0, e.sw.CriminalRecordRetentionMonths, 0)) {
			return CodeRetentionExpired, "the criminal-record retention period has ended"
		}
	}
	if rc := in.Request.Recipient; rc != nil && !consent.CoversRecipient(c, rc.ID, rc.Country) {
		return CodeRecipientNotCovered, "the consent does not cover this recipient"
	}
	return "", ""
}

// checkContract: the subject is a party, the contract is active or within
// the tail, and it covers the purpose and the category.
func (e *Engine) checkContract(in *Input, cat *tokenizer.Category) (string, string) {
	ev := in.Evidence
	if code, msg := e.base(ev, KindContract, &contractCodes, in.Now); code != "" {
		return code, msg
	}
	if !ev.ValidUntil.IsZero() && !in.Now.Before(ev.ValidUntil.Add(e.contractTail)) {
		return CodeContractInactive, "the contract ended and its post-contract window has passed"
	}
	return scope(ev, in.Subject.ID, cat.Name, in.Request.Purpose, scopeRequired, scopeRequired, scopeRequired, CodeEvidenceScope)
}

// checkStatute: the statute is on the allowlist for (purpose, category);
// T2 needs an s.26(5) mapping and T2+ a statute requiring the check.
func (e *Engine) checkStatute(in *Input, cat *tokenizer.Category, tier tokenizer.Tier) (string, string) {
	if code, msg := e.checkScoped(in, cat, KindStatute, scopeAny, scopeRequired, scopeRequired); code != "" {
		return code, msg
	}
	switch tier {
	case tokenizer.T2:
		switch in.Evidence.Attributes[AttrS26Item] {
		case "a", "b", "c", "d", "e":
		default:
			return CodeGroundNotPermittedForTier, "the statute is not mapped to an s.26(5) item"
		}
	case tokenizer.T2Plus:
		if !attrTrue(in.Evidence, AttrRequiresCriminalRecordCheck) {
			return CodeGroundNotPermittedForTier, "the statute does not require the criminal-record check"
		}
	}
	return "", ""
}

// checkInstrument: court orders and agency demands (seed §8.2).
func (e *Engine) checkInstrument(in *Input, cat *tokenizer.Category) (string, string) {
	if !hasAnyRole(in.Request.Roles, e.legalRoles) {
		return CodeRoleNotPermitted, "an authority instrument is used only by the legal-response role"
	}
	ev := in.Evidence
	if code, msg := e.base(ev, KindAuthorityInstrument, &instrumentCodes, in.Now); code != "" {
		return code, msg
	}
	if ev.ValidUntil.IsZero() {
		return CodeInstrumentNotVerified, "the instrument has no registered expiry"
	}
	if !in.Now.Before(ev.ValidUntil) {
		return CodeInstrumentExpired, "the instrument has expired"
	}
	return scope(ev, in.Subject.ID, cat.Name, in.Request.Purpose, scopeRequired, scopeRequired, scopeAny, CodeInstrumentScope)
}

// checkIncident: an open incident, opened by the emergency role, within its
// validity, about this subject (or the account holder a third party is
// linked to); incapable-only categories need the subject to be incapable.
func (e *Engine) checkIncident(in *Input, cat *tokenizer.Category, class uint8) (string, string) {
	ev := in.Evidence
	now := in.Now
	if code, msg := e.incidentUsable(ev, now); code != "" {
		return code, msg
	}
	s := in.Subject
	inc := slices.Contains(ev.Subjects, s.ID)
	if !inc && s.Type == subject.ThirdParty && in.Linked != nil && in.Linked.ID == s.LinkedTo && s.LinkedTo != "" {
		inc = slices.Contains(ev.Subjects, in.Linked.ID)
	}
	if !inc {
		return CodeEvidenceScope, "the subject is outside the incident's scope"
	}
	if !inScope(ev.Categories, cat.Name, scopeAny) || !inScope(ev.Purposes, in.Request.Purpose, scopeAny) {
		return CodeEvidenceScope, "the category or purpose is outside the incident's scope"
	}
	if class == vitalIncapable && !attrTrue(ev, AttrSubjectIncapable) && !subject.Incapable(s) {
		return CodeVitalCategoryNotAllowed, "s.26 data under vital interest needs a subject incapable of consenting (s.26(1))"
	}
	return "", ""
}

func (e *Engine) incidentUsable(ev *Evidence, now time.Time) (string, string) {
	if code, msg := e.base(ev, KindIncident, &incidentCodes, now); code != "" {
		return code, msg
	}
	if !hasAnyRole(ev.CreatedByRoles, e.emergencyRoles) {
		return CodeEvidenceNotApproved, "the incident was not opened by the emergency role"
	}
	opened := ev.ValidFrom
	if opened.IsZero() {
		opened = ev.CreatedAt
	}
	if opened.IsZero() || !now.Before(opened.Add(e.incidentWindow)) || expired(ev, now) {
		return CodeEvidenceExpired, "the incident's validity window has passed"
	}
	if now.Before(opened) {
		return CodeEvidenceNotYetValid, "the incident is not open yet"
	}
	return "", ""
}

// checkMandate: public task; T2 only for s.26(5)(b) or (e).
func (e *Engine) checkMandate(in *Input, cat *tokenizer.Category, tier tokenizer.Tier) (string, string) {
	if code, msg := e.checkScoped(in, cat, KindMandate, scopeAny, scopeRequired, scopeAny); code != "" {
		return code, msg
	}
	if tier == tokenizer.T2 {
		switch in.Evidence.Attributes[AttrS26Item] {
		case "b", "e":
		default:
			return CodeGroundNotPermittedForTier, "the mandate is not mapped to s.26(5)(b) or (e)"
		}
	}
	return "", ""
}

// checkResearch: an approved protocol; T2 only for s.26(5)(d). Output is
// masked whatever was asked (step 9).
func (e *Engine) checkResearch(in *Input, cat *tokenizer.Category, tier tokenizer.Tier) (string, string) {
	if code, msg := e.checkScoped(in, cat, KindResearchProtocol, scopeAny, scopeRequired, scopeAny); code != "" {
		return code, msg
	}
	if tier == tokenizer.T2 && in.Evidence.Attributes[AttrS26Item] != "d" {
		return CodeGroundNotPermittedForTier, "the protocol is not mapped to s.26(5)(d)"
	}
	return "", ""
}

// checkDSR: a verified ticket for this subject, presented for its
// requester, who is the subject or a verified guardian or representative.
func (e *Engine) checkDSR(in *Input, cat *tokenizer.Category) (string, string) {
	ev := in.Evidence
	now := in.Now
	if code, msg := e.base(ev, KindDSR, &dsrCodes, now); code != "" {
		return code, msg
	}
	if ev.ValidUntil.IsZero() {
		opened := ev.ValidFrom
		if opened.IsZero() {
			opened = ev.CreatedAt
		}
		if opened.IsZero() || !now.Before(opened.Add(e.dsrWindow)) {
			return CodeEvidenceExpired, "the request's response window has passed"
		}
	} else if expired(ev, now) {
		return CodeEvidenceExpired, "the request has expired"
	}
	s := in.Subject
	if code, msg := scope(ev, s.ID, cat.Name, in.Request.Purpose, scopeRequired, scopeAny, scopeAny, CodeEvidenceScope); code != "" {
		return code, msg
	}
	requester := ev.Attributes[AttrRequester]
	if requester == "" || requester != in.Request.OnBehalfOf {
		return CodeDSRRequesterMismatch, "the request is not presented for its requester"
	}
	if requester == s.ID {
		return "", ""
	}
	if !attrTrue(ev, AttrRequesterLinkVerified) {
		return CodeDSRRequesterMismatch, "the requester is not the subject and has no verified link"
	}
	switch ev.Attributes[AttrRequesterLink] {
	case "representative":
		return "", ""
	case "guardian":
		if sui, known := subject.SuiJuris(s, now); known && !sui {
			return "", ""
		}
		return CodeDSRRequesterMismatch, "a guardian acts only for a minor or an incapable subject"
	}
	return CodeDSRRequesterMismatch, "the requester is not the subject and has no verified link"
}

// destination returns where the data goes and whether that is abroad: the
// recipient's country (unknown counts as abroad), or a foreign authority's
// jurisdiction.
func destination(in *Input) (string, bool) {
	dest, abroad := "", false
	if rc := in.Request.Recipient; rc != nil {
		dest = rc.Country
		abroad = !strings.EqualFold(dest, "TH")
	}
	if in.Request.Ground.Type == GroundAuthorityInstrument && in.Evidence != nil {
		if j := in.Evidence.Attributes[AttrJurisdiction]; j != "" && !strings.EqualFold(j, "TH") {
			if !abroad || dest == "" {
				dest = j
			}
			abroad = true
		}
	}
	return dest, abroad
}

// csvContains reports whether the comma-separated list holds x (ASCII
// case-insensitive, spaces around entries ignored).
func csvContains(list, x string) bool {
	if x == "" {
		return false
	}
	for list != "" {
		item := list
		if i := strings.IndexByte(list, ','); i >= 0 {
			item, list = list[:i], list[i+1:]
		} else {
			list = ""
		}
		if strings.EqualFold(strings.TrimSpace(item), x) {
			return true
		}
	}
	return false
}

// checkTransfer is the cross-border check (pdpa-model §2.4.1).
func (e *Engine) checkTransfer(in *Input, cat *tokenizer.Category) (string, string) {
	dest, abroad := destination(in)
	if !abroad {
		return "", ""
	}
	req := in.Request
	now := in.Now
	s := in.Subject
	if req.Ground.Type == GroundConsent && consent.CoversTransfer(in.Consent, dest) {
		return "", ""
	}
	tb := req.TransferBasis
	if tb == nil || tb.Type == "" {
		if dest == "" {
			return CodeTransferBasisMissing, "the recipient's country is unknown: a transfer basis is needed"
		}
		return CodeTransferBasisMissing, "a transfer abroad needs a transfer basis (s.28, s.29)"
	}
	const needConsent = "the policy requires the subject's explicit transfer consent (seed §11)"
	switch tb.Type {
	case TransferConsent:
		c := in.TransferConsent
		switch {
		case c == nil:
			return CodeTransferBasisInvalid, "transfer consent not found"
		case c.Subject != s.ID:
			return CodeTransferBasisInvalid, "the transfer consent belongs to another subject"
		case !consent.Active(c, now) || !consent.CountsAsConsent(c):
			return CodeTransferBasisInvalid, "the transfer consent is not in force"
		case !consent.CoversTransfer(c, dest):
			return CodeTransferBasisInvalid, "the transfer consent is not explicit, informed of inadequacy, and for this destination"
		case !slices.Contains(c.Categories, cat.Name):
			return CodeTransferBasisInvalid, "the transfer consent does not cover this category"
		}
		return "", ""
	case TransferAdequacy, TransferBCR, TransferSafeguards:
		if e.sw.TransferRequireConsent {
			return CodeTransferBasisInvalid, needConsent
		}
		ev := in.TransferEvidence
		if !e.usable(ev, KindTransferSafeguard, now) || ev.Attributes[AttrMechanism] != tb.Type {
			return CodeTransferBasisInvalid, "no usable transfer instrument of this mechanism"
		}
		if !csvContains(ev.Attributes[AttrDestinations], dest) {
			return CodeTransferBasisInvalid, "the transfer instrument does not cover this destination"
		}
		return "", ""
	case TransferLaw:
		if !e.usable(in.TransferEvidence, KindStatute, now) {
			return CodeTransferBasisInvalid, "no usable statute for the transfer"
		}
		return "", ""
	case TransferContractWithSubject, TransferContractInSubjectInterest:
		if e.sw.TransferRequireConsent {
			return CodeTransferBasisInvalid, needConsent
		}
		ev := in.TransferEvidence
		if !e.usable(ev, KindContract, now) || !slices.Contains(ev.Subjects, s.ID) {
			return CodeTransferBasisInvalid, "no usable contract with or for the subject"
		}
		return "", ""
	case TransferVital:
		ev := in.TransferEvidence
		if code, _ := e.incidentUsable(ev, now); code != "" {
			return CodeTransferBasisInvalid, "no usable incident for the transfer"
		}
		if !attrTrue(ev, AttrSubjectIncapable) && !subject.Incapable(s) {
			return CodeTransferBasisInvalid, "a vital-interest transfer needs a subject unable to consent (s.28(5))"
		}
		return "", ""
	case TransferSubstantialPublicInterest:
		if !e.usable(in.TransferEvidence, KindMandate, now) {
			return CodeTransferBasisInvalid, "no usable mandate for the transfer"
		}
		return "", ""
	}
	return CodeTransferBasisInvalid, "unknown transfer basis type"
}

// usable reports whether ev is of kind, approved, not revoked and within
// its validity window.
func (e *Engine) usable(ev *Evidence, kind string, now time.Time) bool {
	code, _ := e.base(ev, kind, &genericCodes, now)
	return code == "" && !expired(ev, now)
}
