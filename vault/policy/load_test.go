package policy_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/fieldvault/fieldvault/vault/policy"
)

func TestRoundTrip(t *testing.T) {
	d := policy.Default()
	b, err := d.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	p, err := policy.Load(b)
	if err != nil {
		t.Fatalf("Load(Default().Marshal()): %v", err)
	}
	if p.SHA256() != d.SHA256() {
		t.Fatalf("SHA256 changed: %s != %s", p.SHA256(), d.SHA256())
	}
	b2, err := p.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(b, b2) {
		t.Fatal("Marshal(Load(Marshal(Default()))) differs")
	}
	e := engine(t, p)
	if e.SHA256() != d.SHA256() || e.Version() != d.Version {
		t.Fatalf("engine SHA256/Version = %s/%s", e.SHA256(), e.Version())
	}
	if e.Policy().SHA256() != d.SHA256() {
		t.Fatal("Engine.Policy differs from the policy it was built from")
	}
	// The engine keeps its own copy.
	d.Switches.TransferRequireConsent = false
	if !e.Policy().Switches.TransferRequireConsent {
		t.Fatal("engine shares the caller's policy")
	}
	if d.SHA256() == p.SHA256() {
		t.Fatal("a switch does not change the SHA256")
	}
}

func TestSHA256Canonical(t *testing.T) {
	a := policy.Default()
	b := policy.Default()
	// List order and omitted purposes that mean the same thing.
	b.States.SuspendedPurposes[0], b.States.SuspendedPurposes[1] = b.States.SuspendedPurposes[1], b.States.SuspendedPurposes[0]
	gr := b.Purposes[policy.PurposeProviderVetting].Grounds[policy.GroundConsent]
	gr.Tiers[0], gr.Tiers[3] = gr.Tiers[3], gr.Tiers[0]
	if a.SHA256() != b.SHA256() {
		t.Fatal("SHA256 depends on list order")
	}
	a.Purposes[policy.PurposePublicHealth] = &policy.PurposeRule{}
	b.Purposes[policy.PurposePublicHealth] = nil
	delete(b.Purposes, policy.PurposePublicHealth)
	if a.SHA256() != b.SHA256() {
		t.Fatal("a missing purpose differs from a disabled one without grounds")
	}
	if a.SHA256() == policy.Default().SHA256() {
		t.Fatal("dropping public_health's grounds did not change the SHA256")
	}
}

// TestLoadPartial: a file may give only what it changes; the rest keeps
// the defaults.
func TestLoadPartial(t *testing.T) {
	p, err := policy.Load([]byte(`{"version":"site-1","switches":{"contract_tail_days":30},
		"purposes":{"public_health":{"enabled":true,"grounds":{"public_task":{"tiers":["T0"],"max_reveal":"masked"}}}}}`))
	if err != nil {
		t.Fatal(err)
	}
	if p.Version != "site-1" || p.Switches.ContractTailDays != 30 || !p.Switches.TransferRequireConsent || p.Switches.VitalIncidentHours != 24 {
		t.Fatalf("switches: %+v", p.Switches)
	}
	ph := p.Purposes[policy.PurposePublicHealth]
	if !ph.Enabled || len(ph.Grounds) != 1 || ph.Grounds[policy.GroundPublicTask].MaxReveal != policy.RevealMasked {
		t.Fatalf("public_health: %+v", ph)
	}
	if p.Purposes[policy.PurposeMarketing].Grounds[policy.GroundConsent] == nil {
		t.Fatal("marketing lost its default row")
	}
	e := engine(t, p)
	w := newWorld()
	w.evidence["M-1"] = &policy.Evidence{ID: "M-1", Kind: policy.KindMandate, Categories: []string{"contact.phone"}, Approvals: approvals("dpo", "dpo-1")}
	got := e.Decide(w.input(t, call{tok: tokPhoneU1, req: req(policy.PurposePublicHealth, policy.GroundPublicTask, "M-1", policy.RevealFull)}))
	if got.Decision != policy.AllowMasked || got.Reveal != policy.RevealMasked || got.Section != "PDPA s.24(4)" {
		t.Fatalf("public health by mandate: %+v", got)
	}
}

