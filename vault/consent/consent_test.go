package consent_test

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/fieldvault/fieldvault/vault/consent"
	"github.com/fieldvault/fieldvault/vault/policy"
	"github.com/fieldvault/fieldvault/vault/subject"
)

var ict = subject.ICT

var granted = time.Date(2025, 1, 1, 0, 0, 0, 0, ict)

func valid() *consent.Consent {
	return &consent.Consent{
		ID: "c_1", Subject: "u1",
		GrantedBy:  []consent.Grantor{{Party: consent.PartySubject, ID: "u1"}},
		Categories: []string{"contact.phone", "contact.email"}, Purposes: []string{"marketing"},
		Recipients:    []consent.Recipient{{ID: "crm", Country: "TH"}},
		NoticeVersion: "2020-09-15", NoticeSHA256: strings.Repeat("ab", 32), Language: "th",
		CollectionMethod: consent.MethodInApp, GrantedAt: granted,
		ExpiresAt: granted.AddDate(2, 0, 0),
		Events:    []consent.Event{{Type: consent.EventGiven, At: granted, Actor: "u1", Channel: "app"}},
	}
}

// TestPurposesInStep: consent's purpose list is policy's.
func TestPurposesInStep(t *testing.T) {
	if got := consent.KnownPurposes(); !slices.Equal(got, policy.Purposes) {
		t.Fatalf("consent purposes %v != policy purposes %v", got, policy.Purposes)
	}
}

