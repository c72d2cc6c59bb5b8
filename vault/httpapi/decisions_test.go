package httpapi_test

// The decision model of pdpa-model.md, proven through the HTTP API: every
// example decision of §3 (T-01 … T-37) with its fixtures set up by API
// calls only, a property test over a random population, and the clock
// boundaries (consent and instrument expiry, the seed §4.6 window, a
// minor's 10th and 20th birthdays).

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fieldvault/fieldvault/tokenizer"
	"github.com/fieldvault/fieldvault/vault"
	"github.com/fieldvault/fieldvault/vault/audit"
	"github.com/fieldvault/fieldvault/vault/client"
	"github.com/fieldvault/fieldvault/vault/consent"
	"github.com/fieldvault/fieldvault/vault/internal/vaulttest"
	"github.com/fieldvault/fieldvault/vault/policy"
	"github.com/fieldvault/fieldvault/vault/subject"
)

// ict is Asia/Bangkok.
var ict = time.FixedZone("ICT", 7*3600)

func at(y int, m time.Month, d, hh, mm, ss int) time.Time {
	return time.Date(y, m, d, hh, mm, ss, 0, ict)
}

func tp(t time.Time) *time.Time { return &t }

// modelClock is the §3 baseline clock, 2025-06-01T10:00+07:00.
var modelClock = at(2025, 6, 1, 10, 0, 0)

// modelRoles are the deployment roles the §3 examples name besides the
// built-in ones (roles are configuration, not API).
func modelRoles() vault.Roles {
	return vault.Roles{
		"crm-sender":           {Operations: []string{vault.OpDetokenize}, Categories: []string{"contact.phone", "contact.email"}},
		"counterparty-app":     {Operations: []string{vault.OpDetokenize}, Categories: []string{"contact.phone"}, MaxTier: "T0"},
		"trust-safety-vetting": {Operations: []string{vault.OpDetokenize}, Categories: []string{"criminal_record"}},
	}
}

// world is a running vault and the fixtures created in it through the API,
// by name.
type world struct {
	t     testing.TB
	ctx   context.Context
	st    *vaulttest.Stack
	clock *vaulttest.Clock

	mu      sync.Mutex
	callers map[string]*client.Client

	tok     map[string]string // fixture name -> token
	plain   map[string]string // fixture name -> normalised value
	tokSubj map[string]string // fixture name -> subject id
	con     map[string]string // consent name -> id
	ev      map[string]string // evidence name -> id
}

func newWorld(t testing.TB, start time.Time) *world {
	t.Helper()
	clock := vaulttest.NewClock(start)
	st := vaulttest.New(t, vaulttest.Options{Clock: clock, Roles: modelRoles()})
	return &world{
		t: t, ctx: context.Background(), st: st, clock: clock,
		callers: map[string]*client.Client{},
		tok:     map[string]string{}, plain: map[string]string{}, tokSubj: map[string]string{},
		con: map[string]string{}, ev: map[string]string{},
	}
}

// as returns a client of a principal with the given roles; the principal
// is named after the roles unless name says otherwise.
func (w *world) as(name string, roles ...string) *client.Client {
	w.t.Helper()
	if len(roles) == 0 {
		roles = []string{name}
	}
	key := name + "|" + strings.Join(roles, ",")
	w.mu.Lock()
	defer w.mu.Unlock()
	if c, ok := w.callers[key]; ok {
		return c
	}
	c := w.st.Client(w.t, "p-"+name, roles...)
	w.callers[key] = c
	return c
}

func (w *world) must(err error, what string) {
	w.t.Helper()
	if err != nil {
		w.t.Fatalf("%s: %v", what, err)
	}
}

func (w *world) subject(id string, req vault.PutSubjectRequest) {
	w.t.Helper()
	if req.Type == "" {
		req.Type = subject.DataSubject
	}
	_, err := w.as("dpo").PutSubject(w.ctx, id, &req)
	w.must(err, "PUT subject "+id)
}

func normalise(t testing.TB, cat, value string) string {
	t.Helper()
	c, ok := tokenizer.Lookup(cat)
	if !ok {
		t.Fatalf("unknown category %s", cat)
	}
	n, err := c.Normalize(value)
	if err != nil {
		t.Fatalf("normalise %s: %v", cat, err)
	}
	return n
}

// tokenize tokenises one value of subj under a fixture name.
func (w *world) tokenize(name, subj, cat, value string) string {
	w.t.Helper()
	res, err := w.as("service").Tokenize(w.ctx, &vault.TokenizeRequest{Items: []vault.TokenizeItem{
		{Category: cat, Value: value, Subject: subj}}})
	w.must(err, "tokenize "+name)
	if res.Items[0].Error != nil || res.Items[0].Token == "" {
		w.t.Fatalf("tokenize %s: %+v", name, res.Items[0].Error)
	}
	w.tok[name] = res.Items[0].Token
	w.plain[name] = normalise(w.t, cat, value)
	w.tokSubj[name] = subj
	return res.Items[0].Token
}

func subjectGrant(id string) []consent.Grantor {
	return []consent.Grantor{{Party: consent.PartySubject, ID: id, Verified: true}}
}

func guardianGrant() []consent.Grantor {
	return []consent.Grantor{{Party: consent.PartyGuardian, ID: "G1", Verified: true,
		VerificationRef: "DOC-77", Relationship: "parent"}}
}

// grant records a consent under a fixture name (notice version and an
// in-app collection method unless set).
func (w *world) grant(name string, req vault.GrantConsentRequest) string {
	w.t.Helper()
	if req.NoticeVersion == "" {
		req.NoticeVersion = "2020-09-15"
	}
	if req.CollectionMethod == "" {
		req.CollectionMethod = consent.MethodInApp
	}
	c, err := w.as("dpo").GrantConsent(w.ctx, &req)
	w.must(err, "grant consent "+name)
	w.con[name] = c.ID
	return c.ID
}

// evidence registers evidence under a fixture name, created by creator and
// approved by each approver in turn.
func (w *world) evidence(name string, creator *client.Client, req vault.CreateEvidenceRequest, approvers ...*client.Client) string {
	w.t.Helper()
	e, err := creator.CreateEvidence(w.ctx, &req)
	w.must(err, "create evidence "+name)
	for _, a := range approvers {
		_, err := a.ApproveEvidence(w.ctx, e.ID)
		w.must(err, "approve evidence "+name)
	}
	w.ev[name] = e.ID
	return e.ID
}

// auditRecords reads the vault's audit log (read-only) and returns the
// decision records by decision id. The HTTP API exposes no alerts, so the
// DPO and incident alerts are checked here.
func (w *world) auditRecords() map[string]*audit.Record {
	w.t.Helper()
	src, err := audit.OpenFileSink(audit.FileConfig{Dir: w.st.AuditDir, ReadOnly: true})
	w.must(err, "open audit log read-only")
	defer src.Close()
	out := map[string]*audit.Record{}
	for r, err := range audit.Records(w.ctx, src) {
		w.must(err, "read audit log")
		if r.Type == audit.TypeDecision {
			out[r.DecisionID] = r
		}
	}
	return out
}

