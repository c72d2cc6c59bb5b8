package policy

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/fieldvault/fieldvault/tokenizer"
	"github.com/fieldvault/fieldvault/vault/subject"
)

// ErrInvalidPolicy is wrapped by every error of [Load] and [New] about the
// policy's content.
var ErrInvalidPolicy = errors.New("policy: invalid policy")

// ValidationError names where a policy is invalid (a JSON path such as
// purposes.fraud_aml.grounds.legitimate_interest.tiers[1]) and why.
type ValidationError struct {
	Path   string
	Reason string
}

func (e *ValidationError) Error() string {
	if e.Path == "" {
		return "policy: " + e.Reason
	}
	return "policy: " + e.Path + ": " + e.Reason
}

// Unwrap returns [ErrInvalidPolicy].
func (e *ValidationError) Unwrap() error { return ErrInvalidPolicy }

func verr(path, format string, args ...any) error {
	return &ValidationError{Path: path, Reason: fmt.Sprintf(format, args...)}
}

// MaxFileSize is the largest policy file [Load] accepts.
const MaxFileSize = 1 << 20

// Load reads a policy file. The file is strict JSON: one object, no
// unknown fields, no duplicate keys, nothing after it. It is read over
// [Default]: a field the file leaves out keeps its default (a purpose the
// file lists replaces the default row as a whole; to switch a purpose off,
// list it with "enabled": false). The result is then validated against the
// model ([Policy.Validate]) and returned in canonical form.
func Load(data []byte) (*Policy, error) {
	if len(data) > MaxFileSize {
		return nil, verr("", "file larger than %d bytes", MaxFileSize)
	}
	if err := checkDuplicateKeys(data); err != nil {
		return nil, err
	}
	p := Default()
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(p); err != nil {
		return nil, decodeErr(err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, verr("", "unexpected data after the policy object")
	}
	if err := p.Validate(); err != nil {
		return nil, err
	}
	return p.canonical(), nil
}

func decodeErr(err error) error {
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	switch {
	case errors.As(err, &se):
		return verr("", "JSON syntax error at byte %d: %v", se.Offset, se)
	case errors.As(err, &te):
		return verr(te.Field, "expected %s, got JSON %s", te.Type, te.Value)
	case errors.Is(err, io.EOF):
		return verr("", "empty file")
	case errors.Is(err, io.ErrUnexpectedEOF):
		return verr("", "truncated JSON")
	}
	// Unknown fields: "json: unknown field \"x\"".
	return &ValidationError{Reason: strings.TrimPrefix(err.Error(), "json: ")}
}

// checkDuplicateKeys rejects an object with the same key twice (encoding/json
// would silently keep the last one).
func checkDuplicateKeys(data []byte) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var stack []jsonFrame
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return decodeErr(err)
		}
		if n := len(stack); n > 0 && stack[n-1].object && stack[n-1].expect {
			if d, ok := tok.(json.Delim); ok && d == '}' {
				stack = stack[:n-1]
				markValue(stack)
				continue
			}
			k, _ := tok.(string)
			if _, dup := stack[n-1].keys[k]; dup {
				return verr("", "duplicate key %q", k)
			}
			stack[n-1].keys[k] = struct{}{}
			stack[n-1].expect = false
			continue
		}
		switch tok {
		case json.Delim('{'):
			stack = append(stack, jsonFrame{object: true, keys: map[string]struct{}{}, expect: true})
		case json.Delim('['):
			stack = append(stack, jsonFrame{})
		case json.Delim(']'), json.Delim('}'):
			if len(stack) > 0 {
				stack = stack[:len(stack)-1]
			}
			markValue(stack)
		default:
			markValue(stack)
		}
	}
}

type jsonFrame struct {
	object bool
	keys   map[string]struct{}
	expect bool // the next token in an object is a key
}

// markValue records that a value was read in the enclosing container: in an
// object, the next token is a key again.
func markValue(stack []jsonFrame) {
	if n := len(stack); n > 0 && stack[n-1].object {
		stack[n-1].expect = true
	}
}

// floorTiers is the model's §2.4.2 table: the tiers at which each ground
// can ever unlock data. A policy may narrow it, never widen it.
var floorTiers = map[string][]tokenizer.Tier{
	GroundConsent:             {tokenizer.T0, tokenizer.T1, tokenizer.T2, tokenizer.T2Plus},
	GroundContract:            {tokenizer.T0, tokenizer.T1},
	GroundLegalObligation:     {tokenizer.T0, tokenizer.T1, tokenizer.T2, tokenizer.T2Plus},
	GroundAuthorityInstrument: {tokenizer.T0, tokenizer.T1, tokenizer.T2, tokenizer.T2Plus},
	GroundVitalInterest:       {tokenizer.T0, tokenizer.T2},
	GroundPublicTask:          {tokenizer.T0, tokenizer.T2},
	GroundLegitimateInterest:  {tokenizer.T0},
	GroundResearchStatistics:  {tokenizer.T0, tokenizer.T2},
	GroundLegalClaims:         {tokenizer.T0, tokenizer.T1, tokenizer.T2, tokenizer.T2Plus},
	GroundMadePublic:          {tokenizer.T0, tokenizer.T2},
	GroundDataSubjectRequest:  {tokenizer.T0, tokenizer.T1, tokenizer.T2, tokenizer.T2Plus},
}