func TestValidate(t *testing.T) {
	if err := consent.Validate(valid()); err != nil {
		t.Fatalf("valid record: %v", err)
	}
	cases := []struct {
		name  string
		edit  func(c *consent.Consent)
		field string
	}{
		{"nil-ish subject", func(c *consent.Consent) { c.Subject = "" }, "subject"},
		{"bad id", func(c *consent.Consent) { c.ID = "a b" }, "id"},
		{"no grantor", func(c *consent.Consent) { c.GrantedBy = nil }, "granted_by"},
		{"unknown party", func(c *consent.Consent) { c.GrantedBy[0].Party = "friend" }, "granted_by[0].party"},
		{"empty party", func(c *consent.Consent) { c.GrantedBy[0].Party = "" }, "granted_by[0].party"},
		{"subject grantor is someone else", func(c *consent.Consent) { c.GrantedBy[0].ID = "u2" }, "granted_by[0].id"},
		{"guardian without id", func(c *consent.Consent) {
			c.GrantedBy = append(c.GrantedBy, consent.Grantor{Party: consent.PartyGuardian})
		}, "granted_by[1].id"},
		{"guardian is the subject", func(c *consent.Consent) {
			c.GrantedBy = append(c.GrantedBy, consent.Grantor{Party: consent.PartyGuardian, ID: "u1"})
		}, "granted_by[1].id"},
		{"verified guardian without document", func(c *consent.Consent) {
			c.GrantedBy = append(c.GrantedBy, consent.Grantor{Party: consent.PartyGuardian, ID: "g1", Verified: true})
		}, "granted_by[1].verification_ref"},
		{"subject twice", func(c *consent.Consent) {
			c.GrantedBy = append(c.GrantedBy, consent.Grantor{Party: consent.PartySubject})
		}, "granted_by[1]"},
		{"same guardian twice", func(c *consent.Consent) {
			g := consent.Grantor{Party: consent.PartyGuardian, ID: "g1"}
			c.GrantedBy = append(c.GrantedBy, g, g)
		}, "granted_by[2]"},
		{"no categories", func(c *consent.Consent) { c.Categories = nil }, "categories"},
		{"unknown category", func(c *consent.Consent) { c.Categories[1] = "contact.fax" }, "categories[1]"},
		{"duplicate category", func(c *consent.Consent) { c.Categories[1] = "contact.phone" }, "categories[1]"},
		{"no purposes", func(c *consent.Consent) { c.Purposes = []string{} }, "purposes"},
		{"unknown purpose", func(c *consent.Consent) { c.Purposes = []string{"marketing", "spam"} }, "purposes[1]"},
		{"duplicate purpose", func(c *consent.Consent) { c.Purposes = []string{"marketing", "marketing"} }, "purposes[1]"},
		{"regular consent for religion", func(c *consent.Consent) { c.Categories = []string{"demographic.religion"} }, "explicit"},
		{"criminal record for marketing", func(c *consent.Consent) {
			c.Explicit, c.Categories, c.Purposes = true, []string{"criminal_record"}, []string{"provider_vetting", "marketing"}
		}, "purposes[1]"},
		{"recipient without id", func(c *consent.Consent) { c.Recipients[0].ID = "" }, "recipients[0].id"},
		{"recipient country lower case", func(c *consent.Consent) { c.Recipients[0].Country = "th" }, "recipients[0].country"},
		{"duplicate recipient", func(c *consent.Consent) { c.Recipients = append(c.Recipients, c.Recipients[0]) }, "recipients[1]"},
		{"destination not ISO", func(c *consent.Consent) { c.Destinations = []string{"SG", "XX"} }, "destinations[1]"},
		{"destination UK", func(c *consent.Consent) { c.Destinations = []string{"UK"} }, "destinations[0]"},
		{"duplicate destination", func(c *consent.Consent) { c.Destinations = []string{"SG", "SG"} }, "destinations[1]"},
		{"informed without destinations", func(c *consent.Consent) { c.Explicit, c.InformedOfInadequacy = true, true }, "informed_of_inadequacy"},
		{"informed but not explicit", func(c *consent.Consent) { c.Destinations, c.InformedOfInadequacy = []string{"SG"}, true }, "informed_of_inadequacy"},
		{"no notice version", func(c *consent.Consent) { c.NoticeVersion = "" }, "notice_version"},
		{"notice hash upper case", func(c *consent.Consent) { c.NoticeSHA256 = strings.Repeat("AB", 32) }, "notice_sha256"},
		{"evidence hash short", func(c *consent.Consent) { c.EvidenceSHA256 = "abc" }, "evidence_sha256"},
		{"bad language", func(c *consent.Consent) { c.Language = "Thai" }, "language"},
		{"no method", func(c *consent.Consent) { c.CollectionMethod = "" }, "collection_method"},
		{"unknown method", func(c *consent.Consent) { c.CollectionMethod = "carrier_pigeon" }, "collection_method"},
		{"bad age band", func(c *consent.Consent) { c.SubjectAgeBandAtGrant = "teen" }, "subject_age_band_at_grant"},
		{"no granted_at", func(c *consent.Consent) { c.GrantedAt = time.Time{} }, "granted_at"},
		{"expires at grant", func(c *consent.Consent) { c.ExpiresAt = c.GrantedAt }, "expires_at"},
		{"expires before grant", func(c *consent.Consent) { c.ExpiresAt = c.GrantedAt.Add(-time.Hour) }, "expires_at"},
		{"unknown event", func(c *consent.Consent) { c.Events[0].Type = "LIKED" }, "events[0].type"},
		{"event without time", func(c *consent.Consent) { c.Events[0].At = time.Time{} }, "events[0].at"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := valid()
			c.edit(r)
			err := consent.Validate(r)
			var fe *consent.FieldError
			if !errors.As(err, &fe) || fe.Field != c.field {
				t.Fatalf("Validate = %v, want a FieldError on %q", err, c.field)
			}
			if !errors.Is(err, consent.ErrInvalid) {
				t.Error("does not wrap ErrInvalid")
			}
			for _, v := range []string{"contact.fax", "spam", "carrier_pigeon", "XX", "Thai", "teen", "LIKED"} {
				if strings.Contains(err.Error(), v) {
					t.Errorf("error %q echoes a value", err)
				}
			}
		})
	}
	// Records that are valid as records though not as consent.
	r := valid()
	r.CollectionMethod = consent.MethodTOSAcceptance
	if err := consent.Validate(r); err != nil {
		t.Errorf("tos_acceptance record refused: %v", err)
	}
	r = valid()
	r.Explicit, r.Categories, r.Purposes = true, []string{"criminal_record", "contact.phone"}, []string{"provider_vetting"}
	r.Destinations, r.InformedOfInadequacy = []string{"SG"}, true
	r.ExpiresAt = time.Time{}
	r.GrantedBy = append(r.GrantedBy, consent.Grantor{Party: consent.PartyGuardian, ID: "g1", Verified: true, VerificationRef: "DOC"},
		consent.Grantor{Party: consent.PartyGuardian, ID: "g2"})
	if err := consent.Validate(r); err != nil {
		t.Errorf("explicit vetting consent refused: %v", err)
	}
	if err := consent.Validate(nil); err == nil {
		t.Error("nil accepted")
	}
}