// buildModelWorld sets up the §3 baseline fixtures through the API, and the
// fixtures the individual examples name (fixtures_test.go of package
// policy has the same world at engine level).
func buildModelWorld(t testing.TB) *world {
	t.Helper()
	// U4 is suspended on 2025-03-01 10:00 ICT (T-33): its fixtures are
	// made then.
	w := newWorld(t, at(2025, 3, 1, 10, 0, 0))
	w.subject("U4", vault.PutSubjectRequest{BirthDate: "1988-08-08"})
	w.tokenize("phone_U4", "U4", "contact.phone", "089-444-4444")
	w.tokenize("nid_U4", "U4", "govid.th_national_id", thaiID("110370207184"))
	w.grant("C9", vault.GrantConsentRequest{Subject: "U4", GrantedBy: subjectGrant("U4"),
		Categories: []string{"govid.th_national_id"},
		Purposes:   []string{policy.PurposeIdentityVerification, policy.PurposeAccountIntegrity},
		GrantedAt:  tp(at(2025, 1, 1, 0, 0, 0)), ExpiresAt: tp(at(2027, 1, 1, 0, 0, 0))})
	_, err := w.as("trust-safety").Suspend(w.ctx, "U4", &vault.SuspendRequest{Reason: "false ID data"})
	w.must(err, "suspend U4")

	w.clock.Set(modelClock)
	w.subject("U1", vault.PutSubjectRequest{BirthDate: "1990-04-01"})
	w.subject("U2", vault.PutSubjectRequest{BirthDate: "1985-12-24"})
	w.subject("U3", vault.PutSubjectRequest{BirthDate: "1979-07-07"})
	w.subject("P1", vault.PutSubjectRequest{BirthDate: "1992-02-02"})
	w.subject("M9", vault.PutSubjectRequest{BirthDate: "2016-01-15"})
	w.subject("EC1", vault.PutSubjectRequest{Type: subject.ThirdParty, LinkedTo: "U1"})

	w.tokenize("tok_phone_U1", "U1", "contact.phone", "081-234-5678")
	w.tokenize("tok_rel_U1", "U1", "demographic.religion", "Theravada Buddhist (U1)")
	w.tokenize("tok_nid_U1", "U1", "govid.th_national_id", thaiID("110370207183"))
	w.tokenize("email_U1", "U1", "contact.email", "somchai.u1@gmail.com")
	w.tokenize("loc_U1", "U1", "location.precise", "13.7563,100.5018")
	w.tokenize("health_U1", "U1", "health", "asthma, inhaler daily (U1)")
	w.tokenize("bank_U1", "U1", "financial.bank_account", "123-4-56789-0")
	w.tokenize("phone_U2", "U2", "contact.phone", "082-222-2222")
	w.tokenize("crim_U3", "U3", "criminal_record", "no convictions, certificate 2025/0001 (U3)")
	w.tokenize("phone_P1", "P1", "contact.phone", "083-111-9876")
	w.tokenize("phone_M9", "M9", "contact.phone", "084-999-0009")
	w.tokenize("ec_EC1", "EC1", "third_party.emergency_contact", "Malee (mother) 085-555-0101")

	base := func(subj string, cats, purposes []string) vault.GrantConsentRequest {
		return vault.GrantConsentRequest{Subject: subj, GrantedBy: subjectGrant(subj), Categories: cats,
			Purposes: purposes, GrantedAt: tp(at(2025, 1, 1, 0, 0, 0)), ExpiresAt: tp(at(2027, 1, 1, 0, 0, 0))}
	}
	phoneEmail := []string{"contact.phone", "contact.email"}
	mkt := []string{policy.PurposeMarketing}
	w.grant("C1", base("U1", phoneEmail, mkt))
	c0 := base("U1", phoneEmail, mkt)
	c0.CollectionMethod = consent.MethodTOSAcceptance
	w.grant("C0", c0)
	cd := base("M9", []string{"contact.phone"}, mkt)
	cd.CollectionMethod = consent.MethodDeemed
	cd.GrantedBy = guardianGrant()
	w.grant("CD", cd)
	c5 := base("U3", []string{"criminal_record"}, []string{policy.PurposeProviderVetting})
	c5.Explicit = true
	c5.GrantedAt, c5.ExpiresAt = tp(at(2025, 5, 1, 0, 0, 0)), tp(at(2025, 11, 1, 0, 0, 0))
	w.grant("C5", c5)
	w.grant("C6", base("M9", []string{"contact.phone"}, mkt))
	c7 := base("M9", []string{"contact.phone"}, mkt)
	c7.GrantedBy = guardianGrant()
	w.grant("C7", c7)
	c8 := base("U1", []string{"contact.phone"}, []string{policy.PurposePartnerFinancialOffers})
	c8.Recipients = []consent.Recipient{{ID: "BankSG", Country: "SG"}}
	w.grant("C8", c8)

	dpo, emergency := w.as("dpo"), w.as("emergency")
	legal1, legal2 := w.as("legal-1", "legal"), w.as("legal-2", "legal")
	w.evidence("booking-77", dpo, vault.CreateEvidenceRequest{Kind: policy.KindContract,
		Subjects: []string{"U1", "P1"}, Categories: []string{"contact.phone"},
		Purposes:  []string{policy.PurposeServiceDelivery},
		ValidFrom: tp(at(2025, 5, 20, 0, 0, 0)), ValidUntil: tp(at(2025, 6, 30, 0, 0, 0))})
	w.evidence("provider-agreement-U3", dpo, vault.CreateEvidenceRequest{Kind: policy.KindContract,
		Subjects: []string{"U3"}, Categories: []string{"criminal_record", "contact.phone"},
		Purposes: []string{policy.PurposeProviderVetting}, ValidFrom: tp(at(2025, 1, 1, 0, 0, 0))})
	w.evidence("LIA-9", dpo, vault.CreateEvidenceRequest{Kind: policy.KindLIA,
		Categories: []string{"location.precise", "health"}, Purposes: []string{policy.PurposeFraudAML},
		ValidUntil: tp(at(2026, 1, 1, 0, 0, 0))}, dpo)
	w.evidence("LIA-4", dpo, vault.CreateEvidenceRequest{Kind: policy.KindLIA,
		Categories: []string{"contact.email"}, Purposes: mkt}, dpo)
	w.evidence("ORD-1", legal1, vault.CreateEvidenceRequest{Kind: policy.KindAuthorityInstrument,
		Subjects: []string{"U1"}, Categories: []string{"govid.th_national_id", "contact.phone"},
		ValidFrom: tp(at(2025, 5, 30, 0, 0, 0)), ValidUntil: tp(at(2026, 1, 1, 0, 0, 0)), // through 2025-12-31 ICT
		Attributes: map[string]string{"authority": "Thai court", "jurisdiction": "TH", "reference": "Or. 123/2568"}},
		legal1, legal2)
	w.evidence("INC-5", emergency, vault.CreateEvidenceRequest{Kind: policy.KindIncident,
		Subjects: []string{"U1"}, ValidFrom: tp(at(2025, 6, 1, 9, 0, 0)),
		Attributes: map[string]string{"danger": "life", "person_at_risk": "subject"}})
	w.evidence("DSR-1", dpo, vault.CreateEvidenceRequest{Kind: policy.KindDSR, Subjects: []string{"U1"},
		Attributes: map[string]string{policy.AttrRequester: "U1"}}, dpo)
	w.evidence("DSR-2", dpo, vault.CreateEvidenceRequest{Kind: policy.KindDSR, Subjects: []string{"U1"},
		Attributes: map[string]string{policy.AttrRequester: "X9"}}, dpo)
	w.evidence("booking-U4", dpo, vault.CreateEvidenceRequest{Kind: policy.KindContract,
		Subjects: []string{"U4"}, Categories: []string{"contact.phone"},
		Purposes:  []string{policy.PurposeServiceDelivery},
		ValidFrom: tp(at(2025, 1, 1, 0, 0, 0)), ValidUntil: tp(at(2025, 12, 31, 0, 0, 0))})
	return w
}

// thaiID completes 12 digits with the Thai national ID check digit.
func thaiID(d12 string) string {
	s := 0
	for i := 0; i < 12; i++ {
		s += int(d12[i]-'0') * (13 - i)
	}
	return d12 + strconv.Itoa((11-s%11)%10)
}

// luhnCard completes 15 digits with a Luhn check digit.
func luhnCard(d15 string) string {
	sum := 0
	for i := 0; i < 15; i++ {
		d := int(d15[14-i] - '0')
		if i%2 == 0 {
			d *= 2
			if d > 9 {
				d -= 9
			}
		}
		sum += d
	}
	return d15 + strconv.Itoa((10-sum%10)%10)
}

// decisionCase is one §3 example.
type decisionCase struct {
	name       string
	setup      func(w *world) // fixture changes, through the API
	clock      time.Time      // decision time; zero: the model clock
	role       string         // the caller's role; "" is "service"
	toks       []string
	purpose    string
	ground     string
	ref        string // fixture name of the consent or evidence
	reveal     string
	recipient  *policy.Recipient
	hint       string
	onBehalfOf string

	want   string // policy.Allow, AllowMasked or Deny, for every token
	code   string
	alerts []string // alerts of the audit record
	iri    string   // DPV IRI of the ground, for allows
	after  func(t *testing.T, w *world, res *vault.DetokenizeResult, rec *audit.Record)
}

// run makes the case's request through the API as the case's role.
func (w *world) run(c *decisionCase) (*vault.DetokenizeResult, error) {
	w.t.Helper()
	ref := c.ref
	if ref != "" {
		var ok bool
		if c.ground == policy.GroundConsent {
			ref, ok = w.con[c.ref]
		} else {
			ref, ok = w.ev[c.ref]
		}
		if !ok {
			w.t.Fatalf("no fixture %s", c.ref)
		}
	}
	req := &vault.DetokenizeRequest{Purpose: c.purpose, Ground: &policy.Ground{Type: c.ground, Ref: ref},
		Recipient: c.recipient, Reveal: c.reveal, CategoryHint: c.hint, OnBehalfOf: c.onBehalfOf}
	for _, name := range c.toks {
		tok, ok := w.tok[name]
		if !ok {
			w.t.Fatalf("no token fixture %s", name)
		}
		req.Tokens = append(req.Tokens, tok)
	}
	role := c.role
	if role == "" {
		role = "service"
	}
	return w.as(role).Detokenize(w.ctx, req)
}

// checkOutcome asserts the answer for every token of the case.
func (w *world) checkOutcome(t *testing.T, c *decisionCase, res *vault.DetokenizeResult, err error) {
	t.Helper()
	if res == nil {
		t.Fatalf("no result: %v", err)
	}
	if len(res.Items) != len(c.toks) {
		t.Fatalf("%d items for %d tokens", len(res.Items), len(c.toks))
	}
	for i, name := range c.toks {
		it := res.Items[i]
		plain := w.plain[name]
		if it.Token != w.tok[name] {
			t.Errorf("%s: item token does not match the request", name)
		}
		switch c.want {
		case policy.Allow:
			if it.Denied != nil {
				t.Errorf("%s: denied %s (%s), want ALLOW", name, it.Denied.Code, it.Denied.Message)
			} else if it.Value != plain {
				t.Errorf("%s: value %q, want the tokenised value %q", name, it.Value, plain)
			}
		case policy.AllowMasked:
			switch {
			case it.Denied != nil:
				t.Errorf("%s: denied %s (%s), want ALLOW_MASKED", name, it.Denied.Code, it.Denied.Message)
			case it.Value != "":
				t.Errorf("%s: full value released, want masked", name)
			case it.Masked == "" || it.Masked == plain:
				t.Errorf("%s: masked output %q is empty or the value itself", name, it.Masked)
			}
		case policy.Deny:
			if it.Value != "" || it.Masked != "" {
				t.Errorf("%s: released %q/%q, want DENY %s", name, it.Value, it.Masked, c.code)
			}
			if it.Denied == nil || it.Denied.Code != c.code {
				t.Errorf("%s: denied = %+v, want %s", name, it.Denied, c.code)
			}
		}
	}
	if c.want == policy.Deny {
		var ae *client.APIError
		if !errors.As(err, &ae) || ae.Status != 403 || ae.Code != c.code {
			t.Errorf("every token denied: error = %v, want 403 %s", err, c.code)
		}
	} else if err != nil {
		t.Errorf("error %v, want 200", err)
	}
}

// checkAudit asserts the decision's audit record and the access report of
// every subject whose token was asked for.
func (w *world) checkAudit(t *testing.T, c *decisionCase, res *vault.DetokenizeResult) *audit.Record {
	t.Helper()
	rec := w.auditRecords()[res.DecisionID]
	if rec == nil {
		t.Fatalf("no audit record for decision %s", res.DecisionID)
	}
	if rec.Decision != c.want {
		t.Errorf("audit decision %s, want %s", rec.Decision, c.want)
	}
	if !slices.Equal(rec.Alerts, c.alerts) {
		t.Errorf("audit alerts %v, want %v", rec.Alerts, c.alerts)
	}
	if c.want == policy.Deny {
		if !slices.Equal(rec.Reasons, []string{c.code}) || rec.Released != 0 {
			t.Errorf("audit reasons %v released %d, want [%s] 0", rec.Reasons, rec.Released, c.code)
		}
	} else {
		if rec.Released != len(c.toks) {
			t.Errorf("audit released %d, want %d", rec.Released, len(c.toks))
		}
		if rec.Ground == nil || rec.Ground.IRI == "" || rec.Ground.Section == "" {
			t.Errorf("allow without the ground's IRI and section in the audit: %+v", rec.Ground)
		} else if c.iri != "" && rec.Ground.IRI != c.iri {
			t.Errorf("audit ground IRI %s, want %s", rec.Ground.IRI, c.iri)
		}
	}
	// The data-subject access report (s.30) shows the decision to each
	// subject concerned, as a refusal where it was one (s.39(7)).
	perSubject := map[string]int{}
	if c.code == policy.CodeTokenErased {
		// An erased token's decision is not attributed to its subject:
		// see TestErasedTokenDecisionAudit.
		return rec
	}
	for _, name := range c.toks {
		perSubject[w.tokSubj[name]]++
	}
	for subj, n := range perSubject {
		rep, err := w.as("dpo").AccessReport(w.ctx, subj)
		if err != nil {
			t.Fatalf("access report of %s: %v", subj, err)
		}
		i := slices.IndexFunc(rep.Entries, func(e vault.AccessReportEntry) bool { return e.DecisionID == res.DecisionID })
		if i < 0 {
			t.Errorf("the access report of %s does not list decision %s", subj, res.DecisionID)
			continue
		}
		e := rep.Entries[i]
		if e.Purpose != c.purpose || e.Ground != c.ground {
			t.Errorf("report of %s: purpose/ground %s/%s, want %s/%s", subj, e.Purpose, e.Ground, c.purpose, c.ground)
		}
		if c.want == policy.Deny {
			if e.Denied != n || e.Allowed != 0 || !slices.Equal(e.Reasons, []string{c.code}) {
				t.Errorf("report of %s: released %d denied %d reasons %v, want 0 %d [%s]", subj, e.Allowed, e.Denied, e.Reasons, n, c.code)
			}
		} else if e.Allowed != n || e.Denied != 0 {
			t.Errorf("report of %s: released %d denied %d, want %d 0", subj, e.Allowed, e.Denied, n)
		}
	}
	return rec
}