// floorWhy explains a tier the floor forbids for a ground.
func floorWhy(ground string, t tokenizer.Tier) string {
	switch {
	case ground == GroundContract && t >= tokenizer.T2:
		return "s.26 has no contract exemption"
	case ground == GroundLegitimateInterest && t >= tokenizer.T2:
		return "s.26 has no legitimate-interest exemption"
	case ground == GroundLegitimateInterest && t == tokenizer.T1:
		return "the notice promises consent or law for T1 (seed §4.2); switch notice_elevated_tier off to relax it"
	case ground == GroundVitalInterest && t == tokenizer.T1:
		return "vital interest never reaches T1 (financial data, national ID)"
	case ground == GroundVitalInterest && t == tokenizer.T2Plus:
		return "vital interest never reaches criminal records"
	case ground == GroundPublicTask && t == tokenizer.T1:
		return "public task never reaches T1"
	case ground == GroundPublicTask && t == tokenizer.T2Plus:
		return "public task never reaches criminal records"
	case ground == GroundResearchStatistics:
		return "research reaches T0, and T2 only under s.26(5)(d)"
	case ground == GroundMadePublic:
		return "made_public is an s.26(3) ground for T2 (and harmless for T0)"
	}
	return "the model forbids it"
}

// widestStates etc. are the lists a policy may only narrow.
var (
	widestThirdParty = []string{PurposeDataSubjectRequest, PurposeEmergency, PurposeLegalAuthority}
	widestContractT1 = []string{"financial.bank_account", "financial.card_pan"}
	// minApprovals is the floor of approvals per kind: two people for an
	// instrument; "approved"/"verified" records need one.
	minApprovals = map[string]int{
		KindAuthorityInstrument: 2,
		KindLIA:                 1,
		KindDSR:                 1,
		KindResearchProtocol:    1,
		KindMandate:             1,
		KindMadePublic:          1,
	}
)

// Validate checks the policy against the vocabulary and the model's floor:
// known purposes, grounds, tiers, categories, kinds and reveal levels; no
// ground permitted at a tier §2.4.2 forbids it (legitimate interest or
// contract on T2, ...); a criminal-record (T2+) consent only for
// provider_vetting; contract on T1 only for payment; research_statistics
// masked only; the data_subject_request ground only for its purpose; the
// vital allowlist T0 (and T2 for the incapable-only list); state and
// third-party lists no wider than the model's; instruments approved by two
// people; switches within range. Errors are *ValidationError values
// wrapping [ErrInvalidPolicy].
func (p *Policy) Validate() error {
	if p == nil {
		return verr("", "nil policy")
	}
	if p.Version == "" {
		return verr("version", "required")
	}
	if len(p.Version) > 128 {
		return verr("version", "longer than 128 bytes")
	}
	for i := 0; i < len(p.Version); i++ {
		if c := p.Version[i]; c < 0x20 || c >= 0x7f {
			return verr("version", "must be printable ASCII")
		}
	}
	if err := p.validatePurposes(); err != nil {
		return err
	}
	if err := p.validateSwitches(); err != nil {
		return err
	}
	if err := checkSubset("contract_t1_categories", p.ContractT1Categories, widestContractT1, "only financial.card_pan and financial.bank_account (own payment)"); err != nil {
		return err
	}
	if err := p.validateVital(); err != nil {
		return err
	}
	ws := modelStates()
	for _, l := range []struct {
		path        string
		xs, widest  []string
		isGroundSet bool
	}{
		{"states.suspended_purposes", p.States.SuspendedPurposes, ws.SuspendedPurposes, false},
		{"states.restricted_purposes", p.States.RestrictedPurposes, ws.RestrictedPurposes, false},
		{"states.restricted_grounds", p.States.RestrictedGrounds, ws.RestrictedGrounds, true},
		{"states.erasure_pending_purposes", p.States.ErasurePendingPurposes, ws.ErasurePendingPurposes, false},
		{"states.legal_hold_grounds", p.States.LegalHoldGrounds, ws.LegalHoldGrounds, true},
		{"third_party_purposes", p.ThirdPartyPurposes, widestThirdParty, false},
	} {
		vocab, what := Purposes, "purpose"
		if l.isGroundSet {
			vocab, what = Grounds, "ground"
		}
		if err := checkVocab(l.path, l.xs, vocab, what); err != nil {
			return err
		}
		if err := checkSubset(l.path, l.xs, l.widest, "the model allows no more in this state"); err != nil {
			return err
		}
	}
	if err := p.validateRoles(); err != nil {
		return err
	}
	if err := p.validateApprovals(); err != nil {
		return err
	}
	if err := checkVocab("minors_alone_purposes", p.MinorsAlonePurposes, Purposes, "purpose"); err != nil {
		return err
	}
	for name, ts := range p.CategoryTiers {
		path := "category_tiers." + name
		cat, ok := tokenizer.Lookup(name)
		if !ok {
			return verr(path, "unknown category")
		}
		t := parseTier(ts)
		if t == tokenizer.TierInvalid {
			return verr(path, "unknown tier %q (T0, T1, T2 or T2+)", ts)
		}
		if t < cat.Tier {
			return verr(path, "may only raise the category's tier (%s), never lower it", cat.Tier)
		}
	}
	if m := p.ConsentExpiry.Months; m < 1 || m > 120 {
		return verr("consent_expiry.months", "must be 1 to 120")
	}
	if err := checkVocab("consent_expiry.purposes", p.ConsentExpiry.Purposes, Purposes, "purpose"); err != nil {
		return err
	}
	for i, h := range p.Holidays {
		path := "holidays[" + strconv.Itoa(i) + "]"
		if _, err := time.Parse("2006-01-02", h); err != nil || len(h) != 10 {
			return verr(path, "must be a date YYYY-MM-DD")
		}
		if slices.Contains(p.Holidays[:i], h) {
			return verr(path, "duplicate entry")
		}
	}
	return nil
}