func TestStatusAndWithdraw(t *testing.T) {
	c := valid()
	exp := c.ExpiresAt
	for _, x := range []struct {
		now  time.Time
		want string
	}{
		{granted.Add(-time.Nanosecond), consent.StatusUnknown},
		{granted, consent.StatusGiven},
		{exp.Add(-time.Nanosecond), consent.StatusGiven},
		{exp, consent.StatusExpired},
	} {
		if got := consent.Status(c, x.now); got != x.want {
			t.Errorf("Status at %v = %s, want %s", x.now, got, x.want)
		}
	}
	if !consent.Active(c, granted) || consent.Active(c, exp) {
		t.Error("Active wrong")
	}
	c.Events = append(c.Events, consent.Event{Type: consent.EventRenewed, At: granted.AddDate(1, 0, 0)})
	if got := consent.Status(c, granted.AddDate(1, 0, 1)); got != consent.StatusRenewed {
		t.Errorf("after renewal = %s", got)
	}
	w := granted.AddDate(1, 1, 0)
	if err := consent.Withdraw(c, w, "", "app"); err == nil {
		t.Error("withdrawal without actor accepted")
	}
	if err := consent.Withdraw(c, w, "u1", "app"); err != nil {
		t.Fatal(err)
	}
	last := c.Events[len(c.Events)-1]
	if last.Type != consent.EventWithdrawn || !last.At.Equal(w) || last.Actor != "u1" || last.Channel != "app" {
		t.Fatalf("withdrawal event = %+v", last)
	}
	if got := consent.Status(c, w.Add(-time.Nanosecond)); got != consent.StatusRenewed {
		t.Errorf("just before withdrawal = %s", got)
	}
	if got := consent.Status(c, w); got != consent.StatusWithdrawn {
		t.Errorf("at withdrawal = %s", got)
	}
	if got := consent.Status(c, exp.AddDate(1, 0, 0)); got != consent.StatusWithdrawn {
		t.Errorf("withdrawn and expired = %s", got)
	}
	n := len(c.Events)
	if err := consent.Withdraw(c, w.Add(time.Hour), "u1", "email"); !errors.Is(err, consent.ErrAlreadyWithdrawn) || len(c.Events) != n {
		t.Fatalf("second withdrawal = %v (%d events)", err, len(c.Events))
	}
	c = valid()
	c.Events = append(c.Events, consent.Event{Type: consent.EventInvalidated, At: granted.Add(time.Hour)})
	if got := consent.Status(c, granted.Add(time.Hour)); got != consent.StatusInvalid {
		t.Errorf("invalidated = %s", got)
	}
	if err := consent.Withdraw(c, granted.AddDate(0, 1, 0), "u1", "app"); !errors.Is(err, consent.ErrInvalidated) {
		t.Errorf("withdrawing an invalidated consent = %v", err)
	}
}