func modelCases() []decisionCase {
	mkt := policy.PurposeMarketing
	full := policy.RevealFull
	return []decisionCase{
		{name: "T-01 consent covers category and purpose", role: "crm-sender",
			toks: []string{"tok_phone_U1"}, purpose: mkt, ground: policy.GroundConsent, ref: "C1", reveal: full,
			want: policy.Allow, iri: policy.IRIConsent,
			after: func(t *testing.T, w *world, res *vault.DetokenizeResult, rec *audit.Record) {
				// The audit holds a snapshot of the consent as it stood.
				s := rec.Evidence
				if s == nil || s.Kind != "consent" || s.Status != consent.StatusGiven || s.NoticeVersion != "2020-09-15" || s.RecordSHA256 == "" {
					t.Errorf("consent snapshot %+v", s)
				}
			}},
		{name: "T-03 marketing consent does not cover partner offers",
			toks: []string{"tok_phone_U1"}, purpose: policy.PurposePartnerFinancialOffers, ground: policy.GroundConsent, ref: "C1", reveal: full,
			want: policy.Deny, code: policy.CodePurposeNotCovered},
		{name: "T-04 consent for phone and email used for religion",
			toks: []string{"tok_rel_U1"}, purpose: mkt, ground: policy.GroundConsent, ref: "C1", reveal: full,
			want: policy.Deny, code: policy.CodeCategoryNotCovered},
		{name: "T-07 consent expired", clock: at(2027, 1, 1, 0, 0, 1),
			toks: []string{"tok_phone_U1"}, purpose: mkt, ground: policy.GroundConsent, ref: "C1", reveal: full,
			want: policy.Deny, code: policy.CodeConsentExpired},
		{name: "T-08 consent of another subject",
			toks: []string{"phone_U2"}, purpose: mkt, ground: policy.GroundConsent, ref: "C1", reveal: full,
			want: policy.Deny, code: policy.CodeSubjectMismatch},
		{name: "T-09 category hint does not match the token",
			toks: []string{"tok_rel_U1"}, purpose: mkt, ground: policy.GroundConsent, ref: "C1", reveal: full, hint: "contact.phone",
			want: policy.Deny, code: policy.CodeCategoryMismatch},
		{name: "T-10a terms acceptance is not consent",
			toks: []string{"tok_phone_U1"}, purpose: mkt, ground: policy.GroundConsent, ref: "C0", reveal: full,
			want: policy.Deny, code: policy.CodeConsentBundledInvalid},
		{name: "T-10b a minor's deemed consent is not consent",
			toks: []string{"phone_M9"}, purpose: mkt, ground: policy.GroundConsent, ref: "CD", reveal: full,
			want: policy.Deny, code: policy.CodeConsentBundledInvalid},
		{name: "T-12a counterparty gets the provider's phone masked", role: "counterparty-app",
			toks: []string{"phone_P1"}, purpose: policy.PurposeServiceDelivery, ground: policy.GroundContract, ref: "booking-77", reveal: policy.RevealPartial,
			want: policy.AllowMasked, iri: policy.IRIContract,
			after: func(t *testing.T, w *world, res *vault.DetokenizeResult, rec *audit.Record) {
				// Partial: the last four digits stay, the middle does not.
				m := res.Items[0].Masked
				if !strings.HasSuffix(m, "9876") || strings.Contains(m, "8311") {
					t.Errorf("partial phone mask %q", m)
				}
			}},
		{name: "T-12a' full asked, partial given", role: "counterparty-app",
			toks: []string{"phone_P1"}, purpose: policy.PurposeServiceDelivery, ground: policy.GroundContract, ref: "booking-77", reveal: full,
			want: policy.AllowMasked, iri: policy.IRIContract},
		{name: "T-12b contract ended 200 days ago (tail 90)", role: "counterparty-app",
			setup: func(w *world) {
				w.evidence("booking-77-ended", w.as("dpo"), vault.CreateEvidenceRequest{Kind: policy.KindContract,
					Subjects: []string{"U1", "P1"}, Categories: []string{"contact.phone"},
					Purposes:  []string{policy.PurposeServiceDelivery},
					ValidFrom: tp(modelClock.AddDate(0, 0, -260)), ValidUntil: tp(modelClock.AddDate(0, 0, -200))})
			},
			toks: []string{"phone_P1"}, purpose: policy.PurposeServiceDelivery, ground: policy.GroundContract, ref: "booking-77-ended", reveal: policy.RevealPartial,
			want: policy.Deny, code: policy.CodeContractInactive},
		{name: "T-13 contract never unlocks a criminal record",
			toks: []string{"crim_U3"}, purpose: policy.PurposeProviderVetting, ground: policy.GroundContract, ref: "provider-agreement-U3", reveal: full,
			want: policy.Deny, code: policy.CodeGroundNotPermittedForTier},
		{name: "T-14a explicit consent for vetting", role: "trust-safety-vetting",
			toks: []string{"crim_U3"}, purpose: policy.PurposeProviderVetting, ground: policy.GroundConsent, ref: "C5", reveal: full,
			want: policy.Allow, iri: policy.IRIExplicitConsent},
		{name: "T-14b the vetting consent used for marketing", role: "trust-safety-vetting",
			toks: []string{"crim_U3"}, purpose: mkt, ground: policy.GroundConsent, ref: "C5", reveal: full,
			want: policy.Deny, code: policy.CodePurposeNotCovered},
		{name: "T-16 legitimate interest for fraud on precise location",
			toks: []string{"loc_U1"}, purpose: policy.PurposeFraudAML, ground: policy.GroundLegitimateInterest, ref: "LIA-9", reveal: full,
			want: policy.Allow, iri: policy.IRILegitimateInterest},
		{name: "T-17 legitimate interest never reaches health",
			toks: []string{"health_U1"}, purpose: policy.PurposeFraudAML, ground: policy.GroundLegitimateInterest, ref: "LIA-9", reveal: full,
			want: policy.Deny, code: policy.CodeGroundNotPermittedForTier},
		{name: "T-19 upheld direct-marketing objection",
			setup: func(w *world) {
				_, err := w.as("dpo").UpholdObjection(w.ctx, "U1", &vault.ObjectionRequest{Purpose: mkt})
				w.must(err, "uphold objection")
			},
			toks: []string{"email_U1"}, purpose: mkt, ground: policy.GroundLegitimateInterest, ref: "LIA-4", reveal: full,
			want: policy.Deny, code: policy.CodeObjectionUpheld},
		{name: "T-20 court order verified by two", role: "legal",
			toks: []string{"tok_nid_U1"}, purpose: policy.PurposeLegalAuthority, ground: policy.GroundAuthorityInstrument, ref: "ORD-1", reveal: full,
			want: policy.Allow, alerts: []string{policy.AlertDPO}, iri: policy.IRILegalObligation,
			after: func(t *testing.T, w *world, res *vault.DetokenizeResult, rec *audit.Record) {
				// The s.39(6) entry: an exempt disclosure under s.24(6),
				// with the instrument's authority, expiry and approvers.
				if rec.Ground.Section != "PDPA s.24(6)" {
					t.Errorf("section %q, want PDPA s.24(6)", rec.Ground.Section)
				}
				s := rec.Evidence
				if s == nil || s.Kind != policy.KindAuthorityInstrument || s.Authority != "Thai court" ||
					!s.Expires.Equal(at(2026, 1, 1, 0, 0, 0)) || len(s.Approvals) != 2 {
					t.Errorf("instrument snapshot %+v", s)
				}
			}},
		{name: "T-21a court order expired", role: "legal", clock: at(2026, 1, 1, 0, 0, 1),
			toks: []string{"tok_nid_U1"}, purpose: policy.PurposeLegalAuthority, ground: policy.GroundAuthorityInstrument, ref: "ORD-1", reveal: full,
			want: policy.Deny, code: policy.CodeInstrumentExpired},
		{name: "T-21b subject outside the order's scope", role: "legal",
			toks: []string{"phone_U2"}, purpose: policy.PurposeLegalAuthority, ground: policy.GroundAuthorityInstrument, ref: "ORD-1", reveal: full,
			want: policy.Deny, code: policy.CodeInstrumentScope},
		{name: "T-23 phone and emergency contact under an open incident", role: "emergency",
			toks: []string{"tok_phone_U1", "ec_EC1"}, purpose: policy.PurposeEmergency, ground: policy.GroundVitalInterest, ref: "INC-5", reveal: full,
			want: policy.Allow, alerts: []string{policy.AlertIncident}, iri: policy.IRIVitalInterest},
		{name: "T-25a bank account is not needed to avert a danger", role: "emergency",
			toks: []string{"bank_U1"}, purpose: policy.PurposeEmergency, ground: policy.GroundVitalInterest, ref: "INC-5", reveal: full,
			want: policy.Deny, code: policy.CodeVitalCategoryNotAllowed},
		{name: "T-25b vital interest cannot serve marketing", role: "emergency",
			toks: []string{"tok_phone_U1"}, purpose: mkt, ground: policy.GroundVitalInterest, ref: "INC-5", reveal: full,
			want: policy.Deny, code: policy.CodeGroundNotPermittedForPurpose},
		{name: "T-26 child under 10 consenting alone",
			toks: []string{"phone_M9"}, purpose: mkt, ground: policy.GroundConsent, ref: "C6", reveal: full,
			want: policy.Deny, code: policy.CodeGuardianConsentRequired},
		{name: "T-27 verified guardian for a child under 10",
			toks: []string{"phone_M9"}, purpose: mkt, ground: policy.GroundConsent, ref: "C7", reveal: full,
			want: policy.Allow, iri: policy.IRIConsent},
		{name: "T-30 partner in SG, no transfer basis",
			toks: []string{"tok_phone_U1"}, purpose: policy.PurposePartnerFinancialOffers, ground: policy.GroundConsent, ref: "C8", reveal: full,
			recipient: &policy.Recipient{ID: "BankSG", Country: "SG"},
			want:      policy.Deny, code: policy.CodeTransferBasisMissing},
		{name: "T-31 explicit consent listing SG, informed of inadequacy",
			setup: func(w *world) {
				w.grant("C8x", vault.GrantConsentRequest{Subject: "U1", GrantedBy: subjectGrant("U1"), Explicit: true,
					Categories: []string{"contact.phone"}, Purposes: []string{policy.PurposePartnerFinancialOffers},
					Recipients:   []consent.Recipient{{ID: "BankSG", Country: "SG"}},
					Destinations: []string{"SG"}, InformedOfInadequacy: true,
					GrantedAt: tp(at(2025, 1, 1, 0, 0, 0)), ExpiresAt: tp(at(2027, 1, 1, 0, 0, 0))})
			},
			toks: []string{"tok_phone_U1"}, purpose: policy.PurposePartnerFinancialOffers, ground: policy.GroundConsent, ref: "C8x", reveal: full,
			recipient: &policy.Recipient{ID: "BankSG", Country: "SG"},
			want:      policy.Allow, iri: policy.IRIConsent},
		{name: "T-33a suspended account, service delivery", clock: at(2025, 3, 10, 12, 0, 0),
			toks: []string{"phone_U4"}, purpose: policy.PurposeServiceDelivery, ground: policy.GroundContract, ref: "booking-U4", reveal: policy.RevealPartial,
			want: policy.Deny, code: policy.CodeAccountSuspended},
		{name: "T-33b suspended account, integrity review", role: "trust-safety", clock: at(2025, 3, 10, 12, 0, 0),
			toks: []string{"nid_U4"}, purpose: policy.PurposeAccountIntegrity, ground: policy.GroundConsent, ref: "C9", reveal: full,
			want: policy.Allow, iri: policy.IRIConsent},
		{name: "T-33b' suspended account, integrity review without the integrity role", role: "service", clock: at(2025, 3, 10, 12, 0, 0),
			toks: []string{"nid_U4"}, purpose: policy.PurposeAccountIntegrity, ground: policy.GroundConsent, ref: "C9", reveal: full,
			want: policy.Deny, code: policy.CodeRoleNotPermitted},
		{name: "T-35 erased subject, even with a valid instrument", role: "legal",
			setup: func(w *world) { eraseU4(w) },
			toks:  []string{"phone_U4", "nid_U4"}, purpose: policy.PurposeLegalAuthority, ground: policy.GroundAuthorityInstrument, ref: "ORD-U4", reveal: full,
			want: policy.Deny, code: policy.CodeTokenErased,
			after: func(t *testing.T, w *world, res *vault.DetokenizeResult, rec *audit.Record) {
				// U4's audit trail outlives the erasure: the decisions made
				// before it and the erasure itself are still reported.
				rep, err := w.as("dpo").AccessReport(w.ctx, "U4")
				if err != nil {
					t.Fatalf("access report after erasure: %v", err)
				}
				var before, erased bool
				for _, e := range rep.Entries {
					if e.DecisionID == w.ev["decision-before-erasure"] && e.Allowed == 2 && e.Purpose == policy.PurposeLegalAuthority {
						before = true
					}
					if e.Action == "subject.erase" {
						erased = true
					}
				}
				if !before || !erased {
					t.Errorf("after erasure the report lacks the earlier decision (%v) or the erasure (%v): %+v", before, erased, rep.Entries)
				}
			}},
		{name: "T-37a verified DSR by the subject, all categories",
			toks:    []string{"tok_phone_U1", "tok_rel_U1", "tok_nid_U1", "email_U1", "loc_U1", "health_U1", "bank_U1"},
			purpose: policy.PurposeDataSubjectRequest, ground: policy.GroundDataSubjectRequest, ref: "DSR-1", reveal: full, onBehalfOf: "U1",
			want: policy.Allow, iri: policy.IRIDataSubjectRight},
		{name: "T-37b DSR by someone without a link",
			toks:    []string{"tok_rel_U1"},
			purpose: policy.PurposeDataSubjectRequest, ground: policy.GroundDataSubjectRequest, ref: "DSR-2", reveal: full, onBehalfOf: "X9",
			want: policy.Deny, code: policy.CodeDSRRequesterMismatch},
	}
}