func (p *Policy) validatePurposes() error {
	for name, r := range p.Purposes {
		path := "purposes." + name
		if !slices.Contains(Purposes, name) {
			return verr("purposes", "unknown purpose %q", name)
		}
		if r == nil {
			return verr(path, "must be an object, not null")
		}
		for g, gr := range r.Grounds {
			gpath := path + ".grounds." + g
			if !slices.Contains(Grounds, g) {
				return verr(path+".grounds", "unknown ground %q", g)
			}
			if gr == nil {
				return verr(gpath, "must be an object, not null")
			}
			if len(gr.Tiers) == 0 {
				return verr(gpath+".tiers", "required: at least one tier (remove the ground to forbid it)")
			}
			for i, ts := range gr.Tiers {
				tpath := gpath + ".tiers[" + strconv.Itoa(i) + "]"
				t := parseTier(ts)
				if t == tokenizer.TierInvalid {
					return verr(tpath, "unknown tier %q (T0, T1, T2 or T2+)", ts)
				}
				if slices.Contains(gr.Tiers[:i], ts) {
					return verr(tpath, "duplicate entry")
				}
				if !slices.Contains(floorTiers[g], t) {
					return verr(tpath, "%s not permitted for %s (%s)", ts, g, floorWhy(g, t))
				}
				if g == GroundConsent && t == tokenizer.T2Plus && name != PurposeProviderVetting {
					return verr(tpath, "criminal-record consent serves only provider_vetting (PDPC criminal-record Notification)")
				}
				if g == GroundContract && t == tokenizer.T1 && name != PurposePayment {
					return verr(tpath, "a contract unlocks T1 only for the subject's own payment")
				}
			}
			switch gr.MaxReveal {
			case RevealFull, RevealPartial, RevealMasked:
			case "":
				return verr(gpath+".max_reveal", "required (full, partial or masked)")
			default:
				return verr(gpath+".max_reveal", "unknown reveal level %q (full, partial or masked)", gr.MaxReveal)
			}
			if g == GroundResearchStatistics && gr.MaxReveal != RevealMasked {
				return verr(gpath+".max_reveal", "research_statistics releases pseudonymised output only: must be masked")
			}
			if g == GroundDataSubjectRequest && name != PurposeDataSubjectRequest {
				return verr(gpath, "the data_subject_request ground serves only the data_subject_request purpose")
			}
		}
	}
	return nil
}

func (p *Policy) validateSwitches() error {
	s := &p.Switches
	switch {
	case s.ContractTailDays < 0 || s.ContractTailDays > 3650:
		return verr("switches.contract_tail_days", "must be 0 to 3650")
	case s.VitalIncidentHours < 1 || s.VitalIncidentHours > 24:
		return verr("switches.vital_incident_validity_hours", "must be 1 to 24 (the model's incident validity is at most 24 h)")
	case s.CriminalRecordRetentionMonths < 1 || s.CriminalRecordRetentionMonths > 6:
		return verr("switches.criminal_record_retention_months", "must be 1 to 6 (the criminal-record retention is at most 6 months)")
	case s.DSRValidityDays < 1 || s.DSRValidityDays > 30:
		return verr("switches.dsr_validity_days", "must be 1 to 30 (s.30 ¶4)")
	}
	return nil
}