func TestCountsAsConsent(t *testing.T) {
	for m, want := range map[string]bool{
		consent.MethodInApp: true, consent.MethodWebForm: true, consent.MethodPaper: true,
		consent.MethodTOSAcceptance: false, consent.MethodContinuedUse: false, consent.MethodDeemed: false,
		"": false, "other": false,
	} {
		c := valid()
		c.CollectionMethod = m
		if got := consent.CountsAsConsent(c); got != want {
			t.Errorf("CountsAsConsent(%q) = %v", m, got)
		}
	}
}

func TestGuardianRule(t *testing.T) {
	subj := consent.Grantor{Party: consent.PartySubject}
	guard := consent.Grantor{Party: consent.PartyGuardian, ID: "g1", Verified: true, VerificationRef: "DOC-1"}
	unverified := consent.Grantor{Party: consent.PartyGuardian, ID: "g1"}
	noRef := consent.Grantor{Party: consent.PartyGuardian, ID: "g1", Verified: true}
	cases := []struct {
		name    string
		by      []consent.Grantor
		band    subject.AgeBand
		married bool
		alone   bool
		inc     bool
		want    error
	}{
		{"<10 subject alone", []consent.Grantor{subj}, subject.AgeUnder10, false, false, false, consent.ErrGuardianRequired},
		{"<10 guardian", []consent.Grantor{guard}, subject.AgeUnder10, false, false, false, nil},
		{"<10 both", []consent.Grantor{subj, guard}, subject.AgeUnder10, false, false, false, nil},
		{"<10 unverified guardian", []consent.Grantor{unverified}, subject.AgeUnder10, false, false, false, consent.ErrGuardianRequired},
		{"<10 guardian without document", []consent.Grantor{noRef}, subject.AgeUnder10, false, false, false, consent.ErrGuardianRequired},
		{"<10 allowlist does not apply", []consent.Grantor{subj}, subject.AgeUnder10, false, true, false, consent.ErrGuardianRequired},
		{"10-19 subject alone", []consent.Grantor{subj}, subject.Age10To19, false, false, false, consent.ErrGuardianRequired},
		{"10-19 guardian alone", []consent.Grantor{guard}, subject.Age10To19, false, false, false, consent.ErrSubjectRequired},
		{"10-19 both", []consent.Grantor{subj, guard}, subject.Age10To19, false, false, false, nil},
		{"10-19 allowlisted alone", []consent.Grantor{subj}, subject.Age10To19, false, true, false, nil},
		{"10-19 married alone", []consent.Grantor{subj}, subject.Age10To19, true, false, false, nil},
		{">=20 alone", []consent.Grantor{subj}, subject.AgeAdult, false, false, false, nil},
		{">=20 guardian only", []consent.Grantor{guard}, subject.AgeAdult, false, false, false, consent.ErrSubjectRequired},
		{"unknown age", []consent.Grantor{subj}, subject.AgeUnknown, false, false, false, consent.ErrAgeUnknown},
		{"unknown age married", []consent.Grantor{subj}, subject.AgeUnknown, true, false, false, nil},
		{"incapable adult alone", []consent.Grantor{subj}, subject.AgeAdult, false, false, true, consent.ErrGuardianRequired},
		{"incapable adult custodian", []consent.Grantor{guard}, subject.AgeAdult, false, false, true, nil},
	}
	for _, c := range cases {
		r := valid()
		r.GrantedBy = c.by
		err := consent.CheckGrantors(r, consent.Capacity{Band: c.band, Married: c.married, MinorMayActAlone: c.alone, Incapable: c.inc})
		if !errors.Is(err, c.want) || (c.want == nil && err != nil) {
			t.Errorf("%s: CheckGrantors = %v, want %v", c.name, err, c.want)
		}
		if !c.alone && !c.inc {
			if err2 := consent.GuardianRule(r, c.band, c.married); !errors.Is(err2, c.want) || (c.want == nil && err2 != nil) {
				t.Errorf("%s: GuardianRule = %v, want %v", c.name, err2, c.want)
			}
		}
	}
	r := valid()
	r.GrantedBy = []consent.Grantor{subj, guard}
	if !consent.NeedsRenewal(r, consent.Capacity{Band: subject.AgeAdult}) || consent.NeedsRenewal(r, consent.Capacity{Band: subject.Age10To19}) {
		t.Error("NeedsRenewal wrong")
	}
}