// eraseU4 is T-35's setup: an instrument covering U4, a decision under it
// while U4 is still there, then the erasure job.
func eraseU4(w *world) {
	w.t.Helper()
	legal1, legal2 := w.as("legal-1", "legal"), w.as("legal-2", "legal")
	w.evidence("ORD-U4", legal1, vault.CreateEvidenceRequest{Kind: policy.KindAuthorityInstrument,
		Subjects: []string{"U4"}, Categories: []string{"contact.phone", "govid.th_national_id"},
		ValidFrom: tp(at(2025, 5, 30, 0, 0, 0)), ValidUntil: tp(at(2026, 1, 1, 0, 0, 0)),
		Attributes: map[string]string{"authority": "Thai court", "jurisdiction": "TH", "reference": "Or. 456/2568"}},
		legal1, legal2)
	res, err := w.as("legal").Detokenize(w.ctx, &vault.DetokenizeRequest{Purpose: policy.PurposeLegalAuthority,
		Ground: &policy.Ground{Type: policy.GroundAuthorityInstrument, Ref: w.ev["ORD-U4"]}, Reveal: policy.RevealFull,
		Tokens: []string{w.tok["phone_U4"], w.tok["nid_U4"]}})
	w.must(err, "decision before the erasure")
	if res.Items[0].Value != w.plain["phone_U4"] || res.Items[1].Value != w.plain["nid_U4"] {
		w.t.Fatalf("before the erasure the instrument did not release U4's values: %+v", res.Items)
	}
	w.ev["decision-before-erasure"] = res.DecisionID
	cert, err := w.as("dpo").Erase(w.ctx, "U4", &vault.EraseRequest{Trigger: "seed_4_6_deadline"})
	w.must(err, "erase U4")
	if cert.TokensRemoved != 2 || cert.SubjectState != string(subject.Erased) {
		w.t.Fatalf("erasure certificate %+v", cert)
	}
}

// TestModelExamplesHTTP runs every example decision of pdpa-model §3 through
// the HTTP API, each on a fresh vault with the §3 fixtures.
func TestModelExamplesHTTP(t *testing.T) {
	for _, c := range modelCases() {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			w := buildModelWorld(t)
			if c.setup != nil {
				c.setup(w)
			}
			if !c.clock.IsZero() {
				w.clock.Set(c.clock)
			}
			res, err := w.run(&c)
			w.checkOutcome(t, &c, res, err)
			if res == nil || res.DecisionID == "" {
				t.Fatalf("no decision id")
			}
			rec := w.checkAudit(t, &c, res)
			if c.after != nil {
				c.after(t, w, res, rec)
			}
		})
	}
}

// TestModelWithdrawalNextDecision: §0.4, withdrawal takes effect at the
// next decision, and the earlier release stays in the subject's report.
func TestModelWithdrawalNextDecision(t *testing.T) {
	w := buildModelWorld(t)
	c := decisionCase{role: "crm-sender", toks: []string{"tok_phone_U1"}, purpose: policy.PurposeMarketing,
		ground: policy.GroundConsent, ref: "C1", reveal: policy.RevealFull, want: policy.Allow}
	res, err := w.run(&c)
	w.checkOutcome(t, &c, res, err)
	first := res.DecisionID
	_, err = w.as("dpo").WithdrawConsent(w.ctx, w.con["C1"], &vault.WithdrawConsentRequest{Actor: "U1", Channel: "app"})
	w.must(err, "withdraw C1")
	c.want, c.code = policy.Deny, policy.CodeConsentWithdrawn
	res, err = w.run(&c)
	w.checkOutcome(t, &c, res, err)
	recs := w.auditRecords()
	if s := recs[first].Evidence; s == nil || s.Status != consent.StatusGiven {
		t.Errorf("the earlier decision's snapshot changed: %+v", s)
	}
	if s := recs[res.DecisionID].Evidence; s == nil || s.Status != consent.StatusWithdrawn {
		t.Errorf("the later decision's snapshot: %+v", s)
	}
}

// ---------------------------------------------------------------------------
// Boundaries of the clock.

// detokOne detokenises one token and returns its item and the error.
func (w *world) detokOne(c *client.Client, req vault.DetokenizeRequest, tok string) (vault.DetokenizeResultItem, error) {
	w.t.Helper()
	req.Tokens = []string{tok}
	if req.Reveal == "" {
		req.Reveal = policy.RevealFull
	}
	res, err := c.Detokenize(w.ctx, &req)
	if res == nil || len(res.Items) != 1 {
		w.t.Fatalf("detokenize: no result: %v", err)
	}
	return res.Items[0], err
}

func wantAllow(t *testing.T, it vault.DetokenizeResultItem, err error, value, what string) {
	t.Helper()
	if err != nil || it.Denied != nil || it.Value != value {
		t.Errorf("%s: got %+v (%v), want the value released", what, it, err)
	}
}

func wantDeny(t *testing.T, it vault.DetokenizeResultItem, err error, code, what string) {
	t.Helper()
	if it.Value != "" || it.Masked != "" || it.Denied == nil || it.Denied.Code != code || !client.IsCode(err, code) {
		t.Errorf("%s: got %+v (%v), want DENY %s", what, it, err, code)
	}
}