func (p *Policy) validateVital() error {
	if err := checkList("vital.categories", p.Vital.Categories); err != nil {
		return err
	}
	if err := checkList("vital.incapable_only", p.Vital.IncapableOnly); err != nil {
		return err
	}
	for i, name := range p.Vital.Categories {
		path := "vital.categories[" + strconv.Itoa(i) + "]"
		cat, ok := tokenizer.Lookup(name)
		if !ok {
			return verr(path, "unknown category %q", name)
		}
		if t := p.baseTier(cat); t != tokenizer.T0 {
			return verr(path, "%q is %s: vital interest reveals only T0 categories unconditionally", name, t)
		}
	}
	for i, name := range p.Vital.IncapableOnly {
		path := "vital.incapable_only[" + strconv.Itoa(i) + "]"
		cat, ok := tokenizer.Lookup(name)
		if !ok {
			return verr(path, "unknown category %q", name)
		}
		if t := p.baseTier(cat); t != tokenizer.T2 {
			return verr(path, "%q is %s: only T2 (s.26) categories can be unlocked by s.26(1)", name, t)
		}
		if slices.Contains(p.Vital.Categories, name) {
			return verr(path, "%q is also in vital.categories", name)
		}
	}
	return nil
}

// baseTier is the category's tier with the policy's raise-only overrides
// (not the notice-elevated switch).
func (p *Policy) baseTier(cat *tokenizer.Category) tokenizer.Tier {
	t := cat.Tier
	if o := parseTier(p.CategoryTiers[cat.Name]); o > t {
		t = o
	}
	return t
}

func (p *Policy) validateRoles() error {
	for _, l := range []struct {
		path string
		xs   []string
	}{
		{"roles.legal", p.Roles.Legal},
		{"roles.emergency", p.Roles.Emergency},
		{"roles.integrity", p.Roles.Integrity},
	} {
		if len(l.xs) == 0 {
			return verr(l.path, "required: at least one role name")
		}
		if err := checkList(l.path, l.xs); err != nil {
			return err
		}
	}
	return nil
}

func (p *Policy) validateApprovals() error {
	for kind, r := range p.Approvals {
		path := "approvals." + kind
		if !slices.Contains(EvidenceKinds, kind) {
			return verr("approvals", "unknown evidence kind %q", kind)
		}
		if r.Count < 0 || r.Count > 10 {
			return verr(path+".count", "must be 0 to 10")
		}
		if err := checkList(path+".roles", r.Roles); err != nil {
			return err
		}
	}
	for kind, min := range minApprovals {
		r := p.Approvals[kind]
		if r.Count < min {
			return verr("approvals."+kind+".count", "must be at least %d", min)
		}
		if kind == KindAuthorityInstrument && len(r.Roles) == 0 {
			return verr("approvals."+kind+".roles", "required: instruments are verified by the legal role")
		}
	}
	return nil
}

func checkList(path string, xs []string) error {
	for i, x := range xs {
		if x == "" {
			return verr(path+"["+strconv.Itoa(i)+"]", "empty entry")
		}
		if slices.Contains(xs[:i], x) {
			return verr(path+"["+strconv.Itoa(i)+"]", "duplicate entry %q", x)
		}
	}
	return nil
}

func checkVocab(path string, xs, vocab []string, what string) error {
	if err := checkList(path, xs); err != nil {
		return err
	}
	for i, x := range xs {
		if !slices.Contains(vocab, x) {
			return verr(path+"["+strconv.Itoa(i)+"]", "unknown %s %q", what, x)
		}
	}
	return nil
}

func checkSubset(path string, xs, widest []string, why string) error {
	if err := checkList(path, xs); err != nil {
		return err
	}
	for i, x := range xs {
		if !slices.Contains(widest, x) {
			return verr(path+"["+strconv.Itoa(i)+"]", "%q not allowed: %s", x, why)
		}
	}
	return nil
}

// NonWorkingDay returns the calendar for the suspension deadline
// (subject.SuspendWithCalendar): Saturdays, Sundays and the policy's
// holidays, or nil when Switches.HolidayExtension is off.
func (p *Policy) NonWorkingDay() func(day time.Time) bool {
	if !p.Switches.HolidayExtension {
		return nil
	}
	hol := make(map[string]struct{}, len(p.Holidays))
	for _, h := range p.Holidays {
		hol[h] = struct{}{}
	}
	return func(day time.Time) bool {
		d := day.In(subject.ICT)
		if wd := d.Weekday(); wd == time.Saturday || wd == time.Sunday {
			return true
		}
		_, ok := hol[d.Format("2006-01-02")]
		return ok
	}
}