func TestLoadInvalid(t *testing.T) {
	cases := []struct {
		name, json, path, reason string
	}{
		{"empty", ``, "", "empty file"},
		{"syntax", `{"version":`, "", "truncated"},
		{"syntax 2", `{"version":"x",}`, "", "JSON syntax error"},
		{"not an object", `[1]`, "", "expected"},
		{"trailing data", `{"version":"x"} {}`, "", "after the policy object"},
		{"unknown field", `{"version":"x","colour":"blue"}`, "", `unknown field "colour"`},
		{"unknown nested field", `{"version":"x","switches":{"turbo":true}}`, "", `unknown field "turbo"`},
		{"duplicate key", `{"version":"x","version":"y"}`, "", `duplicate key "version"`},
		{"duplicate nested key", `{"version":"x","purposes":{"marketing":{"enabled":true},"marketing":{"enabled":false}}}`, "", `duplicate key "marketing"`},
		{"wrong type", `{"version":"x","switches":{"contract_tail_days":"ninety"}}`, "switches.contract_tail_days", "expected int"},
		{"no version", `{"version":""}`, "version", "required"},
		{"unknown purpose", `{"version":"x","purposes":{"spam":{"enabled":true}}}`, "purposes", `unknown purpose "spam"`},
		{"null purpose", `{"version":"x","purposes":{"marketing":null}}`, "purposes.marketing", "not null"},
		{"unknown ground", `{"version":"x","purposes":{"marketing":{"enabled":true,"grounds":{"whim":{"tiers":["T0"],"max_reveal":"full"}}}}}`, "purposes.marketing.grounds", `unknown ground "whim"`},
		{"unknown tier", `{"version":"x","purposes":{"marketing":{"enabled":true,"grounds":{"consent":{"tiers":["T3"],"max_reveal":"full"}}}}}`, "purposes.marketing.grounds.consent.tiers[0]", `unknown tier "T3"`},
		{"no tiers", `{"version":"x","purposes":{"marketing":{"enabled":true,"grounds":{"consent":{"tiers":[],"max_reveal":"full"}}}}}`, "purposes.marketing.grounds.consent.tiers", "at least one tier"},
		{"duplicate tier", `{"version":"x","purposes":{"marketing":{"enabled":true,"grounds":{"consent":{"tiers":["T0","T0"],"max_reveal":"full"}}}}}`, "purposes.marketing.grounds.consent.tiers[1]", "duplicate"},
		{"legitimate interest on T2", `{"version":"x","purposes":{"fraud_aml":{"enabled":true,"grounds":{"legitimate_interest":{"tiers":["T0","T2"],"max_reveal":"full"}}}}}`,
			"purposes.fraud_aml.grounds.legitimate_interest.tiers[1]", "T2 not permitted for legitimate_interest (s.26 has no legitimate-interest exemption)"},
		{"legitimate interest on T1", `{"version":"x","purposes":{"support":{"enabled":true,"grounds":{"legitimate_interest":{"tiers":["T1"],"max_reveal":"full"}}}}}`,
			"purposes.support.grounds.legitimate_interest.tiers[0]", "T1 not permitted for legitimate_interest"},
		{"contract on T2", `{"version":"x","purposes":{"service_delivery":{"enabled":true,"grounds":{"contract":{"tiers":["T2"],"max_reveal":"partial"}}}}}`,
			"purposes.service_delivery.grounds.contract.tiers[0]", "T2 not permitted for contract (s.26 has no contract exemption)"},
		{"contract on T2+", `{"version":"x","purposes":{"provider_vetting":{"enabled":true,"grounds":{"contract":{"tiers":["T2+"],"max_reveal":"full"}}}}}`,
			"purposes.provider_vetting.grounds.contract.tiers[0]", "T2+ not permitted for contract"},
		{"contract on T1 outside payment", `{"version":"x","purposes":{"support":{"enabled":true,"grounds":{"contract":{"tiers":["T1"],"max_reveal":"full"}}}}}`,
			"purposes.support.grounds.contract.tiers[0]", "only for the subject's own payment"},
		{"vital interest on T1", `{"version":"x","purposes":{"emergency":{"enabled":true,"grounds":{"vital_interest":{"tiers":["T0","T1"],"max_reveal":"full"}}}}}`,
			"purposes.emergency.grounds.vital_interest.tiers[1]", "T1 not permitted for vital_interest"},
		{"research on T1", `{"version":"x","purposes":{"analytics":{"enabled":true,"grounds":{"research_statistics":{"tiers":["T1"],"max_reveal":"masked"}}}}}`,
			"purposes.analytics.grounds.research_statistics.tiers[0]", "T1 not permitted"},
		{"criminal-record consent for marketing", `{"version":"x","purposes":{"marketing":{"enabled":true,"grounds":{"consent":{"tiers":["T0","T2+"],"max_reveal":"full"}}}}}`,
			"purposes.marketing.grounds.consent.tiers[1]", "only provider_vetting"},
		{"research in full", `{"version":"x","purposes":{"analytics":{"enabled":true,"grounds":{"research_statistics":{"tiers":["T0"],"max_reveal":"full"}}}}}`,
			"purposes.analytics.grounds.research_statistics.max_reveal", "must be masked"},
		{"bad reveal", `{"version":"x","purposes":{"marketing":{"enabled":true,"grounds":{"consent":{"tiers":["T0"],"max_reveal":"plain"}}}}}`,
			"purposes.marketing.grounds.consent.max_reveal", `unknown reveal level "plain"`},
		{"no reveal", `{"version":"x","purposes":{"marketing":{"enabled":true,"grounds":{"consent":{"tiers":["T0"]}}}}}`,
			"purposes.marketing.grounds.consent.max_reveal", "required"},
		{"DSR ground for marketing", `{"version":"x","purposes":{"marketing":{"enabled":true,"grounds":{"data_subject_request":{"tiers":["T0"],"max_reveal":"full"}}}}}`,
			"purposes.marketing.grounds.data_subject_request", "only the data_subject_request purpose"},
		{"tail too long", `{"version":"x","switches":{"contract_tail_days":4000}}`, "switches.contract_tail_days", "0 to 3650"},
		{"incident 48 h", `{"version":"x","switches":{"vital_incident_validity_hours":48}}`, "switches.vital_incident_validity_hours", "at most 24 h"},
		{"criminal retention 12 months", `{"version":"x","switches":{"criminal_record_retention_months":12}}`, "switches.criminal_record_retention_months", "at most 6 months"},
		{"dsr 0 days", `{"version":"x","switches":{"dsr_validity_days":0}}`, "switches.dsr_validity_days", "1 to 30"},
		{"contract T1 national ID", `{"version":"x","contract_t1_categories":["govid.th_national_id"]}`, "contract_t1_categories[0]", "not allowed"},
		{"vital unknown category", `{"version":"x","vital":{"categories":["contact.fax"],"incapable_only":[]}}`, "vital.categories[0]", `unknown category "contact.fax"`},
		{"vital bank account", `{"version":"x","vital":{"categories":["financial.bank_account"],"incapable_only":[]}}`, "vital.categories[0]", "only T0"},
		{"vital religion unconditionally", `{"version":"x","vital":{"categories":["demographic.religion"],"incapable_only":[]}}`, "vital.categories[0]", "only T0"},
		{"vital criminal record if incapable", `{"version":"x","vital":{"categories":[],"incapable_only":["criminal_record"]}}`, "vital.incapable_only[0]", "only T2"},
		{"vital duplicate", `{"version":"x","vital":{"categories":["contact.phone","contact.phone"],"incapable_only":[]}}`, "vital.categories[1]", "duplicate"},
		{"suspended marketing", `{"version":"x","states":{"suspended_purposes":["marketing"],"restricted_purposes":[],"restricted_grounds":[],"erasure_pending_purposes":[],"legal_hold_grounds":[]}}`,
			"states.suspended_purposes[0]", `"marketing" not allowed`},
		{"restricted by consent", `{"version":"x","states":{"suspended_purposes":[],"restricted_purposes":[],"restricted_grounds":["consent"],"erasure_pending_purposes":[],"legal_hold_grounds":[]}}`,
			"states.restricted_grounds[0]", `"consent" not allowed`},
		{"unknown purpose in states", `{"version":"x","states":{"suspended_purposes":["spam"],"restricted_purposes":[],"restricted_grounds":[],"erasure_pending_purposes":[],"legal_hold_grounds":[]}}`,
			"states.suspended_purposes[0]", `unknown purpose "spam"`},
		{"third party marketing", `{"version":"x","third_party_purposes":["marketing"]}`, "third_party_purposes[0]", "not allowed"},
		{"no legal role", `{"version":"x","roles":{"legal":[],"emergency":["e"],"integrity":["t"]}}`, "roles.legal", "at least one role"},
		{"empty role name", `{"version":"x","roles":{"legal":["legal",""],"emergency":["e"],"integrity":["t"]}}`, "roles.legal[1]", "empty entry"},
		{"one-person instruments", `{"version":"x","approvals":{"authority_instrument":{"count":1,"roles":["legal"]}}}`, "approvals.authority_instrument.count", "at least 2"},
		{"instruments by anyone", `{"version":"x","approvals":{"authority_instrument":{"count":2,"roles":[]}}}`, "approvals.authority_instrument.roles", "required"},
		{"unapproved LIA", `{"version":"x","approvals":{"lia":{"count":0,"roles":[]}}}`, "approvals.lia.count", "at least 1"},
		{"unknown kind", `{"version":"x","approvals":{"hunch":{"count":1,"roles":[]}}}`, "approvals", `unknown evidence kind "hunch"`},
		{"no approvals at all", `{"version":"x","approvals":null}`, "approvals.", "at least"},
		{"minors unknown purpose", `{"version":"x","minors_alone_purposes":["spam"]}`, "minors_alone_purposes[0]", "unknown purpose"},
		{"lower a tier", `{"version":"x","category_tiers":{"health":"T0"}}`, "category_tiers.health", "only raise"},
		{"tier of unknown category", `{"version":"x","category_tiers":{"contact.fax":"T2"}}`, "category_tiers.contact.fax", "unknown category"},
		{"bad expiry", `{"version":"x","consent_expiry":{"months":0,"purposes":[]}}`, "consent_expiry.months", "1 to 120"},
		{"bad holiday", `{"version":"x","holidays":["2025-13-01"]}`, "holidays[0]", "YYYY-MM-DD"},
		{"duplicate holiday", `{"version":"x","holidays":["2025-04-13","2025-04-13"]}`, "holidays[1]", "duplicate"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p, err := policy.Load([]byte(c.json))
			if err == nil {
				t.Fatalf("Load accepted it: %+v", p)
			}
			if !errors.Is(err, policy.ErrInvalidPolicy) {
				t.Errorf("error does not wrap ErrInvalidPolicy: %v", err)
			}
			var ve *policy.ValidationError
			if !errors.As(err, &ve) {
				t.Fatalf("not a ValidationError: %v", err)
			}
			if !strings.HasPrefix(ve.Path, c.path) || (c.path == "" && ve.Path != "") {
				t.Errorf("Path = %q, want %q (%v)", ve.Path, c.path, err)
			}
			if !strings.Contains(ve.Reason, c.reason) {
				t.Errorf("Reason = %q, want it to contain %q", ve.Reason, c.reason)
			}
			if !strings.HasPrefix(err.Error(), "policy: ") {
				t.Errorf("message %q lacks the package prefix", err)
			}
		})
	}
	if _, err := policy.Load(bytes.Repeat([]byte(" "), policy.MaxFileSize+1)); err == nil {
		t.Error("oversized file accepted")
	}
}