// TestBoundaryConsentExpiry: the last instant before expires_at is allowed;
// at expires_at the consent is expired.
func TestBoundaryConsentExpiry(t *testing.T) {
	w := newWorld(t, modelClock)
	w.subject("U1", vault.PutSubjectRequest{BirthDate: "1990-04-01"})
	tok := w.tokenize("phone", "U1", "contact.phone", "081-234-5678")
	exp := at(2025, 7, 1, 12, 30, 0)
	id := w.grant("C", vault.GrantConsentRequest{Subject: "U1", GrantedBy: subjectGrant("U1"),
		Categories: []string{"contact.phone"}, Purposes: []string{policy.PurposeMarketing}, ExpiresAt: tp(exp)})
	req := vault.DetokenizeRequest{Purpose: policy.PurposeMarketing, Ground: &policy.Ground{Type: policy.GroundConsent, Ref: id}}
	svc := w.as("service")
	for _, c := range []struct {
		now  time.Time
		code string
	}{
		{exp.Add(-time.Second), ""},
		{exp.Add(-time.Nanosecond), ""},
		{exp, policy.CodeConsentExpired},
		{exp.Add(time.Nanosecond), policy.CodeConsentExpired},
	} {
		w.clock.Set(c.now)
		it, err := w.detokOne(svc, req, tok)
		what := c.now.Format(time.RFC3339Nano)
		if c.code == "" {
			wantAllow(t, it, err, w.plain["phone"], what)
		} else {
			wantDeny(t, it, err, c.code, what)
		}
	}
	w.clock.Set(exp)
	if cv, err := w.as("dpo").GetConsent(w.ctx, id); err != nil || cv.Status != consent.StatusExpired {
		t.Errorf("GET consent at expires_at: %+v %v, want ConsentExpired", cv, err)
	}
}

// TestBoundaryInstrumentExpiry: an authority instrument is usable until the
// instant before valid_until.
func TestBoundaryInstrumentExpiry(t *testing.T) {
	w := newWorld(t, modelClock)
	w.subject("U1", vault.PutSubjectRequest{BirthDate: "1990-04-01"})
	tok := w.tokenize("nid", "U1", "govid.th_national_id", thaiID("110370207183"))
	until := at(2026, 1, 1, 0, 0, 0)
	legal1, legal2 := w.as("legal-1", "legal"), w.as("legal-2", "legal")
	id := w.evidence("ORD", legal1, vault.CreateEvidenceRequest{Kind: policy.KindAuthorityInstrument,
		Subjects: []string{"U1"}, Categories: []string{"govid.th_national_id"}, ValidUntil: tp(until),
		Attributes: map[string]string{"authority": "Thai court", "jurisdiction": "TH"}}, legal1)
	req := vault.DetokenizeRequest{Purpose: policy.PurposeLegalAuthority,
		Ground: &policy.Ground{Type: policy.GroundAuthorityInstrument, Ref: id}}
	legal := w.as("legal")
	// One approval is not verification by two people.
	it, err := w.detokOne(legal, req, tok)
	wantDeny(t, it, err, policy.CodeInstrumentNotVerified, "one approval")
	_, err = legal1.ApproveEvidence(w.ctx, id)
	if !client.IsCode(err, vault.CodeAlreadyApproved) {
		t.Errorf("second approval by the same principal: %v, want ALREADY_APPROVED", err)
	}
	_, err = legal2.ApproveEvidence(w.ctx, id)
	w.must(err, "second approval")
	for _, c := range []struct {
		now  time.Time
		code string
	}{
		{until.Add(-time.Second), ""},
		{until.Add(-time.Nanosecond), ""},
		{until, policy.CodeInstrumentExpired},
		{until.Add(time.Second), policy.CodeInstrumentExpired},
	} {
		w.clock.Set(c.now)
		it, err := w.detokOne(legal, req, tok)
		what := c.now.Format(time.RFC3339Nano)
		if c.code == "" {
			wantAllow(t, it, err, w.plain["nid"], what)
		} else {
			wantDeny(t, it, err, c.code, what)
		}
	}
}

// TestBoundarySuspensionWindow: seed §4.6, detection on 2025-03-01 10:00
// ICT; the day of detection is not counted, so the 15th day is 16 March.
// Proof is accepted at 23:59:59 ICT on 16 March and refused one second
// later with DEADLINE_PASSED.
func TestBoundarySuspensionWindow(t *testing.T) {
	detected := at(2025, 3, 1, 10, 0, 0)
	w := newWorld(t, detected)
	ts := w.as("trust-safety")
	for _, id := range []string{"S1", "S2"} {
		w.subject(id, vault.PutSubjectRequest{BirthDate: "1990-01-01"})
		s, err := ts.Suspend(w.ctx, id, &vault.SuspendRequest{DetectedAt: tp(detected), Reason: "false data"})
		w.must(err, "suspend "+id)
		if s.State != subject.SuspendedPendingEvidence || s.Suspension == nil {
			t.Fatalf("suspended subject %+v", s)
		}
		if want := at(2025, 3, 16, 23, 59, 59).Add(time.Second - time.Nanosecond); !s.Suspension.Deadline.Equal(want) {
			t.Errorf("deadline %s, want %s", s.Suspension.Deadline.In(ict), want)
		}
	}
	last := at(2025, 3, 16, 23, 59, 59)
	w.clock.Set(last)
	s, err := ts.ReceiveProof(w.ctx, "S1", &vault.ProofRequest{ReceivedAt: tp(last)})
	if err != nil || s.State != subject.EvidenceUnderReview {
		t.Errorf("proof at the last second of the 15th day: %+v %v, want evidence_under_review", s, err)
	}
	w.clock.Set(last.Add(time.Second))
	_, err = ts.ReceiveProof(w.ctx, "S2", &vault.ProofRequest{ReceivedAt: tp(last.Add(time.Second))})
	if !client.IsCode(err, vault.CodeDeadlinePassed) {
		t.Errorf("proof at 00:00:00 on the 16th day: %v, want DEADLINE_PASSED", err)
	}
	if s, err := ts.GetSubject(w.ctx, "S2"); err != nil || s.State != subject.SuspendedPendingEvidence {
		t.Errorf("after the refused proof: %+v %v, want still suspended", s, err)
	}
	// A proof received in time but recorded late is still in time.
	w.subject("S3", vault.PutSubjectRequest{BirthDate: "1990-01-01"})
	w.clock.Set(detected)
	_, err = ts.Suspend(w.ctx, "S3", &vault.SuspendRequest{})
	w.must(err, "suspend S3")
	w.clock.Set(at(2025, 3, 20, 9, 0, 0))
	if s, err := ts.ReceiveProof(w.ctx, "S3", &vault.ProofRequest{ReceivedAt: tp(last)}); err != nil || s.State != subject.EvidenceUnderReview {
		t.Errorf("proof received at the deadline, recorded later: %+v %v", s, err)
	}
}

// TestBoundaryMinorBirthdays: a person turns 10 and 20 at 00:00 ICT on the
// birthday, which changes the guardian rule (s.20).
func TestBoundaryMinorBirthdays(t *testing.T) {
	setup := at(2025, 5, 31, 12, 0, 0)
	w := newWorld(t, setup)
	w.subject("K10", vault.PutSubjectRequest{BirthDate: "2015-06-01"}) // turns 10 on 2025-06-01
	w.subject("K20", vault.PutSubjectRequest{BirthDate: "2005-06-01"}) // turns 20 on 2025-06-01
	tok10 := w.tokenize("p10", "K10", "contact.phone", "086-010-1010")
	tok20 := w.tokenize("p20", "K20", "contact.phone", "086-020-2020")
	both := func(id string) []consent.Grantor { return append(subjectGrant(id), guardianGrant()...) }
	mk := func(name, subj string, by []consent.Grantor) string {
		return w.grant(name, vault.GrantConsentRequest{Subject: subj, GrantedBy: by,
			Categories: []string{"contact.phone"}, Purposes: []string{policy.PurposeMarketing},
			GrantedAt: tp(at(2025, 1, 1, 0, 0, 0)), ExpiresAt: tp(at(2027, 1, 1, 0, 0, 0))})
	}
	ids := map[string]string{
		"10-guardian": mk("10-guardian", "K10", guardianGrant()),
		"10-subject":  mk("10-subject", "K10", subjectGrant("K10")),
		"10-both":     mk("10-both", "K10", both("K10")),
		"20-guardian": mk("20-guardian", "K20", guardianGrant()),
		"20-subject":  mk("20-subject", "K20", subjectGrant("K20")),
		"20-both":     mk("20-both", "K20", both("K20")),
	}
	before, birthday := at(2025, 5, 31, 23, 59, 59), at(2025, 6, 1, 0, 0, 0)
	cases := []struct {
		now     time.Time
		consent string
		code    string // "" allowed
	}{
		// Age 9: only the guardian consents; the child's own consent is ignored.
		{before, "10-guardian", ""},
		{before, "10-subject", policy.CodeGuardianConsentRequired},
		{before, "10-both", ""},
		// Age 10: subject and guardian together (default).
		{birthday, "10-guardian", policy.CodeSubjectConsentRequired},
		{birthday, "10-subject", policy.CodeGuardianConsentRequired},
		{birthday, "10-both", ""},
		// Age 19: still a minor.
		{before, "20-guardian", policy.CodeSubjectConsentRequired},
		{before, "20-subject", policy.CodeGuardianConsentRequired},
		{before, "20-both", ""},
		// Age 20: sui juris, the subject's own consent.
		{birthday, "20-guardian", policy.CodeSubjectConsentRequired},
		{birthday, "20-subject", ""},
		{birthday, "20-both", ""},
	}
	svc := w.as("service")
	for _, c := range cases {
		w.clock.Set(c.now)
		tok, plain := tok10, w.plain["p10"]
		if strings.HasPrefix(c.consent, "20") {
			tok, plain = tok20, w.plain["p20"]
		}
		it, err := w.detokOne(svc, vault.DetokenizeRequest{Purpose: policy.PurposeMarketing,
			Ground: &policy.Ground{Type: policy.GroundConsent, Ref: ids[c.consent]}}, tok)
		what := c.consent + " at " + c.now.Format(time.RFC3339)
		if c.code == "" {
			wantAllow(t, it, err, plain, what)
		} else {
			wantDeny(t, it, err, c.code, what)
		}
	}
}

// ---------------------------------------------------------------------------
// The property test.

// Tiers by category name.
func tierOf(t testing.TB, cat string) tokenizer.Tier {
	c, ok := tokenizer.Lookup(cat)
	if !ok {
		t.Fatalf("unknown category %s", cat)
	}
	return c.Tier
}

// suspendedPurposes are the purposes a suspended account still serves
// (pdpa-model §2.6).
var suspendedPurposes = []string{
	policy.PurposeAccountIntegrity, policy.PurposeFraudAML, policy.PurposeLegalAuthority,
	policy.PurposeDispute, policy.PurposeDataSubjectRequest, policy.PurposeEmergency,
}

// consentPurposes are the purposes a consent may serve by default.
var consentPurposes = []string{
	policy.PurposeIdentityVerification, policy.PurposeProviderVetting, policy.PurposeMarketing,
	policy.PurposeAnalytics, policy.PurposePartnerFinancialOffers, policy.PurposePartnerInsuranceOffers,
	policy.PurposeAccountIntegrity,
}