func TestHash(t *testing.T) {
	a := valid()
	b := valid()
	b.Categories = []string{"contact.email", "contact.phone"}
	b.GrantedAt = b.GrantedAt.UTC()
	b.ExpiresAt = b.ExpiresAt.In(time.FixedZone("X", -5*3600))
	if consent.Hash(a) != consent.Hash(b) {
		t.Error("hash depends on list order or time zone")
	}
	h := consent.Hash(a)
	if len(h) != 64 {
		t.Fatalf("Hash = %q", h)
	}
	if err := consent.Withdraw(b, granted.AddDate(0, 1, 0), "u1", "app"); err != nil {
		t.Fatal(err)
	}
	if consent.Hash(b) == h {
		t.Error("withdrawal does not change the hash")
	}
	c := valid()
	c.Explicit = true
	if consent.Hash(c) == h {
		t.Error("explicit does not change the hash")
	}
	if !slices.Equal(a.Categories, []string{"contact.phone", "contact.email"}) {
		t.Error("Hash modified the record")
	}
}

func TestDefaultExpiry(t *testing.T) {
	r := consent.DefaultExpiryRules()
	c := valid()
	c.ExpiresAt = time.Time{}
	if !consent.ApplyDefaultExpiry(c, r) || !c.ExpiresAt.Equal(granted.AddDate(2, 0, 0)) {
		t.Fatalf("marketing default expiry = %v", c.ExpiresAt)
	}
	if consent.ApplyDefaultExpiry(c, r) {
		t.Error("applied twice")
	}
	c = valid()
	c.ExpiresAt = time.Time{}
	c.Purposes = []string{"identity_verification"}
	if _, ok := consent.DefaultExpiry(c, r); ok {
		t.Error("identity verification got a default expiry")
	}
	c.Purposes = []string{"provider_vetting"}
	c.Categories = []string{"criminal_record"}
	if exp, ok := consent.DefaultExpiry(c, r); !ok || !exp.Equal(granted.AddDate(0, 6, 0)) {
		t.Errorf("vetting default expiry = %v %v", exp, ok)
	}
	c.Purposes = []string{"partner_insurance_offers"}
	if exp, ok := consent.DefaultExpiry(c, r); !ok || !exp.Equal(granted.AddDate(0, 6, 0)) {
		t.Errorf("earliest rule not taken: %v", exp)
	}
	if rules := policy.Default().ConsentExpiryRules(); rules.Months != 24 || rules.CriminalRecordMonths != 6 || !slices.Equal(rules.Purposes, r.Purposes) {
		t.Errorf("policy rules %+v differ from consent defaults %+v", rules, r)
	}
}

func TestValidCountry(t *testing.T) {
	for _, cc := range []string{"TH", "SG", "US", "GB", "ZW", "AD"} {
		if !consent.ValidCountry(cc) {
			t.Errorf("%s refused", cc)
		}
	}
	for _, cc := range []string{"", "T", "THA", "th", "UK", "EU", "XK", "ZZ", "A1"} {
		if consent.ValidCountry(cc) {
			t.Errorf("%q accepted", cc)
		}
	}
	n := 0
	for a := 'A'; a <= 'Z'; a++ {
		for b := 'A'; b <= 'Z'; b++ {
			if consent.ValidCountry(string([]rune{a, b})) {
				n++
			}
		}
	}
	if n != 249 {
		t.Errorf("%d codes, want 249", n)
	}
}