// TestNewRejectsInvalid: New applies the same floor to a policy built in
// code.
func TestNewRejectsInvalid(t *testing.T) {
	p := policy.Default()
	p.Purposes[policy.PurposeFraudAML].Grounds[policy.GroundLegitimateInterest].Tiers = []string{"T0", "T2"}
	if _, err := policy.New(p); !errors.Is(err, policy.ErrInvalidPolicy) {
		t.Fatalf("New = %v", err)
	}
	if _, err := policy.New(nil); err == nil {
		t.Fatal("New(nil) accepted")
	}
}

func TestDefaultFileIsReadable(t *testing.T) {
	b, _ := policy.Default().Marshal()
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"version", "purposes", "switches", "vital", "states", "roles", "approvals"} {
		if _, ok := m[k]; !ok {
			t.Errorf("policy file lacks %q", k)
		}
	}
	sw := m["switches"].(map[string]any)
	if sw["transfer_require_consent"] != true || sw["notice_elevated_tier"] != true || sw["contract_tail_days"] != float64(90) ||
		sw["vital_incident_validity_hours"] != float64(24) || sw["criminal_record_retention_months"] != float64(6) || sw["holiday_extension"] != false {
		t.Errorf("default switches: %v", sw)
	}
	ph := m["purposes"].(map[string]any)["public_health"].(map[string]any)
	if ph["enabled"] != false {
		t.Error("public_health enabled by default")
	}
}