// propSubject is the oracle's view of a subject.
type propSubject struct {
	id        string
	typ       subject.Type
	birth     string
	incapable bool
	linkedTo  string
	state     subject.State
	held      []string // categories under a legal hold
	tokens    []int
	consents  []int
}

type propToken struct {
	tok, subj, cat, plain string
	tier                  tokenizer.Tier
	erased                bool
}

type propConsent struct {
	id, subj  string
	explicit  bool
	method    string
	cats      []string
	purposes  []string
	expired   bool
	withdrawn bool
}

type propEvidence struct {
	id, kind string
	subjects []string
	cats     []string
	purposes []string
	attrs    map[string]string
}

type population struct {
	subjects []*propSubject
	bySubj   map[string]*propSubject
	tokens   []*propToken
	consents []*propConsent
	evidence []*propEvidence
	byEv     map[string]*propEvidence
	byCon    map[string]*propConsent
}

func pick[T any](r *rand.Rand, xs []T) T { return xs[r.IntN(len(xs))] }

func sample[T any](r *rand.Rand, xs []T, n int) []T {
	ys := slices.Clone(xs)
	r.Shuffle(len(ys), func(i, j int) { ys[i], ys[j] = ys[j], ys[i] })
	return ys[:min(n, len(ys))]
}

// valueFor makes a unique valid value of a category.
func valueFor(cat string, n int) string {
	d := fmt.Sprintf("%08d", n)
	switch cat {
	case "contact.phone":
		return "08" + d
	case "contact.email":
		return fmt.Sprintf("person.%d@example.co.th", n)
	case "financial.card_pan":
		return luhnCard("4111" + fmt.Sprintf("%011d", n))
	case "financial.bank_account":
		return "12" + d
	case "govid.th_national_id":
		return thaiID("1" + fmt.Sprintf("%011d", n))
	}
	return fmt.Sprintf("value %s #%d zq%dx", cat, n, n*7919)
}

var dataCategories = func() []string {
	var out []string
	for _, c := range tokenizer.All() {
		if !c.ThirdParty {
			out = append(out, c.Name)
		}
	}
	return out
}()

// buildPopulation creates a random population through the API.
func buildPopulation(t *testing.T, w *world, r *rand.Rand) *population {
	p := &population{bySubj: map[string]*propSubject{}, byEv: map[string]*propEvidence{}, byCon: map[string]*propConsent{}}
	dpo, legal1, legal2, emergency := w.as("dpo"), w.as("legal-1", "legal"), w.as("legal-2", "legal"), w.as("emergency")
	var items []vault.TokenizeItem
	var itemTok []*propToken
	n := 0
	for i := range 36 {
		s := &propSubject{id: fmt.Sprintf("S%02d", i), typ: subject.DataSubject}
		req := vault.PutSubjectRequest{Type: subject.DataSubject}
		switch k := r.IntN(10); {
		case k < 5:
			s.birth = fmt.Sprintf("%d-0%d-1%d", 1960+r.IntN(40), 1+r.IntN(9), r.IntN(9))
		case k < 7:
			s.birth = fmt.Sprintf("%d-0%d-1%d", 2007+r.IntN(7), 1+r.IntN(9), r.IntN(9))
		case k < 8:
			s.birth = fmt.Sprintf("%d-0%d-1%d", 2016+r.IntN(4), 1+r.IntN(9), r.IntN(9))
		case k < 9 && i > 3:
			s.typ = subject.ThirdParty
			s.linkedTo = p.subjects[r.IntN(len(p.subjects))].id
			for p.bySubj[s.linkedTo].typ == subject.ThirdParty {
				s.linkedTo = p.subjects[r.IntN(len(p.subjects))].id
			}
		}
		if s.typ == subject.DataSubject && r.IntN(8) == 0 {
			s.incapable = true
			f := false
			req.CapableOfConsent = &f
		}
		req.Type, req.BirthDate, req.LinkedTo = s.typ, s.birth, s.linkedTo
		_, err := dpo.PutSubject(w.ctx, s.id, &req)
		w.must(err, "PUT "+s.id)
		s.state = subject.Active
		p.subjects = append(p.subjects, s)
		p.bySubj[s.id] = s
		cats := sample(r, dataCategories, 3+r.IntN(4))
		if s.typ == subject.ThirdParty {
			cats = []string{"third_party.emergency_contact", "contact.phone", "identity.name"}
		}
		for _, cat := range cats {
			n++
			tk := &propToken{subj: s.id, cat: cat, tier: tierOf(t, cat)}
			v := valueFor(cat, n)
			tk.plain = normalise(t, cat, v)
			items = append(items, vault.TokenizeItem{Category: cat, Value: v, Subject: s.id})
			s.tokens = append(s.tokens, len(p.tokens))
			p.tokens = append(p.tokens, tk)
			itemTok = append(itemTok, tk)
		}
	}
	res, err := w.as("service").Tokenize(w.ctx, &vault.TokenizeRequest{Items: items})
	w.must(err, "tokenize the population")
	for i, it := range res.Items {
		if it.Error != nil {
			t.Fatalf("tokenize %s: %+v", items[i].Category, it.Error)
		}
		itemTok[i].tok = it.Token
	}

	// Consents: regular, explicit, bundled, expired, withdrawn; granted by
	// the subject, a guardian or both.
	for _, s := range p.subjects {
		if s.typ == subject.ThirdParty {
			continue
		}
		var mine []string
		for _, ti := range s.tokens {
			mine = append(mine, p.tokens[ti].cat)
		}
		for range 2 + r.IntN(3) {
			pc := &propConsent{subj: s.id, method: consent.MethodInApp}
			req := vault.GrantConsentRequest{Subject: s.id, NoticeVersion: "2020-09-15",
				GrantedAt: tp(at(2025, 1, 1, 0, 0, 0)), ExpiresAt: tp(at(2027, 1, 1, 0, 0, 0))}
			cats := sample(r, append(slices.Clone(mine), pick(r, dataCategories)), 1+r.IntN(3))
			slices.Sort(cats)
			cats = slices.Compact(cats)
			pc.explicit = r.IntN(2) == 0
			if !pc.explicit {
				cats = slices.DeleteFunc(cats, func(c string) bool { return tierOf(t, c) >= tokenizer.T2 })
				if len(cats) == 0 {
					cats = []string{"contact.phone"}
				}
			}
			pc.cats = cats
			if slices.Contains(cats, "criminal_record") {
				pc.purposes = []string{policy.PurposeProviderVetting}
			} else {
				pc.purposes = sample(r, consentPurposes, 1+r.IntN(3))
			}
			switch k := r.IntN(10); {
			case k == 0:
				pc.method = pick(r, []string{consent.MethodTOSAcceptance, consent.MethodContinuedUse, consent.MethodDeemed})
			case k == 1:
				pc.expired = true
				req.GrantedAt, req.ExpiresAt = tp(at(2023, 1, 1, 0, 0, 0)), tp(at(2024, 1, 1, 0, 0, 0))
			}
			switch k := r.IntN(6); {
			case k == 0:
				req.GrantedBy = guardianGrant()
			case k == 1 || s.birth != "" && s.birth > "2005":
				req.GrantedBy = append(subjectGrant(s.id), guardianGrant()...)
			default:
				req.GrantedBy = subjectGrant(s.id)
			}
			if r.IntN(5) == 0 {
				req.Recipients = []consent.Recipient{{ID: "crm", Country: "TH"}}
			}
			req.Explicit, req.Categories, req.Purposes, req.CollectionMethod = pc.explicit, pc.cats, pc.purposes, pc.method
			c, err := dpo.GrantConsent(w.ctx, &req)
			w.must(err, "grant a consent")
			pc.id = c.ID
			if r.IntN(8) == 0 {
				_, err := dpo.WithdrawConsent(w.ctx, c.ID, &vault.WithdrawConsentRequest{Actor: s.id, Channel: "app"})
				w.must(err, "withdraw")
				pc.withdrawn = true
			}
			s.consents = append(s.consents, len(p.consents))
			p.consents = append(p.consents, pc)
			p.byCon[pc.id] = pc
		}
	}

	// Evidence of every kind, approved or not, some revoked.
	ids := func(k int) []string {
		var out []string
		for _, s := range sample(r, p.subjects, k) {
			out = append(out, s.id)
		}
		return out
	}
	allCats := append(slices.Clone(dataCategories), "third_party.emergency_contact")
	kinds := []string{policy.KindContract, policy.KindLIA, policy.KindAuthorityInstrument, policy.KindIncident,
		policy.KindDSR, policy.KindLegalCase, policy.KindStatute, policy.KindResearchProtocol, policy.KindMadePublic}
	for i := range 70 {
		kind := kinds[i%len(kinds)]
		req := vault.CreateEvidenceRequest{Kind: kind, Attributes: map[string]string{}}
		creator := dpo
		var approvers []*client.Client
		req.Categories = sample(r, allCats, 2+r.IntN(8))
		switch kind {
		case policy.KindContract:
			req.Subjects = ids(1 + r.IntN(3))
			req.Purposes = sample(r, []string{policy.PurposeServiceDelivery, policy.PurposePayment, policy.PurposeSupport,
				policy.PurposeDispute, policy.PurposeAccountIntegrity, policy.PurposeProviderVetting, policy.PurposeIdentityVerification}, 1+r.IntN(3))
			if r.IntN(4) == 0 {
				req.ValidFrom, req.ValidUntil = tp(modelClock.AddDate(-1, 0, 0)), tp(modelClock.AddDate(0, 0, -100))
			}
		case policy.KindLIA:
			req.Purposes = sample(r, []string{policy.PurposeFraudAML, policy.PurposeSupport, policy.PurposeHarmPrevention,
				policy.PurposeAnalytics, policy.PurposeAccountIntegrity}, 1+r.IntN(3))
			if r.IntN(5) > 0 {
				approvers = []*client.Client{dpo}
			}
		case policy.KindAuthorityInstrument:
			creator = legal1
			req.Subjects = ids(1 + r.IntN(5))
			req.ValidUntil = tp(modelClock.AddDate(0, 1+r.IntN(6), 0))
			if r.IntN(5) == 0 {
				req.ValidUntil = tp(modelClock.AddDate(0, 0, -1))
			}
			approvers = []*client.Client{legal1, legal2}
			if r.IntN(5) == 0 {
				approvers = approvers[:1]
			}
			if r.IntN(6) == 0 {
				req.Attributes[policy.AttrJurisdiction] = "SG"
			}
		case policy.KindIncident:
			creator = emergency
			if r.IntN(5) == 0 {
				creator = dpo // not the emergency role: not evidence
			}
			req.Subjects = ids(1 + r.IntN(3))
			req.Categories = nil
			if r.IntN(3) == 0 {
				req.Attributes[policy.AttrSubjectIncapable] = "true"
			}
		case policy.KindDSR:
			s := pick(r, p.subjects)
			req.Subjects = []string{s.id}
			req.Categories = nil
			req.Attributes[policy.AttrRequester] = s.id
			switch r.IntN(4) {
			case 0:
				req.Attributes[policy.AttrRequester] = "G-" + s.id
				req.Attributes[policy.AttrRequesterLink] = pick(r, []string{"guardian", "representative"})
				req.Attributes[policy.AttrRequesterLinkVerified] = pick(r, []string{"true", "false"})
			case 1:
				req.Attributes[policy.AttrRequester] = "X-" + s.id
			}
			if r.IntN(5) > 0 {
				approvers = []*client.Client{dpo}
			}
		case policy.KindLegalCase:
			creator = legal1
			req.Subjects = ids(1 + r.IntN(3))
			approvers = []*client.Client{legal2}
		case policy.KindStatute:
			creator = legal1
			req.Purposes = sample(r, []string{policy.PurposeLegalAuthority, policy.PurposeFraudAML,
				policy.PurposeProviderVetting, policy.PurposeIdentityVerification}, 1+r.IntN(3))
			if r.IntN(2) == 0 {
				req.Attributes[policy.AttrS26Item] = pick(r, []string{"a", "b", "c", "d", "e"})
			}
			if r.IntN(3) == 0 {
				req.Attributes[policy.AttrRequiresCriminalRecordCheck] = "true"
			}
			approvers = []*client.Client{legal2}
		case policy.KindResearchProtocol:
			if r.IntN(2) == 0 {
				req.Attributes[policy.AttrS26Item] = "d"
			}
			approvers = []*client.Client{dpo}
		case policy.KindMadePublic:
			req.Subjects = ids(1 + r.IntN(3))
			approvers = []*client.Client{dpo}
		}
		e, err := creator.CreateEvidence(w.ctx, &req)
		w.must(err, "create "+kind)
		for _, a := range approvers {
			_, err := a.ApproveEvidence(w.ctx, e.ID)
			w.must(err, "approve "+kind)
		}
		if r.IntN(10) == 0 {
			_, err := dpo.RevokeEvidence(w.ctx, e.ID)
			w.must(err, "revoke")
		}
		pe := &propEvidence{id: e.ID, kind: kind, subjects: req.Subjects, cats: req.Categories, purposes: req.Purposes, attrs: req.Attributes}
		p.evidence = append(p.evidence, pe)
		p.byEv[pe.id] = pe
	}

	// Lifecycle: suspended, under review, restricted, objections, erased,
	// erasure pending with a held category.
	var legalCase string
	for _, e := range p.evidence {
		if e.kind == policy.KindLegalCase {
			legalCase = e.id
			break
		}
	}
	ts := w.as("trust-safety")
	for _, s := range p.subjects {
		switch k := r.IntN(16); {
		case k < 2:
			_, err := ts.Suspend(w.ctx, s.id, &vault.SuspendRequest{DetectedAt: tp(modelClock.AddDate(0, 0, -3))})
			w.must(err, "suspend")
			s.state = subject.SuspendedPendingEvidence
		case k == 2:
			_, err := ts.Suspend(w.ctx, s.id, &vault.SuspendRequest{DetectedAt: tp(modelClock.AddDate(0, 0, -3))})
			w.must(err, "suspend")
			_, err = ts.ReceiveProof(w.ctx, s.id, &vault.ProofRequest{})
			w.must(err, "proof")
			s.state = subject.EvidenceUnderReview
		case k == 3:
			_, err := dpo.Restrict(w.ctx, s.id, &vault.RestrictRequest{Reason: "accuracy check"})
			w.must(err, "restrict")
			s.state = subject.Restricted
		case k == 4 || k == 5:
			_, err := dpo.Erase(w.ctx, s.id, &vault.EraseRequest{Trigger: "s33_request"})
			w.must(err, "erase")
			s.state = subject.Erased
			for _, ti := range s.tokens {
				p.tokens[ti].erased = true
			}
		case k == 6:
			held := p.tokens[s.tokens[0]].cat
			_, err := dpo.AddLegalHold(w.ctx, s.id, &vault.LegalHoldRequest{Categories: []string{held},
				Ref: legalCase, Until: modelClock.AddDate(1, 0, 0)})
			w.must(err, "legal hold")
			_, err = dpo.Erase(w.ctx, s.id, &vault.EraseRequest{Trigger: "s33_request"})
			w.must(err, "erase with a hold")
			s.state = subject.ErasurePending
			s.held = []string{held}
			for _, ti := range s.tokens {
				p.tokens[ti].erased = p.tokens[ti].cat != held
			}
		case k == 7:
			_, err := dpo.UpholdObjection(w.ctx, s.id, &vault.ObjectionRequest{Purpose: pick(r, []string{"", policy.PurposeMarketing, policy.PurposeFraudAML})})
			w.must(err, "objection")
		}
	}
	return p
}

// propRequest is one random request and what the oracle knew when it was
// made.
type propRequest struct {
	req   vault.DetokenizeRequest
	role  string
	toks  []*propToken
	con   *propConsent
	ev    *propEvidence
	grnd  string
	state map[string]subject.State
	withd bool
}

var groundOfKind = map[string]string{
	policy.KindContract: policy.GroundContract, policy.KindLIA: policy.GroundLegitimateInterest,
	policy.KindAuthorityInstrument: policy.GroundAuthorityInstrument, policy.KindIncident: policy.GroundVitalInterest,
	policy.KindDSR: policy.GroundDataSubjectRequest, policy.KindLegalCase: policy.GroundLegalClaims,
	policy.KindStatute: policy.GroundLegalObligation, policy.KindResearchProtocol: policy.GroundResearchStatistics,
	policy.KindMadePublic: policy.GroundMadePublic,
}

// randomRequest makes a request: half the time a coherent one (tokens of a
// subject the ground's record is about, in its categories, for one of its
// purposes, by the role that uses it), otherwise tokens, ground and
// purpose thrown together.
func (p *population) randomRequest(r *rand.Rand) *propRequest {
	pr := &propRequest{state: map[string]subject.State{}, role: "service"}
	coherent := r.IntN(2) == 0
	var owner *propSubject
	var cover []string // categories the record covers; nil: any
	if r.IntN(100) < 45 {
		var c *propConsent
		if coherent {
			c = pick(r, p.consents)
			owner = p.bySubj[c.subj]
			cover = c.cats
		} else {
			owner = p.bySubj[p.tokens[r.IntN(len(p.tokens))].subj]
			c = pick(r, p.consents)
			if len(owner.consents) > 0 && r.IntN(10) < 8 {
				c = p.consents[pick(r, owner.consents)]
			}
		}
		pr.grnd, pr.con, pr.withd = policy.GroundConsent, c, c.withdrawn
		pr.req.Ground = &policy.Ground{Type: policy.GroundConsent, Ref: c.id}
		pr.req.Purpose = pick(r, c.purposes)
	} else {
		e := pick(r, p.evidence)
		if coherent {
			subjects := e.subjects
			if len(subjects) == 0 {
				subjects = []string{pick(r, p.subjects).id}
			}
			owner = p.bySubj[pick(r, subjects)]
			cover = e.cats
		} else {
			owner = p.bySubj[p.tokens[r.IntN(len(p.tokens))].subj]
			var mine []*propEvidence
			for _, x := range p.evidence {
				if len(x.subjects) == 0 || slices.Contains(x.subjects, owner.id) || slices.Contains(x.subjects, owner.linkedTo) {
					mine = append(mine, x)
				}
			}
			if len(mine) > 0 && r.IntN(10) < 8 {
				e = pick(r, mine)
			}
		}
		pr.ev = e
		pr.grnd = groundOfKind[e.kind]
		if !coherent && r.IntN(12) == 0 {
			pr.grnd = pick(r, policy.Grounds) // a mismatched kind
		}
		pr.req.Ground = &policy.Ground{Type: pr.grnd, Ref: e.id}
		purposes := e.purposes
		switch e.kind {
		case policy.KindAuthorityInstrument:
			purposes = []string{policy.PurposeLegalAuthority}
			pr.role = "legal"
		case policy.KindIncident:
			purposes = []string{policy.PurposeEmergency, policy.PurposeHarmPrevention}
			pr.role = "emergency"
		case policy.KindDSR:
			purposes = []string{policy.PurposeDataSubjectRequest}
			pr.req.OnBehalfOf = e.attrs[policy.AttrRequester]
			if r.IntN(5) == 0 {
				pr.req.OnBehalfOf = owner.id
			}
		case policy.KindLegalCase:
			purposes = []string{policy.PurposeDispute}
		case policy.KindResearchProtocol:
			purposes = []string{policy.PurposeAnalytics}
		case policy.KindMadePublic:
			purposes = []string{policy.PurposeMarketing, policy.PurposeAnalytics}
		}
		pr.req.Purpose = pick(r, purposes)
	}
	if pr.req.Purpose == policy.PurposeAccountIntegrity {
		pr.role = "trust-safety"
	}
	if !coherent && r.IntN(5) == 0 {
		pr.req.Purpose = pick(r, policy.Purposes)
	}
	if r.IntN(8) == 0 {
		pr.role = pick(r, []string{"service", "legal", "emergency", "trust-safety", "crm-sender", "trust-safety-vetting"})
	}
	// The tokens: of the owner, in the covered categories when coherent.
	var mine []*propToken
	for _, ti := range owner.tokens {
		if tk := p.tokens[ti]; cover == nil || slices.Contains(cover, tk.cat) {
			mine = append(mine, tk)
		}
	}
	if len(mine) == 0 {
		for _, ti := range owner.tokens {
			mine = append(mine, p.tokens[ti])
		}
	}
	for range 1 + r.IntN(4) {
		tk := pick(r, mine)
		if !coherent && r.IntN(10) < 3 {
			tk = p.tokens[r.IntN(len(p.tokens))]
		}
		pr.toks = append(pr.toks, tk)
		pr.req.Tokens = append(pr.req.Tokens, tk.tok)
	}
	pr.req.Reveal = pick(r, []string{policy.RevealFull, policy.RevealFull, policy.RevealPartial, policy.RevealMasked})
	if r.IntN(8) == 0 {
		pr.req.Recipient = pick(r, []*policy.Recipient{{ID: "crm", Country: "TH"}, {ID: "BankSG", Country: "SG"}})
	}
	for _, tk := range pr.toks {
		pr.state[tk.subj] = p.bySubj[tk.subj].state
	}
	return pr
}