func TestNonWorkingDay(t *testing.T) {
	if policy.Default().NonWorkingDay() != nil {
		t.Fatal("holiday extension on by default")
	}
	p := policy.Default()
	p.Switches.HolidayExtension = true
	p.Holidays = []string{"2025-04-14"}
	f := p.NonWorkingDay()
	for d, want := range map[string]bool{"2025-04-12": true, "2025-04-13": true, "2025-04-14": true, "2025-04-15": false} {
		day, _ := time.ParseInLocation("2006-01-02", d, ict)
		if f(day) != want {
			t.Errorf("NonWorkingDay(%s) = %v", d, !want)
		}
	}
}

// FuzzLoad: Load never panics; whatever it accepts validates, builds an
// engine and round-trips to the same SHA256.
func FuzzLoad(f *testing.F) {
	def, _ := policy.Default().Marshal()
	f.Add(def)
	f.Add([]byte(`{"version":"x"}`))
	f.Add([]byte(`{"version":"x","purposes":{"marketing":null}}`))
	f.Add([]byte(`{"version":"x","approvals":null,"purposes":null}`))
	f.Add([]byte(`{"version":"x","category_tiers":{"health":"T2+"},"switches":{"contract_tail_days":0}}`))
	f.Add([]byte(`{"version":"x","purposes":{"fraud_aml":{"enabled":true,"grounds":{"legitimate_interest":{"tiers":["T2"],"max_reveal":"full"}}}}}`))
	f.Add([]byte(`{"a":{"b":[{"c":1},{"c":2}]},"a":1}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := policy.Load(data)
		if err != nil {
			if !errors.Is(err, policy.ErrInvalidPolicy) {
				t.Fatalf("error does not wrap ErrInvalidPolicy: %v", err)
			}
			return
		}
		if err := p.Validate(); err != nil {
			t.Fatalf("Load returned an invalid policy: %v", err)
		}
		if _, err := policy.New(p); err != nil {
			t.Fatalf("New refused a loaded policy: %v", err)
		}
		b, err := p.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		q, err := policy.Load(b)
		if err != nil {
			t.Fatalf("reload: %v", err)
		}
		if q.SHA256() != p.SHA256() {
			t.Fatal("round trip changed the SHA256")
		}
	})
}