// propStats counts what the property test saw.
type propStats struct {
	mu                                          sync.Mutex
	requests, items, values, masked, t2released int
	erasedAsked, withdrawnAsked, suspendedAsked int
	t2Asked, researchAllowed                    int
	codes                                       map[string]int
}

// check asserts the invariants for one answer.
func (p *population) check(t *testing.T, pr *propRequest, res *vault.DetokenizeResult, err error, st *propStats) {
	t.Helper()
	if res == nil {
		t.Errorf("request %+v: no result: %v", pr.req, err)
		return
	}
	if len(res.Items) != len(pr.toks) {
		t.Errorf("%d items for %d tokens", len(res.Items), len(pr.toks))
		return
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	st.requests++
	anyReleased := false
	for i, it := range res.Items {
		tk := pr.toks[i]
		st.items++
		released := it.Value != "" || it.Masked != ""
		desc := func() string {
			return fmt.Sprintf("token of %s (%s, %s, state %s) purpose %s ground %s reveal %s role %s: value=%t masked=%q denied=%+v",
				tk.subj, tk.cat, tk.tier, pr.state[tk.subj], pr.req.Purpose, pr.grnd, pr.req.Reveal, pr.role,
				it.Value != "", it.Masked, it.Denied)
		}
		if it.Denied != nil {
			st.codes[it.Denied.Code]++
		}
		if released == (it.Denied != nil) {
			t.Errorf("neither released nor denied, or both: %s", desc())
		}
		if it.Value != "" && it.Value != tk.plain {
			t.Errorf("released a value that is not the token's: %s", desc())
		}
		if it.Masked != "" && it.Masked == tk.plain {
			t.Errorf("masked output is the full value: %s", desc())
		}
		state := pr.state[tk.subj]
		if tk.erased || state == subject.Erased {
			st.erasedAsked++
			if released {
				t.Errorf("INVARIANT erased: released for an erased token or subject: %s", desc())
			}
		}
		if pr.con != nil && pr.withd {
			st.withdrawnAsked++
			if released {
				t.Errorf("INVARIANT withdrawal: released on a withdrawn consent: %s", desc())
			}
		}
		if state == subject.SuspendedPendingEvidence || state == subject.EvidenceUnderReview {
			st.suspendedAsked++
			if released && !slices.Contains(suspendedPurposes, pr.req.Purpose) {
				t.Errorf("INVARIANT suspension: released for a suspended subject: %s", desc())
			}
		}
		if pr.grnd == policy.GroundResearchStatistics && it.Value != "" {
			t.Errorf("INVARIANT research: a full value under research_statistics: %s", desc())
		}
		if tk.tier >= tokenizer.T2 {
			st.t2Asked++
			if released {
				st.t2released++
				if why := p.sensitiveException(pr, tk); why != "" {
					t.Errorf("INVARIANT s.26: %s released without explicit consent or an exception (%s): %s", tk.tier, why, desc())
				}
			}
		}
		if released && p.bySubj[tk.subj].typ == subject.ThirdParty &&
			!slices.Contains([]string{policy.PurposeEmergency, policy.PurposeLegalAuthority, policy.PurposeDataSubjectRequest}, pr.req.Purpose) {
			t.Errorf("INVARIANT third party: %s", desc())
		}
		if released && state == subject.Restricted && pr.req.Purpose != policy.PurposeDataSubjectRequest &&
			pr.grnd != policy.GroundAuthorityInstrument && pr.grnd != policy.GroundLegalClaims {
			t.Errorf("INVARIANT restriction (s.34): %s", desc())
		}
		if released && state == subject.ErasurePending && pr.req.Purpose != policy.PurposeDataSubjectRequest &&
			!(slices.Contains(p.bySubj[tk.subj].held, tk.cat) && (pr.grnd == policy.GroundAuthorityInstrument || pr.grnd == policy.GroundLegalClaims)) {
			t.Errorf("INVARIANT erasure pending: %s", desc())
		}
		if it.Value != "" {
			st.values++
			anyReleased = true
		} else if it.Masked != "" {
			st.masked++
			anyReleased = true
		}
		if released && pr.grnd == policy.GroundResearchStatistics {
			st.researchAllowed++
		}
	}
	if !anyReleased && err == nil {
		t.Errorf("every token denied but the answer is 200")
	}
	if anyReleased && err != nil {
		t.Errorf("some token released but the answer is an error: %v", err)
	}
}

// sensitiveException returns "" when a T2/T2+ release rests on explicit
// consent or on one of the exceptions the engine's package doc allows, and
// what is wrong otherwise:
//
//   - consent: explicit, in force, a counting collection method; T2+ only
//     for provider_vetting;
//   - legal_obligation: a statute mapped to an s.26(5) item (T2) or
//     requiring the criminal-record check (T2+);
//   - authority_instrument: the category named in the scope;
//   - vital_interest: health or disability of a subject incapable of
//     consenting (s.26(1)); never T2+;
//   - public_task: a mandate mapped to s.26(5)(b)/(e); never T2+;
//   - research_statistics: masked, a protocol mapped to s.26(5)(d); never
//     T2+;
//   - legal_claims (s.26(4)), made_public (s.26(3)) and the subject's own
//     data_subject_request;
//   - never contract or legitimate interest.
func (p *population) sensitiveException(pr *propRequest, tk *propToken) string {
	plus := tk.tier == tokenizer.T2Plus
	switch pr.grnd {
	case policy.GroundConsent:
		c := pr.con
		switch {
		case c == nil || !c.explicit:
			return "consent not explicit"
		case c.withdrawn || c.expired || c.method != consent.MethodInApp:
			return "consent not in force"
		case c.subj != tk.subj || !slices.Contains(c.cats, tk.cat) || !slices.Contains(c.purposes, pr.req.Purpose):
			return "consent does not cover it"
		case plus && pr.req.Purpose != policy.PurposeProviderVetting:
			return "criminal record outside vetting"
		}
		return ""
	case policy.GroundLegalObligation:
		e := pr.ev
		if e == nil || e.kind != policy.KindStatute {
			return "no statute"
		}
		if plus && e.attrs[policy.AttrRequiresCriminalRecordCheck] != "true" {
			return "statute does not require the criminal-record check"
		}
		if !plus && e.attrs[policy.AttrS26Item] == "" {
			return "statute not mapped to s.26(5)"
		}
		return ""
	case policy.GroundAuthorityInstrument:
		if pr.ev == nil || !slices.Contains(pr.ev.cats, tk.cat) {
			return "category not named in the instrument"
		}
		return ""
	case policy.GroundVitalInterest:
		if plus || (tk.cat != "health" && tk.cat != "disability") {
			return "vital interest outside health/disability"
		}
		if !p.bySubj[tk.subj].incapable && (pr.ev == nil || pr.ev.attrs[policy.AttrSubjectIncapable] != "true") {
			return "subject capable of consenting"
		}
		return ""
	case policy.GroundResearchStatistics:
		if plus || pr.ev == nil || pr.ev.attrs[policy.AttrS26Item] != "d" {
			return "research not mapped to s.26(5)(d)"
		}
		return ""
	case policy.GroundPublicTask:
		if plus {
			return "public task on a criminal record"
		}
		return ""
	case policy.GroundLegalClaims, policy.GroundMadePublic, policy.GroundDataSubjectRequest:
		return ""
	}
	return "ground " + pr.grnd + " never unlocks s.26 data"
}

// TestDecisionInvariantsHTTP is the HTTP-level property test: thousands of
// random detokenise requests over a random population, with the invariants
// of the model asserted on every answer. PROP_SEED reproduces a run.
func TestDecisionInvariantsHTTP(t *testing.T) {
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv("PROP_SEED"); s != "" {
		var err error
		if seed, err = strconv.ParseUint(s, 10, 64); err != nil {
			t.Fatalf("PROP_SEED: %v", err)
		}
	}
	t.Logf("PROP_SEED=%d", seed)
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	w := newWorld(t, modelClock)
	start := time.Now()
	p := buildPopulation(t, w, r)
	t.Logf("population: %d subjects, %d tokens, %d consents, %d evidence records in %v",
		len(p.subjects), len(p.tokens), len(p.consents), len(p.evidence), time.Since(start).Round(time.Millisecond))

	const rounds, perRound, workers = 6, 500, 4
	st := &propStats{codes: map[string]int{}}
	for round := range rounds {
		reqs := make([]*propRequest, perRound)
		for i := range reqs {
			reqs[i] = p.randomRequest(r)
		}
		var wg sync.WaitGroup
		next := make(chan *propRequest)
		for range workers {
			wg.Go(func() {
				for pr := range next {
					res, err := w.as(pr.role).Detokenize(w.ctx, &pr.req)
					p.check(t, pr, res, err, st)
				}
			})
		}
		for _, pr := range reqs {
			next <- pr
		}
		close(next)
		wg.Wait()
		if t.Failed() {
			t.Fatalf("invariant violated (PROP_SEED=%d)", seed)
		}
		// Withdraw some consents in force: from now on they must not
		// release anything.
		if round < rounds-1 {
			for _, c := range sample(r, p.consents, 8) {
				if c.withdrawn {
					continue
				}
				_, err := w.as("dpo").WithdrawConsent(w.ctx, c.id, &vault.WithdrawConsentRequest{Actor: c.subj, Channel: "app"})
				w.must(err, "withdraw")
				c.withdrawn = true
			}
		}
	}
	t.Logf("%d requests, %d items: %d values, %d masked, %d T2/T2+ released of %d asked; erased asked %d, withdrawn %d, suspended %d; in %v",
		st.requests, st.items, st.values, st.masked, st.t2released, st.t2Asked, st.erasedAsked, st.withdrawnAsked,
		st.suspendedAsked, time.Since(start).Round(time.Millisecond))
	t.Logf("denials by reason: %v", st.codes)
	// Not vacuous: allows happen, and every invariant's premise was met.
	if st.requests != rounds*perRound {
		t.Errorf("%d requests answered, want %d", st.requests, rounds*perRound)
	}
	if st.values < st.items/40 || st.masked < 20 || st.t2released < 5 {
		t.Errorf("too few releases to mean anything: %d values, %d masked, %d T2 of %d items", st.values, st.masked, st.t2released, st.items)
	}
	if st.erasedAsked < 50 || st.withdrawnAsked < 50 || st.suspendedAsked < 50 || st.t2Asked < 200 {
		t.Errorf("premises too rare: erased %d, withdrawn %d, suspended %d, T2 %d", st.erasedAsked, st.withdrawnAsked, st.suspendedAsked, st.t2Asked)
	}
}
